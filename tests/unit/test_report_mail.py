"""``bus389 report send`` and the service's schedule, against a real SMTP server started by the test.

The server is aiosmtpd (deploy/smtp_sink.py, the one the demo runs) on loopback, with STARTTLS and AUTH
required and a certificate from the project's own local CA (bus389.security.tls); what it received is
read back from its Maildir: headers, body, attachments (the .docx opened with python-docx, the PDF's
text with pdftotext).
"""

from __future__ import annotations

import email
import email.policy
import importlib.util
import io
import mailbox
import socket
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import docx
import pytest
from _report_docs import SIGNER_ENV, scenario_store
from _wait import wait_for
from click.testing import CliRunner
from pydantic import SecretStr

from bus389.cli.main import cli
from bus389.consumers.standing_office.document import NATIONAL_TITLE
from bus389.consumers.standing_office.mail import build_message, check_address, mail_password, send_message
from bus389.consumers.standing_office.period import VN_TZ, Period
from bus389.consumers.standing_office.schedule import ReportSchedule, due_at
from bus389.consumers.standing_office.store import StandingOfficeStore
from bus389.errors import ConfigError, InputError, MailError
from bus389.metrics import REGISTRY
from bus389.security.tls import ensure_local_tls
from bus389.settings import MailSettings, ReportSettings, Settings, StoreSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
USER = "bao-cao@bcd389.local"
PASSWORD = "mật-khẩu-thử-Ğ-9f2c"  # noqa: S105 (the test server's)
TO = ("vanphong@bcd389.gov.vn", "tonghop@qltt-quangngai.gov.vn")


def _sink_module() -> Any:
    spec = importlib.util.spec_from_file_location("smtp_sink", REPO_ROOT / "deploy" / "smtp_sink.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return ensure_local_tls(tmp_path_factory.mktemp("tls"))


class Sink:
    def __init__(self, port: int, maildir: Path) -> None:
        self.port = port
        self.maildir = maildir

    def messages(self) -> list[EmailMessage]:
        box = mailbox.Maildir(str(self.maildir), create=False)
        return [
            email.message_from_bytes(box.get_bytes(key), policy=email.policy.default)  # type: ignore[misc]
            for key in box.keys()
        ]


@pytest.fixture
def start_sink(tls: Any, tmp_path: Path) -> Iterator[Callable[..., Sink]]:
    module = _sink_module()
    controllers: list[Any] = []

    def start(refuse: frozenset[str] = frozenset()) -> Sink:
        port = _free_port()
        maildir = tmp_path / f"maildir-{port}"
        controllers.append(
            module.start_sink(
                host="127.0.0.1",
                port=port,
                cert_pem=tls.broker_keystore,
                maildir=maildir,
                user=USER,
                password=PASSWORD,
                refuse=refuse,
            )
        )
        return Sink(port, maildir)

    yield start
    for controller in controllers:
        controller.stop()


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    url, _ = scenario_store(tmp_path / "so.sqlite3")
    return url


def _config(tmp_path: Path, sink: Sink, tls: Any, *, password: str = PASSWORD, mode: int = 0o600) -> Path:
    path = tmp_path / "mail.env"
    path.write_text(
        f'BUS389_MAIL__HOST="127.0.0.1"\nBUS389_MAIL__PORT="{sink.port}"\n'
        f'BUS389_MAIL__USERNAME="{USER}"\nBUS389_MAIL__PASSWORD="{password}"\n'
        f'BUS389_MAIL__SSL_CAFILE="{tls.ca_cert}"\nBUS389_MAIL__SENDER="thuongtruc@bcd389.gov.vn"\n',
        encoding="utf-8",
    )
    path.chmod(mode)
    return path


def _send(config: Path, store_url: str, *args: str) -> Any:
    env = {"BUS389_STORE__STANDING_OFFICE_URL": store_url, **SIGNER_ENV}
    return CliRunner().invoke(cli, ["--config", str(config), "report", "send", *args], env=env)


def _pdf_text(data: bytes, tmp_path: Path) -> str:
    path = tmp_path / "received.pdf"
    path.write_bytes(data)
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True, text=True
    ).stdout


