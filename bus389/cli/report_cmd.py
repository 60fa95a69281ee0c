"""``bus389 report``: the standing office's reports (plan III.3) from its store, written or mailed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from bus389.atomic_files import write_file
from bus389.cli._context import pass_settings
from bus389.errors import InputError
from bus389.safe_text import for_terminal
from bus389.settings import Settings

if TYPE_CHECKING:
    from bus389.consumers.standing_office.case_report import Recipients

__all__ = ["report", "write_atomically"]

_TEXT_FORMATS = ("md", "csv", "html")
_DOCUMENT_FORMATS = ("docx", "pdf")


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the whole new one, never half.

    A symbolic link planted at ``path`` is replaced, never written through; the new file keeps the
    user's umask; a bad path is a one-line :class:`InputError`.
    """
    write_file(path, data, make_parents=True)


def _period(_ctx: click.Context, _param: click.Parameter, value: str | None) -> object:
    from bus389.consumers.standing_office.period import Period

    if value is None:
        return None
    try:
        return Period.parse(value)
    except InputError as exc:
        raise click.BadParameter(str(exc)) from exc


_PERIOD_HELP = "The half year: H1 = January–June, H2 = July–December (Vietnam time)."


@click.group("report", invoke_without_command=True)
@click.option("--period", callback=_period, metavar="YYYY-H1|YYYY-H2", help=_PERIOD_HELP)
@click.option(
    "--kind",
    type=click.Choice(["six-monthly", "rapid", "typical"]),
    default="six-monthly",
    show_default=True,
    help="six-monthly (--period); rapid: one case as it stands (--case); typical: a closed case (--case).",
)
@click.option(
    "--case", "case_ref", metavar="REF", help="The case (meta.case_ref) of a rapid or typical report."
)
@click.option(
    "--correlate",
    metavar="TAX_CODE|DOMAIN|PHONE",
    help="Instead of a report: every stored report of this tax code, domain or phone, whenever made.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice([*_TEXT_FORMATS, *_DOCUMENT_FORMATS]),
    default="md",
    show_default=True,
    help="Markdown, CSV (UTF-8 with BOM, for Excel), HTML, a Word document in the Decree 30/2020/NĐ-CP "
    "layout, or its PDF (LibreOffice).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write to this file (atomically). Default: standard output; for docx/pdf bao-cao-<period>.<format>.",
)
@click.option(
    "--number", metavar="NUMBER/SYMBOL", help="The document's 'Số:' (default BUS389_REPORT__NUMBER_SYMBOL)."
)
@pass_settings
def report(
    settings: Settings,
    period: object,
    kind: str,
    case_ref: str | None,
    correlate: str | None,
    fmt: str,
    out: Path | None,
    number: str | None,
) -> None:
    """Write the standing office's reports, with Vietnamese labels; `report send` mails them.

    The six-monthly report (--period), per member agency: events by type; domain-block requests with
    their outcomes and the time from request to result; undeclared-seller alerts and the tax amounts;
    cases referred and their outcomes (fines, goods seized); members that filed no six-monthly
    periodic_report; requests unanswered past their deadline (BUS389_REPORT__ANSWER_DEADLINE_DAYS, as
    of the report time or the end of the period, whichever is earlier); the correlation of sellers, tax
    codes, domains, phone numbers and accounts reported in the period with every stored report of them,
    whenever made, by two or more members; the comparison with the three periods before; charts (HTML,
    docx, pdf). Reads the store that `bus389 serve standing-office` fills (BUS389_STORE__STANDING_OFFICE_URL).

    docx/pdf: the document of Decree 30/2020/NĐ-CP; issuing body, number, place, signer and recipients
    from BUS389_REPORT__* (SIGNER_NAME and SIGNER_TITLE are required). The PDF is that document
    converted by LibreOffice (soffice). Exit codes: 1 bad input, 2 settings, 5 the document could not
    be made, 6 the mail could not be sent.

    \b
    Example:
      bus389 report --period 2021-H1
      bus389 report --period 2021-H2 --format html --out bao-cao-2021-H2.html
      bus389 report --period 2021-H1 --format pdf           # writes bao-cao-2021-H1.pdf
      bus389 report --kind rapid --case QLTT-2021-014 --format docx
      bus389 report --correlate 0312345678
      bus389 report send --period 2021-H1 --to vanphong@bcd389.gov.vn
    """
    ctx = click.get_current_context()
    if ctx.invoked_subcommand is not None:
        if (
            period is not None
            or case_ref
            or correlate
            or fmt != "md"
            or out
            or number
            or kind != "six-monthly"
        ):
            raise click.UsageError(f"give the options after `report {ctx.invoked_subcommand}`")
        return
    from bus389.consumers.standing_office.output import Output, report_output
    from bus389.consumers.standing_office.period import Period
    from bus389.consumers.standing_office.store import StandingOfficeStore

    chosen = [
        name
        for name, given in (("--period", period), ("--case", case_ref), ("--correlate", correlate))
        if given
    ]
    if correlate is not None and len(chosen) > 1:
        raise click.UsageError("--correlate stands alone: give it without --period or --case")
    if kind == "six-monthly" and correlate is None:
        if case_ref is not None:
            raise click.UsageError("--case goes with --kind rapid or --kind typical")
        if not isinstance(period, Period):
            raise click.UsageError("give --period YYYY-H1|YYYY-H2 (or --kind rapid|typical --case REF)")
    if kind != "six-monthly" and correlate is None and (not case_ref or period is not None):
        raise click.UsageError(f"--kind {kind} takes --case REF (and no --period)")
    if fmt in _DOCUMENT_FORMATS:
        from bus389.consumers.standing_office.document import signer_from

        signer_from(settings.report)  # before any work: no document without a signer

    now = datetime.now(UTC)
    with StandingOfficeStore.open(
        settings.store.standing_office_url, create=False, ignore_domains=settings.ict.never_block
    ) as store:
        output: Output
        if correlate is not None:
            from bus389.consumers.standing_office.history import entity_history, history_layout

            history = entity_history(store, correlate)
            blocks = history_layout(history)
            stem = "lich-su-" + "".join(
                ch if ch.isalnum() or ch in ".-" else "-" for ch in history.keys[0][1]
            )
            summary = f"Lịch sử báo cáo: {history.query}"
            output = report_output(
                blocks, fmt, settings.report, stem=stem, summary=summary, number_symbol=number, issued_at=now
            )
        elif kind == "six-monthly":
            from bus389.consumers.standing_office.delivery import check_not_empty, check_reportable
            from bus389.consumers.standing_office.report import build_report

            assert isinstance(period, Period)  # noqa: S101 (checked above)
            check_reportable(period, now)
            model = build_report(store, period, settings=settings.report, now=now)
            if fmt in _DOCUMENT_FORMATS:
                check_not_empty(model)
            output = report_output(model, fmt, settings.report, stem=period.label, number_symbol=number)
        else:
            from bus389.consumers.standing_office.case_report import build_case_report, case_layout

            assert case_ref is not None  # noqa: S101 (checked above)
            case = build_case_report(store, case_ref, kind, recipients=_routing(settings, store), now=now)
            stem = f"{kind}-" + "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in case.case_ref)
            output = report_output(
                case_layout(case),
                fmt,
                settings.report,
                stem=stem,
                summary=case.title,
                number_symbol=number,
                issued_at=now,
            )
    if out is None and fmt in _TEXT_FORMATS:
        # Names and reasons come from other agencies: on a terminal they print, never act.
        click.echo(for_terminal(output.data.decode("utf-8"), keep_newlines=True), nl=False)
        return
    target = out or Path(output.name)
    write_atomically(target, output.data)
    click.echo(f"wrote {target} ({fmt})", err=True)


