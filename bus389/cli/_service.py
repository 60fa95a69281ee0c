"""What every long-running service command shares: its options, logging, metrics port, SIGTERM flag and
the one-active-instance lock (a second instance waits as a standby: :mod:`bus389.instances`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from bus389.runtime.stop import StopFlag
from bus389.settings import Settings

__all__ = ["Running", "running_service", "service_options"]

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


@dataclass(frozen=True)
class Running:
    """What a service command runs with once its instance is the active one."""

    stop: StopFlag
    settings: Settings
    """The command's settings with the Kafka client id naming the service, pid and metrics port."""


@contextmanager
def running_service(
    settings: Settings,
    service: str,
    *,
    metrics_port: int | None,
    lag_groups: Mapping[str, Iterable[str]] | None = None,
) -> Iterator[Running | None]:
    """Configure logging, serve ``/metrics`` (port printed), install SIGTERM, become the active instance
    (waiting as a standby while another is), then watch ``lag_groups``.

    Yields None when SIGTERM came while standing by (nothing was opened: the command just returns);
    the metrics server stops (``up`` → 0) on exit. Raises
    :class:`~bus389.instances.AlreadyRunningError` when another instance is active and standbys are off.
    """
    from bus389 import metrics
    from bus389.instances import active_lock, client_id
    from bus389.lag import register_lag_collector
    from bus389.logs import configure_logging

    configure_logging(settings)
    port = metrics.serve_metrics(settings, metrics.DEFAULT_PORTS[service], service, port=metrics_port)
    click.echo(f"{service}: metrics on http://{settings.metrics.host}:{port}/metrics", err=True)
    try:
        stop = StopFlag().install()
        with active_lock(settings, service, metrics_port=port, stopped=lambda: stop.is_set) as active:
            if not active:
                click.echo(f"{service}: stopped while standing by", err=True)
                yield None
                return
            kafka = settings.kafka.model_copy(update={"client_id": client_id(service, port)})
            settings = settings.model_copy(update={"kafka": kafka})
            if lag_groups:
                register_lag_collector(settings, lag_groups)
            yield Running(stop=stop, settings=settings)
    finally:
        metrics.stop_metrics(port)
