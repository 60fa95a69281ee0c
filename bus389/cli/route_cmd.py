"""``bus389 route``: run the router, the service that fans every outbox out to the right inboxes."""

from __future__ import annotations

from pathlib import Path

import click

from bus389.cli._context import pass_settings
from bus389.cli._service import running_service, service_options
from bus389.settings import Settings

__all__ = ["route"]


@click.command("route")
@click.option(
    "--policy",
    "policy_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The routing policy YAML [default: BUS389_ROUTER__POLICY_PATH, else the packaged policy].",
)
@service_options("router", idle_help="empty batches")
@pass_settings
def route(
    settings: Settings, policy_path: Path | None, metrics_port: int | None, max_idle_polls: int | None
) -> None:
    """Route every agency's outbox to the inboxes the policy names, exactly once, with audit and DLQ.

    One consumer group (BUS389_ROUTER__GROUP_ID) reads every <prefix>.outbox.* read_committed; each
    batch (at most BUS389_ROUTER__BATCH_MAX_EVENTS events or BUS389_ROUTER__BATCH_MAX_MS ms) is one
    transaction (BUS389_ROUTER__TRANSACTIONAL_ID) holding the inbox copies, one audit record per routed
    event and the batch's offsets. An event that does not decode, fails validation, claims another
    sender than its outbox, or has no recipient goes to <prefix>.dlq with the reason. SIGTERM or
    Ctrl-C finishes or aborts the batch in hand, closes and exits 0. Run one router per transactional id.

    \b
    Example:
      bus389 route
      BUS389_ROUTER__BATCH_MAX_EVENTS=200 bus389 route --metrics-port 9464
      bus389 routes explain examples/suspect_seller.jsonl --as police
    """
    from bus389.consumers.router.service import RouterService
    from bus389.routing.policy import load_policy

    policy = load_policy(policy_path or settings.router.policy_path)
    lag_groups = {settings.router.group_id: settings.topics.all_outboxes()}
    with running_service(settings, "router", metrics_port=metrics_port, lag_groups=lag_groups) as stop:
        stats = RouterService(settings, policy=policy, stop=stop).run(max_idle_polls=max_idle_polls)
    dead = ", ".join(f"{reason} {n}" for reason, n in sorted(stats.dead_letters.items())) or "none"
    click.echo(
        f"router: {stats.events} event(s) in {stats.batches} batch(es): {stats.routed} routed "
        f"({stats.copies} copies), dead letters: {dead}",
        err=True,
    )
