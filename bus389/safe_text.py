"""Text that leaves the bus as data, never as an instruction: CSV cells, terminal lines, Markdown.

Whatever an agency wrote (a seller's name, a reason, a legal basis) reaches a spreadsheet, an
operator's terminal or a Markdown viewer. Each function here makes it inert for one of them:

- :func:`csv_cell`: the OWASP CSV-injection rule: a cell starting with ``=``, ``+``, ``-``, ``@``, a tab
  or a carriage return is prefixed with ``'`` so a spreadsheet shows it instead of evaluating it.
  Numbers the writer writes as numbers are left alone (``-5`` stays a number).
- :func:`for_terminal`: C0/C1 control characters, DEL (so every escape sequence) and the Unicode
  bidirectional overrides, isolates and marks are shown as visible escapes (``\\x1b``, ``<U+202E>``),
  never executed. Every other character (Vietnamese letters included) is kept byte for byte.
- :func:`markdown_inline`: Markdown's special characters are backslash-escaped and ``<``/``>`` turned
  into entities, so a name cannot become a link, an image, emphasis or HTML.
"""

from __future__ import annotations

import re

__all__ = [
    "BIDI_CONTROLS",
    "CSV_FORMULA_LEADS",
    "csv_cell",
    "for_terminal",
    "json_for_terminal",
    "has_control",
    "markdown_inline",
]

CSV_FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")
"""What a spreadsheet takes as the start of a formula (OWASP "CSV Injection")."""

BIDI_CONTROLS = frozenset(
    [chr(c) for c in range(0x202A, 0x202F)]  # LRE RLE PDF LRO RLO
    + [chr(c) for c in range(0x2066, 0x206A)]  # LRI RLI FSI PDI
    + ["\u200e", "\u200f", "\u061c"]  # LRM RLM ALM
)
"""Characters that reorder how text is displayed (Trojan Source, CVE-2021-42574)."""

_BIDI = "".join(sorted(BIDI_CONTROLS))
_CONTROL = re.compile(f"[\\x00-\\x1f\\x7f-\\x9f{_BIDI}]")
_CONTROL_KEEP_LINES = re.compile(f"[\\x00-\\x09\\x0b-\\x1f\\x7f-\\x9f{_BIDI}]")
_CONTROL_BUT_WHITESPACE = re.compile(f"[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f{_BIDI}]")
# Inline specials anywhere (emphasis, code, links, images, tables, strikethrough, entities); the
# block specials (#, +, -, digits and ".") only where they would start a line; "://" and "www." so
# that GFM's extended autolinks do not turn a name into a link.
_MARKDOWN_INLINE = re.compile(r"([\\`*_{}\[\]()!|~&])")
_MARKDOWN_LINE_START = re.compile(r"^(\s*)([#=]|[+\-](?=\s|$)|\d{1,9}(?=[.)](?:\s|$)))")
_AUTOLINK = re.compile(r"(?i)(://|www\.)")


def csv_cell(value: object) -> object:
    """``value`` as one CSV cell that a spreadsheet will not evaluate.

    Text starting with a formula character gets a leading ``'``; ``int``/``float`` values (what the
    writer means as numbers) pass through unchanged, so they stay numbers in the sheet. ``None`` is
    an empty cell.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return value
    text = str(value)
    if text.startswith(CSV_FORMULA_LEADS):
        return "'" + text
    return text


def _visible(match: re.Match[str]) -> str:
    char = match.group(0)
    code = ord(char)
    if char in BIDI_CONTROLS:
        return f"<U+{code:04X}>"
    return f"\\x{code:02x}"


def for_terminal(text: object, *, keep_newlines: bool = False) -> str:
    """``text`` with every control character and bidi control made visible instead of executed.

    ``ESC [ 2 J`` prints as ``\\x1b[2J``; U+202E as ``<U+202E>``. A newline is shown as ``\\x0a`` unless
    ``keep_newlines`` (for multi-line output of our own making, whose lines are already safe).
    The text is not otherwise changed: NFC stays NFC.
    """
    value = str(text)
    pattern = _CONTROL_KEEP_LINES if keep_newlines else _CONTROL
    return pattern.sub(_visible, value)


_JSON_UNESCAPED = re.compile(f"[\\x7f-\\x9f{_BIDI}]")


def json_for_terminal(line: str) -> str:
    """A JSON text (``json.dumps(..., ensure_ascii=False)``) with DEL, C1 and bidi controls as ``\\uXXXX``.

    ``json.dumps`` escapes C0 controls itself but writes these raw; escaped, the JSON decodes to the same
    value and prints inert. Outside strings JSON has no such characters, so only string content changes.
    """
    return _JSON_UNESCAPED.sub(lambda m: f"\\u{ord(m.group(0)):04x}", line)


def has_control(text: str, *, allow_whitespace: bool = False) -> str | None:
    """The first control or bidi character in ``text`` (as ``U+XXXX``), or None when there is none.

    ``allow_whitespace`` lets tab, newline and carriage return through (free text keeps its lines).
    """
    found = (_CONTROL_BUT_WHITESPACE if allow_whitespace else _CONTROL).search(text)
    return None if found is None else f"U+{ord(found.group(0)):04X}"


def _break_line_start(match: re.Match[str]) -> str:
    lead, mark = match.group(1), match.group(2)
    # "1." starts an ordered list: the backslash goes before the dot (a digit cannot be escaped).
    return f"{lead}{mark}\\" if mark.isdigit() else f"{lead}\\{mark}"


def _break_autolink(match: re.Match[str]) -> str:
    found = match.group(1)
    return "\\://" if found == "://" else found[:3] + "\\."


def markdown_inline(text: object, *, at_line_start: bool = True) -> str:
    """``text`` as inline Markdown that renders as itself: no link, image, emphasis, table cell or HTML.

    Line breaks become spaces (one table cell or list item stays on one line). With ``at_line_start``
    (the default: a paragraph, a list item's text) a leading ``#``, ``-``, ``+``, ``=`` or ``1.`` is
    escaped too; after a heading's ``## `` it starts nothing, so a heading passes False.
    """
    value = str(text).replace("\r", " ").replace("\n", " ")
    value = _MARKDOWN_INLINE.sub(r"\\\1", value)
    if at_line_start:
        value = _MARKDOWN_LINE_START.sub(_break_line_start, value)
    value = _AUTOLINK.sub(_break_autolink, value)
    return value.replace("<", "&lt;").replace(">", "&gt;")
