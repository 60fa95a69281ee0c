"""docker-compose.yml is consistent (no Docker engine here): it parses, images are pinned, every
`bus389 ...` command exists in the real CLI, host ports do not collide, mounted files exist, and the
Kafka cluster is the replicated one the issue asks for."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from bus389.metrics import DEFAULT_PORTS
from bus389.settings import LocalKafkaSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The checkout this test runs from (examples, deploy files)."""

COMPOSE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"

LONG_RUNNING_BUS389 = {
    "router": "route",
    "ict": "serve ict",
    "standing-office": "serve standing-office",
    "web": "serve web",
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(doc, dict) and isinstance(doc.get("services"), dict)
    return doc


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(compose["services"])


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command")
    if command is None:
        return []
    return [str(part) for part in command] if isinstance(command, list) else str(command).split()


def resolve(args: list[str]) -> tuple[click.Command, list[str]]:
    """Walk the real click tree from ``bus389``: the command ``args`` name, and the options left."""
    from bus389.cli.main import cli

    command: click.Command = cli
    rest = list(args)
    while isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
        ctx = click.Context(command)
        found = command.get_command(ctx, rest[0])
        if found is None:
            pytest.fail(f"`bus389 {' '.join(args)}`: no command {rest[0]!r} under {command.name!r}")
        command, rest = found, rest[1:]
    return command, rest


def _option_names(command: click.Command) -> set[str]:
    return {
        opt for p in command.params if isinstance(p, click.Option) for opt in (*p.opts, *p.secondary_opts)
    }


def test_the_stack_has_every_part(services: dict[str, dict[str, Any]]) -> None:
    expected = {"kafka-1", "kafka-2", "kafka-3", "topics", *LONG_RUNNING_BUS389, "prometheus"}
    expected |= {"alertmanager", "grafana"}
    assert expected <= set(services)


def test_every_image_is_pinned(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        image = service.get("image")
        assert image or service.get("build"), f"{name}: neither image nor build"
        if image:
            repo, _, tag = str(image).rpartition(":")
            assert repo and "/" not in tag, f"{name}: image {image!r} has no tag"
            assert tag and tag != "latest", f"{name}: image {image!r} is not pinned"
            assert "${" not in str(image), f"{name}: image {image!r} depends on the environment"


def test_kafka_is_the_official_image_at_the_local_version(services: dict[str, dict[str, Any]]) -> None:
    version = LocalKafkaSettings().version
    brokers = [s for n, s in services.items() if n.startswith("kafka-")]
    assert len(brokers) == 3
    for broker in brokers:
        assert broker["image"] == f"apache/kafka:{version}"


def test_kafka_is_a_replicated_kraft_cluster(services: dict[str, dict[str, Any]]) -> None:
    node_ids = set()
    for name in ("kafka-1", "kafka-2", "kafka-3"):
        env = {k: str(v) for k, v in services[name]["environment"].items()}
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == "2"
        assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
        voters = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")
        assert len(voters) == 3
        node_ids.add(env["KAFKA_NODE_ID"])
        assert f"{env['KAFKA_NODE_ID']}@{name}:9093" in voters
        assert env["CLUSTER_ID"]
    assert node_ids == {"1", "2", "3"}


def test_bus389_services_use_the_replicated_settings(services: dict[str, dict[str, Any]]) -> None:
    for name in ("topics", *LONG_RUNNING_BUS389):
        env = {k: str(v) for k, v in services[name]["environment"].items()}
        assert env["BUS389_BOOTSTRAP"].split(",") == ["kafka-1:9092", "kafka-2:9092", "kafka-3:9092"]
        assert env["BUS389_KAFKA__REPLICATION_FACTOR"] == "3"
        assert env["BUS389_KAFKA__MIN_INSYNC_REPLICAS"] == "2"


def test_every_bus389_command_exists_in_the_cli(services: dict[str, dict[str, Any]]) -> None:
    commands = {name: _command(s) for name, s in services.items() if _command(s)[:1] == ["bus389"]}
    assert set(commands) >= {"topics", *LONG_RUNNING_BUS389}
    for name, args in commands.items():
        command, rest = resolve(args[1:])
        assert not isinstance(command, click.Group), (
            f"{name}: `{' '.join(args)}` names a group, not a command"
        )
        options = _option_names(command)
        for arg in rest:
            if arg.startswith("-"):
                assert arg.split("=", 1)[0] in options, f"{name}: {command.name} has no option {arg}"


def test_the_services_run_the_commands_the_issue_names(services: dict[str, dict[str, Any]]) -> None:
    assert _command(services["topics"]) == ["bus389", "topics", "apply"]
    for name, sub in LONG_RUNNING_BUS389.items():
        assert _command(services[name])[1:] == sub.split(), name


def test_resolve_rejects_a_command_that_does_not_exist() -> None:
    with pytest.raises(pytest.fail.Exception, match="no command"):
        resolve(["no-such-command"])


def _host_ports(service: dict[str, Any]) -> list[tuple[str, int]]:
    found = []
    for entry in service.get("ports", []) or []:
        if isinstance(entry, dict):
            published = entry.get("published")
            if published is not None:
                found.append((str(entry.get("host_ip", "0.0.0.0")), int(published)))
            continue
        parts = str(entry).split("/")[0].split(":")
        if len(parts) == 3:
            found.append((parts[0], int(parts[1])))
        elif len(parts) == 2:
            found.append(("0.0.0.0", int(parts[0])))
    return found


def test_host_ports_do_not_collide(services: dict[str, dict[str, Any]]) -> None:
    ports = [port for s in services.values() for _, port in _host_ports(s)]
    assert ports, "nothing published"
    duplicated = [port for port, n in Counter(ports).items() if n > 1]
    assert duplicated == []
    # The local development broker's ports stay free, so both can run on one machine.
    assert not {9092, 9093} & set(ports)


def test_only_kafka_listens_beyond_loopback(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for host_ip, port in _host_ports(service):
            if not name.startswith("kafka-"):
                assert host_ip == "127.0.0.1", f"{name}: port {port} published on {host_ip}"


def test_metrics_ports_match_the_scrape_config(services: dict[str, dict[str, Any]]) -> None:
    scrape = yaml.safe_load((REPO_ROOT / "deploy" / "prometheus" / "prometheus.compose.yml").read_text())
    targets = {t for job in scrape["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    for name in LONG_RUNNING_BUS389:
        port = str(services[name]["environment"]["BUS389_METRICS__PORT"])
        assert port == str(DEFAULT_PORTS[name])
        assert f"{name}:{port}" in targets


def test_mounted_files_exist_and_named_volumes_are_declared(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    used_named: set[str] = set()
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []) or []:
            source = volume["source"] if isinstance(volume, dict) else str(volume).split(":")[0]
            if source.startswith((".", "/")):
                path = (REPO_ROOT / source).resolve() if source.startswith(".") else None
                assert path is not None, f"{name}: absolute host path {source!r} is not portable"
                assert path.exists(), f"{name}: mounts {source}, which does not exist"
            else:
                used_named.add(source)
    assert used_named <= declared, f"undeclared volumes: {used_named - declared}"
    assert {"kafka-1-data", "kafka-2-data", "kafka-3-data", "prometheus-data", "grafana-data"} <= used_named


def test_long_running_services_have_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        if name == "topics":
            assert service.get("restart") == "no"
            continue
        test = (service.get("healthcheck") or {}).get("test")
        assert test, f"{name}: no healthcheck"
        if name in LONG_RUNNING_BUS389:
            assert f":{DEFAULT_PORTS[name]}/metrics" in " ".join(test)


def test_dependencies_exist_and_services_wait_for_topics(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        for dependency in depends:
            assert dependency in services, f"{name} depends on unknown {dependency}"
    for name in LONG_RUNNING_BUS389:
        condition = services[name]["depends_on"]["topics"]["condition"]
        assert condition == "service_completed_successfully"
    for broker in ("kafka-1", "kafka-2", "kafka-3"):
        assert services["topics"]["depends_on"][broker]["condition"] == "service_healthy"


def test_the_dockerfile_installs_the_wheel_as_a_non_root_user() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    assert re.search(r"^RUN pip wheel --no-deps --wheel-dir /wheels \.", text, re.M)
    # The wheel with its `web` extra (the console's dependencies).
    assert re.search(r"^RUN pip install \"\$\(ls /wheels/\*\.whl\)\[web\]\"", text, re.M)
    # The running image holds the installed wheel only: no source folder is copied into its last stage.
    last_stage = text.rsplit("\nFROM ", 1)[1]
    assert re.findall(r"^COPY\s+(.+)$", last_stage, re.M) == ["--from=build /wheels /wheels"]
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1] not in {"root", "0"}
    for line in re.findall(r"^COPY\s+(.+)$", text, re.M):
        *sources, _dest = line.split()
        for source in sources:
            if not source.startswith("--") and not source.startswith("/"):
                assert (REPO_ROOT / source).exists(), f"Dockerfile copies {source}, which does not exist"
    assert (REPO_ROOT / ".dockerignore").exists()
