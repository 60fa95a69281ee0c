"""What makes the local Kafka secure (``bus389 kafka up --secure``): its secrets, listeners and properties.

In secure mode each broker has no plaintext client listener:

- ``SECURE`` (``SASL_SSL``, SCRAM-SHA-512) on the client port: every client, and the brokers between
  themselves (``inter.broker.listener.name``, as the ``broker`` principal);
- ``CONTROLLER`` (``SASL_PLAINTEXT``, PLAIN with a static password) on loopback only: the KRaft quorum.
  KRaft controllers cannot use SCRAM (its credentials live in the metadata log they serve), and only
  the ``broker`` principal has a password there.

The KRaft ``StandardAuthorizer`` decides, ``allow.everyone.if.no.acl.found=false`` denies what no ACL
allows, and ``super.users`` are ``User:admin`` and ``User:broker``. Both users' SCRAM credentials are
written into the metadata log when the storage is formatted (``StorageTool format --add-scram``); the
passwords are generated here, kept 0600 under ``<data_dir>/security`` and never printed. The admin's
client configuration (for ``bus389 --config``) is written next to them as ``admin.env``.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from bus389.config_file import render_config, write_private_file
from bus389.errors import LocalKafkaError
from bus389.security.acl import ADMIN_USER, BROKER_USER, SUPER_USERS
from bus389.security.tls import LocalTls, ensure_local_tls
from bus389.settings import Settings

__all__ = [
    "CONTROLLER_PROTOCOL",
    "SCRAM_MECHANISM",
    "SECURE_LISTENER",
    "SECURE_PROTOCOL",
    "SECURITY_DIR",
    "SecureFiles",
    "admin_settings",
    "generate_password",
    "prepare_secure_files",
    "scram_format_args",
    "secure_properties",
    "write_admin_config",
]

SECURE_LISTENER = "SECURE"
SECURE_PROTOCOL = "SASL_SSL"
CONTROLLER_PROTOCOL = "SASL_PLAINTEXT"
SCRAM_MECHANISM = "SCRAM-SHA-512"
SECURITY_DIR = "security"
_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
_PASSWORD_CHARS = re.compile(r"^[A-Za-z0-9_\-]{32,}$")


def generate_password() -> SecretStr:
    """A new random password: 256 bits, URL-safe characters (safe in JAAS, ``--add-scram`` and .env)."""
    return SecretStr(secrets.token_urlsafe(32))


@dataclass(frozen=True)
class SecureFiles:
    """The secrets of one secure local cluster, in ``<data_dir>/security`` (0700; files 0600)."""

    directory: Path

    @property
    def tls(self) -> LocalTls:
        return LocalTls(self.directory)

    @property
    def broker_password_path(self) -> Path:
        return self.directory / "broker.password"

    @property
    def admin_password_path(self) -> Path:
        return self.directory / "admin.password"

    @property
    def admin_config_path(self) -> Path:
        """The admin's client configuration: ``bus389 --config <this> security apply``."""
        return self.directory / "admin.env"

    def _read(self, path: Path) -> SecretStr:
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise LocalKafkaError(f"cannot read {path}: {exc.strerror}") from exc
        if not _PASSWORD_CHARS.match(value):
            raise LocalKafkaError(f"{path} does not hold a password made by bus389")
        return SecretStr(value)

    def broker_password(self) -> SecretStr:
        return self._read(self.broker_password_path)

    def admin_password(self) -> SecretStr:
        return self._read(self.admin_password_path)


def prepare_secure_files(data_dir: Path) -> SecureFiles:
    """Create (once) the local CA, the broker certificate and the admin and broker passwords."""
    files = SecureFiles(data_dir / SECURITY_DIR)
    ensure_local_tls(files.directory)
    for path in (files.broker_password_path, files.admin_password_path):
        if not path.is_file():
            write_private_file(path, generate_password().get_secret_value() + "\n")
        os.chmod(path, 0o600)
    return files


