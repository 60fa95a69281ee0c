"""Text that leaves the bus: CSV cells, terminal lines, JSON lines and Markdown stay data."""

from __future__ import annotations

import csv
import io
import json
import unicodedata

import pytest

from bus389.safe_text import csv_cell, for_terminal, has_control, json_for_terminal, markdown_inline


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ('=HYPERLINK("http://evil","x")', '\'=HYPERLINK("http://evil","x")'),
        ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("Nguyễn Thị Hồng", "Nguyễn Thị Hồng"),
        ("a=b", "a=b"),
        ("", ""),
        (None, ""),
    ],
)
def test_formula_leading_cells_are_quoted(cell: object, written: str) -> None:
    assert csv_cell(cell) == written


def test_numbers_stay_numbers() -> None:
    assert csv_cell(-5) == -5
    assert csv_cell(1_845_600_000) == 1_845_600_000
    assert csv_cell(2.5) == 2.5
    assert csv_cell(True) == "True"
    out = io.StringIO()
    csv.writer(out).writerow([csv_cell(-5), csv_cell("-5")])
    assert out.getvalue() == "-5,'-5\r\n"


def test_terminal_controls_are_shown_not_run() -> None:
    text = "Shop\x1b[2J\x1b]0;pwned\x07 \u202eabc\u202c \x00 \x9b31m \x7f x\ny\r"
    shown = for_terminal(text)
    assert shown == ("Shop\\x1b[2J\\x1b]0;pwned\\x07 <U+202E>abc<U+202C> \\x00 \\x9b31m \\x7f x\\x0ay\\x0d")
    assert has_control(shown) is None
    assert for_terminal("a\nb\rc", keep_newlines=True) == "a\nb\\x0dc"


@pytest.mark.parametrize(
    "char",
    ["\u202a", "\u202b", "\u202d", "\u2066", "\u2067", "\u2068", "\u2069", "\u200e", "\u200f", "\u061c"],
)
def test_every_bidi_control_is_made_visible(char: str) -> None:
    assert for_terminal(f"a{char}b") == f"a<U+{ord(char):04X}>b"


def test_vietnamese_is_untouched_and_nfc_kept() -> None:
    name = unicodedata.normalize("NFC", "Công ty TNHH Điện thoại Rẻ — Quảng Ngãi ₫")
    assert for_terminal(name) == name
    assert unicodedata.is_normalized("NFC", for_terminal(name))


def test_json_lines_keep_their_value_and_print_inert() -> None:
    value = {"name": "Shop\u202e\x9b\x1b Nguyễn"}
    line = json_for_terminal(json.dumps(value, ensure_ascii=False))
    assert json.loads(line) == value
    assert has_control(line) is None
    assert "Nguyễn" in line


def test_has_control_names_the_character() -> None:
    assert has_control("ok Nguyễn") is None
    assert has_control("a\tb") == "U+0009"
    assert has_control("a\tb\nc\r\n", allow_whitespace=True) is None
    assert has_control("a\x00b", allow_whitespace=True) == "U+0000"
    assert has_control("x\u2067", allow_whitespace=True) == "U+2067"


@pytest.mark.parametrize(
    "name",
    [
        "[Bấm vào đây](http://evil.example/steal)",
        "![x](http://evil.example/pixel.png)",
        "<img src=x onerror=alert(1)>",
        "<http://evil.example>",
        "https://evil.example/login",
        "www.evil.example",
        "**Đã xử lý** _xong_ ~~hủy~~ `code`",
        "cell | injected | columns",
    ],
)
def test_markdown_cannot_become_a_link_image_or_html(name: str) -> None:
    out = markdown_inline(name)
    assert "<" not in out and ">" not in out
    assert "](" not in out and "[" not in out.replace("\\[", "")
    assert "://" not in out.replace("\\://", "")
    assert "www." not in out.lower()
    for special in "*_~`|":
        assert special not in out.replace("\\" + special, "")


def test_markdown_line_starts_and_line_breaks() -> None:
    assert markdown_inline("# not a heading") == "\\# not a heading"
    assert markdown_inline("1. not a list") == "1\\. not a list"
    assert markdown_inline("- not an item") == "\\- not an item"
    assert markdown_inline("a\nb\r\nc") == "a b  c"
    assert markdown_inline("5. Thông tin trùng lặp", at_line_start=False) == "5. Thông tin trùng lặp"
    assert markdown_inline("Nguyễn Văn A, 1.845.600.000 đ") == "Nguyễn Văn A, 1.845.600.000 đ"
