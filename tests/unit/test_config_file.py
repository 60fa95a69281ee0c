"""``bus389 --config FILE``: BUS389_* settings from a .env-style file, validated, secrets kept secret."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from bus389.cli.main import cli
from bus389.config_file import load_config_values, load_settings, render_config, write_private_file
from bus389.errors import ConfigError

PASSWORD = "s3cr3t-Pa55word-for-tests-only-0123456789"


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text, encoding="utf-8")
    os.chmod(path, mode)
    return path


def agency_file(tmp_path: Path, **extra: str) -> Path:
    lines = [
        "# the tax office's credentials",
        "",
        'BUS389_BOOTSTRAP="127.0.0.1:39092"',
        "export BUS389_TOPIC_PREFIX=t_cfg  # a comment after a value",
        "BUS389_KAFKA__SECURITY_PROTOCOL=SASL_SSL",
        "BUS389_KAFKA__SASL_MECHANISM='SCRAM-SHA-512'",
        "BUS389_KAFKA__USERNAME=tax",
        f'BUS389_KAFKA__PASSWORD="{PASSWORD}"',
        "BUS389_KAFKA__SSL_CAFILE=/tmp/ca.pem",
        'BUS389_ICT__NEVER_BLOCK=["gov.vn", "shopee.vn"]',
        *(f"{k}={v}" for k, v in extra.items()),
    ]
    return write(tmp_path / "tax.env", "\n".join(lines) + "\n")


def test_a_config_file_fills_the_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUS389_KAFKA__PARTITIONS", "5")
    settings = load_settings(agency_file(tmp_path))
    assert settings.bootstrap == "127.0.0.1:39092"
    assert settings.topic_prefix == "t_cfg"
    assert settings.kafka.security_protocol == "SASL_SSL"
    assert settings.kafka.sasl_mechanism == "SCRAM-SHA-512"
    assert settings.kafka.username == "tax"
    assert settings.kafka.password == SecretStr(PASSWORD)
    assert settings.kafka.ssl_cafile == Path("/tmp/ca.pem")
    assert settings.ict.never_block == ("gov.vn", "shopee.vn")
    assert settings.kafka.partitions == 5  # the environment still fills what the file does not set


def test_the_file_wins_over_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUS389_BOOTSTRAP", "127.0.0.1:9092")
    monkeypatch.setenv("BUS389_KAFKA__USERNAME", "police")
    settings = load_settings(agency_file(tmp_path))
    assert settings.bootstrap == "127.0.0.1:39092"
    assert settings.kafka.username == "tax"


def test_the_password_never_shows(tmp_path: Path) -> None:
    settings = load_settings(agency_file(tmp_path))
    shown = repr(settings) + str(settings) + repr(settings.kafka) + str(settings.model_dump())
    assert PASSWORD not in shown


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("BUS389_BOOTSTRAPP=x", "unknown setting BUS389_BOOTSTRAPP"),
        ("BUS389_KAFKA__PASWORD=x", "unknown setting BUS389_KAFKA__PASWORD"),
        ("BUS389_KAFKA=x", "is a group"),
        ("BUS389_KAFKA__USERNAME__X=x", "unknown setting"),
        ("HOME=/root", "not a bus389 setting"),
        ("just some words", "expected NAME=VALUE"),
        ("BUS389_KAFKA__USERNAME=police", "already set on line 7"),
    ],
)
def test_a_bad_line_is_named(tmp_path: Path, line: str, message: str) -> None:
    path = write(tmp_path / "bad.env", agency_file(tmp_path).read_text() + line + "\n")
    with pytest.raises(ConfigError) as caught:
        load_config_values(path)
    assert message in str(caught.value)
    assert f"{path}:11" in str(caught.value)


def test_an_invalid_value_is_named_without_echoing_it(tmp_path: Path) -> None:
    secret_like = "SASL_SSL-but-with-" + PASSWORD
    path = write(tmp_path / "bad.env", f"BUS389_KAFKA__SECURITY_PROTOCOL={secret_like}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert "BUS389_KAFKA__SECURITY_PROTOCOL" in str(caught.value)
    assert PASSWORD not in str(caught.value)
    assert caught.value.exit_code == 2


def test_a_readable_file_with_a_password_is_refused(tmp_path: Path) -> None:
    path = agency_file(tmp_path)
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_config_values(path)
    harmless = write(tmp_path / "plain.env", "BUS389_BOOTSTRAP=127.0.0.1:9092\n", mode=0o644)
    assert load_config_values(harmless) == {"bootstrap": "127.0.0.1:9092"}


def test_render_writes_what_load_reads(tmp_path: Path) -> None:
    text = render_config(
        {
            "BUS389_BOOTSTRAP": "127.0.0.1:39092",
            "BUS389_KAFKA__PASSWORD": SecretStr(PASSWORD),
            "BUS389_KAFKA__SSL_CAFILE": Path("/x/ca.pem"),
            "BUS389_KAFKA__USERNAME": None,
        },
        header="line one\nline two",
    )
    assert text.startswith("# line one\n# line two\n")
    path = tmp_path / "out.env"
    write_private_file(path, text)
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_config_values(path) == {
        "bootstrap": "127.0.0.1:39092",
        "kafka": {"password": PASSWORD, "ssl_cafile": "/x/ca.pem"},
    }
    with pytest.raises(ConfigError):
        render_config({"BUS389_KAFKA__PASSWORD": 'a"b'})


def test_write_private_file_replaces_and_never_widens(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("old")
    os.chmod(path, 0o644)
    write_private_file(path, "new")
    assert path.read_text() == "new"
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret"]


def test_the_root_option_and_env_var(tmp_path: Path) -> None:
    path = agency_file(tmp_path)
    runner = CliRunner()
    by_option = runner.invoke(cli, ["--config", str(path), "security", "show"])
    assert by_option.exit_code == 0, by_option.output
    assert "ACLs under prefix t_cfg" in by_option.output
    by_env = runner.invoke(cli, ["security", "show"], env={"BUS389_CONFIG": str(path)})
    assert by_env.exit_code == 0 and "ACLs under prefix t_cfg" in by_env.output
    assert PASSWORD not in by_option.output + by_env.output


def test_a_bad_config_file_exits_2_with_a_message(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.env", f"BUS389_KAFKA__PASWORD={PASSWORD}\n")
    result = CliRunner().invoke(cli, ["--config", str(path), "security", "show"])
    assert result.exit_code == 2
    assert "unknown setting BUS389_KAFKA__PASWORD" in result.output
    assert PASSWORD not in result.output
    assert "Traceback" not in result.output
    missing = CliRunner().invoke(cli, ["--config", str(tmp_path / "nope.env"), "security", "show"])
    assert missing.exit_code == 2 and "does not exist" in missing.output