def _jaas(module: str, **options: str) -> str:
    pairs = " ".join(f'{key}="{value}"' for key, value in options.items())
    return f"{module} required {pairs};"


def secure_properties(files: SecureFiles, *, controller_listener: str = "CONTROLLER") -> dict[str, str]:
    """The server.properties entries every node of a secure cluster shares (they hold a password:
    write the file 0600)."""
    password = files.broker_password().get_secret_value()
    secure = SECURE_LISTENER.lower()
    controller = controller_listener.lower()
    return {
        "sasl.enabled.mechanisms": SCRAM_MECHANISM,
        "sasl.mechanism.inter.broker.protocol": SCRAM_MECHANISM,
        "sasl.mechanism.controller.protocol": "PLAIN",
        f"listener.name.{secure}.sasl.enabled.mechanisms": SCRAM_MECHANISM,
        f"listener.name.{secure}.{SCRAM_MECHANISM.lower()}.sasl.jaas.config": _jaas(
            "org.apache.kafka.common.security.scram.ScramLoginModule", username=BROKER_USER, password=password
        ),
        f"listener.name.{controller}.sasl.enabled.mechanisms": "PLAIN",
        f"listener.name.{controller}.plain.sasl.jaas.config": _jaas(
            "org.apache.kafka.common.security.plain.PlainLoginModule",
            username=BROKER_USER,
            password=password,
            **{f"user_{BROKER_USER}": password},
        ),
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(files.tls.broker_keystore),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(files.tls.ca_cert),
        "ssl.client.auth": "none",
        "ssl.endpoint.identification.algorithm": "https",
        "authorizer.class.name": _AUTHORIZER,
        "allow.everyone.if.no.acl.found": "false",
        "super.users": ";".join(SUPER_USERS),
    }


def scram_format_args(files: SecureFiles) -> list[str]:
    """``StorageTool format`` arguments that write the admin's and the broker's SCRAM credentials.

    They hold the passwords: pass them in a 0600 argument file (``java @file``), never on a command
    line that ``ps`` shows.
    """
    args: list[str] = []
    for user, password in ((ADMIN_USER, files.admin_password()), (BROKER_USER, files.broker_password())):
        args += ["--add-scram", f"{SCRAM_MECHANISM}=[name={user},password={password.get_secret_value()}]"]
    return args


def admin_settings(settings: Settings, files: SecureFiles, bootstrap: str) -> Settings:
    """``settings`` as the admin of the secure cluster at ``bootstrap`` (SASL_SSL, SCRAM, the local CA)."""
    kafka = settings.kafka.model_copy(
        update={
            "security_protocol": SECURE_PROTOCOL,
            "sasl_mechanism": SCRAM_MECHANISM,
            "username": ADMIN_USER,
            "password": files.admin_password(),
            "ssl_cafile": files.tls.ca_cert,
        }
    )
    return settings.model_copy(update={"bootstrap": bootstrap, "kafka": kafka})


def write_admin_config(files: SecureFiles, bootstrap: str) -> Path:
    """Write ``admin.env`` (0600): the admin's ``--config`` file for this cluster."""
    text = render_config(
        {
            "BUS389_BOOTSTRAP": bootstrap,
            "BUS389_KAFKA__SECURITY_PROTOCOL": SECURE_PROTOCOL,
            "BUS389_KAFKA__SASL_MECHANISM": SCRAM_MECHANISM,
            "BUS389_KAFKA__USERNAME": ADMIN_USER,
            "BUS389_KAFKA__PASSWORD": files.admin_password(),
            "BUS389_KAFKA__SSL_CAFILE": files.tls.ca_cert,
        },
        header=(
            "bus389 client configuration of User:admin (super user) of the local secure Kafka.\n"
            "Written by `bus389 kafka up --secure`. Secret: keep it 0600, never commit it.\n"
            f"Use: bus389 --config {files.admin_config_path} security apply"
        ),
    )
    write_private_file(files.admin_config_path, text)
    return files.admin_config_path
