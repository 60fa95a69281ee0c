"""The blocklist files: an RPZ zone for the province's resolvers, and text and CSV exports for providers.

The RPZ zone follows draft-vixie-dnsop-dns-rpz (Response Policy Zones), as BIND, Unbound, Knot
Resolver and PowerDNS load it:

- an SOA (its serial incremented on every change, so secondaries transfer the new zone) and an NS;
- a blocked domain is two QNAME triggers, ``name CNAME .`` and ``*.name CNAME .``: the name and every
  name under it answer NXDOMAIN;
- a blocked IP address or network is a Response IP trigger ``<prefix>.<reversed address>.rpz-ip CNAME .``
  (``32.4.3.2.1.rpz-ip`` for ``1.2.3.4``; IPv6 words reversed, with ``zz`` for the ``::`` run): any
  answer containing that address becomes NXDOMAIN;
- each record is preceded by one ``; event <request id> from <agency>, <legal basis>`` comment per
  request that asked for it, so a resolver operator can trace every line to its request.

URLs cannot be blocked by DNS: they appear only in the CSV export, for the providers' URL filters.
The text export is one domain per line (what most providers' DNS and proxy tools import).

Every file is written atomically (:mod:`bus389.atomic_files`): a resolver that reloads at any moment
reads the old zone or the new one, never half of one. The writer re-checks every domain (screening
refuses them first): a name that is not a valid host name or has a label starting ``rpz-`` (an RPZ
trigger, an instruction to the resolver) is left out and logged. The new zone is then checked by a real
parser, BIND's ``named-checkzone`` (Debian's bind9-utils), before it replaces the old one; a zone that
fails the check is never installed, and the old one stays in force (``ZoneCheckError``, logged and
counted in ``bus389_ict_zone_checks_total{result="failed"}``). CSV cells are neutralised against formula
injection (:func:`bus389.safe_text.csv_cell`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import ipaddress
import logging
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bus389 import metrics
from bus389.atomic_files import commit_file, stage_file, write_file
from bus389.consumers.ict.screening import TargetKind, normalise_domain
from bus389.consumers.ict.store import IctStore
from bus389.errors import StoreError, ZoneCheckError
from bus389.safe_text import csv_cell, for_terminal

__all__ = [
    "CSV_COLUMNS",
    "SERIAL_MAX",
    "BlockEntry",
    "BlocklistFiles",
    "NAMED_CHECKZONE",
    "Refreshed",
    "active_entries",
    "blocklist_files",
    "check_zone",
    "content_hash",
    "next_serial",
    "render_csv",
    "render_rpz",
    "refresh_blocklist",
    "render_txt",
    "rpz_ip_owner",
    "unsafe_owner",
    "write_atomic",
    "write_blocklist",
]

SERIAL_MAX = 2**32 - 1
"""SOA serials are 32-bit (RFC 1982): the one after the largest wraps to 1."""

CSV_COLUMNS = (
    "target",
    "kind",
    "request_id",
    "requester",
    "approved_at",
    "expires_at",
    "legal_basis",
)

log = logging.getLogger(__name__)

NAMED_CHECKZONE = "named-checkzone"
"""BIND's zone parser (Debian: bind9-utils), run on every new zone before it is installed."""
_CHECK_TIMEOUT_S = 120.0

_TTL = 300
_SOA_TIMERS = "3600 600 604800 300"
"""refresh, retry, expire, negative-caching TTL (seconds)."""


@dataclass(frozen=True, order=True)
class BlockEntry:
    """One active block: a target and one request that asked for it (a target may have several)."""

    kind: TargetKind
    target: str
    request_id: str
    requester: str
    legal_basis: str
    approved_at: int
    """Epoch milliseconds."""
    expires_at: int | None


@dataclass(frozen=True)
class BlocklistFiles:
    """Where the three files live in the output folder."""

    rpz: Path
    txt: Path
    csv: Path

    def all(self) -> tuple[Path, Path, Path]:
        return (self.rpz, self.txt, self.csv)


def blocklist_files(output_dir: Path, zone: str) -> BlocklistFiles:
    return BlocklistFiles(
        rpz=output_dir / f"{zone}.zone",
        txt=output_dir / "blocklist.txt",
        csv=output_dir / "blocklist.csv",
    )


def next_serial(serial: int) -> int:
    """The serial after ``serial``: +1, wrapping from 2**32-1 to 1 (0 is avoided, as many tools do)."""
    return serial + 1 if 0 <= serial < SERIAL_MAX else 1


def rpz_ip_owner(target: str) -> str:
    """The Response IP trigger owner name (relative to the zone) for an address or network.

    ``1.2.3.4`` → ``32.4.3.2.1.rpz-ip``; ``203.0.113.0/24`` → ``24.0.113.0.203.rpz-ip``;
    ``2001:2:3::1`` → ``128.1.zz.3.2.2001.rpz-ip``.
    """
    net = ipaddress.ip_network(target, strict=True)
    if isinstance(net, ipaddress.IPv4Network):
        words = str(net.network_address).split(".")
    else:
        compressed = net.network_address.compressed
        if "::" in compressed:
            left, right = compressed.split("::", 1)
            words = [*(left.split(":") if left else []), "zz", *(right.split(":") if right else [])]
        else:
            words = compressed.split(":")
    return ".".join([str(net.prefixlen), *reversed(words), "rpz-ip"])


