"""Finding the Kafka jars and a Java to run them: a ``KAFKA_HOME``, or a one-time Maven fetch into the cache.

The fetch (:func:`maven_fetch`, also the conformance suite's way to Apache Avro's Java jars) runs
``mvn dependency:copy-dependencies`` on ``bus389/localkafka/pom.xml`` into
``<cache_dir>/kafka-<version>/libs`` and writes a marker file only when it completed, so an
interrupted fetch is redone and a complete one is reused without touching the network.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from bus389.errors import LocalKafkaError
from bus389.settings import PACKAGE_DIR

__all__ = [
    "MIN_JAVA",
    "POM_PATH",
    "LOG4J2_CONFIG",
    "KafkaJars",
    "classpath",
    "ensure_jars",
    "find_java",
    "maven_fetch",
    "parse_java_major",
]

MIN_JAVA = 17
POM_PATH = PACKAGE_DIR / "localkafka" / "pom.xml"
LOG4J2_CONFIG = PACKAGE_DIR / "localkafka" / "log4j2.yaml"
_MARKER = ".bus389-fetch-complete"
_MVN_TIMEOUT_S = 900


@dataclass(frozen=True)
class KafkaJars:
    """A directory of Kafka jars and where it came from (``KAFKA_HOME …`` or ``cache …``)."""

    libs: Path
    origin: str


def parse_java_major(version_output: str) -> int | None:
    """The major version in ``java -version`` output (``"17.0.15"`` → 17, ``"1.8.0_392"`` → 8)."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if match is None:
        return None
    major = int(match.group(1))
    if major == 1 and match.group(2) is not None:
        return int(match.group(2))
    return major


def find_java() -> str:
    """The ``java`` on PATH, checked to be Java 17 or newer."""
    java = shutil.which("java")
    if java is None:
        raise LocalKafkaError(f"java not found on PATH: Kafka needs Java {MIN_JAVA} or newer")
    try:
        result = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LocalKafkaError(f"cannot run {java} -version: {exc}") from exc
    output = result.stderr + result.stdout
    major = parse_java_major(output)
    if major is None:
        raise LocalKafkaError(f"cannot tell the Java version from `{java} -version`: {output.strip()!r}")
    if major < MIN_JAVA:
        raise LocalKafkaError(f"{java} is Java {major}; Kafka needs Java {MIN_JAVA} or newer")
    return java


def _check_libs(libs: Path, origin: str) -> KafkaJars:
    if not libs.is_dir() or not any(libs.glob("kafka_2.13-*.jar")):
        raise LocalKafkaError(f"{origin}: no kafka_2.13-*.jar in {libs}")
    return KafkaJars(libs, origin)


def ensure_jars(
    *,
    version: str,
    cache_dir: Path,
    kafka_home: Path | None = None,
    echo: Callable[[str], None] = lambda _: None,
) -> KafkaJars:
    """The Kafka jars: ``kafka_home/libs`` if given, else the cache, fetched with Maven if missing."""
    if kafka_home is not None:
        return _check_libs(kafka_home / "libs", f"KAFKA_HOME {kafka_home}")
    home = cache_dir / f"kafka-{version}"
    libs = maven_fetch(
        POM_PATH,
        home,
        f"Kafka {version}",
        properties={"kafka.version": version},
        echo=echo,
        hint="install Maven, or set KAFKA_HOME to a Kafka distribution",
    )
    return _check_libs(libs, f"cache {home}")


def maven_fetch(
    pom: Path,
    home: Path,
    what: str,
    *,
    properties: Mapping[str, str] | None = None,
    echo: Callable[[str], None] = lambda _: None,
    hint: str = "install Maven",
) -> Path:
    """``home/libs``: the dependencies of ``pom``, copied there by Maven the first time only.

    ``mvn dependency:copy-dependencies`` writes into ``home/libs.partial``, which replaces ``libs``
    once it completed; a marker file then says so, and later calls return at once without the
    network. An interrupted fetch leaves no marker and is redone. :class:`LocalKafkaError` when
    Maven is missing or fails (its last lines in the message).
    """
    libs = home / "libs"
    if (home / _MARKER).is_file():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise LocalKafkaError(
            f"{what} is not in the cache ({home}) and mvn is not on PATH to fetch it: {hint}"
        )
    if not pom.is_file():
        raise LocalKafkaError(f"missing {pom}: cannot fetch {what} without it")
    echo(f"fetching {what} from Maven Central into {home} (once)")
    partial = home / "libs.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    command = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={partial}",
    ]
    command += [f"-D{name}={value}" for name, value in (properties or {}).items()]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=_MVN_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LocalKafkaError(f"mvn failed to fetch {what}: {exc}") from exc
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-20:])
        raise LocalKafkaError(f"mvn failed to fetch {what} (exit {result.returncode}):\n{tail}")
    shutil.rmtree(libs, ignore_errors=True)
    partial.rename(libs)
    (home / _MARKER).write_text(f"{what}\n", encoding="utf-8")
    return libs


def classpath(jars: KafkaJars) -> str:
    """Every jar of the directory, sorted (so a run is reproducible), joined for ``java -cp``."""
    return ":".join(str(p) for p in sorted(jars.libs.glob("*.jar")))
