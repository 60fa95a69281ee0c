"""`kafka up --secure` without a JVM: the local CA (real openssl), the secrets, the server properties."""

from __future__ import annotations

import shlex
import stat
import subprocess
from pathlib import Path

import pytest

from bus389.config_file import load_settings
from bus389.localkafka.config import plan_cluster, server_properties
from bus389.localkafka.formatting import argfile_text
from bus389.localkafka.state import ClusterState
from bus389.security.localbroker import (
    SecureFiles,
    admin_settings,
    prepare_secure_files,
    scram_format_args,
    secure_properties,
    write_admin_config,
)
from bus389.settings import Settings


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> SecureFiles:
    return prepare_secure_files(tmp_path_factory.mktemp("secure-data"))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def openssl(*args: str) -> str:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, check=True, timeout=60).stdout


def test_secrets_are_private(files: SecureFiles) -> None:
    assert mode(files.directory) == 0o700
    for path in (
        files.tls.ca_key,
        files.tls.broker_keystore,
        files.broker_password_path,
        files.admin_password_path,
    ):
        assert mode(path) == 0o600, path
    assert files.admin_password() != files.broker_password()
    assert len(files.admin_password().get_secret_value()) >= 40
    assert not list(files.directory.glob(".tls-*"))  # the work dir is gone


def test_the_broker_certificate_is_signed_by_the_ca_and_names_loopback(files: SecureFiles) -> None:
    keystore = files.tls.broker_keystore.read_text()
    assert keystore.startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8, as Kafka's PEM keystore wants
    assert keystore.count("BEGIN CERTIFICATE") == 2  # the broker certificate, then the CA
    cert = files.directory / "broker-only.crt"
    first = keystore.index("-----BEGIN CERTIFICATE-----")
    cert.write_text(keystore[first : keystore.index("-----END CERTIFICATE-----") + 25] + "\n")
    assert "OK" in openssl("verify", "-CAfile", str(files.tls.ca_cert), str(cert))
    text = openssl("x509", "-in", str(cert), "-noout", "-text")
    assert "DNS:localhost" in text and "IP Address:127.0.0.1" in text
    assert "TLS Web Server Authentication" in text
    ca = openssl("x509", "-in", str(files.tls.ca_cert), "-noout", "-text")
    assert "CA:TRUE" in ca


def test_preparing_again_keeps_the_ca_and_passwords(files: SecureFiles) -> None:
    ca, password = files.tls.ca_cert.read_bytes(), files.admin_password()
    again = prepare_secure_files(files.directory.parent)
    assert again.tls.ca_cert.read_bytes() == ca and again.admin_password() == password


def test_secure_properties_have_no_plaintext_client_listener(files: SecureFiles, tmp_path: Path) -> None:
    layout = plan_cluster(brokers=3, host="127.0.0.1", base_port=39092, data_dir=tmp_path, secure=True)
    from dataclasses import replace

    layout = replace(layout, extra_properties=secure_properties(files))
    props = server_properties(layout, 2)
    assert props["listeners"] == "SECURE://127.0.0.1:39093,CONTROLLER://127.0.0.1:39193"
    assert props["listener.security.protocol.map"] == "SECURE:SASL_SSL,CONTROLLER:SASL_PLAINTEXT"
    assert props["inter.broker.listener.name"] == "SECURE"
    assert props["sasl.mechanism.inter.broker.protocol"] == "SCRAM-SHA-512"
    assert props["sasl.mechanism.controller.protocol"] == "PLAIN"
    assert props["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["super.users"] == "User:admin;User:broker"
    assert props["ssl.keystore.type"] == "PEM" and props["ssl.truststore.type"] == "PEM"
    assert props["ssl.keystore.location"] == str(files.tls.broker_keystore)
    assert "PLAINTEXT://" not in props["listeners"]
    broker = files.broker_password().get_secret_value()
    assert f'password="{broker}"' in props["listener.name.secure.scram-sha-512.sasl.jaas.config"]
    assert f'user_broker="{broker}"' in props["listener.name.controller.plain.sasl.jaas.config"]
    # The admin's password is never in the broker's properties: it lives only in the metadata log.
    assert files.admin_password().get_secret_value() not in "".join(props.values())


def test_the_plain_layout_is_unchanged(tmp_path: Path) -> None:
    props = server_properties(plan_cluster(brokers=1, host="127.0.0.1", base_port=9092, data_dir=tmp_path), 1)
    assert props["listener.security.protocol.map"] == "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    assert "authorizer.class.name" not in props


def test_scram_arguments_go_through_a_quoted_argfile(files: SecureFiles) -> None:
    args = scram_format_args(files)
    admin = files.admin_password().get_secret_value()
    assert args[:2] == ["--add-scram", f"SCRAM-SHA-512=[name=admin,password={admin}]"]
    assert args[2:3] == ["--add-scram"] and args[3].startswith("SCRAM-SHA-512=[name=broker,")
    tricky = ["kafka.tools.StorageTool", "-c", '/data dir/with "quotes"\\x', *args]
    text = argfile_text(tricky)
    assert shlex.split(text) == tricky  # one quoted argument a line, as java @argfiles read them


def test_the_admin_config_and_settings(files: SecureFiles, tmp_path: Path) -> None:
    path = write_admin_config(files, "127.0.0.1:39092")
    assert mode(path) == 0o600
    loaded = load_settings(path)
    direct = admin_settings(Settings(), files, "127.0.0.1:39092")
    for settings in (loaded, direct):
        assert settings.bootstrap == "127.0.0.1:39092"
        assert settings.kafka.security_protocol == "SASL_SSL"
        assert settings.kafka.username == "admin"
        assert settings.kafka.password == files.admin_password()
        assert settings.kafka.ssl_cafile == files.tls.ca_cert


def test_old_state_files_read_as_plaintext() -> None:
    state = ClusterState.from_json(
        '{"cluster_id": "x", "version": "4.1.1", "host": "127.0.0.1", "base_port": 9092, "heap": "512m",'
        ' "java": "java", "libs": "/l", "brokers": [], "formatted": true}'
    )
    assert state.secure is False