def _comment_text(text: str) -> str:
    # A comment runs to the end of the line: a newline in a legal basis must not end it; any other
    # control character is shown, not kept (an operator reads the zone with `cat`).
    return for_terminal(" ".join(text.split()))


def _grouped(entries: Iterable[BlockEntry], kind: TargetKind) -> list[tuple[str, list[BlockEntry]]]:
    groups: dict[str, list[BlockEntry]] = {}
    for entry in sorted(entries):
        if entry.kind == kind:
            groups.setdefault(entry.target, []).append(entry)
    return sorted(groups.items(), key=lambda item: _sort_key(kind, item[0]))


def _sort_key(kind: TargetKind, target: str) -> tuple[int, str | int, int]:
    if kind == TargetKind.IP:
        net = ipaddress.ip_network(target)
        return (net.version, int(net.network_address), net.prefixlen)
    # Domains sorted by their labels from the top, so that a name and its subdomains sit together.
    return (0, ".".join(reversed(target.split("."))), 0)


def unsafe_owner(name: str) -> str | None:
    """Why the domain ``name`` must not be an owner name in the zone, or None when it may.

    The writer's own check, after screening's: a name that is not a normalised host name, or that has a
    label starting ``rpz-`` (``1.0.0.0.0.rpz-ip`` would block 0.0.0.0/1), is refused.
    """
    try:
        normalised = normalise_domain(name)
    except ValueError as exc:
        return str(exc)
    if normalised != name:
        return f"not in normalised form ({normalised})"
    return None


def render_rpz(entries: Sequence[BlockEntry], *, zone: str, serial: int) -> str:
    """The RPZ zone file text for ``entries`` with ``serial`` in the SOA (unsafe owner names left out)."""
    domains = [
        (name, group) for name, group in _grouped(entries, TargetKind.DOMAIN) if unsafe_owner(name) is None
    ]
    ips = _grouped(entries, TargetKind.IP)
    lines = [
        f"; {zone}: Response Policy Zone of the BCĐ 389 ICT department (draft-vixie-dnsop-dns-rpz).",
        "; Written by bus389 on every change; do not edit by hand.",
        f"; {len(domains)} domain(s) and {len(ips)} IP address(es) or network(s) blocked.",
        f"$ORIGIN {zone}.",
        f"$TTL {_TTL}",
        f"@ IN SOA localhost. hostmaster.localhost. {serial} {_SOA_TIMERS}",
        "@ IN NS localhost.",
    ]
    for name, group in domains:
        lines.append("")
        lines.extend(_comments(group))
        lines.append(f"{name} CNAME .")
        lines.append(f"*.{name} CNAME .")
    for target, group in ips:
        lines.append("")
        lines.extend(_comments(group))
        lines.append(f"{rpz_ip_owner(target)} CNAME .")
    return "\n".join(lines) + "\n"


def _comments(group: Sequence[BlockEntry]) -> list[str]:
    return [
        f"; event {e.request_id} from {e.requester}, {_comment_text(e.legal_basis)}"
        for e in sorted(group, key=lambda e: (e.approved_at, e.request_id))
    ]


def render_txt(entries: Sequence[BlockEntry]) -> str:
    """One blocked domain per line (blocking covers its subdomains), sorted; empty when none.

    The names the zone leaves out (:func:`unsafe_owner`) are left out here too."""
    names = [name for name, _ in _grouped(entries, TargetKind.DOMAIN) if unsafe_owner(name) is None]
    return "".join(f"{name}\n" for name in names)


def _iso(ms: int | None) -> str:
    if ms is None:
        return ""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def render_csv(entries: Sequence[BlockEntry]) -> str:
    """Every active block, one row per target and request, with :data:`CSV_COLUMNS` (RFC 4180, UTF-8)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for kind in (TargetKind.DOMAIN, TargetKind.IP, TargetKind.URL):
        for target, group in _grouped(entries, kind):
            for e in sorted(group, key=lambda e: (e.approved_at, e.request_id)):
                writer.writerow(
                    [
                        csv_cell(cell)
                        for cell in (
                            target,
                            kind.value,
                            e.request_id,
                            e.requester,
                            _iso(e.approved_at),
                            _iso(e.expires_at),
                            e.legal_basis,
                        )
                    ]
                )
    return buffer.getvalue()


def content_hash(entries: Sequence[BlockEntry]) -> str:
    """A digest of what the files say (not the serial): equal digests mean nothing to rewrite."""
    return hashlib.sha256(render_csv(entries).encode("utf-8")).hexdigest()


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` atomically and durably (readable by the resolver: ``mode``)."""
    write_file(path, data, mode=mode, make_parents=True, error=StoreError)


