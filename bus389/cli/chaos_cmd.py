"""``bus389 chaos``: fault injection under load, the independent checker, the stores' consistency check."""

from __future__ import annotations

from pathlib import Path

import click

from bus389.cli._context import pass_settings
from bus389.settings import Settings

__all__ = ["chaos"]


def _echo(line: str) -> None:
    click.echo(line, err=True)


@click.group("chaos")
def chaos() -> None:
    """Prove that nothing is lost under faults: kill brokers and services while publishing, then check.

    The run uses its own 3-broker cluster (settings.chaos: ports from 29092, its own data dir), never
    the shared broker, and a topic prefix of its own.

    \b
    Example:
      bus389 chaos run --seconds 60 --rate 10 --seed 7
      bus389 chaos check --history ~/.local/state/bus389/chaos/chaos_7_ab12cd/history.jsonl
      bus389 chaos consistency --wait 30
    """


@chaos.command("run")
@click.option("--events", type=click.IntRange(min=1), default=None, help="Stop publishing after N events.")
@click.option(
    "--rate", type=click.FloatRange(min=0.1), default=10.0, show_default=True, help="Events a second."
)
@click.option(
    "--seconds", type=click.FloatRange(min=5), default=None, help="Run length [default: 45, or N/R]."
)
@click.option(
    "--seed", type=int, default=389, show_default=True, help="Seeds the events and the fault schedule."
)
@click.option("--brokers", type=click.IntRange(3, 9), default=3, show_default=True, help="Cluster size.")
@click.option(
    "--faults", type=click.IntRange(min=0), default=None, help="How many faults [default: 1 per 12 s, ≥4]."
)
@click.option("--base-port", type=click.IntRange(1024, 65000), default=None, help="[default: settings.chaos]")
@click.option(
    "--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None, help="Cluster data."
)
@click.option(
    "--work-dir", type=click.Path(file_okay=False, path_type=Path), default=None, help="History, logs."
)
@click.option("--heap", default=None, help="Java heap per broker [default: settings.chaos.heap, 384m].")
@click.option("--settle", type=click.FloatRange(min=1), default=None, help="Seconds to wait for stragglers.")
@click.option(
    "--workers", type=click.IntRange(1, 32), default=8, show_default=True, help="Publishing threads."
)
@click.option("--keep-cluster", is_flag=True, help="Leave a cluster this run started running.")
@pass_settings
def run(
    settings: Settings,
    events: int | None,
    rate: float,
    seconds: float | None,
    seed: int,
    brokers: int,
    faults: int | None,
    base_port: int | None,
    data_dir: Path | None,
    work_dir: Path | None,
    heap: str | None,
    settle: float | None,
    workers: int,
    keep_cluster: bool,
) -> None:
    """Publish events of every type at RATE a second while faults are injected, then check the bus.

    On the chaos cluster, with the router, the ICT service and the standing office's service running
    as subprocesses: SIGKILL of a partition leader broker (restarted), SIGSTOP of a broker past the
    session timeouts (SIGCONT), SIGKILL of each service (restarted), on a schedule the seed fixes.
    Every acknowledged event is recorded in the run's history.jsonl; afterwards the independent checker
    reads every inbox, the audit topic, the DLQ, the ict outbox and the stores, and prints
    published=… acknowledged=… faults=… lost=… duplicated=… misrouted=…; the exit status is 1 on
    any loss, duplicate, misroute or phantom.

    \b
    Example:
      bus389 chaos run                          # 45 s, 10 events/s, 4 faults
      bus389 chaos run --seconds 300 --faults 15 --seed 2021
    """
    from bus389.chaos.run import ChaosConfig, run_chaos

    updates: dict[str, object] = {}
    for name, value in (
        ("base_port", base_port),
        ("data_dir", data_dir),
        ("work_dir", work_dir),
        ("heap", heap),
        ("settle_timeout_s", settle),
    ):
        if value is not None:
            updates[name] = value
    if updates:
        settings = settings.model_copy(update={"chaos": settings.chaos.model_copy(update=updates)})
    length = seconds if seconds is not None else (events / rate if events is not None else 45.0)
    config = ChaosConfig(
        seconds=length,
        rate=rate,
        events=events,
        seed=seed,
        brokers=brokers,
        faults=faults,
        workers=workers,
        keep_cluster=keep_cluster,
    )
    result = run_chaos(settings, config, echo=_echo)
    _echo(result.report.describe())
    kinds: dict[str, int] = {}
    for fault in result.faults:
        kinds[str(fault["fault"])] = kinds.get(str(fault["fault"]), 0) + 1
    _echo(f"faults: {kinds}; services that died by themselves: {result.crashes or 'none'}")
    _echo(f"services' exit status on SIGTERM: {result.exit_codes}")
    _echo(f"history: {result.run_dir / 'history.jsonl'} ({result.elapsed_s:.0f}s)")
    if keep_cluster:
        _echo(f"check again: bus389 chaos check --history {result.run_dir / 'history.jsonl'}")
    for problem in result.problems:
        _echo(f"problem: {problem}")
    click.echo(result.summary())
    if not result.ok:
        raise click.exceptions.Exit(1)


