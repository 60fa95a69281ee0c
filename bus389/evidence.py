"""Evidence bundles: what one agency received on a case, with everything needed to check it offline.

``bus389 evidence export`` writes a zip archive:

- ``bundle.json``: the inbox copies of the case as received (key, value and headers, byte for byte,
  base64), the audit chain segment that covers them (each chain involved, from the first record of
  the case to the router's next signed head), and the public keys with their validity periods;
- ``README.txt``: in Vietnamese, what the bundle is and how to check it;
- ``manifest.json``: the SHA-256 of both, signed (``manifest.sig``) with the exporting agency's key
  when one is configured.

``bus389 evidence verify`` needs no broker: it reports a damaged archive member, a member whose hash
is not the manifest's, a manifest signature that fails, each event whose sender's signature or
fields fail (naming the field), an event with no audit record saying it was delivered to this
agency with exactly these fields removed, and the first broken link of the audit segment.

The keys travel in the bundle, so whoever could rewrite the bundle could also swap them: compare the
key ids it prints with the registry you trust (``--keys``, an export of ``<prefix>.keys``).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bus389.agencies import Agency, Topics
from bus389.consumers.router.audit_chain import CHAIN, SEQ, SIG, verify_chains
from bus389.errors import InputError
from bus389.signing.keys import KeyRegistry, SigningKey

__all__ = ["BUNDLE_FORMAT", "EvidenceReport", "build_bundle", "select_audit_segment", "verify_bundle"]

BUNDLE_FORMAT = "bus389-evidence/1"
MEMBERS = ("bundle.json", "README.txt")

README_VI = """\
GÓI CHỨNG CỨ bus389 — vụ việc {case_ref}, cơ quan nhận: {agency}
Xuất lúc {exported_at} (UTC).

Gói này chứa đúng những bản tin mà cơ quan {agency} đã nhận về vụ việc {case_ref} trên bus389
(nguyên từng byte), chữ ký số Ed25519 của cơ quan gửi, các khóa công khai cùng thời hạn hiệu lực,
và đoạn nhật ký kiểm toán (audit) có móc xích băm liên quan, kèm chữ ký của bộ định tuyến.

Cách kiểm tra (không cần kết nối Kafka):

    bus389 evidence verify {file_name}
    bus389 evidence verify {file_name} --keys keys.json   (đối chiếu với sổ khóa tin cậy)

Lệnh kiểm tra:
1. mã băm SHA-256 của từng tệp so với manifest.json (và chữ ký manifest.sig nếu có);
2. chữ ký của cơ quan gửi trên từng bản tin: mọi trường nhận được đều đúng như khi ký; trường bị
   thiếu chỉ có thể là trường dữ liệu cá nhân mà bộ định tuyến đã che theo chính sách;
3. mỗi bản tin có bản ghi kiểm toán ghi nhận đã chuyển cho {agency} với đúng các trường đã che;
4. móc xích băm của đoạn nhật ký kiểm toán và chữ ký của bộ định tuyến trên đầu chuỗi.

