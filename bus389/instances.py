"""Service instances: one active instance per service and bus, the others standbys that take over.

A service (router, ICT, standing office) holds an exclusive ``flock`` on
``<instances.lock_dir>/<service>.<key>.lock`` before it opens any Kafka client; ``<key>`` names the bus
(bootstrap and topic prefix), so services of different clusters never wait for each other. A second
instance finds the lock held and, with ``instances.standby`` on (the default), waits as a standby: it
opens no consumer and no producer — in particular not the ICT results producer, whose transactional id
``<prefix>.ict.results`` would fence the active instance — and takes the lock within a poll interval
(``instances.standby_poll_s``) of the active one's exit, however it exits: the kernel releases a dead
process's lock. With ``instances.standby`` off it refuses at start with a one-line reason.

Why a lock rather than the consumer group alone: the group would split the inbox's partitions between
two members, and both would then build the same transactional producer and fence each other. The
lock is per host: services sharing one bus must run on one host (the SQLite stores already require
it); across hosts, run one instance per service.

Each instance writes ``<service>.<key>.<pid>.json`` (pid, host, metrics port, role) beside the lock,
removed when it exits; :func:`instances` reads them for ``bus389 status``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from bus389.errors import BusError

if TYPE_CHECKING:
    from bus389.settings import Settings

__all__ = [
    "AlreadyRunningError",
    "Instance",
    "Member",
    "active_lock",
    "client_id",
    "group_members",
    "instances",
]

log = logging.getLogger(__name__)


class AlreadyRunningError(BusError):
    """Another instance of the service is active on this bus and standbys are off."""

    exit_code = 4


@dataclass(frozen=True)
class Instance:
    """One running instance, as its file says."""

    service: str
    pid: int
    host: str
    metrics_port: int
    role: str
    """``active`` (holds the lock and works) or ``standby`` (waits for the lock)."""
    bootstrap: str
    topic_prefix: str


def _key(settings: Settings) -> str:
    bus = f"{settings.bootstrap}|{settings.topic_prefix}"
    return hashlib.sha256(bus.encode()).hexdigest()[:12]


def client_id(service: str, metrics_port: int) -> str:
    """The Kafka client id of a service's clients: name, pid and metrics port, seen in group members."""
    return f"bus389-{service}-pid{os.getpid()}-metrics{metrics_port}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holder(settings: Settings, service: str) -> str:
    """Who holds the lock, as its instance file says (best effort: it may just be starting)."""
    for inst in instances(Path(settings.instances.lock_dir)):
        same_bus = (inst.bootstrap, inst.topic_prefix) == (settings.bootstrap, settings.topic_prefix)
        if inst.service == service and inst.role == "active" and same_bus:
            return f"pid {inst.pid} on {inst.host}, metrics port {inst.metrics_port}"
    return "another process"


@contextlib.contextmanager
def active_lock(
    settings: Settings, service: str, *, metrics_port: int, stopped: Callable[[], bool]
) -> Iterator[bool]:
    """Hold the service's lock, waiting as a standby while another instance holds it.

    Yields True once this instance is active, False when ``stopped()`` turned true while it waited
    (the caller then exits without having opened anything). Raises :class:`AlreadyRunningError`
    when the lock is held and ``settings.instances.standby`` is off.
    """
    lock_dir = Path(settings.instances.lock_dir)
    lock_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = _key(settings)
    lock_path = lock_dir / f"{service}.{key}.lock"
    info_path = lock_dir / f"{service}.{key}.{os.getpid()}.json"
    handle: IO[str] = lock_path.open("a")
    try:
        role = "active" if _try_lock(handle) else "standby"
        if role == "standby":
            who = _holder(settings, service)
            if not settings.instances.standby:
                raise AlreadyRunningError(
                    f"{service}: another instance is active on this bus ({who}); "
                    "stop it first, or set BUS389_INSTANCES__STANDBY=true to wait as its standby"
                )
            _write_info(info_path, settings, service, metrics_port, "standby")
            log.warning(
                "%s: another instance is active (%s): standing by to take over when it stops",
                service,
                who,
                extra={"service": service},
            )
            while not _try_lock(handle):
                if stopped():
                    yield False
                    return
                time.sleep(settings.instances.standby_poll_s)
            log.warning("%s: the active instance stopped: taking over", service, extra={"service": service})
        _write_info(info_path, settings, service, metrics_port, "active")
        yield True
    finally:
        with contextlib.suppress(OSError):
            info_path.unlink()
        handle.close()  # releases the lock


def _try_lock(handle: IO[str]) -> bool:
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _write_info(path: Path, settings: Settings, service: str, metrics_port: int, role: str) -> None:
    data = {
        "service": service,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "metrics_port": metrics_port,
        "role": role,
        "bootstrap": settings.bootstrap,
        "topic_prefix": settings.topic_prefix,
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    tmp.replace(path)


def instances(lock_dir: Path) -> list[Instance]:
    """The instances whose files are in ``lock_dir`` and whose process is alive, by service and role."""
    found: list[Instance] = []
    if not lock_dir.is_dir():
        return found
    for path in sorted(lock_dir.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            inst = Instance(
                service=str(data["service"]),
                pid=int(data["pid"]),
                host=str(data["host"]),
                metrics_port=int(data["metrics_port"]),
                role=str(data["role"]),
                bootstrap=str(data["bootstrap"]),
                topic_prefix=str(data["topic_prefix"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue  # being written, or not ours
        if _pid_alive(inst.pid):
            found.append(inst)
    return sorted(found, key=lambda i: (i.service, i.role != "active", i.pid))


@dataclass(frozen=True)
class Member:
    """One member of a consumer group, as the group coordinator lists it."""

    member_id: str
    client_id: str
    host: str
    partitions: int


def group_members(settings: Settings, group_id: str, *, timeout_ms: int | None = None) -> list[Member] | None:
    """The members the coordinator lists for ``group_id`` (empty: no active instance); None when the
    cluster cannot be asked within ``timeout_ms`` (default: the client's request timeout; logged)."""
    from bus389.errors import BrokerError
    from bus389.kafka import kafka_errors, make_admin

    try:
        with kafka_errors(bootstrap=settings.bootstrap):
            bounds = (
                {}
                if timeout_ms is None
                else {"request_timeout_ms": timeout_ms, "bootstrap_timeout_ms": timeout_ms}
            )
            admin = make_admin(settings, **bounds)
            try:
                described = admin.describe_groups([group_id])
            finally:
                admin.close()
    except BrokerError as exc:
        log.warning("cannot describe group %s: %s", group_id, exc)
        return None
    group = described.get(group_id) or {}
    if group.get("error") and "GroupIdNotFound" not in str(group["error"]):
        log.warning("cannot describe group %s: %s", group_id, group["error"])
        return None
    members: list[Member] = []
    for member in group.get("members") or ():
        assignment = member.get("member_assignment")
        partitions = _assigned(assignment)
        members.append(
            Member(
                member_id=str(member.get("member_id", "")),
                client_id=str(member.get("client_id", "")),
                host=str(member.get("client_host", "")).lstrip("/"),
                partitions=partitions,
            )
        )
    return members


def _assigned(assignment: object) -> int:
    """How many partitions a member's decoded assignment holds (0 when it holds none or cannot say)."""
    if hasattr(assignment, "partitions"):
        return len(assignment.partitions())
    if isinstance(assignment, dict):
        return sum(len(tp.get("partitions") or ()) for tp in assignment.get("assigned_partitions") or ())
    return 0