def check_zone(path: Path, zone: str) -> None:
    """Parse the zone file at ``path`` with ``named-checkzone``; :class:`ZoneCheckError` if it fails."""
    exe = shutil.which(NAMED_CHECKZONE)
    if exe is None:
        raise ZoneCheckError(
            f"{NAMED_CHECKZONE} not found (install Debian's bind9-utils): the new zone is not checked, "
            "so it is not installed; the old zone stays in force"
        )
    try:
        done = subprocess.run(  # noqa: S603 - a fixed program on a file we wrote
            [exe, "-k", "fail", zone, str(path)],
            capture_output=True,
            text=True,
            timeout=_CHECK_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ZoneCheckError(f"{NAMED_CHECKZONE} could not check the new zone: {exc}") from None
    if done.returncode != 0:
        said = " ".join((done.stdout + done.stderr).split())[:500]
        raise ZoneCheckError(
            f"the new zone {zone} failed {NAMED_CHECKZONE} ({said}): not installed, "
            "the old zone stays in force"
        )


def install_zone(path: Path, text: str, zone: str, *, before: Sequence[tuple[Path, bytes]] = ()) -> None:
    """Stage the zone ``text`` beside ``path``, check it, write ``before`` files, then rename it into place.

    When the check fails nothing is written (not even ``before``): every file still shows the old list.
    """
    tmp = stage_file(path, text.encode("utf-8"), make_parents=True, error=StoreError)
    try:
        check_zone(tmp, zone)
    except ZoneCheckError as exc:
        tmp.unlink(missing_ok=True)
        metrics.ICT_ZONE_CHECKS.labels("failed").inc()
        log.warning("%s", exc)
        raise
    metrics.ICT_ZONE_CHECKS.labels("ok").inc()
    try:
        for other, data in before:
            write_atomic(other, data)
    except StoreError:
        tmp.unlink(missing_ok=True)
        raise
    commit_file(tmp, path, mode=0o644, error=StoreError)


def write_blocklist(
    entries: Sequence[BlockEntry], *, output_dir: Path, zone: str, serial: int
) -> BlocklistFiles:
    """Write the three files: the zone is checked first; text and CSV next, the zone last (each atomic)."""
    files = blocklist_files(output_dir, zone)
    for name in sorted({e.target for e in entries if e.kind == TargetKind.DOMAIN}):
        reason = unsafe_owner(name)
        if reason is not None:
            metrics.ICT_ZONE_REFUSED.inc()
            log.error("blocked name %r left out of the RPZ zone: %s", name, reason)
    install_zone(
        files.rpz,
        render_rpz(entries, zone=zone, serial=serial),
        zone,
        before=(
            (files.txt, render_txt(entries).encode("utf-8")),
            (files.csv, render_csv(entries).encode("utf-8")),
        ),
    )
    return files


# --- the files from the store ------------------------------------------------------------------------


def active_entries(store: IctStore) -> list[BlockEntry]:
    """What the blocklist is made of: every blocked target with the request that asked for it."""
    return [
        BlockEntry(
            kind=TargetKind(target.kind),
            target=target.value,
            request_id=request.event_id,
            requester=request.requester,
            legal_basis=request.legal_basis,
            approved_at=request.decided_at if request.decided_at is not None else target.changed_at,
            expires_at=request.expires_at,
        )
        for target, request in store.active_blocks()
    ]


@dataclass(frozen=True)
class Refreshed:
    """What :func:`refresh_blocklist` did."""

    written: bool
    serial: int
    entries: int
    seq: int
    """The store's change number the files now show (results up to it may be published)."""


def refresh_blocklist(store: IctStore, *, output_dir: Path, zone: str, force: bool = False) -> Refreshed:
    """Rewrite the files if the blocklist changed since they were last written (or one is missing).

    Runs in one store transaction, holding its write lock while the files are written, so that a
    decision taken meanwhile (by ``bus389 ict approve`` in another process) waits and is never marked
    as written without being in the files. The serial goes up only when the content changes.
    """
    files = blocklist_files(output_dir, zone)
    if not force and store.counter("blocklist_seq") == store.counter("written_seq"):
        # The common case between polls: nothing changed, so do not take the write lock at all.
        if all(path.exists() for path in files.all()):
            return Refreshed(False, store.counter("serial"), -1, store.counter("written_seq"))
    with store.transaction():
        seq = store.counter("blocklist_seq")
        written_seq = store.counter("written_seq")
        serial = store.counter("serial")
        missing = not all(path.exists() for path in files.all())
        if seq == written_seq and not missing and not force:
            return Refreshed(False, serial, -1, seq)
        entries = active_entries(store)
        digest = content_hash(entries)
        changed = digest != store.text("written_hash") or serial == 0
        if changed:
            serial = next_serial(serial)
        if changed or missing or force:
            write_blocklist(entries, output_dir=output_dir, zone=zone, serial=serial)
        store.set_value("serial", serial)
        store.set_value("written_hash", digest)
        store.set_value("written_seq", seq)
        return Refreshed(changed or missing or force, serial, len(entries), seq)
