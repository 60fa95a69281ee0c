"""The report as an administrative document: a Word file in the layout of Decree 30/2020/NĐ-CP.

Decree 30/2020/NĐ-CP (công tác văn thư), Appendix I, prescribes how a state body's document looks; this
module writes that layout with python-docx around the same blocks every other format renders
(:func:`.render.layout`), so the figures are the report's own:

- A4, margins top/bottom 20 mm, left 30 mm, right 15 mm; Times New Roman (Decree 30, 1.III) at 13 pt for
  the body. A machine without Times New Roman shows its metric twin Liberation Serif (Debian's
  ``fonts-liberation2``: every Vietnamese letter), which fontconfig substitutes by name.
- The header, a borderless two-column table: left the governing body (upper case), the issuing body
  (upper case, bold) and ``Số: <number>/<symbol>``; right the national title ``CỘNG HÒA XÃ HỘI CHỦ
  NGHĨA VIỆT NAM`` (upper case, bold) and the motto ``Độc lập - Tự do - Hạnh phúc`` (bold), then the
  place and date in italics (``Quảng Ngãi, ngày 05 tháng 01 năm 2026``: day and month under 10 written
  with a leading zero, as the decree asks).
- The kind of document ``BÁO CÁO`` and its summary line, bold, centred; then the body.
- The footer, a borderless two-column table: left ``Nơi nhận:`` (bold italic) and the recipients, one
  ``- …;`` a line, the last ``- Lưu: VT.``; right the signer's block: the authority line (``TM.``,
  ``KT.``) and title in upper case bold, room for the signature, the name in bold.

The issuing body, number and symbol, place and signer come from ``settings.report``; a document with no
signer is not a document, so a missing ``signer_name``/``signer_title`` is a :class:`ConfigError` naming
the setting. Every text is data: python-docx writes it as XML text, never as markup.
"""

from __future__ import annotations

import io
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from docx import Document
from docx.enum.section import WD_ORIENT
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Cm, Mm, Pt, RGBColor

from bus389.consumers.standing_office.charts import Chart
from bus389.consumers.standing_office.period import VN_TZ
from bus389.consumers.standing_office.render import Block, Heading, ListBlock, Money, Para, Table
from bus389.errors import ConfigError
from bus389.settings import ReportSettings

__all__ = [
    "FONT",
    "MOTTO",
    "NATIONAL_TITLE",
    "DocumentHeader",
    "Signer",
    "date_line",
    "render_docx",
    "signer_from",
]

FONT = "Times New Roman"
NATIONAL_TITLE = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
MOTTO = "Độc lập - Tự do - Hạnh phúc"
RECIPIENTS_HEADING = "Nơi nhận:"


@dataclass(frozen=True)
class Signer:
    name: str
    title: str
    authority: str | None = None


@dataclass(frozen=True)
class DocumentHeader:
    """What the document says about itself, above and below the body."""

    governing_body: str
    issuing_body: str
    number_symbol: str
    place: str
    issued_at: datetime
    kind: str
    """``BÁO CÁO``."""
    summary: str
    """The line under the kind (trích yếu), e.g. ``Kết quả ... 6 tháng đầu năm 2021``."""
    recipients: tuple[str, ...]
    signer: Signer


def signer_from(settings: ReportSettings) -> Signer:
    """The signer of ``settings``; ConfigError naming the setting when it is not set."""
    for name in ("signer_name", "signer_title"):
        value = getattr(settings, name)
        if not (isinstance(value, str) and value.strip()):
            raise ConfigError(
                f"BUS389_REPORT__{name.upper()} is not set: a report sent as a document needs its "
                "signer's name and title (BUS389_REPORT__SIGNER_NAME, BUS389_REPORT__SIGNER_TITLE)"
            )
    assert settings.signer_name is not None and settings.signer_title is not None  # noqa: S101 (checked)
    return Signer(
        name=_nfc(settings.signer_name.strip()),
        title=_nfc(settings.signer_title.strip()),
        authority=_nfc(settings.signer_authority.strip()) if settings.signer_authority else None,
    )


def date_line(place: str, moment: datetime) -> str:
    """``Quảng Ngãi, ngày 05 tháng 01 năm 2026`` (Vietnam's date; day and month on two digits)."""
    day = moment.astimezone(VN_TZ).date()
    return f"{place}, ngày {day.day:02d} tháng {day.month:02d} năm {day.year}"


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


# --- low-level formatting --------------------------------------------------------------------------------


def _font(element: Any, *, size: float | None = None, bold: bool | None = None) -> None:
    """Times New Roman for every script of ``element`` (a run or a style), theme fonts removed."""
    font = element.font
    font.name = FONT
    if size is not None:
        font.size = Pt(size)
    if bold is not None:
        font.bold = bold
    rpr = element.element.get_or_add_rPr()
    fonts = rpr.find(qn("w:rFonts"))
    if fonts is None:
        fonts = OxmlElement("w:rFonts")
        rpr.insert(0, fonts)
    for attr in ("w:ascii", "w:hAnsi", "w:cs", "w:eastAsia"):
        fonts.set(qn(attr), FONT)
    for attr in ("w:asciiTheme", "w:hAnsiTheme", "w:cstheme", "w:eastAsiaTheme"):
        fonts.attrib.pop(qn(attr), None)


