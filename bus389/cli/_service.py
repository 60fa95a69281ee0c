"""What every long-running service command shares: its options, logging, metrics port and SIGTERM flag."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from bus389.runtime.stop import StopFlag
from bus389.settings import Settings

__all__ = ["running_service", "service_options"]

F = TypeVar("F", bound=Callable[..., Any])


def service_options(service: str, *, idle_help: str = "empty polls") -> Callable[[F], F]:
    """``--metrics-port`` and ``--max-idle-polls``, the same on every service command."""
    from bus389.metrics import DEFAULT_PORTS

    default_port = DEFAULT_PORTS[service]

    def decorate(f: F) -> F:
        f = click.option(
            "--max-idle-polls",
            type=click.IntRange(min=1),
            default=None,
            help=f"Stop after this many {idle_help} in a row (tests, one-shot catch-up) "
            "[default: run until SIGTERM].",
        )(f)
        return click.option(
            "--metrics-port",
            type=click.IntRange(0, 65535),
            default=None,
            help="Serve /metrics here (0: any free port) "
            f"[default: BUS389_METRICS__PORT, else {default_port}].",
        )(f)

    return decorate


@contextmanager
def running_service(
    settings: Settings,
    service: str,
    *,
    metrics_port: int | None,
    lag_groups: Mapping[str, Iterable[str]] | None = None,
) -> Iterator[StopFlag]:
    """Configure logging, serve ``/metrics`` (port printed), watch ``lag_groups``, install SIGTERM.

    Yields the stop flag the service's loop checks; the metrics server stops (``up`` → 0) on exit.
    """
    from bus389 import metrics
    from bus389.lag import register_lag_collector
    from bus389.logs import configure_logging

    configure_logging(settings)
    port = metrics.serve_metrics(settings, metrics.DEFAULT_PORTS[service], service, port=metrics_port)
    click.echo(f"{service}: metrics on http://{settings.metrics.host}:{port}/metrics", err=True)
    if lag_groups:
        register_lag_collector(settings, lag_groups)
    try:
        yield StopFlag().install()
    finally:
        metrics.stop_metrics(port)
