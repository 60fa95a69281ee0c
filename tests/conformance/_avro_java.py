"""Apache Avro's Java implementation for the conformance suite: its jars (fetched once) and its verdicts.

The jars come from Maven Central with ``mvn dependency:copy-dependencies`` on ``java/pom.xml`` into
``<cache_dir>/avro-<version>/libs`` (the cache of the local Kafka's jars), by the same fetch as Kafka's
(:func:`bus389.localkafka.fetch.maven_fetch`: a marker written only when the copy completed). The
harness ``java/AvroVerdicts.java`` runs as a single-file program: no build step.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

from bus389.errors import LocalKafkaError
from bus389.localkafka.fetch import find_java, maven_fetch

JAVA_DIR = Path(__file__).resolve().parent / "java"
POM = JAVA_DIR / "pom.xml"
HARNESS = JAVA_DIR / "AvroVerdicts.java"
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
    """The directory of Avro's jars, fetched with Maven on first use (:func:`maven_fetch`)."""
    version = avro_version()
    try:
        libs = maven_fetch(POM, cache_dir / f"avro-{version}", f"Avro {version}")
    except LocalKafkaError as exc:
        raise AvroJavaError(str(exc)) from exc
    if not any(libs.glob(f"avro-{version}.jar")):
        raise AvroJavaError(f"mvn fetched no avro-{version}.jar into {libs}")
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