def _para(
    container: Any,
    text: str = "",
    *,
    size: float = 13,
    bold: bool = False,
    italic: bool = False,
    align: Any = None,
    space_after: float = 0,
    style: str | None = None,
) -> Any:
    paragraph = container.add_paragraph(style=style) if style else container.add_paragraph()
    if align is not None:
        paragraph.alignment = align
    paragraph.paragraph_format.space_after = Pt(space_after)
    paragraph.paragraph_format.space_before = Pt(0)
    if text:
        run = paragraph.add_run(_nfc(text))
        _font(run, size=size, bold=bold)
        run.italic = italic
    return paragraph


def _no_borders(table: Any) -> None:
    tbl_pr = table._tbl.tblPr
    borders = OxmlElement("w:tblBorders")
    for edge in ("top", "left", "bottom", "right", "insideH", "insideV"):
        element = OxmlElement(f"w:{edge}")
        element.set(qn("w:val"), "nil")
        borders.append(element)
    tbl_pr.append(borders)


def _underline_rule(paragraph: Any) -> None:
    """The short horizontal line Decree 30 draws under the issuing body and under the motto."""
    ppr = paragraph._p.get_or_add_pPr()
    border = OxmlElement("w:pBdr")
    bottom = OxmlElement("w:bottom")
    for key, value in (("w:val", "single"), ("w:sz", "6"), ("w:space", "1"), ("w:color", "000000")):
        bottom.set(qn(key), value)
    border.append(bottom)
    ppr.append(border)


def _two_columns(document: Any, left_cm: float, right_cm: float) -> tuple[Any, Any]:
    table = document.add_table(rows=1, cols=2)
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    table.autofit = False
    _no_borders(table)
    # LibreOffice lays out by the grid's column widths, Word by the cells': set both
    table.columns[0].width, table.columns[1].width = Cm(left_cm), Cm(right_cm)
    left, right = table.rows[0].cells
    left.width, right.width = Cm(left_cm), Cm(right_cm)
    # a new cell holds one empty paragraph: write into it instead of leaving a blank line
    return left, right


def _first_para(cell: Any, text: str, **kwargs: Any) -> Any:
    paragraph = cell.paragraphs[0]
    paragraph.alignment = kwargs.pop("align", WD_ALIGN_PARAGRAPH.CENTER)
    paragraph.paragraph_format.space_after = Pt(0)
    run = paragraph.add_run(_nfc(text))
    _font(run, size=kwargs.pop("size", 13), bold=kwargs.pop("bold", False))
    run.italic = kwargs.pop("italic", False)
    return paragraph


# --- the document ------------------------------------------------------------------------------------


def _page(document: Any) -> None:
    section = document.sections[0]
    section.orientation = WD_ORIENT.PORTRAIT
    section.page_width, section.page_height = Mm(210), Mm(297)
    section.top_margin = section.bottom_margin = Mm(20)
    section.left_margin, section.right_margin = Mm(30), Mm(15)
    for name in ("Normal", "Heading 1", "Heading 2", "Heading 3", "Caption", "List Bullet", "Table Grid"):
        style = document.styles[name]
        _font(style, size=13 if name != "Table Grid" else 10)
        if name.startswith("Heading") or name == "Caption":
            style.font.color.rgb = RGBColor(0, 0, 0)
            style.font.bold = name.startswith("Heading")
            style.font.italic = name == "Caption"
            style.font.size = Pt({"Heading 1": 14, "Heading 2": 13, "Heading 3": 13}.get(name, 12))
    document.core_properties.language = "vi-VN"


def _header(document: Any, head: DocumentHeader) -> None:
    left, right = _two_columns(document, 6.2, 10.3)
    _first_para(left, head.governing_body.upper(), size=12)
    issuer = _para(left, head.issuing_body.upper(), size=12, bold=True, align=WD_ALIGN_PARAGRAPH.CENTER)
    _underline_rule(issuer)
    _para(left, f"Số: {head.number_symbol}", size=13, align=WD_ALIGN_PARAGRAPH.CENTER, space_after=0)
    _first_para(right, NATIONAL_TITLE, size=12, bold=True)
    motto = _para(right, MOTTO, size=13, bold=True, align=WD_ALIGN_PARAGRAPH.CENTER)
    # the rule under the motto is as long as the motto: indent the paragraph it borders
    motto.paragraph_format.left_indent = motto.paragraph_format.right_indent = Cm(1.6)
    _underline_rule(motto)
    _para(right, "")
    _para(right, date_line(head.place, head.issued_at), size=13, italic=True, align=WD_ALIGN_PARAGRAPH.CENTER)
    _para(document, "")
    _para(document, head.kind, size=14, bold=True, align=WD_ALIGN_PARAGRAPH.CENTER)
    _para(document, head.summary, size=14, bold=True, align=WD_ALIGN_PARAGRAPH.CENTER, space_after=12)


