"""``bus389 kafka``: run the local Kafka (KRaft on loopback) — up, down, status, kill and start a broker."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from bus389.cli._context import pass_settings
from bus389.localkafka import ClusterStatus, LocalCluster
from bus389.settings import Settings

__all__ = ["kafka"]

F = TypeVar("F", bound=Callable[..., Any])


def _where(f: F) -> F:
    """The option that says which local cluster a command means (its ports are in its state.json)."""
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Where the cluster's data, logs and state.json live [default: settings.local.data_dir].",
    )(f)


def _cluster(
    settings: Settings,
    data_dir: Path | None,
    base_port: int | None = None,
    *,
    heap: str | None = None,
    kafka_home: Path | None = None,
) -> LocalCluster:
    return LocalCluster(
        settings,
        data_dir=data_dir,
        base_port=base_port,
        heap=heap,
        kafka_home=kafka_home,
        echo=lambda line: click.echo(line, err=True),
    )


@click.group("kafka")
def kafka() -> None:
    """Run a local Apache Kafka (KRaft, broker and controller in one JVM) on 127.0.0.1.

    The jars are fetched once from Maven Central into settings.local.cache_dir (or taken from
    KAFKA_HOME); brokers keep running after the command returns, until `bus389 kafka down`.

    \b
    Example:
      bus389 kafka up                 # one broker on 127.0.0.1:9092
      bus389 kafka up --brokers 3 --base-port 19092 --data-dir /tmp/k3
      bus389 kafka status
      bus389 kafka down
    """


@kafka.command("up")
@click.option("--brokers", type=click.IntRange(1, 9), default=1, show_default=True, help="Cluster size.")
@_where
@click.option(
    "--base-port",
    type=click.IntRange(1024, 65000),
    default=None,
    help="Broker i listens on BASE+i-1, its controller on BASE+100+i-1 [default: settings.local].",
)
@click.option("--heap", default=None, help="Java heap per broker, e.g. 384m [default: settings.local.heap].")
@click.option(
    "--kafka-home",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    envvar="KAFKA_HOME",
    default=None,
    help="Use this Kafka distribution's libs/ instead of fetching (env KAFKA_HOME).",
)
@click.option("--fresh", is_flag=True, help="Wipe a stopped cluster's data in --data-dir and format anew.")
@click.option(
    "--secure",
    is_flag=True,
    help="SASL_SSL (SCRAM-SHA-512) only, TLS from a local CA, ACLs enforced; writes the admin's "
    "config to <data-dir>/security/admin.env (chosen at format time).",
)
@pass_settings
def up(
    settings: Settings,
    brokers: int,
    data_dir: Path | None,
    base_port: int | None,
    heap: str | None,
    kafka_home: Path | None,
    fresh: bool,
    secure: bool,
) -> None:
    """Start the local cluster and return once every broker is up and unfenced.

    Then Kafka's internal topics (__consumer_offsets, __transaction_state) are made while every
    broker is up (a second or two, once): the first transaction or group commit does not wait for
    them, and they are not born under-replicated when a broker happens to be down at first use.

    Idempotent: a cluster already running in the data dir is left alone; brokers of it that
    died are started again. Exits 4 when Java 17+ or Maven is missing, a port is taken or the
    brokers do not come up within settings.local.start_timeout_s (and shows the broker's log).

    With --secure there is no plaintext client listener: clients use SASL_SSL with SCRAM-SHA-512
    and the local CA's certificate, the StandardAuthorizer denies what no ACL allows, and User:admin
    (password generated, kept 0600 in <data-dir>/security, never printed) is the super user. Then
    run `bus389 --config <data-dir>/security/admin.env topics apply` and `... security apply`.

    \b
    Example:
      bus389 kafka up
      export BUS389_BOOTSTRAP=127.0.0.1:9092
      bus389 kafka up --secure --data-dir /tmp/k-secure --base-port 39092
    """
    cluster = _cluster(settings, data_dir, base_port, heap=heap, kafka_home=kafka_home)
    result = cluster.up(brokers, fresh=fresh, secure=secure)
    state = result.state
    noun = "broker" if state.size == 1 else "brokers"
    if result.already_running:
        click.echo(
            f"Kafka {state.version} is already running in {cluster.data_dir} "
            f"({state.size} {noun}, cluster {state.cluster_id}): nothing to do"
        )
    else:
        click.echo(f"Kafka {state.version} is up: {state.size} {noun}, cluster {state.cluster_id}")
        click.echo(f"  data dir:  {cluster.data_dir}")
    click.echo(f"  bootstrap: {result.bootstrap}")
    if state.secure:
        from bus389.security.localbroker import SECURITY_DIR, SecureFiles

        admin_config = SecureFiles(cluster.data_dir / SECURITY_DIR).admin_config_path
        click.echo(f"  security:  SASL_SSL + SCRAM-SHA-512, ACLs enforced; admin config {admin_config}")
        click.echo(f"  export BUS389_CONFIG={admin_config}")
    else:
        click.echo(f"  export BUS389_BOOTSTRAP={result.bootstrap}")


@kafka.command("down")
@_where
@click.option("--purge", is_flag=True, help="Also delete the cluster's data (topics, offsets).")
@pass_settings
def down(settings: Settings, data_dir: Path | None, purge: bool) -> None:
    """Stop the brokers recorded in the data dir's state.json (SIGTERM, SIGKILL after a timeout).

    Only those pids are signalled; the data stays for the next `up` unless --purge.

    \b
    Example:
      bus389 kafka down
      bus389 kafka down --data-dir /tmp/k3 --purge
    """
    cluster = _cluster(settings, data_dir)
    reports = cluster.down(purge=purge)
    if not reports:
        click.echo(f"nothing to stop in {cluster.data_dir}")
    for report in reports:
        click.echo(f"broker {report.node_id} (pid {report.pid}) {report.how}")
    if purge:
        click.echo(f"deleted the cluster's data in {cluster.data_dir}")


@kafka.command("status")
@_where
@pass_settings
def status(settings: Settings, data_dir: Path | None) -> None:
    """Show each broker's id, pid, port and whether it is alive, and whether the cluster answers.

    Exits 0 only when every broker is alive and unfenced and the cluster answers; 1 otherwise.

    \b
    Example:
      bus389 kafka status || bus389 kafka up
    """
    cluster = _cluster(settings, data_dir)
    st = cluster.status()
    click.echo(_render_status(st))
    if not st.healthy:
        raise click.exceptions.Exit(1)


def _render_status(st: ClusterStatus) -> str:
    if st.cluster_id is None:
        return f"no local cluster in {st.data_dir}: down"
    lines = [f"cluster {st.cluster_id} in {st.data_dir} (bootstrap {st.bootstrap})"]
    for b in st.brokers:
        state = "alive" if b.alive else "dead"
        if b.unfenced is not None:
            state += ", unfenced" if b.unfenced else ", not registered or fenced"
        lines.append(f"  broker {b.node_id}: pid {b.pid or '-'}, port {b.port}, {state}")
    answer = "yes" if st.answering else "no"
    lines.append(f"  cluster answers: {answer}" + (f" ({st.detail})" if st.detail else ""))
    lines.append("  status: " + ("up" if st.healthy else "degraded" if st.answering else "down"))
    return "\n".join(lines)


@kafka.command("kill")
@click.argument("broker_id", type=int)
@_where
@pass_settings
def kill(settings: Settings, broker_id: int, data_dir: Path | None) -> None:
    """SIGKILL one broker (a crash: no clean shutdown), to test what survives it.

    \b
    Example:
      bus389 kafka kill 2 --data-dir /tmp/k3 && bus389 kafka start 2 --data-dir /tmp/k3
    """
    pid = _cluster(settings, data_dir).kill(broker_id)
    click.echo(f"broker {broker_id} (pid {pid}) killed")


@kafka.command("start")
@click.argument("broker_id", type=int)
@_where
@pass_settings
def start(settings: Settings, broker_id: int, data_dir: Path | None) -> None:
    """Start one stopped or killed broker again; returns once the cluster has it unfenced.

    \b
    Example:
      bus389 kafka start 2 --data-dir /tmp/k3
    """
    pid = _cluster(settings, data_dir).start(broker_id)
    click.echo(f"broker {broker_id} started (pid {pid})")