@chaos.command("check")
@click.option(
    "--history",
    "history_path",
    required=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The history.jsonl of a run.",
)
@click.option(
    "--settle", type=click.FloatRange(min=0), default=0.0, show_default=True, help="Retry for S seconds."
)
@click.option("--no-stores", is_flag=True, help="Check the topics only, not the services' stores.")
@pass_settings
def check(settings: Settings, history_path: Path, settle: float, no_stores: bool) -> None:
    """Check a run's history against the bus again (the bus named in the history's first line).

    `chaos run` already runs this check before it stops the cluster it started; checking again needs
    that cluster: run with --keep-cluster, check, then `bus389 kafka down --data-dir DIR --purge`.
    Exits 3 at once when the run's cluster does not answer; 1 on any loss, duplicate, misroute or
    phantom.

    \b
    Example:
      bus389 chaos run --seconds 60 --keep-cluster
      bus389 chaos check --history ~/.local/state/bus389/chaos/<run>/history.jsonl --settle 30
      bus389 kafka down --data-dir ~/.local/state/bus389/chaos-kafka --purge
    """
    from bus389.chaos.checker import check_until_settled
    from bus389.chaos.expectation import PolicyModel
    from bus389.chaos.history import read_history
    from bus389.chaos.run import summary_line
    from bus389.errors import InputError

    history = read_history(history_path)
    info = history.run
    if info is None:
        raise InputError(f"{history_path}: no run line: not the history of a chaos run")
    settings = settings.model_copy(update={"bootstrap": info.bootstrap, "topic_prefix": info.topic_prefix})
    _require_cluster(settings, history_path)
    report = check_until_settled(
        settings,
        history,
        PolicyModel.load(info.policy_path),
        timeout_s=max(settle, 0.1),
        standing_office_url=None if no_stores else info.standing_office_url,
        ict_url=None if no_stores else info.ict_url,
    )
    _echo(report.describe())
    click.echo(summary_line(report, faults=len(history.faults)))
    if not report.ok:
        raise click.exceptions.Exit(1)


@chaos.command("consistency")
@click.option(
    "--wait", type=click.FloatRange(min=0), default=0.0, show_default=True, help="Retry for S seconds."
)
@click.option(
    "--history",
    "history_path",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Check the bus and stores of this chaos run instead of the configured ones.",
)
@pass_settings
def consistency(settings: Settings, wait: float, history_path: Path | None) -> None:
    """Compare the ICT store and RPZ zone, and the standing office's store, with what the inboxes hold.

    Every event of the market_surveillance inbox must be in the standing office's store and nothing
    else; every domain_block_request of the ict inbox in the ICT store; every result marked sent on the
    ict outbox; the RPZ zone exactly the blocked domains and addresses. Exit status 1 if not.

    \b
    Example:
      bus389 chaos consistency --wait 30
      BUS389_TOPIC_PREFIX=bus389 bus389 chaos consistency
    """
    from bus389.chaos.consistency import check_consistency

    if history_path is not None:
        from bus389.chaos.history import read_history
        from bus389.errors import InputError
        from bus389.settings import StoreSettings

        info = read_history(history_path).run
        if info is None:
            raise InputError(f"{history_path}: no run line: not the history of a chaos run")
        settings = settings.model_copy(
            update={
                "bootstrap": info.bootstrap,
                "topic_prefix": info.topic_prefix,
                "store": StoreSettings(ict_url=info.ict_url, standing_office_url=info.standing_office_url),
                "ict": settings.ict.model_copy(
                    update={"output_dir": Path(info.ict_output_dir), "rpz_zone": info.rpz_zone}
                ),
            }
        )
    report = check_consistency(settings, wait_s=wait)
    click.echo(report.describe())
    if not report.ok:
        raise click.exceptions.Exit(1)


def _require_cluster(settings: Settings, history_path: Path) -> None:
    """Fail at once, saying why, when the run's cluster is gone (a run stops the cluster it started)."""
    from bus389.errors import BrokerError, NoBrokerError
    from bus389.kafka import broker_count, kafka_errors, make_admin

    try:
        with kafka_errors(bootstrap=settings.bootstrap):
            admin = make_admin(settings, request_timeout_ms=3_000, bootstrap_timeout_ms=3_000)
            try:
                broker_count(admin)
            finally:
                admin.close()
    except BrokerError as exc:
        raise NoBrokerError(
            f"{history_path}: the run's cluster at {settings.bootstrap} does not answer: `chaos run` "
            "checked it before stopping it (its summary line); to check again, run with --keep-cluster"
        ) from exc
