"""Where a secret file may be written: never into a git work tree unless git ignores the path.

A credentials file written into a checkout is one ``git add .`` away from the repository's history.
:func:`check_secret_path` asks git itself (``git check-ignore``), so every ignore rule counts: the
repository's ``.gitignore``, ``.git/info/exclude`` and the user's global excludes. Credentials belong
outside any repository, by default in :data:`CREDENTIALS_HOME` (mode 0700, files 0600).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from bus389.errors import ConfigError

__all__ = ["CREDENTIALS_HOME", "check_secret_path"]

CREDENTIALS_HOME = Path("~/.config/bus389")
"""Where the README and the errors tell users to keep credentials files (outside any repository)."""


def _existing_ancestor(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.is_dir():
            return candidate
    return Path("/")


def _work_tree(directory: Path) -> Path | None:
    """The git work tree holding ``directory``, or None (also when no ``git`` is installed and no
    ``.git`` is found above it)."""
    git = shutil.which("git")
    if git is None:
        found = next((d for d in (directory, *directory.parents) if (d / ".git").exists()), None)
        return found
    result = subprocess.run(
        [git, "-C", str(directory), "rev-parse", "--show-toplevel"],
        capture_output=True,
        text=True,
        check=False,
    )
    return Path(result.stdout.strip()) if result.returncode == 0 and result.stdout.strip() else None


def check_secret_path(path: Path, what: str = "credentials") -> None:
    """Raise :class:`ConfigError` (one line) when ``path`` is inside a git work tree and git does not
    ignore it; return quietly otherwise."""
    target = path.expanduser().absolute()
    tree = _work_tree(_existing_ancestor(target.parent))
    if tree is None:
        return
    git = shutil.which("git")
    ignored = (
        git is not None
        and subprocess.run(
            [git, "-C", str(tree), "check-ignore", "-q", "--no-index", str(target)],
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )
    if not ignored:
        raise ConfigError(
            f"refusing to write {what} to {path}: it is inside the git work tree {tree} and git does not "
            f"ignore it; keep {what} outside any repository, e.g. {CREDENTIALS_HOME / path.name} "
            "(mode 0600)"
        )
