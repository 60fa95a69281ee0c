"""``bus389 evidence``: export what an agency received on a case, and check such a bundle offline."""

from __future__ import annotations

from pathlib import Path

import click

from bus389.cli._context import pass_settings
from bus389.settings import Settings

__all__ = ["evidence"]


@click.group("evidence")
def evidence() -> None:
    """Evidence bundles: the events of a case as received, their signatures, keys and audit chain."""


@evidence.command("export")
@click.option("--case", "case_ref", required=True, metavar="REF", help="The case reference (meta.case_ref).")
@click.option("--as", "agency", required=True, metavar="AGENCY", help="The agency whose inbox is exported.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The bundle (.zip) to write.",
)
@pass_settings
def export(settings: Settings, case_ref: str, agency: str, out: Path) -> None:
    """Write what AGENCY received on case REF, with what is needed to check it with no broker.

    Reads AGENCY's inbox, the audit topic and the key registry; the bundle holds the copies byte for
    byte, the audit chain segment that covers them, the public keys, a Vietnamese README.txt and a
    manifest of SHA-256 hashes, signed with AGENCY's key when BUS389_SIGNING__KEY_FILE is set. Written
    0600: it holds what the agency received, personal data included.

    \b
    Example:
      bus389 evidence export --case QNG-389-2021-0012 --as police --out qng-0012-police.zip
      bus389 evidence verify qng-0012-police.zip
    """
    from bus389.agencies import Agency
    from bus389.codec import decode_event
    from bus389.errors import CodecError, InputError
    from bus389.evidence import build_bundle, select_audit_segment
    from bus389.signing.events import signing_key_file
    from bus389.signing.keys import load_signing_key
    from bus389.signing.registry_topic import load_registry, read_to_end

    reader = Agency.parse(agency)
    events = []
    for raw in read_to_end(settings, settings.topics.inbox(reader)):
        try:
            decoded = decode_event(raw.value, raw.headers)
        except CodecError:
            continue
        if decoded.meta.get("case_ref") == case_ref:
            events.append(raw)
    if not events:
        raise InputError(f"no event of case {case_ref!r} in the inbox of {reader.value}: nothing exported")
    ids = {dict(raw.headers).get("ce_id", b"").decode("utf-8", "replace") for raw in events}
    audit = select_audit_segment(read_to_end(settings, settings.topics.audit), ids)
    key_file = signing_key_file(settings, reader.value)
    data = build_bundle(
        case_ref=case_ref,
        agency=reader,
        prefix=settings.topic_prefix,
        events=events,
        audit=audit,
        registry=load_registry(settings),
        file_name=out.name,
        key=load_signing_key(key_file) if key_file is not None else None,
    )
    _write_private(out.expanduser(), data)
    click.echo(f"{len(events)} event(s) and {len(audit)} audit record(s) of case {case_ref} written to {out}")


def _write_private(path: Path, data: bytes) -> None:
    """Write the bundle 0600 from the first byte (it holds personal data), then rename it into place."""
    import os

    from bus389.errors import InputError

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"cannot write {path}: {exc.strerror}") from None


@evidence.command("verify")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--keys",
    "keys_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A key registry you trust (`bus389 security keys export`): the bundle's keys must be in it.",
)
@pass_settings
def verify(settings: Settings, file: Path, keys_file: Path | None) -> None:
    """Check an evidence bundle offline (no broker): prints what holds, and precisely what fails.

    Exits 1 when anything fails: a damaged or changed file, a signature, a field, a missing audit
    record, a broken audit link or head signature.
    """
    from bus389.consumers.router.audit_chain import printable
    from bus389.errors import BusError
    from bus389.evidence import read_bundle_file, verify_bundle
    from bus389.routing.policy import load_policy
    from bus389.signing.keys import KeyRegistry

    trusted = KeyRegistry.load(keys_file) if keys_file is not None else None
    try:
        policy = load_policy(settings.router.policy_path)
    except BusError:
        policy = None
    report = verify_bundle(read_bundle_file(file), source=str(file), trusted=trusted, policy=policy)
    for line in report.lines:
        click.echo(printable(line))
    for problem in report.problems:
        click.echo(f"FAILS: {printable(problem)}")
    if report.holds:
        click.echo(printable(f"the evidence of case {report.case_ref} received by {report.agency} holds"))
        return
    click.echo(f"the evidence does not hold: {len(report.problems)} problem(s)")
    raise SystemExit(1)
