"""``bus389 topics``: create the bus topics (outboxes, inboxes, DLQ, audit log) and list them."""

from __future__ import annotations

import click

from bus389.cli._context import pass_settings
from bus389.settings import Settings
from bus389.topics import apply_topics, list_topics

__all__ = ["topics"]


@click.group("topics")
def topics() -> None:
    """Create and list the bus389 topics under BUS389_TOPIC_PREFIX.

    \b
    Example:
      bus389 topics apply
      bus389 topics list
    """


@topics.command("apply")
@click.option(
    "--partitions",
    type=click.IntRange(1, 1000),
    default=None,
    help="Partitions per topic [default: settings.kafka.partitions].",
)
@click.option(
    "--replication-factor",
    type=click.IntRange(1, 9),
    default=None,
    help="Replicas per partition, lowered to the live brokers [default: settings.kafka.replication_factor].",
)
@pass_settings
def apply(settings: Settings, partitions: int | None, replication_factor: int | None) -> None:
    """Create every missing topic: an outbox and an inbox per agency, the DLQ and the audit log.

    Idempotent: existing topics are reported and left unchanged. The replication factor never
    exceeds the live brokers; min.insync.replicas never exceeds it; unclean leader election is
    off. The DLQ keeps 90 days, the audit log forever.

    \b
    Example:
      bus389 topics apply
      bus389 topics apply --partitions 6 --replication-factor 3
    """
    report = apply_topics(settings, partitions=partitions, replication_factor=replication_factor)
    if report.clamped:
        click.echo(
            f"note: replication factor {report.requested_replication_factor} lowered to "
            f"{report.replication_factor}: only {report.live_brokers} live broker(s)",
            err=True,
        )
    for name in report.created:
        click.echo(f"created  {name}")
    for name in report.existing:
        click.echo(f"exists   {name}")
    click.echo(
        f"{len(report.created)} created, {len(report.existing)} already existed "
        f"({report.partitions} partitions, replication factor {report.replication_factor})"
    )


@topics.command("list")
@click.option("--all", "all_topics", is_flag=True, help="Every topic, not only those under the prefix.")
@pass_settings
def list_(settings: Settings, all_topics: bool) -> None:
    """List the topics under the prefix with their partitions and replication factor.

    \b
    Example:
      BUS389_TOPIC_PREFIX=bus389 bus389 topics list
    """
    infos = list_topics(settings, all_topics=all_topics)
    if not infos:
        click.echo(f"no topics under {settings.topic_prefix}. (run `bus389 topics apply`)")
        return
    width = max(len(i.name) for i in infos)
    for info in infos:
        click.echo(f"{info.name:<{width}}  partitions={info.partitions}  rf={info.replication_factor}")
