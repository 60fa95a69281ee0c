"""Which command groups the root ``bus389`` command offers (one line per group module)."""

from __future__ import annotations

import importlib

import click

__all__ = ["commands"]

_COMMANDS: list[tuple[str, str]] = [
    # (module, attribute) — each module defines one click command or group.
    ("bus389.cli.kafka_cmd", "kafka"),
    ("bus389.cli.schemas_cmd", "schemas"),
    ("bus389.cli.topics_cmd", "topics"),
    ("bus389.cli.publish_cmd", "publish"),
    ("bus389.cli.consume_cmd", "consume"),
    ("bus389.cli.report_cmd", "report"),
    ("bus389.cli.serve_cmd", "serve"),
    ("bus389.cli.ict_cmd", "ict"),
    ("bus389.cli.so_cmd", "so"),
    ("bus389.cli.tax_cmd", "tax"),
    ("bus389.cli.serve_cmd", "route"),
    ("bus389.cli.status_cmd", "status"),
    ("bus389.cli.routes_cmd", "routes"),
    ("bus389.cli.dlq_cmd", "dlq"),
    ("bus389.cli.bench_cmd", "bench"),
    ("bus389.cli.chaos_cmd", "chaos"),
    ("bus389.cli.security_cmd", "security"),
    ("bus389.cli.web_cmd", "web"),
    ("bus389.cli.verify_cmd", "verify"),
    ("bus389.cli.audit_cmd", "audit"),
    ("bus389.cli.evidence_cmd", "evidence"),
]


def commands() -> list[click.Command]:
    found: list[click.Command] = []
    for module_name, attribute in _COMMANDS:
        module = importlib.import_module(module_name)
        found.append(getattr(module, attribute))
    return found
