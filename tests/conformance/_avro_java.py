"""Apache Avro's Java implementation for the conformance suite: its jars (fetched once) and its verdicts.

The jars come from Maven Central with ``mvn dependency:copy-dependencies`` on ``java/pom.xml`` into
``<cache_dir>/avro-<version>/libs`` (the cache of the local Kafka's jars), with a marker written only when
the copy completed — the same scheme as :mod:`bus389.localkafka.fetch`, which is Kafka's alone. The
harness ``java/AvroVerdicts.java`` runs as a single-file program: no build step.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from bus389.localkafka.fetch import find_java

JAVA_DIR = Path(__file__).resolve().parent / "java"
POM = JAVA_DIR / "pom.xml"
HARNESS = JAVA_DIR / "AvroVerdicts.java"
_MARKER = ".bus389-fetch-complete"
_MVN_TIMEOUT_S = 900
_JAVA_TIMEOUT_S = 600


class AvroJavaError(RuntimeError):
    """The Java reference could not be fetched or run."""


def avro_version() -> str:
    """The Avro version the pom pins (one place to change it)."""
    match = re.search(r"<avro\.version>([^<]+)</avro\.version>", POM.read_text(encoding="utf-8"))
    if match is None:
        raise AvroJavaError(f"{POM}: no <avro.version>")
    return match.group(1)


def ensure_jars(cache_dir: Path) -> Path:
    """The directory of Avro's jars, fetched with Maven on first use."""
    version = avro_version()
    home = cache_dir / f"avro-{version}"
    libs = home / "libs"
    if (home / _MARKER).is_file() and any(libs.glob(f"avro-{version}.jar")):
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise AvroJavaError(f"Avro {version} is not in the cache ({home}) and mvn is not on PATH to fetch it")
    partial = home / "libs.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    command = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(POM),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={partial}",
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=_MVN_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AvroJavaError(f"mvn failed to fetch Avro {version}: {exc}") from exc
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-20:])
        raise AvroJavaError(f"mvn failed to fetch Avro {version} (exit {result.returncode}):\n{tail}")
    shutil.rmtree(libs, ignore_errors=True)
    partial.rename(libs)
    if not any(libs.glob(f"avro-{version}.jar")):
        raise AvroJavaError(f"mvn fetched no avro-{version}.jar into {libs}")
    (home / _MARKER).write_text(f"avro {version}\n", encoding="utf-8")
    return libs


def verdicts(cases_dir: Path, libs: Path) -> dict[str, dict[str, Any]]:
    """Java's verdict on every case folder of ``cases_dir`` (``old.avsc``, ``new.avsc``), by case name."""
    java = find_java()
    classpath = ":".join(str(p) for p in sorted(libs.glob("*.jar")))
    command = [java, "-cp", classpath, str(HARNESS), str(cases_dir)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=_JAVA_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AvroJavaError(f"the Java harness did not run: {exc}") from exc
    if result.returncode != 0:
        raise AvroJavaError(f"the Java harness failed (exit {result.returncode}): {result.stderr.strip()}")
    found: dict[str, dict[str, Any]] = {}
    for line in result.stdout.splitlines():
        verdict = json.loads(line)
        found[verdict["case"]] = verdict
    return found
