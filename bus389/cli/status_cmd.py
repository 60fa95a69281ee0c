"""``bus389 status``: which services run on this bus, where (host, pid, metrics port), which is active."""

from __future__ import annotations

import click

from bus389.cli._context import pass_settings, printable
from bus389.settings import Settings

__all__ = ["service_groups", "service_state", "status"]


def service_groups(settings: Settings) -> dict[str, str]:
    """Each long-running service's consumer group on this bus."""
    from bus389.consumers.ict.service import group_id as ict_group
    from bus389.consumers.standing_office.service import group_id as office_group

    return {
        "router": settings.router.group_id,
        "ict": ict_group(settings),
        "standing-office": office_group(settings),
    }


@click.command("status")
@pass_settings
def status(settings: Settings) -> None:
    """Show the services of this bus: the members of their consumer groups, and this host's instances.

    A service is running when its consumer group has a member (the Kafka client id says
    bus389-<service>-pid<pid>-metrics<port>). On this host, each instance says whether it is the
    active one or a standby waiting to take over (BUS389_INSTANCES__LOCK_DIR). Exits 0 when every
    service has an active member, 1 otherwise (2 when the cluster cannot be asked).

    \b
    Example:
      bus389 status
    """
    from pathlib import Path

    from bus389.instances import group_members, instances

    local = [
        i
        for i in instances(Path(settings.instances.lock_dir))
        if (i.bootstrap, i.topic_prefix) == (settings.bootstrap, settings.topic_prefix)
    ]
    unknown = False
    missing = 0
    for service, group in service_groups(settings).items():
        members = group_members(settings, group)
        if members is None:
            unknown = True
            line = "cannot ask the cluster"
        elif members:
            line = "running: " + ", ".join(
                f"{printable(m.client_id)} on {printable(m.host)} ({m.partitions} partition(s))"
                for m in members
            )
        else:
            missing += 1
            line = f"not running (group {group} has no member): start `bus389 serve {service}`"
        click.echo(f"{service:16} {line}")
        for inst in (i for i in local if i.service == service):
            click.echo(f"{'':16} this host: pid {inst.pid}, metrics port {inst.metrics_port}, {inst.role}")
    if unknown:
        raise SystemExit(2)
    if missing:
        raise SystemExit(1)


def service_state(settings: Settings, service: str, group_id: str) -> str:
    """One line for commands that hand work to ``service``: whether an instance is running to take it."""
    from pathlib import Path

    from bus389.instances import group_members, instances

    local = [
        i
        for i in instances(Path(settings.instances.lock_dir))
        if i.service == service
        and i.role == "active"
        and (i.bootstrap, i.topic_prefix) == (settings.bootstrap, settings.topic_prefix)
    ]
    if local:
        return f"`bus389 serve {service}` (pid {local[0].pid}) will take it up"
    members = group_members(settings, group_id, timeout_ms=3_000)
    if members:
        who = f"{printable(members[0].client_id)} on {printable(members[0].host)}"
        return f"`bus389 serve {service}` ({who}) will take it up"
    if members is None:
        return f"the cluster did not answer: start `bus389 serve {service}` if none runs (`bus389 status`)"
    return f"no `bus389 serve {service}` is running: start one to take it up"
