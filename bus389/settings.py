"""The one settings tree of bus389, read from ``BUS389_*`` environment variables.

Built once at the entry point (the CLI) and passed down; nothing else reads the environment.
Nested groups use ``__``: ``BUS389_ROUTER__BATCH_MAX_EVENTS=500``. The two contract names are the
top-level ``BUS389_BOOTSTRAP`` and ``BUS389_TOPIC_PREFIX``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from bus389.agencies import Agency, Topics

__all__ = [
    "PACKAGE_DIR",
    "ChaosSettings",
    "IctSettings",
    "InputSettings",
    "InstanceSettings",
    "KafkaClientSettings",
    "LocalKafkaSettings",
    "MailSettings",
    "MetricsSettings",
    "ReportSettings",
    "RouterSettings",
    "Settings",
    "SigningSettings",
    "StoreSettings",
    "TaxSettings",
    "WebSettings",
]

PACKAGE_DIR = Path(__file__).resolve().parent
"""The installed ``bus389`` package: its data (schemas, the default routing policy, the Kafka pom) lives
here."""


class _Group(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KafkaClientSettings(_Group):
    """How clients reach and authenticate to the brokers (the security group fills the SASL parts)."""

    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] | None = None
    username: str | None = None
    password: SecretStr | None = None
    ssl_cafile: Path | None = None
    client_id: str = "bus389"
    """The services set theirs to name, pid and metrics port (``bus389 status`` shows group members)."""
    request_timeout_ms: int = Field(30_000, ge=1_000)
    delivery_timeout_ms: int = Field(60_000, ge=1_000)
    """Upper bound on how long a publish keeps retrying an unacknowledged event."""
    partitions: int = Field(3, ge=1)
    replication_factor: int = Field(1, ge=1)
    min_insync_replicas: int = Field(1, ge=1)
    max_message_bytes: int = Field(1_048_576, ge=1024)
    transaction_chunk_events: int = Field(5_000, ge=1)
    """A publish commits its file in transactions of at most this many events."""
    fetch_max_wait_ms: int = Field(100, ge=0, le=5_000)
    """How long a fetch that found nothing waits at the broker before it answers. Every bus read is
    ``read_committed``: an event becomes visible when its transaction commits, and a consumer that just
    asked waits this long before it asks again, once at the router and once at the agency. Kafka's own
    default (500 ms) was most of the publish → inbox p99 in the benchmarks; 100 ms matches the router's
    commit interval, at the cost of up to ten empty fetches a second per idle consumer."""
    metadata_max_age_ms: int = Field(30_000, ge=1_000)
    """How often every client refreshes its metadata even when nothing failed (kafka-python's default:
    5 min): a new partition, or a topic a group leader did not know yet when it assigned, is noticed
    this soon."""
    unassigned_rejoin_s: float = Field(20.0, gt=0)
    """A group member with no partition this long asks whether the group is stuck, and rejoins if so
    (see :mod:`bus389.assignment_watch`)."""
    max_partition_fetch_bytes: int = Field(262_144, ge=1024)
    """At most this many bytes fetched per partition at once (Kafka's default: 1 MiB). With 27 outbox
    partitions, the default let the router hold ≈ 27 MiB of prefetched records; a record batch bigger
    than this is still fetched whole, so it bounds memory, never what can be read."""


class LocalKafkaSettings(_Group):
    """The local Kafka that ``bus389 kafka up`` fetches from Maven Central and runs on loopback."""

    version: str = "4.1.1"
    cache_dir: Path = Path.home() / ".cache" / "bus389"
    data_dir: Path = Path.home() / ".local" / "state" / "bus389" / "kafka"
    kafka_home: Path | None = None
    """A Kafka distribution to use instead of fetching (also read from ``KAFKA_HOME`` by the CLI)."""
    host: str = "127.0.0.1"
    base_port: int = Field(9092, ge=1024, le=65000)
    start_timeout_s: float = Field(90.0, gt=0)
    stop_timeout_s: float = Field(30.0, gt=0)
    """How long ``bus389 kafka down`` waits after SIGTERM before it sends SIGKILL."""
    heap: str = "512m"


class InputSettings(_Group):
    """Limits on every input file (``publish --file``, the tax office's spreadsheet), checked while reading.

    The defaults fit a province's real files with room to spare (a year of a department's alerts is a
    few thousand rows); past them the command stops with an error naming the file, before memory runs
    out (``publish --file /dev/zero``, a workbook that expands a thousandfold)."""

    max_bytes: int = Field(50 * 1024 * 1024, ge=1024)
    """The largest file read (bytes on disk, or read from standard input)."""
    max_rows: int = Field(200_000, ge=1)
    """The most records (JSON objects, CSV or spreadsheet rows) one file may hold."""
    max_expanded_bytes: int = Field(256 * 1024 * 1024, ge=1024)
    """A workbook (.xlsx, a zip of XML): the most its parts may expand to, from the zip's declared sizes."""
    max_compression_ratio: int = Field(200, ge=10)
    """A workbook part larger than 10 MiB expanded may be at most this many times its compressed size
    (a zip bomb's ratio is in the thousands; a real sheet's in the tens)."""


class RouterSettings(_Group):
    group_id: str = "bus389.router"
    transactional_id: str = "bus389.router"
    batch_max_events: int = Field(500, ge=1)
    batch_max_ms: int = Field(100, ge=1)
    policy_path: Path = PACKAGE_DIR / "routing" / "routing-policy.yaml"
    transactions: bool = True
    """Off only for the benchmark of what exactly-once costs (at-least-once)."""
    session_timeout_ms: int = Field(10_000, ge=6_000)
    """How soon the group notices a router that died (its partitions move after this)."""
    transaction_timeout_s: float = Field(30.0, gt=0)
    """Upper bound on one commit, abort or offsets call; past it the producer is rebuilt (no KIP-890)."""


class InstanceSettings(_Group):
    """A second instance of a service (see :mod:`bus389.instances`)."""

    standby: bool = True
    """Wait as a standby while another instance is active, and take over when it stops; off: refuse."""
    standby_poll_s: float = Field(0.5, gt=0, le=10)
    """How often a standby tries the lock: it takes over at most this long after the active one exits."""
    lock_dir: Path = Path.home() / ".local" / "state" / "bus389" / "run"
    """The services' locks and instance files (one host: see :mod:`bus389.instances`)."""


class MetricsSettings(_Group):
    port: int = Field(0, ge=0, le=65535)
    """0 picks the service's default port; see each service."""
    host: str = "127.0.0.1"
    pushgateway_url: str | None = None
    json_logs: bool = False
    log_level: str = "INFO"


class StoreSettings(_Group):
    ict_url: str = "sqlite:///" + str(Path.home() / ".local" / "state" / "bus389" / "ict.sqlite3")
    standing_office_url: str = "sqlite:///" + str(
        Path.home() / ".local" / "state" / "bus389" / "standing_office.sqlite3"
    )


class IctSettings(_Group):
    never_block: tuple[str, ...] = (
        # The state: every name under gov.vn (ministries, the province, public services), and the
        # government's portals outside it.
        "gov.vn",
        "chinhphu.vn",
        "baochinhphu.vn",
        "quochoi.vn",
        "dangcongsan.vn",
        "vnnic.vn",
        # The platforms the sellers use, with their alternative and short-link domains: a seller's page
        # is reported and taken down, the platform is never blocked.
        "shopee.vn",
        "shopee.com",
        "shp.ee",
        "lazada.vn",
        "lazada.com",
        "tiki.vn",
        "sendo.vn",
        "facebook.com",
        "fb.com",
        "fb.me",
        "fb.watch",
        "messenger.com",
        "instagram.com",
        "tiktok.com",
        "tiktokv.com",
        "zalo.me",
        "zalo.vn",
        "zaloapp.com",
        "youtube.com",
        "youtu.be",
    )
    """Domains (and every name under them) that must never be blocked.

    ``BUS389_ICT__NEVER_BLOCK`` replaces the whole list: to extend it, give these defaults and yours
    (see the README, "Domains that are never blocked")."""
    auto_approve_senders: tuple[Agency, ...] = ()
    output_dir: Path = Path.home() / ".local" / "state" / "bus389" / "blocklist"
    rpz_zone: str = "rpz.bus389.local"
    group_id: str = "bus389.ict.blocklist"
    """Under ``<topic_prefix>.ict.`` as is; otherwise its last part is put under that prefix."""
    providers: tuple[str, ...] = ()
    """Telecom and IT providers that load the exports: named in each result's ``providers_notified``.

    A result is built by the process that decides (the service, or ``bus389 ict approve``): give both
    the same value."""
    outbox_scan_timeout_s: float = Field(60.0, gt=0)
    """Upper bound on reading the ict outbox at start-up for results already published."""


class ReportSettings(_Group):
    group_id: str = "bus389.market_surveillance.store"
    answer_deadline_days: dict[str, int] = {"domain_block_request": 3, "case_referral": 15, "complaint": 15}
    # The document's Decree 30/2020/NĐ-CP header and signature (``bus389 report --format docx|pdf``).
    governing_body: str = "UBND TỈNH QUẢNG NGÃI"
    """The body above the issuer (cơ quan chủ quản), first line of the top-left block."""
    issuing_body: str = "BCĐ 389 TỈNH QUẢNG NGÃI"
    """The issuer (cơ quan ban hành), bold under the governing body."""
    number_symbol: str = "/BC-BCĐ389"
    """``Số: …``: the register number and the symbol; left blank before the number is given (``/BC-…``)."""
    place: str = "Quảng Ngãi"
    """The place in ``<place>, ngày … tháng … năm …``."""
    signer_name: str | None = None
    """Who signs. Required for a docx/pdf: there is no administrative document without a signer."""
    signer_title: str | None = None
    """The signer's position, e.g. ``TRƯỞNG BAN`` or ``PHÓ TRƯỞNG BAN``."""
    signer_authority: str | None = None
    """The ``KT.``/``TM.`` line above the title when the signer signs for another (``KT. TRƯỞNG BAN``)."""
    recipients: tuple[str, ...] = (
        "Ban Chỉ đạo 389 quốc gia",
        "UBND tỉnh Quảng Ngãi",
        "Các thành viên BCĐ",
        "Lưu: VT",
    )
    """``Nơi nhận:`` lines of the document."""
    send_to: tuple[str, ...] = ()
    """Where the standing-office service mails the six-monthly report on its due date; empty: never."""
    due_dates: dict[str, str] = {"H1": "07-15", "H2": "01-15"}
    """``MM-DD`` on which each half's report is due (H2's falls in the next year)."""
    schedule_check_s: float = Field(300.0, gt=0)
    """How often the service checks whether a report is due."""


class MailSettings(_Group):
    """The SMTP server that carries ``bus389 report send`` (STARTTLS and authentication, always)."""

    host: str = "127.0.0.1"
    port: int = Field(587, ge=1, le=65535)
    sender: str = "bch389@quangngai.gov.vn"
    """The ``From`` address."""
    username: str | None = None
    password: SecretStr | None = None
    """Set it in the 0600 ``--config`` file, or give ``password_file``; never in the environment."""
    password_file: Path | None = None
    """A file (mode 0600) holding the password on its first line."""
    ssl_cafile: Path | None = None
    """CA bundle that verifies the server's certificate (default: the system's)."""
    timeout_s: float = Field(30.0, gt=0)


class TaxSettings(_Group):
    """The tax office's undeclared-seller alerts (``bus389 tax publish-alerts``)."""

    vat_rate_bp: int = Field(100, ge=0, le=10_000)
    """VAT on undeclared revenue in basis points: 1 % for goods (Circular 40/2021/TT-BTC, App. I)."""
    pit_rate_bp: int = Field(50, ge=0, le=10_000)
    """Personal income tax in basis points: 0.5 % for goods (Circular 40/2021/TT-BTC, App. I)."""
    dedup_timeout_s: float = Field(60.0, gt=0)
    """Upper bound on reading the tax outbox for the alerts already published."""
    alert_id_key_file: Path | None = None
    """The 0600 file holding the secret that keys the alert ids (see :mod:`bus389.producers.tax.id_key`).
    Unset: ``~/.local/state/bus389/tax-alert-id.key``, created at the first publish. Set (production):
    the file must exist; it is never created, so a lost key is noticed instead of silently replaced."""


class WebSettings(_Group):
    """The web console and HTTP API (``bus389 serve web``)."""

    host: str = "127.0.0.1"
    port: int = Field(8389, ge=0, le=65535)
    """0 binds any free port (printed at start)."""
    users_db: Path = Path.home() / ".local" / "state" / "bus389" / "web.sqlite3"
    """The console's users, API tokens, uploads and idempotency keys (SQLite)."""
    session_secret_file: Path = Path.home() / ".local" / "state" / "bus389" / "web-session.key"
    """The key that signs session cookies: created 0600 at first start when missing."""
    upload_dir: Path = Path.home() / ".local" / "state" / "bus389" / "web-uploads"
    agency_config_dir: Path | None = None
    """Secure mode: ``<dir>/<agency>.env`` holds each agency's credentials from ``bus389 security issue``;
    the console acts on the bus with the signed-in user's agency's file (unset: these settings)."""
    session_ttl_s: int = Field(1800, ge=1)
    """A session ends this long after its last request."""
    max_failed_logins: int = Field(5, ge=1)
    lockout_s: int = Field(900, ge=1)
    upload_max_bytes: int = Field(5_000_000, ge=1024)
    api_max_body_bytes: int = Field(2_000_000, ge=1024)
    api_max_batch_events: int = Field(1000, ge=1)
    api_rate_per_s: float = Field(20.0, gt=0)
    """Each agency's API requests: this many a second on average, up to ``api_burst`` at once."""
    api_burst: int = Field(40, ge=1)
    inbox_keep_events: int = Field(20_000, ge=100)
    """Events of each agency's inbox and outbox the console keeps in memory (newest first)."""
    long_poll_max_s: float = Field(30.0, ge=0)


class ChaosSettings(_Group):
    """The fault-injection run (``bus389 chaos run``): its own local cluster, never the shared one."""

    base_port: int = Field(29092, ge=1024, le=65000)
    """Broker i of the chaos cluster listens on BASE+i-1 (and its controller on BASE+100+i-1)."""
    data_dir: Path = Path.home() / ".local" / "state" / "bus389" / "chaos-kafka"
    heap: str = "384m"
    work_dir: Path = Path.home() / ".local" / "state" / "bus389" / "chaos"
    """Where a run keeps its history, the services' logs, stores and blocklist."""
    settle_timeout_s: float = Field(180.0, gt=0)
    """After the last fault: how long the checker waits for every acknowledged event to arrive."""
    pause_s: float = Field(12.0, gt=0)
    """How long a paused broker stays stopped: past the brokers' (9 s) and the router's session timeout."""
    delivery_timeout_ms: int = Field(15_000, ge=1_000)
    """The workload's producers: how long an event is retried before it counts as failed."""


class SigningSettings(_Group):
    """Signed events (:mod:`bus389.signing`): this process's key, where the public keys come from, and
    whether the router refuses unsigned events."""

    key_file: Path | None = None
    """This agency's (or the router's) Ed25519 private key, written 0600 by `bus389 security issue`.
    Set: every event this process publishes is signed; unset: events go out unsigned."""
    key_dir: Path | None = None
    """A folder of keys named ``<owner>.signing.pem`` (``security keys issue OWNER --key-file
    DIR/OWNER.signing.pem``), for a process that speaks for several agencies: the local mode and the demo,
    where one operator plays every member, and the web console, which publishes for its users' agencies.
    Each event is signed with its sender's key from here (``key_file``, when set, wins); an agency with no
    file here publishes unsigned."""
    registry_file: Path | None = None
    """A key registry exported by `bus389 security keys export`: read instead of the ``<prefix>.keys``
    topic (offline checks, or a service that may not read the topic)."""
    registry_refresh_s: float = Field(30.0, gt=0)
    """How often the router reads the key registry again (a new or revoked key takes effect this soon;
    an unknown key id makes it look again at once, at most once a second)."""
    audit_head_every: int = Field(100, ge=1)
    """The router signs the head of an audit chain at least every this many records of it..."""
    audit_head_interval_s: float = Field(30.0, gt=0)
    """...and on the first record of it after this long (see :mod:`bus389.consumers.router.audit_chain`)."""
    require: bool | None = None
    """The router refuses unsigned events (DLQ ``unsigned``). Unset: on over SASL/SSL (the secure mode),
    off in plaintext local mode, so agencies can migrate one by one. A signature that is present is
    always checked, whatever this says."""


class Settings(BaseSettings):
    """Every setting bus389 reads; ``BUS389_`` prefix, ``__`` between nested groups."""

    model_config = SettingsConfigDict(
        env_prefix="BUS389_", env_nested_delimiter="__", frozen=True, extra="ignore"
    )

    bootstrap: str = "127.0.0.1:9092"
    topic_prefix: str = Field("bus389", pattern=r"^[A-Za-z0-9_\-]+$")
    kafka: KafkaClientSettings = KafkaClientSettings()
    local: LocalKafkaSettings = LocalKafkaSettings()
    router: RouterSettings = RouterSettings()
    metrics: MetricsSettings = MetricsSettings()
    instances: InstanceSettings = InstanceSettings()
    store: StoreSettings = StoreSettings()
    ict: IctSettings = IctSettings()
    input: InputSettings = InputSettings()
    report: ReportSettings = ReportSettings()
    mail: MailSettings = MailSettings()
    tax: TaxSettings = TaxSettings()
    chaos: ChaosSettings = ChaosSettings()
    web: WebSettings = WebSettings()
    signing: SigningSettings = SigningSettings()

    @property
    def topics(self) -> Topics:
        return Topics(self.topic_prefix)

    @property
    def signatures_required(self) -> bool:
        """Whether unsigned events are refused (``signing.require``, by default the secure mode's)."""
        if self.signing.require is not None:
            return self.signing.require
        return self.kafka.security_protocol != "PLAINTEXT"
