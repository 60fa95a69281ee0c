"""`bus389 security show|issue|apply` without a broker: the matrix, the spec, the refusals."""

from __future__ import annotations

import os
from pathlib import Path

from click.testing import CliRunner

from bus389.agencies import Agency
from bus389.cli.main import cli

SPEC_PATH = Path(__file__).resolve().parents[2] / "deploy" / "security" / "acl-spec.yaml"


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env={"BUS389_TOPIC_PREFIX": "bus389", **(env or {})})
    return result.exit_code, result.output


def test_show_yaml_is_the_deploy_spec() -> None:
    code, output = run("security", "show", "--format", "yaml")
    assert code == 0
    assert output == SPEC_PATH.read_text(encoding="utf-8")


def test_show_table_is_the_matrix() -> None:
    code, output = run("security", "show")
    assert code == 0
    lines = output.splitlines()
    header = lines[1].split()
    assert header[0] == "topic" and header[-1] == "router" and "market_surveillance" in header
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:24]}
    assert len(rows) == 2 * len(Agency) + 2  # an outbox and an inbox each, the DLQ and the audit
    tax = header.index("tax") - 1
    router = header.index("router") - 1
    assert rows["outbox.tax"][tax] == "RW" and rows["outbox.tax"][router] == "R"
    assert rows["inbox.tax"][tax] == "R" and rows["inbox.tax"][router] == "W"
    assert rows["inbox.police"][tax] == "-"
    assert rows["dlq"] == ["-"] * len(Agency) + ["W"]
    assert rows["audit"] == ["-"] * len(Agency) + ["RW"]
    assert "  tax: groups bus389.tax.*; transactional ids bus389.tax.*; cluster IDEMPOTENT_WRITE" in lines


def test_issue_refuses_an_unknown_principal() -> None:
    code, output = run("security", "issue", "mayor", "--out", "/tmp/never-written.env")
    assert code == 2
    assert "cannot issue credentials for 'mayor'" in output
    assert not Path("/tmp/never-written.env").exists()


def test_issue_refuses_non_admin_settings(tmp_path: Path) -> None:
    out = tmp_path / "tax.env"
    code, output = run(
        "security", "issue", "tax", "--out", str(out), env={"BUS389_KAFKA__SECURITY_PROTOCOL": "PLAINTEXT"}
    )
    assert code == 2
    assert "runs as the admin over SASL_SSL" in output
    assert not out.exists()
    assert os.listdir(tmp_path) == []


def test_every_security_command_has_an_example() -> None:
    for command in ("apply", "show", "issue"):
        code, output = run("security", command, "--help")
        assert code == 0 and "Example:" in output, command
    code, output = run("--help")
    assert "--config" in output and "BUS389_CONFIG" in output
    code, output = run("kafka", "up", "--help")
    assert "--secure" in output
