"""`bus389 web user|token`: passwords read from a private file, asked, or generated into one; clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from bus389.cli.main import cli
from bus389.web.store import WebStore
from bus389.web.tokens import TokenRegistry
from bus389.web.users import UserDirectory

PASSWORD = "một mật khẩu đủ dài 2026"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"BUS389_WEB__USERS_DB": str(tmp_path / "web.sqlite3")}


def test_a_generated_password_goes_to_a_private_file_and_is_not_printed(
    tmp_path: Path, env: dict[str, str]
) -> None:
    out = tmp_path / "thu.pw"
    result = CliRunner().invoke(
        cli,
        ["web", "user", "add", "thu.tax", "--agency", "tax", "--roles", "clerk", "--password-out", str(out)],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert out.stat().st_mode & 0o777 == 0o600
    password = out.read_text().strip()
    assert password not in result.output
    with WebStore(tmp_path / "web.sqlite3") as store:
        assert UserDirectory(store).authenticate("thu.tax", password).outcome == "ok"


def test_a_password_file_others_can_read_is_refused(tmp_path: Path, env: dict[str, str]) -> None:
    given = tmp_path / "given.pw"
    given.write_text(PASSWORD)
    given.chmod(0o644)
    args = [
        "web",
        "user",
        "add",
        "thu.tax",
        "--agency",
        "tax",
        "--roles",
        "clerk",
        "--password-file",
        str(given),
    ]
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 1
    assert "readable by its owner only" in result.output
    given.chmod(0o600)
    assert CliRunner().invoke(cli, args, env=env).exit_code == 0
    passwd = CliRunner().invoke(
        cli, ["web", "user", "passwd", "thu.tax", "--password-file", str(given)], env=env
    )
    assert passwd.exit_code == 0, passwd.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--agency", "thue", "--roles", "clerk"], "unknown agency 'thue'"),
        (["--agency", "tax", "--roles", "sep"], "unknown role 'sep'"),
    ],
)
def test_bad_arguments_are_named(env: dict[str, str], args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["web", "user", "add", "thu.tax", *args], env=env)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_disable_and_tokens(tmp_path: Path, env: dict[str, str]) -> None:
    runner = CliRunner()
    pw = tmp_path / "a.pw"
    assert (
        runner.invoke(
            cli,
            ["web", "user", "add", "a.b", "--agency", "ict", "--roles", "viewer", "--password-out", str(pw)],
            env=env,
        ).exit_code
        == 0
    )
    assert runner.invoke(cli, ["web", "user", "disable", "a.b"], env=env).exit_code == 0
    missing = runner.invoke(cli, ["web", "user", "disable", "khong.co"], env=env)
    assert (missing.exit_code, "no user 'khong.co'" in missing.output) == (1, True)
    out = tmp_path / "police.token"
    added = runner.invoke(cli, ["web", "token", "add", "police", "--name", "hs", "--out", str(out)], env=env)
    assert added.exit_code == 0, added.output
    token = out.read_text().strip()
    assert token not in added.output
    token_id = added.output.split()[1]
    listed = runner.invoke(cli, ["web", "token", "list"], env=env)
    assert token_id in listed.output and token not in listed.output
    assert runner.invoke(cli, ["web", "token", "revoke", token_id], env=env).exit_code == 0
    with WebStore(tmp_path / "web.sqlite3") as store:
        found = TokenRegistry(store).verify(token)
        assert found is not None and found.revoked
        assert UserDirectory(store).authenticate("a.b", pw.read_text().strip()).outcome == "disabled"
