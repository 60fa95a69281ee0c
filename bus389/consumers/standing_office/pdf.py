"""The report's PDF: the .docx of :mod:`.document` converted by LibreOffice headless, not a second layout.

``soffice --headless --convert-to pdf`` (Debian: ``libreoffice-writer-nogui``) runs in a private
temporary directory (mode 0700) with its own throw-away user profile, so that two conversions at once
do not share LibreOffice's profile lock and nothing of the document stays behind. The PDF is read back
whole; the caller writes it atomically. A missing ``soffice``, a failure, a time-out or no PDF is a
:class:`~bus389.errors.DocumentError` saying which.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from bus389.errors import DocumentError

__all__ = ["CONVERTER", "docx_to_pdf"]

CONVERTER = "soffice"
_TIMEOUT_S = 180.0


def docx_to_pdf(docx: bytes, *, converter: str = CONVERTER, timeout_s: float = _TIMEOUT_S) -> bytes:
    """The PDF of the .docx ``docx``; DocumentError when the converter is missing or fails."""
    program = shutil.which(converter)
    if program is None:
        raise DocumentError(
            f"cannot make the PDF: {converter!r} (LibreOffice) is not installed; install the Debian "
            "package libreoffice-writer-nogui (deploy/install-system-packages.sh) or use --format docx"
        )
    with tempfile.TemporaryDirectory(prefix="bus389-pdf-") as work:  # mode 0700: private
        root = Path(work)
        source = root / "bao-cao.docx"
        source.write_bytes(docx)
        command = [
            program,
            f"-env:UserInstallation={(root / 'profile').as_uri()}",
            "--headless",
            "--norestore",
            "--nolockcheck",
            "--convert-to",
            "pdf",
            "--outdir",
            str(root / "out"),
            str(source),
        ]
        try:
            done = subprocess.run(  # noqa: S603 (a fixed program and our own paths)
                command, capture_output=True, timeout=timeout_s, check=False, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired as exc:
            raise DocumentError(
                f"cannot make the PDF: {converter} did not finish in {timeout_s:.0f} s"
            ) from exc
        except OSError as exc:
            raise DocumentError(f"cannot make the PDF: {converter} could not run ({exc.strerror})") from exc
        result = root / "out" / "bao-cao.pdf"
        if done.returncode != 0 or not result.is_file() or result.stat().st_size == 0:
            detail = (done.stderr or done.stdout).decode("utf-8", errors="replace").strip().splitlines()
            last = detail[-1][:200] if detail else "no output"
            raise DocumentError(
                f"cannot make the PDF: {converter} exited {done.returncode} without a PDF ({last})"
            )
        pdf = result.read_bytes()
    if not pdf.startswith(b"%PDF-"):
        raise DocumentError(f"cannot make the PDF: {converter} wrote something that is not a PDF")
    return pdf