def test_the_report_arrives_with_its_headers_body_and_attachments(
    start_sink: Callable[..., Sink], tls: Any, store_url: str, tmp_path: Path
) -> None:
    sink = start_sink()
    config = _config(tmp_path, sink, tls)
    result = _send(config, store_url, "--period", "2021-H1", "--to", TO[0], "--to", TO[1])
    assert result.exit_code == 0, result.output
    assert "sent bao-cao-2021-H1.docx, bao-cao-2021-H1.pdf" in result.output
    assert PASSWORD not in result.output
    [message] = sink.messages()
    assert message["From"] == "thuongtruc@bcd389.gov.vn"
    assert [a.strip() for a in message["To"].split(",")] == list(TO)
    assert message["Subject"] == "[BCĐ 389] Báo cáo sáu tháng 2021-H1"  # RFC 2047 on the wire, decoded here
    assert message["Date"] and message["Message-ID"].endswith("@bcd389.gov.vn>")
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    assert text.startswith("Báo cáo sáu tháng 2021-H1")
    assert "Tổng số sự kiện trong kỳ: 20" in text and "doanh thu chưa kê khai 1.730.000.000 ₫" in text
    attachments = {part.get_filename(): part for part in message.iter_attachments()}
    assert sorted(attachments) == ["bao-cao-2021-H1.docx", "bao-cao-2021-H1.pdf"]
    word = attachments["bao-cao-2021-H1.docx"]
    assert (
        word.get_content_type() == "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    )
    document = docx.Document(io.BytesIO(word.get_content()))
    assert document.tables[0].rows[0].cells[1].paragraphs[0].text == NATIONAL_TITLE
    pdf = attachments["bao-cao-2021-H1.pdf"]
    assert pdf.get_content_type() == "application/pdf"
    pdf_text = _pdf_text(pdf.get_content(), tmp_path)
    assert NATIONAL_TITLE in pdf_text and "Nguyễn Văn An" in pdf_text


def test_one_refused_recipient_means_nobody_receives_it(
    start_sink: Callable[..., Sink], tls: Any, store_url: str, tmp_path: Path
) -> None:
    sink = start_sink(refuse=frozenset({TO[1]}))
    result = _send(
        _config(tmp_path, sink, tls), store_url, "--period", "2021-H1", "--to", TO[0], "--to", TO[1]
    )
    assert result.exit_code == 6
    assert f"refused the recipient {TO[1]}: 550" in result.output and "nothing was sent" in result.output
    assert sink.messages() == []


def test_a_wrong_password_is_refused_and_never_shown(
    start_sink: Callable[..., Sink], tls: Any, store_url: str, tmp_path: Path
) -> None:
    sink = start_sink()
    wrong = "sai-mật-khẩu-7781"
    result = _send(
        _config(tmp_path, sink, tls, password=wrong), store_url, "--period", "2021-H1", "--to", TO[0]
    )
    assert result.exit_code == 6
    assert f"refused the login of {USER}: 535" in result.output
    assert wrong not in result.output and PASSWORD not in result.output
    assert sink.messages() == []


def test_an_untrusted_certificate_stops_before_the_password(
    start_sink: Callable[..., Sink], tls: Any, store_url: str, tmp_path: Path
) -> None:
    sink = start_sink()
    config = _config(tmp_path, sink, tls)
    config.write_text(config.read_text().replace(f'BUS389_MAIL__SSL_CAFILE="{tls.ca_cert}"\n', ""))
    result = _send(config, store_url, "--period", "2021-H1", "--to", TO[0])
    assert result.exit_code == 6
    assert "TLS with the SMTP server" in result.output and "certificate" in result.output
    assert sink.messages() == []


def test_a_server_without_starttls_gets_nothing(tmp_path: Path) -> None:
    from aiosmtpd.controller import Controller

    received: list[Any] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            received.append(envelope)
            return "250 OK"

    port = _free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port, auth_require_tls=False)
    controller.start()
    try:
        settings = MailSettings(host="127.0.0.1", port=port, username=USER, password=SecretStr(PASSWORD))
        message = build_message(
            sender="a@bcd389.gov.vn", recipients=[TO[0]], subject="x", body="y", attachments=[]
        )
        with pytest.raises(MailError, match="offers no STARTTLS: refusing to send the report in clear"):
            send_message(settings, message)
    finally:
        controller.stop()
    assert received == []


@pytest.mark.parametrize(
    "address",
    [
        "",
        "không-phải-địa-chỉ",
        "a@b",
        "a@@b.vn",
        "Văn Phòng <vp@bcd389.gov.vn>",
        "vp@bcd389.gov.vn, ke-gian@example.com",
        "vp@bcd389.gov.vn\r\nBcc: ke-gian@example.com",
        "vp@-bcd389.gov.vn",
        ".vp@bcd389.gov.vn",
    ],
)
def test_an_invalid_recipient_is_refused_before_the_server_is_contacted(
    start_sink: Callable[..., Sink], tls: Any, store_url: str, tmp_path: Path, address: str
) -> None:
    with pytest.raises(InputError, match="recipient"):
        check_address(address)
    sink = start_sink()
    result = _send(
        _config(tmp_path, sink, tls), store_url, "--period", "2021-H1", "--to", TO[0], "--to", address
    )
    assert result.exit_code == 1
    assert "is not an e-mail address" in result.output or "is not a domain name" in result.output
    assert "Traceback" not in result.output
    assert sink.messages() == []