Nếu có bất kỳ byte nào bị sửa, lệnh sẽ nêu chính xác phần nào không khớp.
Lưu ý: khóa công khai đi kèm trong gói; hãy so mã khóa (kid) được in ra với sổ khóa chính thức.
"""


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def _unb64(text: Any) -> bytes | None:
    if text is None:
        return None
    if not isinstance(text, str):
        raise InputError("a bundle record holds a value that is not base64 text")
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        raise InputError("a bundle record holds a value that is not base64") from None


def record_json(raw: Any) -> dict[str, Any]:
    """One consumer record, byte for byte, as bundle JSON."""
    return {
        "topic": raw.topic,
        "partition": raw.partition,
        "offset": raw.offset,
        "key": _b64(raw.key),
        "value": _b64(raw.value),
        "headers": [[str(k), _b64(bytes(v or b""))] for k, v in (raw.headers or ())],
    }


@dataclass(frozen=True)
class BundleRecord:
    """A record read back from a bundle (the shape of a consumer record)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]

    @classmethod
    def from_json(cls, data: Any, where: str) -> BundleRecord:
        try:
            return cls(
                str(data["topic"]),
                int(data["partition"]),
                int(data["offset"]),
                _unb64(data["key"]),
                _unb64(data["value"]),
                [(str(name), _unb64(value) or b"") for name, value in data["headers"]],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{where}: not a bundle record ({exc})") from None


def _headers(raw: Any) -> dict[str, bytes]:
    return {str(k): bytes(v or b"") for k, v in (raw.headers or ())}


def select_audit_segment(audit: Iterable[Any], event_ids: set[str]) -> list[Any]:
    """The audit records covering ``event_ids``: in each chain involved, from the first record of one
    of them to the router's next signed head (or the chain's end when none is signed yet); an audit
    record of one of them that carries no chain link (a router without the chain) is included alone."""
    by_chain: dict[str, list[tuple[int, Any]]] = {}
    unlinked: list[Any] = []
    for raw in audit:
        h = _headers(raw)
        chain, seq = h.get(CHAIN), h.get(SEQ)
        if chain is None or seq is None or not seq.isdigit():
            if (raw.key or b"").decode("utf-8", "replace") in event_ids:
                unlinked.append(raw)  # written by a router that did not chain its audit: kept, said so
            continue
        by_chain.setdefault(chain.decode("utf-8", "replace"), []).append((int(seq), raw))
    out: list[Any] = []
    for items in by_chain.values():
        items.sort(key=lambda item: item[0])
        wanted = [seq for seq, raw in items if (raw.key or b"").decode("utf-8", "replace") in event_ids]
        if not wanted:
            continue
        first, last = min(wanted), max(wanted)
        end = next((seq for seq, raw in items if seq >= last and SIG in _headers(raw)), items[-1][0])
        out += [raw for seq, raw in items if first <= seq <= end]
    return unlinked + out


def build_bundle(
    *,
    case_ref: str,
    agency: Agency,
    prefix: str,
    events: list[Any],
    audit: list[Any],
    registry: KeyRegistry,
    file_name: str,
    key: SigningKey | None,
    now: datetime | None = None,
) -> bytes:
    """The zip archive of one agency's evidence on one case."""
    exported_at = (now or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds")
    bundle = {
        "format": BUNDLE_FORMAT,
        "case_ref": case_ref,
        "agency": agency.value,
        "topic_prefix": prefix,
        "exported_at": exported_at,
        "events": [record_json(r) for r in events],
        "audit": [record_json(r) for r in audit],
        "keys": json.loads(registry.to_text()),
    }
    members = {
        "bundle.json": (json.dumps(bundle, ensure_ascii=False, indent=1, sort_keys=True) + "\n").encode(
            "utf-8"
        ),
        "README.txt": README_VI.format(
            case_ref=case_ref, agency=agency.value, exported_at=exported_at, file_name=file_name
        ).encode("utf-8"),
    }
    manifest = {
        "format": BUNDLE_FORMAT,
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in members.items()},
        "signed_by": key.kid if key is not None else None,
    }
    members["manifest.json"] = json.dumps(manifest, sort_keys=True, indent=1).encode("utf-8") + b"\n"
    if key is not None:
        members["manifest.sig"] = base64.b64encode(key.sign(members["manifest.json"])) + b"\n"
    return _archive(members)


def _archive(members: Mapping[str, bytes]) -> bytes:
    """The zip of ``members``, stored (not compressed) with fixed times: the same members always make
    the same bytes, so a verifier can tell a changed byte outside the files too."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(2000, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            info.create_system = 3  # as on Unix, wherever it is built: the same bytes everywhere
            archive.writestr(info, data)
    return buffer.getvalue()


@dataclass
class EvidenceReport:
    """What :func:`verify_bundle` checked and what failed."""

    case_ref: str = ""
    agency: str = ""
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def holds(self) -> bool:
        return not self.problems


def _read_members(data: bytes, source: str, report: EvidenceReport) -> dict[str, bytes]:
    """Every member's bytes as stored; a CRC that does not match is a problem, not a stop, so the
    checks below can say what the changed byte touches."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise InputError(f"{source}: not a bundle (damaged zip archive: {exc})") from None
    members: dict[str, bytes] = {}
    for info in infos:
        if info.compress_type != zipfile.ZIP_STORED or info.file_size != info.compress_size:
            raise InputError(f"{source}: member {info.filename!r} is not stored as a bundle stores it")
        start = info.header_offset
        local = data[start : start + 30]
        if len(local) < 30 or local[:4] != b"PK\x03\x04":
            raise InputError(f"{source}: member {info.filename!r}: damaged local header")
        name_len, extra_len = int.from_bytes(local[26:28], "little"), int.from_bytes(local[28:30], "little")
        body = start + 30 + name_len + extra_len
        content = data[body : body + info.compress_size]
        if len(content) != info.compress_size:
            raise InputError(f"{source}: member {info.filename!r} is cut short")
        if zlib.crc32(content) != info.CRC:
            report.problems.append(f"{info.filename}: its CRC-32 does not match (its bytes were changed)")
        members[info.filename] = content
    if _archive(members) != data and not report.problems:
        first = next(
            (i for i, (a, b) in enumerate(zip(_archive(members), data, strict=False)) if a != b),
            min(len(data), len(_archive(members))),
        )
        report.problems.append(f"archive: byte {first} outside the files differs from the bundle's layout")
    return members


def verify_bundle(
    data: bytes, *, source: str, trusted: KeyRegistry | None = None, policy: Any = None
) -> EvidenceReport:
    """Check an evidence bundle offline. :class:`InputError` when it is not a readable bundle at all."""
    from bus389.signing.events import check_read

    report = EvidenceReport()
    members = _read_members(data, source, report)
    for name in (*MEMBERS, "manifest.json"):
        if name not in members:
            raise InputError(f"{source}: not a bundle ({name} missing)")
    try:
        manifest = json.loads(members["manifest.json"])
        files = dict(manifest["files"])
    except (ValueError, KeyError, TypeError):
        raise InputError(f"{source}: manifest.json is not a bundle manifest") from None
    for name in MEMBERS:
        if files.get(name) != hashlib.sha256(members[name]).hexdigest():
            report.problems.append(
                f"{name}: its SHA-256 is not the one in manifest.json (the file was changed)"
            )
    try:
        bundle = json.loads(members["bundle.json"])
    except ValueError as exc:
        report.problems.append(f"bundle.json: not JSON ({exc})")
        return report
    if not isinstance(bundle, dict) or bundle.get("format") != BUNDLE_FORMAT:
        report.problems.append(f"bundle.json: not a {BUNDLE_FORMAT} bundle")
        return report
    report.case_ref, report.agency = str(bundle.get("case_ref")), str(bundle.get("agency"))
    try:
        registry = KeyRegistry.from_text(json.dumps(bundle.get("keys")), source="bundle.json keys")
        events = [BundleRecord.from_json(r, f"bundle.json event {i}") for i, r in enumerate(bundle["events"])]
        audit = [BundleRecord.from_json(r, f"bundle.json audit {i}") for i, r in enumerate(bundle["audit"])]
        topics = Topics(str(bundle["topic_prefix"]))
        reader = Agency(report.agency)
    except (InputError, KeyError, TypeError, ValueError) as exc:
        report.problems.append(f"bundle.json: {exc}")
        return report
    _check_keys(registry, trusted, report)
    _check_manifest_signature(members, manifest, registry, reader, report)
    audited = _audit_by_event(audit)
    for i, event in enumerate(events):
        h = _headers(event)
        event_id = h.get("ce_id", b"?").decode("utf-8", "replace")
        where = f"event {i} ({json.dumps(event_id)}, {event.topic}/{event.partition}/{event.offset})"
        if topics.owner_of_inbox(event.topic) != reader:
            report.problems.append(f"{where}: not from the inbox of {reader.value}")
        result = check_read(topics, event.topic, event.value, h, registry, policy=policy)
        if not result.ok:
            report.problems.append(f"{where}: {result.describe()}")
            continue
        report.lines.append(f"{where}: {result.describe()}")
        problem = _check_case(event, report.case_ref) or _check_delivery(audited.get(event_id), h, reader)
        if problem:
            report.problems.append(f"{where}: {problem}")
    chains = verify_chains(audit, registry, segment=True)
    for finding in chains.findings:
        report.problems.append(f"audit segment: {finding.describe()}")
    report.lines.append(
        f"audit segment: {chains.records} record(s) in {chains.chains} chain(s), "
        f"{chains.signed_heads} head(s) signed by the router"
        + (
            f"; {chains.unchained} record(s) not linked (no chain: not tamper-evident)"
            if chains.unchained
            else ""
        )
    )
    return report


def _check_keys(registry: KeyRegistry, trusted: KeyRegistry | None, report: EvidenceReport) -> None:
    for entry in registry.entries():
        report.lines.append(f"key {entry.kid} of {entry.owner} (in the bundle)")
        if trusted is None:
            continue
        known = trusted.get(entry.kid)
        if known is None or known.public_key != entry.public_key or known.owner != entry.owner:
            report.problems.append(f"key {entry.kid} of {entry.owner}: not in the trusted key registry")
        elif known.to_json() != entry.to_json():
            report.problems.append(
                f"key {entry.kid} of {entry.owner}: validity differs from the trusted registry"
            )


def _check_manifest_signature(
    members: Mapping[str, bytes],
    manifest: Mapping[str, Any],
    registry: KeyRegistry,
    reader: Agency,
    report: EvidenceReport,
) -> None:
    kid = manifest.get("signed_by")
    if kid is None:
        report.lines.append("manifest: not signed (no signing key where it was exported)")
        return
    entry = registry.get(str(kid))
    try:
        signature = base64.b64decode(members.get("manifest.sig", b"").strip(), validate=True)
    except ValueError:
        signature = b""
    if entry is None or entry.owner != reader.value:
        report.problems.append(f"manifest.sig: signed with key {kid!r}, not a key of {reader.value}")
    elif not entry.verify(signature, members["manifest.json"]):
        report.problems.append("manifest.sig: the signature of manifest.json does not verify")
    else:
        report.lines.append(f"manifest: signed by {reader.value} (key {entry.kid})")


def _check_case(event: BundleRecord, case_ref: str) -> str | None:
    from bus389.codec import decode_value

    said = decode_value(event.value).meta.get("case_ref")  # decodes: check_read just decoded it
    return None if said == case_ref else f"its case is {said!r}, not the bundle's {case_ref!r}"


def _audit_by_event(audit: list[BundleRecord]) -> dict[str, BundleRecord]:
    return {(r.key or b"").decode("utf-8", "replace"): r for r in audit}


def _check_delivery(audit: BundleRecord | None, headers: Mapping[str, bytes], reader: Agency) -> str | None:
    from bus389.codec import decode_value
    from bus389.errors import CodecError

    if audit is None:
        return "no audit record of its routing in the bundle"
    try:
        record = decode_value(audit.value).record
    except CodecError as exc:
        return f"its audit record does not decode ({exc})"
    origin = headers.get("bus389_origin", b"").decode("utf-8", "replace")
    said = f"{record['origin_topic']}/{record['origin_partition']}/{record['origin_offset']}"
    if origin != said:
        return f"its origin {origin} is not the audit record's {said}"
    redacted = sorted(
        p for p in headers.get("bus389_redacted", b"").decode("utf-8", "replace").split(",") if p
    )
    for delivery in record["deliveries"]:
        if delivery["recipient"] == reader.value:
            audited = sorted(delivery["redacted_fields"])
            if audited != redacted:
                return f"the audit record says {audited} were redacted, the copy says {redacted}"
            return None
    return f"the audit record shows no delivery to {reader.value}"


def read_bundle_file(path: Path) -> bytes:
    try:
        return path.expanduser().read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror}") from None
