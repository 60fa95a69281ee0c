"""``bus389 verify FILE``: check the senders' signatures of events exported by ``bus389 consume``."""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path

import click

from bus389.cli._context import pass_settings
from bus389.errors import BusError, InputError
from bus389.settings import Settings

__all__ = ["verify"]


@click.command("verify")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--keys",
    "keys_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A key registry exported by `bus389 security keys export` (default: signing.registry_file, "
    "else the <prefix>.keys topic).",
)
@pass_settings
def verify(settings: Settings, file: Path, keys_file: Path | None) -> None:
    """Check every event of FILE (JSON lines written by `bus389 consume`) against its signature.

    For each line: the sender's signature over the CloudEvents attributes and every field's salted
    digest, the key's owner and validity, and that each field missing from an inbox copy is one the
    router says it redacted and the policy withholds from that inbox's agency. Prints one line per
    event and a count; exits 1 when any event fails, naming the line and what fails.

    \b
    Example:
      bus389 consume --as police --from-beginning > police.jsonl
      bus389 verify police.jsonl --keys keys.json
    """
    from bus389.consumers.router.audit_chain import printable
    from bus389.routing.policy import load_policy
    from bus389.signing.events import check_read
    from bus389.signing.keys import KeyRegistry
    from bus389.signing.registry_topic import load_registry

    registry = KeyRegistry.load(keys_file) if keys_file is not None else load_registry(settings)
    try:
        policy = load_policy(settings.router.policy_path)
    except BusError:
        policy = None
    try:
        lines = file.expanduser().read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"{file}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"{file}: not UTF-8 text") from None
    good = bad = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            topic = str(item["topic"])
            value = base64.b64decode(str(item["value"]), validate=True)
            headers = {str(k): str(v).encode("utf-8") for k, v in dict(item.get("headers") or {}).items()}
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
            click.echo(f"{file}:{number}: not an event line of `bus389 consume` (no topic or value)")
            bad += 1
            continue
        result = check_read(settings.topics, topic, value, headers, registry, policy=policy)
        event_id = headers.get("ce_id", b"?").decode("utf-8", "replace")
        shown = json.dumps(event_id, ensure_ascii=True)
        click.echo(f"{file}:{number}: event {shown}: {printable(result.describe())}")
        if result.ok:
            good += 1
        else:
            bad += 1
    click.echo(f"{good} verified, {bad} failed")
    if bad:
        raise SystemExit(1)
