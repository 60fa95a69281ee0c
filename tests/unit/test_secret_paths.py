"""Credentials never land in a repository: ``check_secret_path`` and ``security issue --out`` against
real git work trees (git itself answers what is ignored)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from bus389.cli.main import cli
from bus389.errors import ConfigError
from bus389.security.secret_paths import check_secret_path

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def work_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "checkout"
    tree.mkdir()
    subprocess.run(["git", "init", "-q", str(tree)], check=True)
    (tree / ".gitignore").write_text("*.env\nsecrets/\n", encoding="utf-8")
    return tree


def test_a_path_in_a_work_tree_that_git_does_not_ignore_is_refused(work_tree: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        check_secret_path(work_tree / "tax.conf")
    message = str(caught.value)
    assert "\n" not in message
    assert f"inside the git work tree {work_tree}" in message
    assert "~/.config/bus389/tax.conf" in message


def test_a_path_in_a_new_subfolder_of_a_work_tree_is_refused(work_tree: Path) -> None:
    with pytest.raises(ConfigError, match="inside the git work tree"):
        check_secret_path(work_tree / "deploy" / "new" / "tax.conf")


@pytest.mark.parametrize("name", ["tax.env", "secrets/tax.conf"])
def test_an_ignored_path_in_a_work_tree_is_allowed(work_tree: Path, name: str) -> None:
    check_secret_path(work_tree / name)


def test_a_path_outside_any_work_tree_is_allowed(tmp_path: Path) -> None:
    check_secret_path(tmp_path / "elsewhere" / "tax.env")


@pytest.mark.parametrize(
    "name", ["tax.env", "admin.env", "ca.pem", "client.key", "credentials/tax.conf", "secrets/x"]
)
def test_the_repository_ignores_the_conventional_credential_names(name: str) -> None:
    ignored = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "check-ignore", "-q", "--no-index", name], check=False
    )
    assert ignored.returncode == 0, f"{name} is not covered by .gitignore"


def test_security_issue_refuses_out_in_the_work_tree_before_touching_the_cluster(work_tree: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["security", "issue", "tax", "--out", str(work_tree / "tax.txt")],
        env={"BUS389_BOOTSTRAP": "127.0.0.1:1"},  # no cluster is asked
    )
    assert result.exit_code != 0
    assert "refusing to write credentials" in result.output
    assert "Traceback" not in result.output
    assert not (work_tree / "tax.txt").exists()
    assert sorted(p.name for p in work_tree.iterdir()) == [".git", ".gitignore"]