def test_an_international_domain_is_sent_as_idna() -> None:
    ascii_label = "bộcôngthương".encode("idna").decode("ascii")
    assert ascii_label.startswith("xn--")
    assert check_address("vanphong@bộcôngthương.vn") == f"vanphong@{ascii_label}.vn"


def test_bad_periods_and_settings(
    start_sink: Callable[..., Sink], tls: Any, store_url: str, tmp_path: Path
) -> None:
    sink = start_sink()
    config = _config(tmp_path, sink, tls)
    future = _send(config, store_url, "--period", "2999-H2", "--to", TO[0])
    assert future.exit_code == 1 and "has not begun" in future.output
    empty = _send(config, store_url, "--period", "2019-H1", "--to", TO[0])
    assert empty.exit_code == 1 and "has no event" in empty.output
    env = {"BUS389_STORE__STANDING_OFFICE_URL": store_url}  # no signer
    unsigned = CliRunner().invoke(
        cli, ["--config", str(config), "report", "send", "--period", "2021-H1", "--to", TO[0]], env=env
    )
    assert unsigned.exit_code == 2 and "BUS389_REPORT__SIGNER_NAME is not set" in unsigned.output
    readable = _send(
        _config(tmp_path, sink, tls, mode=0o644), store_url, "--period", "2021-H1", "--to", TO[0]
    )
    assert readable.exit_code == 2 and "readable by others" in readable.output
    assert PASSWORD not in readable.output
    assert sink.messages() == []


def test_the_password_file_must_be_private(tmp_path: Path) -> None:
    path = tmp_path / "smtp-password"
    path.write_text(PASSWORD + "\n", encoding="utf-8")
    path.chmod(0o640)
    with pytest.raises(ConfigError, match="readable by others") as caught:
        mail_password(MailSettings(password_file=path))
    assert PASSWORD not in str(caught.value)
    path.chmod(0o600)
    assert mail_password(MailSettings(password_file=path)).get_secret_value() == PASSWORD
    with pytest.raises(ConfigError, match="BUS389_MAIL__PASSWORD is not set"):
        mail_password(MailSettings())


def _sample(name: str, labels: dict[str, str]) -> float:
    return float(REGISTRY.get_sample_value(name, labels) or 0.0)


def test_the_schedule_sends_the_report_once_on_its_due_date(
    start_sink: Callable[..., Sink], tls: Any, store_url: str
) -> None:
    sink = start_sink()
    settings = Settings(
        store=StoreSettings(standing_office_url=store_url),
        report=ReportSettings(
            signer_name="Nguyễn Văn An",
            signer_title="Phó Trưởng ban",
            send_to=TO,
            due_dates={"H1": "07-15", "H2": "01-15"},
        ),
        mail=MailSettings(
            host="127.0.0.1",
            port=sink.port,
            username=USER,
            password=SecretStr(PASSWORD),
            ssl_cafile=tls.ca_cert,
        ),
    )
    labels = {"kind": "six-monthly"}
    before = _sample("bus389_reports_sent_total", labels)
    due = due_at(Period.parse("2021-H1"), dict(settings.report.due_dates))
    assert due == datetime(2021, 7, 15, tzinfo=VN_TZ)
    with StandingOfficeStore.open(store_url, create=False) as store:
        schedule = ReportSchedule(settings, store)
        assert schedule.check(datetime(2021, 7, 14, 23, 59, tzinfo=VN_TZ)) is None
        assert sink.messages() == []
        sent_at = datetime(2021, 7, 15, 8, 0, tzinfo=VN_TZ)
        assert schedule.check(sent_at) == Period.parse("2021-H1")
        assert schedule.check(datetime(2021, 7, 20, tzinfo=VN_TZ)) is None  # sent already: not again
    [message] = sink.messages()
    assert message["Subject"] == "[BCĐ 389] Báo cáo sáu tháng 2021-H1"
    assert _sample("bus389_reports_sent_total", labels) == before + 1
    assert _sample("bus389_report_last_sent_timestamp_seconds", labels) == sent_at.astimezone(UTC).timestamp()
    # a restarted service reads the last sending back from the store
    from bus389.metrics import STANDING_OFFICE_REPORT_LAST_SENT

    STANDING_OFFICE_REPORT_LAST_SENT.labels("six-monthly").set(0)
    with StandingOfficeStore.open(store_url, create=False) as store:
        ReportSchedule(settings, store).restore_metrics(datetime(2021, 12, 1, tzinfo=VN_TZ))
    assert _sample("bus389_report_last_sent_timestamp_seconds", labels) == sent_at.astimezone(UTC).timestamp()


