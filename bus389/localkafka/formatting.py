"""Formatting a local cluster's storage: plan it, write each broker's ``server.properties``, and run
Kafka's ``StorageTool format`` on every node at once (KRaft: a standalone or an initial controller set).

A secure cluster's passwords never appear in ``ps``: the properties are 0600 files and the SCRAM
arguments go in a java ``@argfile`` deleted after use; a failing tool's output is shown with them masked.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from bus389.config_file import write_private_file
from bus389.errors import LocalKafkaError
from bus389.localkafka.config import NodeLayout, plan_cluster, render_properties, server_properties
from bus389.localkafka.fetch import KafkaJars, classpath
from bus389.localkafka.processes import TAIL_LINES, check_ports, logging_flags
from bus389.localkafka.state import BrokerState, ClusterState, random_kafka_uuid, save_state
from bus389.logs import mask_secrets
from bus389.security.localbroker import (
    SecureFiles,
    prepare_secure_files,
    scram_format_args,
    secure_properties,
    write_admin_config,
)
from bus389.settings import Settings

__all__ = ["argfile_text", "format_cluster"]


def format_cluster(
    settings: Settings,
    *,
    data_dir: Path,
    brokers: int,
    base_port: int,
    heap: str,
    java: str,
    jars: KafkaJars,
    secure: bool = False,
    echo: Callable[[str], None] = lambda _: None,
) -> ClusterState:
    """Format a new ``brokers``-node cluster in ``data_dir``; returns its state, saved as formatted."""
    layout = plan_cluster(
        brokers=brokers,
        host=settings.local.host,
        base_port=base_port,
        data_dir=data_dir,
        secure=secure,
    )
    check_ports(layout, [n.node_id for n in layout.nodes])
    files: SecureFiles | None = None
    if secure:
        files = prepare_secure_files(data_dir)
        layout = replace(layout, extra_properties={**layout.extra_properties, **secure_properties(files)})
    state = ClusterState(
        cluster_id=random_kafka_uuid(),
        version=settings.local.version,
        host=settings.local.host,
        base_port=base_port,
        heap=heap,
        java=java,
        libs=str(jars.libs),
        brokers=[
            BrokerState(
                node_id=n.node_id,
                port=n.broker_port,
                controller_port=n.controller_port,
                directory=str(n.directory),
                directory_id=random_kafka_uuid(),
            )
            for n in layout.nodes
        ],
        secure=secure,
    )
    echo(f"formatting a {brokers}-broker KRaft cluster {state.cluster_id} in {data_dir}")
    if brokers == 1:
        quorum = ["--standalone"]
    else:
        controllers = ",".join(
            f"{b.node_id}@{state.host}:{b.controller_port}:{b.directory_id}" for b in state.brokers
        )
        quorum = ["--initial-controllers", controllers]
    cp = classpath(jars)
    runs: list[tuple[NodeLayout, subprocess.Popen[str]]] = []
    argfiles: list[Path] = []
    try:
        for node in layout.nodes:
            node.log_dir.mkdir(parents=True, exist_ok=True)
            node.logs_dir.mkdir(parents=True, exist_ok=True)
            properties = render_properties(
                server_properties(layout, node.node_id),
                header="Written by `bus389 kafka up`; rewritten on every format.",
            )
            tool = [
                "kafka.tools.StorageTool",
                "format",
                "-t",
                state.cluster_id,
                "-c",
                str(node.properties_path),
            ]
            tool += quorum
            if files is None:
                node.properties_path.write_text(properties)
                command = [java, "-Xmx256m", *logging_flags(node), "-cp", cp, *tool]
            else:
                # The properties and the SCRAM arguments hold passwords: files 0600, and the
                # arguments in a java @argfile so that `ps` never shows them.
                write_private_file(node.properties_path, properties)
                argfile = node.directory / "format.args"
                write_private_file(argfile, argfile_text([*tool, *scram_format_args(files)]))
                argfiles.append(argfile)
                command = [java, "-Xmx256m", *logging_flags(node), "-cp", cp, f"@{argfile}"]
            proc = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
            )
            runs.append((node, proc))
        problems = []
        for node, proc in runs:
            try:
                output, _ = proc.communicate(timeout=max(60.0, settings.local.start_timeout_s))
            except subprocess.TimeoutExpired:
                proc.kill()
                output, _ = proc.communicate()
                problems.append(f"broker {node.node_id}: StorageTool format timed out")
                continue
            if proc.returncode != 0:
                tail = "\n".join(output.strip().splitlines()[-TAIL_LINES:])
                if files is not None:
                    secrets = (files.admin_password(), files.broker_password())
                    tail = mask_secrets(tail, tuple(x.get_secret_value() for x in secrets))
                problems.append(f"broker {node.node_id}: StorageTool format exit {proc.returncode}:\n{tail}")
    finally:
        for argfile in argfiles:
            argfile.unlink(missing_ok=True)
    if problems:
        raise LocalKafkaError("could not format the storage:\n" + "\n".join(problems))
    if files is not None:
        write_admin_config(files, layout.bootstrap)
    state.formatted = True
    save_state(data_dir, state)
    return state


def argfile_text(args: list[str]) -> str:
    """A java ``@argfile``: one double-quoted argument a line (backslashes and quotes escaped)."""
    return "".join('"' + a.replace("\\", "\\\\").replace('"', '\\"') + '"\n' for a in args)
