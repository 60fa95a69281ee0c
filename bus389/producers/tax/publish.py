"""Publishing the tax office's spreadsheet as ``tax_discrepancy`` alerts on the tax outbox.

The steps, in order:

1. Read the file (:mod:`bus389.producers.tax.spreadsheet`); a missing column stops everything.
2. Turn every row into an alert (:mod:`bus389.producers.tax.alerts`) and build its event with
   :func:`bus389.events.build_event` (event id keyed with the tax office's alert-id key,
   :mod:`~bus389.producers.tax.id_key`; source ``tax``) and encode it, so that every
   rule of the event model is checked before anything is sent. A row is an alert, *skipped* (nothing
   undeclared) or *rejected* (each problem names the row and the column as the file writes it; two
   rows for the same seller, platform and period are rejected too).
3. Rejected rows without ``skip_invalid``: nothing is published and the broker is not contacted. With
   ``skip_invalid`` the rejected rows (original cells plus a reason column) go to
   ``<input stem>.rejected.csv`` beside the input (UTF-8 with BOM, so Excel opens it right), and the
   valid rows are published.
4. Read the tax outbox for the alert ids already on it (:mod:`~bus389.producers.tax.dedup`) and leave
   those out.
5. Publish the rest with :class:`~bus389.producers.publisher.Publisher`: transactional,
   idempotent, ``acks=all``, one transaction per ``settings.kafka.transaction_chunk_events`` alerts;
   the key is the event id.

A dry run stops after step 2: it reports what the file holds and sends, reads and writes nothing (but
the alert-id key, created on first use so that the ids it shows are the ones a publish sends).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from bus389.agencies import Agency
from bus389.atomic_files import write_file
from bus389.codec import encode_event
from bus389.errors import BusError, CodecError, InputError, PublishError
from bus389.events import build_event, validation_problems
from bus389.producers.publisher import OutgoingEvent, Publisher
from bus389.producers.tax.alerts import (
    EVENT_TYPE,
    SENSITIVITY,
    Alert,
    Rejected,
    Skipped,
    TaxRates,
    cell_problem,
    row_to_alert,
)
from bus389.producers.tax.dedup import published_event_ids
from bus389.producers.tax.headers import Column
from bus389.producers.tax.id_key import AlertIdKey, load_alert_id_key
from bus389.producers.tax.spreadsheet import Row, Table, display_cell, read_table
from bus389.safe_text import csv_cell
from bus389.settings import Settings

__all__ = [
    "REASON_HEADER",
    "AlertsReport",
    "ReadyAlert",
    "prepare_alerts",
    "publish_alerts",
    "rejected_path",
    "write_rejected",
]

AGENCY = Agency.TAX
REASON_HEADER = "Lý do từ chối"
"""The column the rejected-rows file adds (ignored when that file is published again once fixed)."""

# Which spreadsheet column an event field comes from, to name it when the event model refuses it.
_FIELD_COLUMNS: tuple[tuple[str, Column], ...] = (
    ("seller.name", Column.SELLER_NAME),
    ("seller.tax_code", Column.TAX_CODE),
    ("seller.national_id", Column.NATIONAL_ID),
    ("seller.phone", Column.PHONE),
    ("seller.address", Column.ADDRESS),
    ("seller.province", Column.ADDRESS),
    ("accounts.0.platform", Column.PLATFORM),
    ("accounts", Column.ACCOUNT),
    ("period", Column.PERIOD),
    ("estimated_revenue_vnd", Column.ESTIMATED_REVENUE),
    ("declared_revenue_vnd", Column.DECLARED_REVENUE),
    ("undeclared_revenue_vnd", Column.ESTIMATED_REVENUE),
    ("estimated_tax_owed_vnd", Column.ESTIMATED_REVENUE),
    ("notes", Column.NOTES),
)


@dataclass(frozen=True)
class ReadyAlert:
    """An alert whose event is built and encoded: ready to send."""

    alert: Alert
    outgoing: OutgoingEvent

    @property
    def event_id(self) -> str:
        return self.alert.event_id


@dataclass
class AlertsReport:
    """What a publish found in the file and did with it."""

    source: Path
    topic: str
    rows_read: int
    ready: list[ReadyAlert] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    dry_run: bool = False
    skip_invalid: bool = False
    already_published: list[str] | None = None
    """Ids found on the outbox; None when the outbox was not read (dry run, or rejected rows)."""
    published: list[str] = field(default_factory=list)
    rejected_file: Path | None = None
    created_id_key: Path | None = None
    """The alert-id key file this run created (the first publish on this machine), else None."""

    @property
    def blocked(self) -> bool:
        """Rows were rejected and ``--skip-invalid`` was not given: nothing was published."""
        return bool(self.rejected) and not self.skip_invalid

    def problem_lines(self) -> list[str]:
        return [problem for rejected in self.rejected for problem in rejected.problems]

    def summary_lines(self) -> list[str]:
        already = "not checked" if self.already_published is None else str(len(self.already_published))
        published = f"{len(self.published)}"
        if self.dry_run:
            published = f"0 (dry run: {len(self.ready)} valid alerts would be published)"
        elif self.blocked:
            published = "0 (rows were rejected: fix them, or publish the others with --skip-invalid)"
        lines = [
            f"file: {self.source}",
            f"rows read: {self.rows_read}",
            f"events published: {published}",
            f"already published: {already}",
            f"skipped (no discrepancy): {len(self.skipped)}",
            f"rejected: {len(self.rejected)}",
        ]
        if self.rejected_file is not None:
            lines.append(f"rejected rows written to: {self.rejected_file}")
        if self.created_id_key is not None:
            lines.append(
                f"alert-id key created: {self.created_id_key} (0600; back it up: the alert ids depend on "
                "it, and with a new key files already published would be published again)"
            )
        if self.published:
            lines.append(f"topic: {self.topic}")
        return lines


def _column_of(path: str, table: Table) -> Column | None:
    for prefix, column in _FIELD_COLUMNS:
        if (path == prefix or path.startswith(prefix + ".")) and table.columns.get(column) is not None:
            return column
    return None


def _build(table: Table, alert: Alert, now: datetime | None) -> ReadyAlert | Rejected:
    data = dict(alert.fields)
    data["meta"] = {"sensitivity": SENSITIVITY, "urgency": alert.urgency}
    try:
        event = build_event(EVENT_TYPE, AGENCY, data, now=now, event_id=alert.event_id)
        encoded = encode_event(event)
    except ValidationError as exc:
        problems = []
        for problem in validation_problems(exc):
            path, _, message = problem.partition(": ")
            column = _column_of(path, table)
            problems.append(cell_problem(table, alert.row, column, message if column else problem))
        return Rejected(alert.row, problems)
    except CodecError as exc:
        return Rejected(alert.row, [cell_problem(table, alert.row, None, f"cannot be encoded: {exc}")])
    return ReadyAlert(alert, OutgoingEvent(alert.row.number, event, encoded))


def prepare_alerts(
    settings: Settings, path: Path, *, id_key: AlertIdKey, now: datetime | None = None
) -> tuple[Table, list[ReadyAlert], list[Skipped], list[Rejected]]:
    """Read ``path`` and validate every row, ids keyed with ``id_key``; nothing is sent.

    Raises :class:`InputError` for the file.
    """
    table = read_table(path, limits=settings.input)
    return (table, *_prepare_rows(settings, table, id_key, now))


def _prepare_rows(
    settings: Settings, table: Table, id_key: AlertIdKey, now: datetime | None
) -> tuple[list[ReadyAlert], list[Skipped], list[Rejected]]:
    rates = TaxRates(vat_bp=settings.tax.vat_rate_bp, pit_bp=settings.tax.pit_rate_bp)
    ready: list[ReadyAlert] = []
    skipped: list[Skipped] = []
    rejected: list[Rejected] = []
    first_row_of: dict[str, Row] = {}
    for row in table.rows:
        result = row_to_alert(table, row, id_key=id_key.secret, rates=rates)
        if isinstance(result, Skipped):
            skipped.append(result)
            continue
        if isinstance(result, Rejected):
            rejected.append(result)
            continue
        earlier = first_row_of.setdefault(result.event_id, row)
        if earlier is not row:
            message = (
                f"same seller, platform and period as row {earlier.number} "
                "(one alert per seller, platform and period: merge the two rows)"
            )
            rejected.append(Rejected(row, [cell_problem(table, row, None, message)]))
            continue
        built = _build(table, result, now)
        if isinstance(built, ReadyAlert):
            ready.append(built)
        else:
            rejected.append(built)
    return ready, skipped, rejected


def rejected_path(path: Path) -> Path:
    """``<input stem>.rejected.csv`` beside the input."""
    return path.with_name(f"{path.stem}.rejected.csv")


def write_rejected(table: Table, rejected: Sequence[Rejected], target: Path) -> None:
    """The rejected rows, every original cell plus :data:`REASON_HEADER`, as CSV in UTF-8 with BOM.

    Written atomically through a new temporary file (never through a planted link); every cell is
    neutralised against formula injection (:func:`~bus389.safe_text.csv_cell`).
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([csv_cell(h) for h in (*table.headers, REASON_HEADER)])
    for item in rejected:
        writer.writerow([csv_cell(display_cell(c)) for c in item.row.cells] + [csv_cell(item.reason)])
    data = buffer.getvalue().encode("utf-8-sig")
    write_file(target, data, error=lambda message: InputError(f"rejected rows: {message}"))


