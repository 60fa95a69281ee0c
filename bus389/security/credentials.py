"""Issuing (or rotating) a principal's SCRAM credentials and writing its client configuration file.

Run as the admin. A new random password is set for the user with ``AlterUserScramCredentials``
(SCRAM-SHA-512, kafka-python's ``alter_user_scram_credentials``: the client salts and hashes it, only
the salted form travels) and written into the principal's ``--config`` file: bootstrap, topic prefix,
``SASL_SSL``, the mechanism, the username, the password and the CA certificate the admin trusts. The
file is created 0600 before the credentials change and renamed into place after, so a failed rotation
leaves the old file, and a written file always holds the password in force. Connections already
authenticated with the old password stay open until they reconnect.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bus389.config_file import render_config, stage_private_file
from bus389.errors import BrokerError, ConfigError
from bus389.kafka import kafka_errors, make_admin
from bus389.security.acl import ROUTER_USER, client_principals
from bus389.security.localbroker import SCRAM_MECHANISM, SECURE_PROTOCOL, generate_password
from bus389.security.secret_paths import check_secret_path
from bus389.settings import Settings

__all__ = ["SCRAM_ITERATIONS", "IssuedCredentials", "client_config_text", "issue_credentials"]

SCRAM_ITERATIONS = 8192
"""PBKDF2 iterations of the stored SCRAM credential (Kafka's minimum for SHA-512 is 4096)."""
_LOGIN_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class IssuedCredentials:
    """What :func:`issue_credentials` did (never the password)."""

    username: str
    path: Path
    bootstrap: str
    rotated: bool
    """True when the user already had SCRAM credentials (they were replaced)."""


def client_config_text(
    settings: Settings, username: str, password: SecretStr, *, signing_key_file: Path | None = None
) -> str:
    """The ``--config`` file of ``username`` on the cluster ``settings`` (the admin's) points at.

    ``signing_key_file``: the principal's Ed25519 signing key (issued beside the file), named so that
    every command run with this config signs what it publishes."""
    k = settings.kafka
    if k.ssl_cafile is None:
        raise ConfigError("the admin's settings name no CA certificate (BUS389_KAFKA__SSL_CAFILE)")
    values: dict[str, Any] = {
        "BUS389_BOOTSTRAP": settings.bootstrap,
        "BUS389_TOPIC_PREFIX": settings.topic_prefix,
        "BUS389_KAFKA__SECURITY_PROTOCOL": SECURE_PROTOCOL,
        "BUS389_KAFKA__SASL_MECHANISM": SCRAM_MECHANISM,
        "BUS389_KAFKA__USERNAME": username,
        "BUS389_KAFKA__PASSWORD": password,
        "BUS389_KAFKA__SSL_CAFILE": k.ssl_cafile.expanduser().resolve(),
    }
    if signing_key_file is not None:
        values["BUS389_SIGNING__KEY_FILE"] = signing_key_file.expanduser().resolve()
    if username == ROUTER_USER:
        own = f"{settings.topic_prefix}.{ROUTER_USER}"
        values["BUS389_ROUTER__GROUP_ID"] = own
        values["BUS389_ROUTER__TRANSACTIONAL_ID"] = own
    when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return render_config(
        values,
        header=(
            f"bus389 client configuration of User:{username}, issued {when} by `bus389 security issue`.\n"
            "Secret: keep it 0600, never commit or mail it; issuing again rotates the password.\n"
            f"Use: bus389 --config FILE <command>   (or BUS389_CONFIG=FILE)"
        ),
    )


def _check_admin_settings(settings: Settings) -> None:
    k = settings.kafka
    if k.security_protocol != SECURE_PROTOCOL or not k.username or k.password is None:
        raise ConfigError(
            "`security issue` runs as the admin over SASL_SSL: pass the admin's config "
            "(bus389 --config <data_dir>/security/admin.env security issue ...)"
        )


def _has_credentials(admin: Any, username: str) -> bool:
    with kafka_errors():
        described = admin.describe_user_scram_credentials([username])
    entry = described.get(username) or {}
    return entry.get("error") is None and bool(entry.get("credential_infos"))


def _verify_login(settings: Settings, username: str, password: SecretStr) -> None:
    """Log in as ``username`` with the new password (kafka-python drops the error code of a refused
    alteration, so a login is the proof). SCRAM credentials reach every broker through the metadata
    log: a broker that has not applied them yet refuses, so retry for a while."""
    import logging

    kafka = settings.kafka.model_copy(update={"username": username, "password": password})
    as_user = settings.model_copy(update={"kafka": kafka})
    deadline = time.monotonic() + _LOGIN_TIMEOUT_S
    quiet = logging.getLogger("kafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        while True:
            try:
                make_admin(as_user, request_timeout_ms=5_000, bootstrap_timeout_ms=5_000).close()
            except BrokerError as exc:
                if time.monotonic() >= deadline:
                    raise BrokerError(
                        f"the credentials of {username} were sent but logging in with them fails "
                        f"(is the admin a super user?): {exc}"
                    ) from None
                time.sleep(0.5)
            else:
                return
    finally:
        quiet.setLevel(level)


def issue_credentials(
    settings: Settings, username: str, out: Path, *, signing_key_file: Path | None = None
) -> IssuedCredentials:
    """Create or rotate ``username``'s SCRAM-SHA-512 credentials and write its config to ``out`` (0600).

    ``username`` is an agency code or ``router``. Raises :class:`ConfigError` for another name or
    non-admin settings or an ``out`` inside a git work tree that git does not ignore
    (:func:`~bus389.security.secret_paths.check_secret_path`), :class:`BrokerError` when the cluster
    refuses the change.
    """
    from kafka.admin import ScramMechanism, UserScramCredentialUpsertion

    allowed = client_principals()
    if username not in allowed:
        raise ConfigError(f"cannot issue credentials for {username!r}: choose one of {', '.join(allowed)}")
    check_secret_path(out)
    _check_admin_settings(settings)
    password = generate_password()
    text = client_config_text(settings, username, password, signing_key_file=signing_key_file)
    out = out.expanduser()
    out.parent.mkdir(parents=True, exist_ok=True, mode=0o700)  # e.g. a first ~/.config/bus389
    tmp = stage_private_file(out, text)
    try:
        admin = make_admin(settings)
        try:
            rotated = _has_credentials(admin, username)
            upsert = UserScramCredentialUpsertion(
                username,
                ScramMechanism.SCRAM_SHA_512,
                password.get_secret_value(),
                iterations=SCRAM_ITERATIONS,
            )
            with kafka_errors(bootstrap=settings.bootstrap):
                result = admin.alter_user_scram_credentials([upsert])
        finally:
            admin.close()
        problem = result.get(username)
        if problem:
            raise BrokerError(f"the cluster refused the credentials of {username}: {problem}")
        _verify_login(settings, username, password)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return IssuedCredentials(username, out, settings.bootstrap, rotated)
