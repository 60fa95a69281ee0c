"""Run a Markdown document's shell blocks in order, as a reader types them, with Sybil.

Why Sybil rather than prysk: the README stays a README (prysk needs ``.t`` transcripts beside it, a
second copy to keep in step), Sybil parses the Markdown the reader sees and runs its regions in
document order, and its regions are plain Python, so the two directives below are a few lines each.

What a document says to the runner (HTML comments, invisible on GitHub):

- ```` ```sh ```` / ```` ```bash ```` blocks run, each as one ``bash -e`` script in the work folder; what
  a block exports (``. .venv/bin/activate``, ``export X=…``) and where it ``cd``s carry over to the next
  block, as in the reader's terminal. A block fails the test when it exits non-zero.
- ``<!-- not run: REASON -->`` just before a block: the block is not run; REASON says why (a
  long-running service, Docker, a command that takes minutes). A reason is required.
- ``<!-- expect: TEXT -->`` after a block: TEXT must appear in that block's output (stdout + stderr).

Adding a command to a document needs nothing here: a new block runs as it is.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sybil import Document, Example, Region, Sybil
from sybil.parsers.markdown import CodeBlockParser

NOT_RUN = re.compile(r"<!--\s*not run:\s*(?P<reason>.*?)\s*-->", re.DOTALL)
EXPECT = re.compile(r"<!--\s*expect:\s*(?P<text>.*?)\s*-->", re.DOTALL)
_STATE = ".doc-runner-state"
"""The exported variables and folder a block leaves, for the next one (in the work folder)."""


@dataclass
class Ran:
    """One block, as the runner met it."""

    doc: str
    line: int
    source: str
    skipped: str | None = None
    output: str = ""
    seconds: float = 0.0


@dataclass
class DocRunner:
    """Runs the blocks of documents in ``work`` with ``env`` (HOME, PATH, ports), recording each."""

    work: Path
    env: dict[str, str]
    timeout_s: float = 180.0
    ran: list[Ran] = field(default_factory=list)

    def sybil(self) -> Sybil:
        blocks = [CodeBlockParser(language, self._run_block) for language in ("sh", "bash")]
        return Sybil(parsers=[*blocks, self._directives])

    def run_document(self, path: Path) -> None:
        document = self.sybil().parse(path)
        document.namespace["runner_doc"] = str(path.relative_to(self.work))
        for example in document:
            example.evaluate()

    def _directives(self, document: Document) -> Iterator[Region]:
        for match in NOT_RUN.finditer(document.text):
            yield Region(match.start(), match.end(), match.group("reason"), self._not_run)
        for match in EXPECT.finditer(document.text):
            yield Region(match.start(), match.end(), match.group("text"), self._expect)

    @staticmethod
    def _not_run(example: Example) -> None:
        reason = str(example.parsed).strip()
        if not reason:
            raise AssertionError(f"line {example.line}: `not run` needs a reason")
        example.namespace["runner_skip"] = reason

    @staticmethod
    def _expect(example: Example) -> None:
        last: Ran | None = example.namespace.get("runner_last")
        where = f"{example.namespace.get('runner_doc')}:{example.line}"
        if last is None or last.skipped is not None:
            raise AssertionError(f"{where}: `expect` follows no block that ran")
        text = str(example.parsed)
        if text not in last.output:
            raise AssertionError(
                f"{where}: the block at line {last.line} did not print {text!r}; it printed:\n{last.output}"
            )

    def _run_block(self, example: Example) -> None:
        import time

        doc = str(example.namespace.get("runner_doc"))
        ran = Ran(doc=doc, line=example.line, source=str(example.parsed))
        example.namespace["runner_last"] = ran
        self.ran.append(ran)
        skip = example.namespace.pop("runner_skip", None)
        if skip is not None:
            ran.skipped = skip
            return
        script = _script(self.work, ran.source)
        started = time.monotonic()
        try:
            done = subprocess.run(
                ["bash", "-c", script],
                cwd=self.work,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=self.timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(
                f"{doc}:{ran.line}: the block ran past {self.timeout_s:.0f}s:\n{ran.source}"
            ) from exc
        ran.seconds = time.monotonic() - started
        ran.output = done.stdout + done.stderr
        if done.returncode != 0:
            raise AssertionError(
                f"{doc}:{ran.line}: the block exited {done.returncode}:\n{ran.source}\n--- output:\n"
                f"{ran.output}"
            )


def _script(work: Path, source: str) -> str:
    """The block, between restoring and saving what the reader's shell would keep."""
    state = work / _STATE
    return (
        f'if [ -f "{state}.env" ]; then . "{state}.env"; cd "$(cat "{state}.cwd")"; fi\n'
        f'trap \'export -p > "{state}.env"; pwd > "{state}.cwd"\' EXIT\n'
        "set -e\n"
        f"{source}\n"
    )


def summary(ran: list[Ran]) -> str:
    lines = []
    for r in ran:
        what = f"not run ({r.skipped})" if r.skipped else f"ran in {r.seconds:.1f}s"
        lines.append(f"{r.doc}:{r.line}: {what}")
    return "\n".join(lines)
