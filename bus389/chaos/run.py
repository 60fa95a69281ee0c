"""One fault-injection run: cluster, services, workload, faults on a schedule, settle, check, summary.

1. The local cluster of ``settings.chaos`` (its own ports and data dir; started if it is not running,
   stopped again at the end if this run started it) with every bus topic replicated 3 times,
   ``min.insync.replicas=2`` and unclean leader election off, under a topic prefix of this run alone.
2. The router, the ICT service and the standing office's service as subprocesses (``bus389 route``,
   ``bus389 serve ict``, ``bus389 serve standing-office``), like a supervisor would run them: a service
   that dies on its own is restarted, and counted.
3. The workload (:mod:`bus389.chaos.workload`) publishes at a steady rate for the run's duration while the
   schedule (:mod:`bus389.chaos.schedule`) injects faults one after the other (:mod:`bus389.chaos.faults`);
   every acknowledgement and every fault goes to the history file.
4. Everything is healed, the checker (:mod:`bus389.chaos.checker`) reads the bus until nothing more
   arrives (or the settle timeout), the services get SIGTERM, and a last check includes the stores.
5. Every event is signed (each member's key and the router's are issued into the run's folder, and the
   router refuses unsigned events), so the faults also hit the signature checks and the audit chain:
   the audit topic's hash chains and signed heads are verified last (``bus389 audit verify``'s check).

The verdict is the summary line ``published=… acknowledged=… faults=… lost=… duplicated=… misrouted=…``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bus389.agencies import Agency, principals
from bus389.chaos.checker import CheckReport, check, check_until_settled
from bus389.chaos.consistency import ConsistencyReport, check_consistency
from bus389.chaos.expectation import PolicyModel
from bus389.chaos.faults import BrokerFaults, ServiceProcess, bus389_argv
from bus389.chaos.history import HistoryWriter, RunInfo, read_history
from bus389.chaos.schedule import Fault, FaultKind, make_schedule
from bus389.chaos.workload import Workload, WorkloadStats
from bus389.consumers.router.audit_chain import ChainReport, verify_audit_topic
from bus389.errors import BusError, LocalKafkaError
from bus389.localkafka import LocalCluster
from bus389.settings import Settings, SigningSettings, StoreSettings
from bus389.signing.registry_topic import issue_signing_key

__all__ = ["ChaosConfig", "ChaosResult", "run_chaos", "run_settings", "service_env", "summary_line"]

log = logging.getLogger(__name__)

Echo = Callable[[str], None]


@dataclass(frozen=True)
class ChaosConfig:
    """What one run does (the CLI's options); the cluster's place comes from ``settings.chaos``."""

    seconds: float = 45.0
    rate: float = 10.0
    events: int | None = None
    """Stop publishing after this many attempts (the run still lasts ``seconds``)."""
    seed: int = 389
    brokers: int = 3
    faults: int | None = None
    """How many faults (default: one per 12 s, at least 4)."""
    workers: int = 8
    """Publishing threads sharing the rate: a producer stalled by a fault (kafka-python may wait up to
    60 s to initialise transactions after a broker died) holds up one of them, not the stream."""
    keep_cluster: bool = False
    """Leave a cluster this run started running afterwards."""


@dataclass
class ChaosResult:
    """What a run did and what the checker found."""

    run_dir: Path
    topic_prefix: str
    settings: Settings
    """The run's settings (its cluster, prefix, stores), e.g. for a consistency check afterwards."""
    workload: WorkloadStats
    report: CheckReport
    faults: list[dict[str, object]] = field(default_factory=list)
    crashes: dict[str, int] = field(default_factory=dict)
    exit_codes: dict[str, int | None] = field(default_factory=dict)
    elapsed_s: float = 0.0
    problems: list[str] = field(default_factory=list)
    """What makes the run itself unreliable (a publisher still running after the workload's end)."""
    consistency: ConsistencyReport | None = None
    """The stores and the RPZ zone against the inboxes, once the services stopped."""
    audit: ChainReport | None = None
    """The audit topic's hash chains and signed heads, verified once the services stopped."""

    @property
    def ok(self) -> bool:
        consistent = self.consistency is None or self.consistency.ok
        chained = self.audit is None or self.audit.holds
        return self.report.ok and not self.problems and consistent and chained

    def summary(self) -> str:
        return summary_line(self.report, faults=len(self.faults), published=self.workload.attempted)


def summary_line(report: CheckReport, *, faults: int, published: int | None = None) -> str:
    """``published=… acknowledged=… faults=… lost=… duplicated=… misrouted=…`` (and the rest after)."""
    return (
        f"published={report.published if published is None else published} "
        f"acknowledged={report.acknowledged} "
        f"faults={faults} lost={report.lost} duplicated={report.duplicated} misrouted={report.misrouted} "
        f"phantom={report.phantom} unconfirmed={report.indeterminate} failed={report.failed} "
        f"ict_results={report.results} copies={report.copies_checked}"
    )


def run_settings(settings: Settings, *, bootstrap: str, prefix: str, run_dir: Path, brokers: int) -> Settings:
    """The settings of one run: its cluster, its prefix, its stores and blocklist, durable topics."""
    kafka = settings.kafka.model_copy(
        update={
            "replication_factor": min(3, brokers),
            "min_insync_replicas": min(2, brokers),
            "request_timeout_ms": 10_000,
            "delivery_timeout_ms": settings.chaos.delivery_timeout_ms,
        }
    )
    router = settings.router.model_copy(
        update={"group_id": f"{prefix}.router", "transactional_id": f"{prefix}.router"}
    )
    store = StoreSettings(
        ict_url=f"sqlite:///{run_dir / 'ict.sqlite3'}",
        standing_office_url=f"sqlite:///{run_dir / 'standing_office.sqlite3'}",
    )
    ict = settings.ict.model_copy(
        update={
            "output_dir": run_dir / "blocklist",
            "auto_approve_senders": tuple(Agency),
            "group_id": f"{prefix}.ict.blocklist",
        }
    )
    report = settings.report.model_copy(update={"group_id": f"{prefix}.market_surveillance.store"})
    # Signed throughout: every member's and the router's key in the run's folder (issued by ``up``).
    signing = SigningSettings(key_dir=run_dir / "keys", require=True, audit_head_every=50)
    return settings.model_copy(
        update={
            "bootstrap": bootstrap,
            "topic_prefix": prefix,
            "kafka": kafka,
            "router": router,
            "store": store,
            "ict": ict,
            "report": report,
            "signing": signing,
        }
    )


def service_env(settings: Settings) -> dict[str, str]:
    """The ``BUS389_*`` environment that gives a service subprocess the same settings as ``settings``.

    Built from the settings alone (not inherited), so that nothing of the caller's environment (a
    shared broker's address, another prefix) leaks into the run.
    """
    k, r = settings.kafka, settings.router
    return {
        "PYTHONUNBUFFERED": "1",
        "BUS389_BOOTSTRAP": settings.bootstrap,
        "BUS389_TOPIC_PREFIX": settings.topic_prefix,
        "BUS389_KAFKA__REPLICATION_FACTOR": str(k.replication_factor),
        "BUS389_KAFKA__MIN_INSYNC_REPLICAS": str(k.min_insync_replicas),
        "BUS389_KAFKA__REQUEST_TIMEOUT_MS": str(k.request_timeout_ms),
        "BUS389_KAFKA__DELIVERY_TIMEOUT_MS": str(k.delivery_timeout_ms),
        "BUS389_KAFKA__PARTITIONS": str(k.partitions),
        "BUS389_ROUTER__GROUP_ID": r.group_id,
        "BUS389_ROUTER__TRANSACTIONAL_ID": r.transactional_id,
        "BUS389_ROUTER__SESSION_TIMEOUT_MS": str(r.session_timeout_ms),
        "BUS389_ROUTER__TRANSACTIONS": "true" if r.transactions else "false",
        "BUS389_ROUTER__POLICY_PATH": str(r.policy_path),
        "BUS389_STORE__ICT_URL": settings.store.ict_url,
        "BUS389_STORE__STANDING_OFFICE_URL": settings.store.standing_office_url,
        "BUS389_ICT__OUTPUT_DIR": str(settings.ict.output_dir),
        "BUS389_ICT__GROUP_ID": settings.ict.group_id,
        "BUS389_ICT__AUTO_APPROVE_SENDERS": json.dumps([a.value for a in settings.ict.auto_approve_senders]),
        "BUS389_REPORT__GROUP_ID": settings.report.group_id,
        "BUS389_METRICS__LOG_LEVEL": settings.metrics.log_level,
        **(
            {"BUS389_SIGNING__KEY_DIR": str(settings.signing.key_dir)}
            if settings.signing.key_dir is not None
            else {}
        ),
        "BUS389_SIGNING__REQUIRE": "true" if settings.signatures_required else "false",
        "BUS389_SIGNING__AUDIT_HEAD_EVERY": str(settings.signing.audit_head_every),
    }


_SERVICES: dict[str, tuple[str, ...]] = {
    "router": ("route", "--metrics-port", "0"),
    "ict": ("serve", "ict", "--metrics-port", "0"),
    "standing-office": ("serve", "standing-office", "--metrics-port", "0"),
}


class _Run:
    def __init__(self, settings: Settings, config: ChaosConfig, echo: Echo) -> None:
        self.base = settings
        self.config = config
        self.echo = echo
        self.prefix = f"chaos_{config.seed}_{uuid.uuid4().hex[:6]}"
        self.run_dir = settings.chaos.work_dir.expanduser().resolve() / self.prefix
        self.cluster = LocalCluster(
            settings,
            data_dir=settings.chaos.data_dir,
            base_port=settings.chaos.base_port,
            heap=settings.chaos.heap,
        )
        self.started_cluster = False
        self.settings = settings
        self.services: dict[str, ServiceProcess] = {}
        self.down: set[str] = set()
        self.crashes: Counter[str] = Counter()
        self.faults_done: list[dict[str, object]] = []
        self.problems: list[str] = []

    # -- set-up ---------------------------------------------------------------------------------------

    def up(self) -> None:
        from bus389.topics import apply_topics

        status = self.cluster.status()
        if status.healthy and len(status.brokers) == self.config.brokers:
            bootstrap = status.bootstrap or ""
            self.echo(f"chaos: using the running {len(status.brokers)}-broker cluster at {bootstrap}")
        else:
            self.echo(f"chaos: starting a {self.config.brokers}-broker cluster in {self.cluster.data_dir}")
            result = self.cluster.up(self.config.brokers)
            self.started_cluster = not result.already_running
            bootstrap = result.bootstrap
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.settings = run_settings(
            self.base,
            bootstrap=bootstrap,
            prefix=self.prefix,
            run_dir=self.run_dir,
            brokers=self.config.brokers,
        )
        report = apply_topics(self.settings)
        self.echo(
            f"chaos: {len(report.created)} topics under {self.prefix}, replication factor "
            f"{report.replication_factor}, min.insync.replicas {self.settings.kafka.min_insync_replicas}"
        )
        self.issue_keys()
        self.brokers = BrokerFaults(
            self.settings, data_dir=self.cluster.data_dir, base_port=self.settings.chaos.base_port
        )
        env = service_env(self.settings)
        for name, args in _SERVICES.items():
            self.services[name] = ServiceProcess(name, bus389_argv(*args), env, self.run_dir / "logs")
            self.services[name].start()
        self.wait_ready()

    def issue_keys(self) -> None:
        """Every member's and the router's signing key, in the run's folder (0700; each key 0600)."""
        key_dir = self.settings.signing.key_dir
        assert key_dir is not None  # noqa: S101 — run_settings sets it
        key_dir.mkdir(mode=0o700, exist_ok=True)
        for owner in principals():
            issue_signing_key(self.settings, owner, key_dir / f"{owner}.signing.pem")
        self.echo(f"chaos: {len(principals())} signing keys issued into {key_dir}; unsigned events refused")

    def groups(self) -> dict[str, str]:
        s = self.settings
        return {
            "router": s.router.group_id,
            "ict": s.ict.group_id,
            "standing-office": s.report.group_id,
        }

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        """Wait until each service's consumer group is stable with a member (it is reading)."""
        from bus389.kafka import kafka_errors, make_admin

        deadline = time.monotonic() + timeout_s
        waiting = dict(self.groups())
        while waiting:
            for name in list(waiting):
                if not self.services[name].alive:
                    raise LocalKafkaError(f"{name} exited at start-up:\n{self.services[name].log_tail()}")
            try:
                with kafka_errors(bootstrap=self.settings.bootstrap):
                    admin = make_admin(self.settings)
                    try:
                        described = admin.describe_groups(list(waiting.values()))
                    finally:
                        admin.close()
            except BusError:
                described = {}
            for name, group in list(waiting.items()):
                info = described.get(group) or {}
                if info.get("group_state") == "Stable" and info.get("members"):
                    del waiting[name]
            if time.monotonic() > deadline:
                raise LocalKafkaError(f"services not reading within {timeout_s:.0f}s: {', '.join(waiting)}")
            if waiting:
                time.sleep(1.0)
        self.echo("chaos: router, ict and standing-office are reading")

    # -- the run ---------------------------------------------------------------------------------------

    def watch_until(self, moment: float) -> None:
        """Sleep until ``moment`` (monotonic), restarting any service that died by itself meanwhile."""
        while True:
            for name, service in self.services.items():
                if name not in self.down and not service.alive:
                    self.crashes[name] += 1
                    self.echo(f"chaos: {name} died by itself (exit {service.terminate()}); restarting it")
                    self.history.note(f"{name} crashed", tail=service.log_tail(15))
                    service.start()
            left = moment - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.5))

    def resolve_broker(self, fault: Fault) -> int:
        role, _, partition = fault.target.rpartition("/")
        leader = self.brokers.leader_of(f"{self.prefix}.{role}", int(partition))
        if leader is None:
            ids = self.brokers.broker_ids()
            leader = ids[fault.index % len(ids)]
        return leader

    def inject(self, fault: Fault) -> None:
        began = time.time()
        detail: dict[str, object] = {"index": fault.index, "fault": fault.kind.value, "target": fault.target}
        if fault.kind.hits_a_broker:
            lagging = self.brokers.wait_in_sync(self.settings.topics.all(), timeout_s=90.0)
            if lagging:
                self.history.note("replicas still out of sync before a broker fault", lagging=lagging[:10])
            node = self.resolve_broker(fault)
            detail["broker"] = node
            if fault.kind == FaultKind.KILL_LEADER:
                detail["pid"] = self.brokers.kill(node)
                self.echo(f"chaos: {fault.describe()}: SIGKILL broker {node}")
                self.watch_until(time.monotonic() + fault.down_s)
                detail["restarted_pid"] = self.brokers.start(node)
            else:
                detail["pid"] = self.brokers.pause(node)
                self.echo(f"chaos: {fault.describe()}: SIGSTOP broker {node}")
                self.watch_until(time.monotonic() + fault.down_s)
                self.brokers.resume(node)
        else:
            name = fault.kind.service or ""
            service = self.services[name]
            self.down.add(name)
            try:
                detail["pid"] = service.kill()
                self.echo(f"chaos: {fault.describe()}: SIGKILL {name}")
                self.watch_until(time.monotonic() + fault.down_s)
                detail["restarted_pid"] = service.start()
            finally:
                self.down.discard(name)
        detail["began"], detail["ended"] = began, time.time()
        self.history.fault(**detail)
        self.faults_done.append(detail)

    def run(self) -> ChaosResult:
        started = time.monotonic()
        config = self.config
        self.up()
        policy_path = self.settings.router.policy_path
        info = RunInfo(
            bootstrap=self.settings.bootstrap,
            topic_prefix=self.prefix,
            policy_path=str(policy_path),
            seed=config.seed,
            standing_office_url=self.settings.store.standing_office_url,
            ict_url=self.settings.store.ict_url,
            ict_output_dir=str(self.settings.ict.output_dir),
            rpz_zone=self.settings.ict.rpz_zone,
            started_at=time.time(),
        )
        history_path = self.run_dir / "history.jsonl"
        schedule = make_schedule(
            seed=config.seed,
            seconds=config.seconds,
            count=config.faults,
            partitions=self.settings.kafka.partitions,
            pause_s=self.settings.chaos.pause_s,
        )
        with HistoryWriter(history_path) as self.history:
            self.history.run(info)
            for fault in schedule:
                self.history.note("scheduled", fault=fault.describe())
            stop = threading.Event()
            workload = Workload(
                self.settings,
                self.history,
                rate=config.rate,
                seed=config.seed,
                workers=config.workers,
                max_events=config.events,
                stop=stop,
            )
            thread = threading.Thread(target=workload.run, name="chaos-workload", daemon=True)
            t0 = time.monotonic()
            thread.start()
            self.echo(
                f"chaos: publishing at {config.rate:g}/s for {config.seconds:g}s, {len(schedule)} faults"
            )
            try:
                for fault in schedule:
                    self.watch_until(t0 + fault.at_s)
                    self.inject(fault)
                self.watch_until(t0 + config.seconds)
            finally:
                stop.set()
                # Every wait of a publish is bounded (init 60 s, each transaction call by the delivery
                # timeout): the workers end; an attempt still in flight would be missing from the history.
                thread.join(timeout=300)
                if thread.is_alive():
                    self.problems.append("the workload did not stop within 300 s: its history is incomplete")
                self.heal()
            self.echo(
                f"chaos: workload done: {workload.stats.attempted} attempted, {workload.stats.acknowledged} "
                f"acknowledged ({dict(workload.stats.by_status)}); settling"
            )
        history = read_history(history_path)
        policy = PolicyModel.load(policy_path)

        def progress(report: CheckReport | None, error: BaseException | None = None) -> None:
            if report is not None:
                self.echo(
                    f"chaos: check: lost={report.lost} duplicated={report.duplicated} "
                    f"misrouted={report.misrouted}"
                )
            else:
                self.echo(f"chaos: check postponed: {error}")

        check_until_settled(
            self.settings,
            history,
            policy,
            timeout_s=self.settings.chaos.settle_timeout_s,
            progress=progress,
            standing_office_url=info.standing_office_url,
            ict_url=info.ict_url,
        )
        exit_codes = {name: service.terminate() for name, service in self.services.items()}
        report = check(
            self.settings, history, policy, standing_office_url=info.standing_office_url, ict_url=info.ict_url
        )
        consistency = check_consistency(self.settings, wait_s=30.0)
        self.echo(f"chaos: stores and RPZ zone against the inboxes: {consistency.describe()}")
        audit = self.verify_audit()
        return ChaosResult(
            run_dir=self.run_dir,
            topic_prefix=self.prefix,
            settings=self.settings,
            workload=workload.stats,
            report=report,
            faults=self.faults_done,
            crashes=dict(self.crashes),
            exit_codes=exit_codes,
            elapsed_s=time.monotonic() - started,
            problems=self.problems,
            consistency=consistency,
            audit=audit,
        )

    def verify_audit(self) -> ChainReport:
        """``bus389 audit verify`` on this run's audit topic: every link, every signed head."""
        report = verify_audit_topic(self.settings)
        findings = "; ".join(f.describe() for f in report.findings)
        verdict = "holds" if report.holds else f"is broken: {findings}"
        self.echo(
            f"chaos: the audit chain {verdict} ({report.records} records, {report.chains} chains, "
            f"{report.signed_heads} signed heads)"
        )
        return report

    def heal(self) -> None:
        for line in self.brokers.heal():
            self.echo(f"chaos: healing: {line}")
        for name, service in self.services.items():
            if not service.alive:
                self.echo(f"chaos: healing: {name} started")
                service.start()
        lagging = self.brokers.wait_in_sync(self.settings.topics.all(), timeout_s=120.0)
        if lagging:
            self.echo(f"chaos: replicas still out of sync after healing: {', '.join(lagging[:5])}")

    def close(self) -> None:
        for service in self.services.values():
            service.terminate(timeout_s=30)
        brokers: BrokerFaults | None = getattr(self, "brokers", None)
        if brokers is not None and brokers.paused:
            for line in brokers.heal():  # never leave a broker stopped behind an interrupted run
                self.echo(f"chaos: healing: {line}")
        if self.started_cluster and not self.config.keep_cluster:
            self.echo(f"chaos: stopping the cluster this run started ({self.cluster.data_dir})")
            self.cluster.down(purge=True)


def run_chaos(settings: Settings, config: ChaosConfig, *, echo: Echo = lambda _: None) -> ChaosResult:
    """Run the whole experiment (see the module docstring); the services are always stopped."""
    run = _Run(settings, config, echo)
    try:
        return run.run()
    finally:
        run.close()