def publish_alerts(
    settings: Settings,
    path: Path,
    *,
    skip_invalid: bool = False,
    dry_run: bool = False,
    now: datetime | None = None,
) -> AlertsReport:
    """Publish the alerts of ``path`` to the tax outbox (see the module docstring for the steps).

    Returns the report; rejected rows without ``skip_invalid`` are in it with nothing published (the
    caller exits non-zero). Raises :class:`InputError` for an unreadable file or a missing column,
    :class:`~bus389.errors.ConfigError` when the alert-id key cannot be read or made,
    :class:`~bus389.errors.BrokerError` when the outbox cannot be read and :class:`PublishError` when
    a transaction fails (naming the alerts committed before it, which a re-run will not publish again,
    and those whose commit was not confirmed, which a re-run may safely publish again: same ids).
    """
    table = read_table(path, limits=settings.input)
    # After the file is read: a file that cannot be read makes no key.
    id_key = load_alert_id_key(settings.tax)
    ready, skipped, rejected = _prepare_rows(settings, table, id_key, now)
    report = AlertsReport(
        source=path,
        topic=settings.topics.outbox(AGENCY),
        rows_read=len(table.rows),
        ready=ready,
        skipped=skipped,
        rejected=rejected,
        dry_run=dry_run,
        skip_invalid=skip_invalid,
        created_id_key=id_key.path if id_key.created else None,
    )
    if dry_run or report.blocked:
        return report
    if rejected:
        report.rejected_file = rejected_path(path)
        write_rejected(table, rejected, report.rejected_file)
    if not ready:
        report.already_published = []
        return report
    present = published_event_ids(settings, agency=AGENCY, among=[r.event_id for r in ready])
    report.already_published = [r.event_id for r in ready if r.event_id in present]
    to_send = [r.outgoing for r in ready if r.event_id not in present]
    if not to_send:
        return report
    size = settings.kafka.transaction_chunk_events
    publisher = Publisher(settings, AGENCY)
    try:
        with publisher:
            for start in range(0, len(to_send), size):
                chunk = publisher.publish(to_send[start : start + size])
                report.published.extend(chunk.event_ids)
    except BusError as exc:
        raise _publish_failure(path, report, to_send, exc, unknown=publisher.outcome_unknown) from exc
    return report


