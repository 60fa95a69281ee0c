"""The local certificate authority of a secure local Kafka: a CA and a broker certificate, made with openssl.

Everything lives in one directory under the cluster's data dir (mode 0700, never in the repository):
``ca.key`` (the CA's private key, 0600), ``ca.pem`` (the CA certificate clients trust), and
``broker.pem`` (the broker's PKCS#8 private key followed by its certificate chain, 0600: Kafka 4
reads it as ``ssl.keystore.type=PEM``). The broker certificate names ``localhost`` and
``127.0.0.1`` (the brokers listen on loopback), so clients verify the hostname as they should.
Made once; an existing complete set is reused.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bus389.errors import LocalKafkaError

__all__ = ["CERT_DAYS", "LocalTls", "ensure_local_tls"]

CERT_DAYS = 825
"""Validity of the local CA and broker certificate (the CA/Browser Forum's old upper bound)."""
_OPENSSL_TIMEOUT_S = 120
_KEY_BITS = "3072"


@dataclass(frozen=True)
class LocalTls:
    """Paths of the local CA's files."""

    directory: Path

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def broker_keystore(self) -> Path:
        """The broker's private key and certificate chain, one PEM file (``ssl.keystore.location``)."""
        return self.directory / "broker.pem"

    def complete(self) -> bool:
        return all(p.is_file() for p in (self.ca_key, self.ca_cert, self.broker_keystore))


def _openssl(*args: str, cwd: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise LocalKafkaError("openssl not found on PATH: it makes the local CA of `kafka up --secure`")
    try:
        result = subprocess.run(
            [openssl, *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=_OPENSSL_TIMEOUT_S,
            check=False,
            umask=0o077,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LocalKafkaError(f"openssl {args[0]} failed: {exc}") from exc
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-10:])
        raise LocalKafkaError(f"openssl {args[0]} failed (exit {result.returncode}):\n{tail}")


def ensure_local_tls(directory: Path, *, hosts: tuple[str, ...] = ("localhost", "127.0.0.1")) -> LocalTls:
    """The local CA and broker certificate in ``directory``, created (0600 files, 0700 dir) if missing."""
    tls = LocalTls(directory)
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    if tls.complete():
        return tls
    work = directory / f".tls-{secrets.token_hex(4)}"
    work.mkdir(mode=0o700)
    try:
        _openssl(
            "req",
            "-x509",
            "-newkey",
            f"rsa:{_KEY_BITS}",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            str(CERT_DAYS),
            "-subj",
            f"/O=bus389/CN=bus389 local CA {secrets.token_hex(4)}",
            "-addext",
            "basicConstraints=critical,CA:TRUE,pathlen:0",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            cwd=work,
        )
        _openssl(
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            f"rsa_keygen_bits:{_KEY_BITS}",
            "-out",
            "broker.key",
            cwd=work,
        )
        _openssl(
            "req",
            "-new",
            "-key",
            "broker.key",
            "-subj",
            "/O=bus389/CN=localhost",
            "-out",
            "broker.csr",
            cwd=work,
        )
        names = ",".join(f"IP:{h}" if _is_ip(h) else f"DNS:{h}" for h in hosts)
        (work / "broker.ext").write_text(
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage=serverAuth,clientAuth\n"
            f"subjectAltName={names}\n"
        )
        _openssl(
            "x509",
            "-req",
            "-in",
            "broker.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-set_serial",
            "0x" + secrets.token_hex(16),
            "-days",
            str(CERT_DAYS),
            "-sha256",
            "-extfile",
            "broker.ext",
            "-out",
            "broker.crt",
            cwd=work,
        )
        keystore = work / "broker.pem"
        keystore.write_text(
            (work / "broker.key").read_text()
            + (work / "broker.crt").read_text()
            + (work / "ca.pem").read_text()
        )
        for name in ("ca.key", "broker.pem", "ca.pem"):
            os.chmod(work / name, 0o600)
            os.replace(work / name, directory / name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return tls


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
