"""``bus389 serve``: the long-running services, one subcommand each — the router and the agencies'
inbox services — and ``bus389 route``, the router's older name, kept as an alias of ``serve router``.

Each subcommand shares ``--metrics-port`` and ``--max-idle-polls`` and the SIGTERM flag
(:mod:`bus389.cli._service`); the service's own loop lives in its consumer package.
"""

from __future__ import annotations

from pathlib import Path

import click

from bus389.cli._context import pass_settings
from bus389.cli._service import running_service, service_options
from bus389.cli.web_cmd import serve_web
from bus389.settings import Settings

__all__ = ["route", "serve"]


@click.group("serve")
def serve() -> None:
    """Run the router or an agency's inbox service until SIGTERM (metrics on its own port).

    \b
    Example:
      bus389 serve router
      bus389 serve ict
      bus389 serve standing-office
      bus389 serve web
    """


@serve.command("router")
@click.option(
    "--policy",
    "policy_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The routing policy YAML [default: BUS389_ROUTER__POLICY_PATH, else the packaged policy].",
)
@service_options("router", idle_help="empty batches")
@pass_settings
def serve_router(
    settings: Settings, policy_path: Path | None, metrics_port: int | None, max_idle_polls: int | None
) -> None:
    """Route every agency's outbox to the inboxes the policy names, exactly once, with audit and DLQ.

    One consumer group (BUS389_ROUTER__GROUP_ID) reads every <prefix>.outbox.* read_committed; each
    batch (at most BUS389_ROUTER__BATCH_MAX_EVENTS events or BUS389_ROUTER__BATCH_MAX_MS ms) is one
    transaction (BUS389_ROUTER__TRANSACTIONAL_ID) holding the inbox copies, one audit record per routed
    event and the batch's offsets. An event that does not decode, fails validation, claims another
    sender than its outbox, or has no recipient goes to <prefix>.dlq with the reason. SIGTERM or
    Ctrl-C finishes or aborts the batch in hand, closes and exits 0. A second router on the same bus
    and host waits as a standby and takes over when the active one stops (BUS389_INSTANCES__STANDBY).
    `bus389 route` is the same command.

    \b
    Example:
      bus389 serve router
      BUS389_ROUTER__BATCH_MAX_EVENTS=200 bus389 route --metrics-port 9464
      bus389 routes explain examples/suspect_seller.jsonl --as police
    """
    from bus389.consumers.router.service import RouterService
    from bus389.routing.policy import load_policy

    policy = load_policy(policy_path or settings.router.policy_path)
    lag_groups = {settings.router.group_id: settings.topics.all_outboxes()}
    with running_service(settings, "router", metrics_port=metrics_port, lag_groups=lag_groups) as run:
        if run is None:
            return
        stats = RouterService(run.settings, policy=policy, stop=run.stop).run(max_idle_polls=max_idle_polls)
    dead = ", ".join(f"{reason} {n}" for reason, n in sorted(stats.dead_letters.items())) or "none"
    click.echo(
        f"router: {stats.events} event(s) in {stats.batches} batch(es): {stats.routed} routed "
        f"({stats.copies} copies), dead letters: {dead}",
        err=True,
    )


route = click.Command(
    "route",
    callback=serve_router.callback,
    params=serve_router.params,
    help=serve_router.help,
    short_help="Run the router (the alias of `bus389 serve router`).",
)
"""``bus389 route``: the same command as ``bus389 serve router`` (options, help, output, exit codes)."""


@serve.command("ict")
@service_options("ict")
@pass_settings
def serve_ict(settings: Settings, metrics_port: int | None, max_idle_polls: int | None) -> None:
    """Handle the ict inbox's domain-block requests and keep the blocklist files (plan II.6).

    Reads <prefix>.inbox.ict (read_committed) into the store at BUS389_STORE__ICT_URL, idempotent by
    event id, committing offsets only after the event is stored: requests, leads (suspect_seller, never
    blocked automatically: see `bus389 ict leads`) and replies to ICT's own events. Screens each request
    (BUS389_ICT__NEVER_BLOCK, public IP addresses only), approves those of
    BUS389_ICT__AUTO_APPROVE_SENDERS at once, and leaves the rest to `bus389 ict approve|reject`.
    Between polls it lifts expired blocks, rewrites the RPZ zone, blocklist.txt and blocklist.csv
    in BUS389_ICT__OUTPUT_DIR when they changed, and publishes each decision's domain_block_result
    to <prefix>.outbox.ict, exactly once. SIGTERM finishes the batch in hand, commits and exits 0.
    A second instance (another --metrics-port) waits as a standby, opening nothing, and takes over
    when the active one stops; `bus389 status` shows which is active.

    \b
    Example:
      bus389 serve ict
      BUS389_ICT__AUTO_APPROVE_SENDERS='["police"]' bus389 serve ict --metrics-port 9465
    """
    from bus389.consumers.ict.service import SERVICE_NAME, run_ict_service

    with running_service(settings, SERVICE_NAME, metrics_port=metrics_port) as run:
        if run is None:
            return
        click.echo(f"ict: blocklist files in {settings.ict.output_dir}", err=True)
        run_ict_service(run.settings, stop=run.stop, max_idle_polls=max_idle_polls)


@serve.command("standing-office")
@service_options("standing-office")
@pass_settings
def serve_standing_office(settings: Settings, metrics_port: int | None, max_idle_polls: int | None) -> None:
    """Store every event of the market_surveillance inbox for the six-monthly report (plan III.3).

    Reads <prefix>.inbox.market_surveillance (read_committed) into the store at
    BUS389_STORE__STANDING_OFFICE_URL (SQLite file by default; postgresql://... with
    bus389[postgres]). Idempotent by event id: a restart or a replay stores nothing twice. Offsets
    are committed only after the events are stored. A record that cannot be used is recorded in the
    store's rejected table and skipped. SIGTERM finishes the batch in hand, commits and exits 0.
    A second instance waits as a standby and takes over when the active one stops.

    \b
    Example:
      bus389 serve standing-office
      BUS389_STORE__STANDING_OFFICE_URL=postgresql://bus389@127.0.0.1/bus389 bus389 serve standing-office
      bus389 report --period 2021-H1
    """
    from bus389.consumers.standing_office.service import SERVICE_NAME, run_standing_office

    with running_service(settings, SERVICE_NAME, metrics_port=metrics_port) as run:
        if run is None:
            return
        run_standing_office(run.settings, stop=run.stop, max_idle_polls=max_idle_polls)


serve.add_command(serve_web)