def _publish_failure(
    path: Path, report: AlertsReport, to_send: Sequence[OutgoingEvent], exc: BusError, *, unknown: bool
) -> PublishError:
    """What a failed publish of ``path`` did: committed, not confirmed (``unknown``), not committed."""
    done = len(report.published)
    committed = set(report.published)
    unconfirmed = tuple(getattr(exc, "unconfirmed_event_ids", ())) if unknown else ()
    settled = committed | set(unconfirmed)
    lines = [
        f"publishing {path.name} to {report.topic} {'was not confirmed' if unknown else 'failed'}: {exc}"
    ]
    if done:
        lines.append(
            f"{done} of {len(to_send)} alerts were committed before the failure (a re-run skips them)"
        )
    elif not unknown:
        lines.append("nothing was committed")
    if unknown:
        lines.append(
            f"{len(unconfirmed)} alerts may or may not be on {report.topic} (their commit was not "
            "confirmed); re-running the file is safe: each alert's id comes from its row, the ids "
            "already on the outbox are skipped, and consumers take a repeated id as the same alert"
        )
    return PublishError(
        "\n".join(lines),
        retriable=exc.retriable and not unknown,
        committed_event_ids=tuple(report.published),
        uncommitted_event_ids=tuple(e.event_id for e in to_send if e.event_id not in settled),
        unconfirmed_event_ids=unconfirmed,
    )