def test_the_schedule_retries_after_a_refusal(
    start_sink: Callable[..., Sink], tls: Any, store_url: str
) -> None:
    refusing = start_sink(refuse=frozenset({TO[0]}))
    settings = Settings(
        store=StoreSettings(standing_office_url=store_url),
        report=ReportSettings(signer_name="A", signer_title="B", send_to=(TO[0],)),
        mail=MailSettings(
            host="127.0.0.1",
            port=refusing.port,
            username=USER,
            password=SecretStr(PASSWORD),
            ssl_cafile=tls.ca_cert,
        ),
    )
    with StandingOfficeStore.open(store_url, create=False) as store:
        at = datetime(2021, 7, 16, tzinfo=VN_TZ)
        assert ReportSchedule(settings, store).check(at) is None  # refused: logged, not marked as sent
        assert refusing.messages() == []
        working = start_sink()
        fixed = settings.model_copy(update={"mail": settings.mail.model_copy(update={"port": working.port})})
        assert ReportSchedule(fixed, store).check(at) == Period.parse("2021-H1")
    assert len(working.messages()) == 1


def test_the_service_thread_mails_the_last_period_when_due(
    start_sink: Callable[..., Sink], tls: Any, tmp_path: Path
) -> None:
    import threading
    import time

    from _so_records import seller, suspect_seller, tax_discrepancy

    from bus389.consumers.standing_office.service import _start_schedule

    now = datetime.now(UTC)
    local = now.astimezone(VN_TZ)
    last = Period(local.year, 1 if local.month <= 6 else 2).previous()
    inside = last.start.astimezone(UTC) + (last.end - last.start) / 2
    url = f"sqlite:///{tmp_path / 'so.sqlite3'}"
    with StandingOfficeStore.open(url) as store:
        who = seller("Võ Thị Kim Loan", tax_code="4300957713")
        store.add_event(suspect_seller("police", inside, who))
        store.add_event(tax_discrepancy(inside, who, undeclared=2_040_000_000, owed=30_600_000))
    sink = start_sink()
    settings = Settings(
        store=StoreSettings(standing_office_url=url),
        report=ReportSettings(
            signer_name="Nguyễn Văn An",
            signer_title="Phó Trưởng ban",
            send_to=(TO[0],),
            # due the day after the period ends: already past, whatever today is
            due_dates={"H1": "07-01", "H2": "01-01"},
            schedule_check_s=0.5,
        ),
        mail=MailSettings(
            host="127.0.0.1",
            port=sink.port,
            username=USER,
            password=SecretStr(PASSWORD),
            ssl_cafile=tls.ca_cert,
        ),
    )
    stop = threading.Event()
    thread = _start_schedule(settings, stop)
    assert thread is not None
    try:
        deadline = time.monotonic() + 120
        while not sink.messages() and time.monotonic() < deadline:
            stop.wait(0.2)  # waiting for the observable condition: a message in the Maildir
        [message] = sink.messages()
        assert message["Subject"] == f"[BCĐ 389] Báo cáo sáu tháng {last.label}"
        with StandingOfficeStore.open(url, create=False) as store:
            assert store.get_meta(f"report_sent:{last.label}")
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert len(sink.messages()) == 1  # checked again and again: sent once


def test_the_demo_sink_runs_as_a_process_and_stops_on_sigterm(
    tls: Any, store_url: str, tmp_path: Path
) -> None:
    import signal
    import sys

    port = _free_port()
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD + "\n", encoding="utf-8")
    password_file.chmod(0o600)
    pid_file = tmp_path / "sink.pid"
    log = tmp_path / "sink.log"
    with log.open("wb") as out:
        process = subprocess.Popen(  # the command line deploy/demo.sh runs
            [
                sys.executable,
                str(REPO_ROOT / "deploy" / "smtp_sink.py"),
                "--port",
                str(port),
                "--cert",
                str(tls.broker_keystore),
                "--maildir",
                str(tmp_path / "maildir"),
                "--user",
                USER,
                "--password-file",
                str(password_file),
                "--pid-file",
                str(pid_file),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(
            lambda: b"listening" in log.read_bytes() or process.poll() is not None,
            60,
            "the SMTP sink's own 'listening' line",
        )
        assert b"listening" in log.read_bytes(), log.read_text()
        assert pid_file.read_text().strip() == str(process.pid)
        sink = Sink(port, tmp_path / "maildir")
        result = _send(_config(tmp_path, sink, tls), store_url, "--period", "2021-H1", "--to", TO[0])
        assert result.exit_code == 0, result.output
        assert len(sink.messages()) == 1
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    assert not pid_file.exists()
