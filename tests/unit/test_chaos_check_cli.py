"""``bus389 chaos check`` after a run that stopped its cluster: one clear line at once, not a long wait."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from click.testing import CliRunner

from bus389.chaos.history import RunInfo
from bus389.cli.main import cli


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_check_says_the_runs_cluster_is_gone(tmp_path: Path) -> None:
    bootstrap = f"127.0.0.1:{_closed_port()}"
    info = RunInfo(bootstrap=bootstrap, topic_prefix="chaos_x", policy_path="p.yaml", seed=1)
    history = tmp_path / "history.jsonl"
    history.write_text(json.dumps(info.to_json()) + "\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["chaos", "check", "--history", str(history)])
    assert result.exit_code == 3, result.output
    assert f"the run's cluster at {bootstrap} does not answer" in result.output
    assert "--keep-cluster" in result.output
    assert "Traceback" not in result.output
