"""The ``--config FILE`` of every command: ``BUS389_*`` settings in a small ``.env``-style file.

Format (one setting a line, the same names as the environment variables)::

    # comments and blank lines are ignored
    BUS389_BOOTSTRAP=127.0.0.1:39092
    BUS389_KAFKA__SECURITY_PROTOCOL=SASL_SSL
    BUS389_KAFKA__PASSWORD="..."          # optional single or double quotes, no escapes
    BUS389_ICT__NEVER_BLOCK=["gov.vn"]    # lists and maps as JSON

Every name must be a field of :class:`~bus389.settings.Settings` (``__`` between a group and its
field); an unknown name is an error, not silently ignored. The file's values take precedence over
the environment: a command run with an agency's ``--config`` talks to that agency's brokers as that
agency, whatever ``BUS389_BOOTSTRAP`` the shell exports. A file holding a password must not be
readable by the group or others (mode 0600), as with ``ssh``; so must a file holding any URL with a
password in it (``BUS389_STORE__STANDING_OFFICE_URL=postgresql://user:pw@host/db``). Errors name the file,
the line and the setting, never a value.
"""

from __future__ import annotations

import json
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError

from bus389.atomic_files import stage_file, write_file
from bus389.errors import ConfigError
from bus389.settings import Settings

__all__ = [
    "ENV_PREFIX",
    "load_config_values",
    "load_settings",
    "render_config",
    "write_private_file",
]

ENV_PREFIX = "BUS389_"
_LINE = re.compile(r"^(?:export\s+)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?P<value>.*)$")
_SECRET_FIELDS = frozenset({("kafka", "password"), ("mail", "password")})
"""The settings whose presence makes a config file secret (checked to be 0600)."""
_URL_PASSWORD = re.compile(r"^[a-z][a-z0-9+.\-]*://[^/@\s]*:[^/@\s]*@", re.IGNORECASE)
"""A URL carrying a password (``postgresql://user:pw@host/db``): any such setting is a secret too."""


def _is_secret(target: tuple[str, ...], value: Any) -> bool:
    """Whether a setting holds a credential: a password field, or any URL with a password in it."""
    if target in _SECRET_FIELDS or target[-1].endswith("password"):
        return True
    return isinstance(value, str) and bool(_URL_PASSWORD.match(value.strip()))


def _field_names(model: type[BaseModel]) -> dict[str, str]:
    """Upper-case env spelling → field name, for one model's fields."""
    return {name.upper(): name for name in model.model_fields}


def _target(name: str, path: Path, line: int) -> tuple[str, ...]:
    """The field path (``("kafka", "password")``) a ``BUS389_*`` name sets; ConfigError if none."""
    where = f"{path}:{line}"
    if not name.upper().startswith(ENV_PREFIX):
        raise ConfigError(f"{where}: {name} is not a bus389 setting (names start with {ENV_PREFIX})")
    parts = name[len(ENV_PREFIX) :].upper().split("__")
    top = _field_names(Settings)
    if parts[0] not in top:
        raise ConfigError(f"{where}: unknown setting {name}")
    head = top[parts[0]]
    annotation = Settings.model_fields[head].annotation
    group = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    if len(parts) == 1:
        if group is not None:
            raise ConfigError(f"{where}: {name} is a group; set its fields ({name}__FIELD)")
        return (head,)
    if group is None or len(parts) != 2:
        raise ConfigError(f"{where}: unknown setting {name}")
    fields = _field_names(group)
    if parts[1] not in fields:
        raise ConfigError(f"{where}: unknown setting {name}")
    return (head, fields[parts[1]])


def _unquote(raw: str) -> str:
    value = raw.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    # An unquoted value may end with a comment: `KEY=value  # note`.
    return re.sub(r"\s+#.*$", "", value)


def _decode(value: str) -> Any:
    """JSON for lists and maps (as pydantic-settings reads them from the environment); else the text."""
    if value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def load_config_values(path: Path) -> dict[str, Any]:
    """The nested values of a config file (``{"kafka": {"password": ...}}``), checked but not validated.

    Raises :class:`ConfigError` for an unreadable file, a malformed line, an unknown setting, a name
    set twice, or a file holding a password that others may read.
    """
    try:
        text = path.read_text(encoding="utf-8")
        mode = path.stat().st_mode
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.__class__.__name__}") from exc
    values: dict[str, Any] = {}
    seen: dict[tuple[str, ...], int] = {}
    secret: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _LINE.match(stripped)
        if match is None:
            raise ConfigError(f"{path}:{number}: expected NAME=VALUE")
        name = match["name"]
        target = _target(name, path, number)
        if target in seen:
            raise ConfigError(f"{path}:{number}: {name} is already set on line {seen[target]}")
        seen[target] = number
        value = _decode(_unquote(match["value"]))
        if secret is None and _is_secret(target, value):
            secret = name
        if len(target) == 1:
            values[target[0]] = value
        else:
            values.setdefault(target[0], {})[target[1]] = value
    if secret is not None and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{path} holds a password ({secret}) but is readable by others (mode {stat.S_IMODE(mode):04o}): "
            f"run `chmod 600 {path}`"
        )
    return values


def _describe(exc: ValidationError, path: Path | None) -> str:
    """The validation errors as ``setting: message`` lines, without the values that failed."""
    lines = []
    for error in exc.errors(include_input=False, include_url=False):
        loc = "__".join(str(part).upper() for part in error["loc"] if isinstance(part, str))
        lines.append(f"{ENV_PREFIX}{loc}: {error['msg']}")
    where = f"config file {path}" if path is not None else "BUS389_* settings"
    return f"invalid {where}:\n  " + "\n  ".join(lines)


def load_settings(path: Path | None = None) -> Settings:
    """The settings: the environment, overridden by the config file at ``path`` when given.

    Raises :class:`ConfigError` (exit code 2) naming each bad setting, never echoing its value.
    """
    values = load_config_values(path) if path is not None else {}
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from None


def render_config(values: Mapping[str, str | int | Path | SecretStr | None], *, header: str = "") -> str:
    """A config file's text: ``NAME=VALUE`` lines (values double-quoted), ``None`` values left out.

    Names are the full ``BUS389_*`` spelling; a :class:`SecretStr` is written in clear (the file is
    the secret's home, written 0600 by :func:`write_private_file`).
    """
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    for name, value in values.items():
        if value is None:
            continue
        text = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        if '"' in text or "\n" in text:
            raise ConfigError(f"{name}: a config value cannot hold a double quote or a newline")
        lines.append(f'{name}="{text}"')
    return "\n".join(lines) + "\n"


def stage_private_file(path: Path, text: str) -> Path:
    """Write ``text`` to a new 0600 temporary file beside ``path`` (synced) and return it.

    The content never exists on disk with wider permissions (``O_EXCL``, mode 0600 from the first
    byte). The caller renames it over ``path`` with ``os.replace`` once it should take effect.
    """
    return stage_file(path, text.encode("utf-8"), private=True, error=ConfigError)


def write_private_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600 from the first byte, replacing it atomically."""
    write_file(path, text.encode("utf-8"), private=True, error=ConfigError)
