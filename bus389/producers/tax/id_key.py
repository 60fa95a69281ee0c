"""The tax office's alert-id key: the secret that makes its alert ids its own.

An alert's event id is keyed with this secret (:func:`bus389.producers.tax.alerts.alert_event_id`), so
no other agency can work it out and publish under it first (the router would then refuse the genuine
alert as ``id_taken``). The key lives in a file readable by its owner only (0600):
``BUS389_TAX__ALERT_ID_KEY_FILE`` when set (it must exist: production names its key and keeps a copy),
otherwise ``~/.local/state/bus389/tax-alert-id.key``, created at the first publish. Losing the key
changes every id: files published before would be published again (see the README).
"""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from bus389.config_file import stage_private_file
from bus389.errors import ConfigError
from bus389.settings import TaxSettings

__all__ = ["DEFAULT_KEY_FILE", "MIN_KEY_CHARS", "AlertIdKey", "load_alert_id_key"]

DEFAULT_KEY_FILE = Path.home() / ".local" / "state" / "bus389" / "tax-alert-id.key"
"""Where the key is kept (and created once) when ``BUS389_TAX__ALERT_ID_KEY_FILE`` is not set."""
MIN_KEY_CHARS = 32
_SETTING = "BUS389_TAX__ALERT_ID_KEY_FILE"


@dataclass(frozen=True)
class AlertIdKey:
    """The key's bytes (never in a repr), where they came from, and whether this run created them."""

    secret: bytes = field(repr=False)
    path: Path | None = None
    created: bool = False


def _read(path: Path) -> AlertIdKey:
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the tax alert-id key {path}: {exc.__class__.__name__}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{path} holds the tax alert-id key but is readable by others "
            f"(mode {stat.S_IMODE(mode):04o}): run `chmod 600 {path}`"
        )
    lines = text.splitlines()
    secret = lines[0].strip() if lines else ""
    if len(secret) < MIN_KEY_CHARS:
        raise ConfigError(f"{path}: the tax alert-id key is too short (at least {MIN_KEY_CHARS} characters)")
    return AlertIdKey(secret.encode("utf-8"), path)


def load_alert_id_key(settings: TaxSettings) -> AlertIdKey:
    """The tax office's alert-id key (see the module docstring for where it lives).

    The default file is created (0600, a random 256-bit key) when missing; the returned key then says
    ``created``. A named file (the setting) is never created. Raises
    :class:`ConfigError` (one line, never the key) for a missing named file, a file others may read,
    or a key shorter than :data:`MIN_KEY_CHARS` characters.
    """
    named = settings.alert_id_key_file
    path = (named or DEFAULT_KEY_FILE).expanduser()
    if path.exists():
        return _read(path)
    if named is not None:
        raise ConfigError(
            f"{_SETTING} names {path}, which does not exist: restore the tax office's key there "
            "(alert ids depend on it), or unset the setting to use a key created on first use"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the folder of the alert-id key {path}: {exc.strerror}") from None
    staged = stage_private_file(path, secrets.token_urlsafe(32) + "\n")
    try:
        # A link, not a rename: it fails if another publish created the key meanwhile, and then that
        # key is the one (a rename would replace it under ids already computed with it).
        os.link(staged, path)
        created = True
    except FileExistsError:
        created = False
    except OSError as exc:
        raise ConfigError(f"cannot create the tax alert-id key {path}: {exc.strerror}") from None
    finally:
        staged.unlink(missing_ok=True)
    key = _read(path)
    return AlertIdKey(key.secret, path, created=created)