def _routing(settings: Settings, store: object) -> Recipients:
    """Who the routing policy delivers a stored event to: :func:`bus389.routing.decision.decide` itself."""
    from bus389.agencies import Agency
    from bus389.consumers.standing_office.store import StandingOfficeStore, StoredEvent
    from bus389.routing.decision import Original, decide
    from bus389.routing.policy import load_policy

    assert isinstance(store, StandingOfficeStore)  # noqa: S101
    policy = load_policy(settings.router.policy_path)

    def recipients(event: StoredEvent) -> tuple[tuple[str, ...], str | None]:
        try:
            sender = Agency(event.source)
        except ValueError:
            return (), "unknown_sender"

        def original(event_id: str) -> Original | None:
            # The event being explained is not its own earlier copy; an original it answers is taken as
            # received by the answering agency (the store holds no delivery list).
            found = None if event_id == event.event_id else store.get(event_id)
            try:
                return Original(Agency(found.source), frozenset({sender})) if found else None
            except ValueError:
                return None

        decision = decide(sender, event.record, policy, original)
        return tuple(a.value for a in decision.recipients), decision.dlq_reason

    return recipients


@report.command("send")
@click.option("--period", required=True, callback=_period, metavar="YYYY-H1|YYYY-H2", help=_PERIOD_HELP)
@click.option(
    "--to", "recipients", multiple=True, required=True, metavar="ADDRESS", help="A recipient (repeatable)."
)
@click.option(
    "--format",
    "formats",
    type=click.Choice(_DOCUMENT_FORMATS),
    multiple=True,
    default=_DOCUMENT_FORMATS,
    show_default=True,
    help="Attach the document as (repeatable).",
)
@click.option(
    "--number", metavar="NUMBER/SYMBOL", help="The document's 'Số:' (default BUS389_REPORT__NUMBER_SYMBOL)."
)
@pass_settings
def send(
    settings: Settings,
    period: object,
    recipients: tuple[str, ...],
    formats: tuple[str, ...],
    number: str | None,
) -> None:
    """Mail the six-monthly report (docx and pdf attached, a plain-text summary) over SMTP.

    STARTTLS with the server's certificate verified (BUS389_MAIL__SSL_CAFILE or the system's CAs) and
    AUTH as BUS389_MAIL__USERNAME, the password from the 0600 --config file (BUS389_MAIL__PASSWORD) or
    a 0600 file (BUS389_MAIL__PASSWORD_FILE). Every recipient is accepted or nothing is sent; the
    documents are made before the server is contacted. Exit codes: 1 bad input (an address, the
    period), 2 settings (no signer, no password), 5 the document, 6 the SMTP server refused or failed.

    \b
    Example:
      bus389 --config mail.env report send --period 2021-H1 --to vanphong@bcd389.gov.vn \
        --to tonghop@qlttqn.gov.vn
    """
    from bus389.consumers.standing_office.delivery import send_six_monthly
    from bus389.consumers.standing_office.document import signer_from
    from bus389.consumers.standing_office.mail import check_address
    from bus389.consumers.standing_office.period import Period
    from bus389.consumers.standing_office.store import StandingOfficeStore

    if not isinstance(period, Period):
        raise click.BadParameter(str(period), param_hint="--period")
    for address in recipients:
        check_address(address)
    signer_from(settings.report)
    with StandingOfficeStore.open(
        settings.store.standing_office_url, create=False, ignore_domains=settings.ict.never_block
    ) as store:
        sent = send_six_monthly(
            store, period, settings, recipients, formats=tuple(dict.fromkeys(formats)), number_symbol=number
        )
    click.echo(
        f"sent {', '.join(o.name for o in sent)} to {', '.join(recipients)} ({period.label})", err=True
    )
