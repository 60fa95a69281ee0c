"""``bus389 serve``: every long-running service is a subcommand of it, and ``bus389 route`` stays the
router's other name, with the same options, help, output and exit codes."""

from __future__ import annotations

from pathlib import Path

import click
from click.testing import CliRunner

from bus389.cli.main import cli
from bus389.cli.serve_cmd import route, serve, serve_router


def _options(command: click.Command) -> list[tuple[str, ...]]:
    return [tuple(p.opts) for p in command.params]


def test_serve_runs_every_service() -> None:
    assert sorted(serve.commands) == ["ict", "router", "standing-office", "web"]
    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0
    for name in ("router", "ict", "standing-office", "web"):
        assert f"bus389 serve {name}" in result.output


def test_route_is_serve_router_under_its_old_name() -> None:
    assert route.callback is serve_router.callback
    assert (
        _options(route)
        == _options(serve_router)
        == [("--policy",), ("--metrics-port",), ("--max-idle-polls",)]
    )
    runner = CliRunner()
    old = runner.invoke(cli, ["route", "--help"], prog_name="bus389")
    new = runner.invoke(cli, ["serve", "router", "--help"], prog_name="bus389")
    assert old.exit_code == new.exit_code == 0
    assert old.output.replace("bus389 route [OPTIONS]", "bus389 serve router [OPTIONS]", 1) == new.output
    assert "alias of `bus389 serve router`" in runner.invoke(cli, ["--help"]).output


def test_both_names_refuse_a_missing_policy_the_same_way(tmp_path: Path) -> None:
    missing = str(tmp_path / "policy.yaml")
    runner = CliRunner()
    old = runner.invoke(cli, ["route", "--policy", missing])
    new = runner.invoke(cli, ["serve", "router", "--policy", missing])
    assert old.exit_code == new.exit_code != 0
    assert old.output == new.output
    assert f"cannot read the routing policy {missing}" in old.output
    assert "Traceback" not in old.output