_TEXT_WIDTH_CM = 16.5
"""A4 less the left (30 mm) and right (15 mm) margins."""


def _table(document: Any, block: Table) -> None:
    columns = len(block.headers)
    table = document.add_table(rows=1 + len(block.rows), cols=columns)
    table.style = document.styles["Table Grid"]
    table.autofit = False
    # the first column names who or what (an agency, a period): wider than the figures beside it
    first = 3.6 if columns > 2 else _TEXT_WIDTH_CM / columns
    rest = (_TEXT_WIDTH_CM - first) / (columns - 1) if columns > 1 else 0.0
    for index, column in enumerate(table.columns):
        width = Cm(first if index == 0 else rest)
        column.width = width  # LibreOffice reads the grid, Word the cells
        for cell in column.cells:
            cell.width = width
    for cell, text in zip(table.rows[0].cells, block.headers, strict=True):
        _first_para(cell, str(text), size=10, bold=True)
    for row_cells, row in zip((r.cells for r in table.rows[1:]), block.rows, strict=True):
        for cell, value in zip(row_cells, row, strict=True):
            numeric = isinstance(value, int | Money)
            align = WD_ALIGN_PARAGRAPH.RIGHT if numeric else WD_ALIGN_PARAGRAPH.LEFT
            _first_para(cell, str(value), size=10, align=align)
    _para(document, "", space_after=4)


def _body(document: Any, blocks: Sequence[Block]) -> None:
    for block in blocks:
        if isinstance(block, Heading):
            paragraph = document.add_heading(level=min(block.level, 3))
            paragraph.paragraph_format.space_before = Pt(6)
            run = paragraph.add_run(_nfc(block.text))
            _font(run, bold=True)
            run.font.color.rgb = RGBColor(0, 0, 0)
        elif isinstance(block, Para):
            paragraph = _para(document, block.text, align=WD_ALIGN_PARAGRAPH.JUSTIFY, space_after=6)
            paragraph.paragraph_format.first_line_indent = Cm(1)
        elif isinstance(block, ListBlock):
            for item in block.items:
                paragraph = _para(document, f"- {item}", align=WD_ALIGN_PARAGRAPH.JUSTIFY, space_after=2)
                paragraph.paragraph_format.first_line_indent = Cm(1)
        else:
            _table(document, block)


def _charts(document: Any, heading: str, charts: Sequence[Chart]) -> None:
    if not charts:
        return
    paragraph = document.add_heading(level=2)
    run = paragraph.add_run(_nfc(heading))
    _font(run, bold=True)
    run.font.color.rgb = RGBColor(0, 0, 0)
    for number, chart in enumerate(charts, start=1):
        picture = document.add_paragraph()
        picture.alignment = WD_ALIGN_PARAGRAPH.CENTER
        picture.add_run().add_picture(io.BytesIO(chart.png), width=Cm(15.5))
        _para(
            document,
            f"Biểu đồ {number}. {chart.title}",
            size=12,
            italic=True,
            align=WD_ALIGN_PARAGRAPH.CENTER,
            space_after=8,
        )


def _footer(document: Any, head: DocumentHeader) -> None:
    _para(document, "")
    left, right = _two_columns(document, 8.0, 8.5)
    _first_para(left, RECIPIENTS_HEADING, size=12, bold=True, italic=True, align=WD_ALIGN_PARAGRAPH.LEFT)
    recipients = list(head.recipients) or ["Lưu: VT"]
    for i, name in enumerate(recipients):
        end = "." if i == len(recipients) - 1 else ";"
        _para(left, f"- {name.rstrip(';.')}{end}", size=11, align=WD_ALIGN_PARAGRAPH.LEFT)
    signer = head.signer
    if signer.authority:
        _first_para(right, signer.authority.upper(), size=13, bold=True)
        _para(right, signer.title.upper(), size=13, bold=True, align=WD_ALIGN_PARAGRAPH.CENTER)
    else:
        _first_para(right, signer.title.upper(), size=13, bold=True)
    for _ in range(4):  # room for the signature and the seal
        _para(right, "")
    _para(right, signer.name, size=13, bold=True, align=WD_ALIGN_PARAGRAPH.CENTER)


def render_docx(
    head: DocumentHeader, blocks: Sequence[Block], *, charts: Sequence[Chart] = (), charts_heading: str = ""
) -> bytes:
    """The document's bytes (a .docx): header, ``blocks`` as its body, ``charts`` after them, footer."""
    document = Document()
    _page(document)
    _header(document, head)
    _body(document, blocks)
    _charts(document, charts_heading, charts)
    _footer(document, head)
    document.core_properties.title = _nfc(f"{head.kind} {head.summary}")
    document.core_properties.author = _nfc(head.issuing_body)
    # python-docx stamps "python-docx" and a fixed 2013 date; the issuing body and the report time say more
    document.core_properties.created = head.issued_at
    document.core_properties.modified = head.issued_at
    document.core_properties.last_modified_by = _nfc(head.issuing_body)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()
