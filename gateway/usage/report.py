"""`gateway usage`: usage totals as an aligned table or CSV, for operators' terminals and sheets.

A row's key (a model name, an account id) may hold text that neither the gateway nor the
operator wrote, e.g. records kept before refused models were recorded as `unknown`: each key is
shown escaped, so that no terminal control sequence or line break reaches the operator's screen,
and a CSV cell never starts a spreadsheet formula.
"""

from __future__ import annotations

import csv
import io
import unicodedata

from gateway.usage.schemas import UsageRow

COLUMNS = ("requests", "prompt_tokens", "completion_tokens", "total_tokens")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""What a spreadsheet may read as the start of a formula (OWASP's CSV injection list)."""


def escaped(text: str) -> str:
    """Every control, format, private-use, surrogate or unassigned character (Unicode's C*
    categories: line breaks, ESC, DEL, C1, bidirectional overrides…) and the backslash, as
    Python writes them in a string literal, so that the escaped text is unambiguous."""
    return "".join(
        repr(char)[1:-1] if char == "\\" or unicodedata.category(char)[0] == "C" else char
        for char in text
    )


def csv_cell(text: str) -> str:
    """The escaped text, behind a `'` when a spreadsheet would take it for a formula."""
    shown = escaped(text)
    return f"'{shown}" if shown.startswith(FORMULA_STARTS) else shown


def as_csv(rows: list[UsageRow], group_by: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow((group_by, *COLUMNS))
    for row in rows:
        writer.writerow((csv_cell(row.key), *(getattr(row, column) for column in COLUMNS)))
    return out.getvalue()


def as_table(rows: list[UsageRow], group_by: str) -> str:
    header = (group_by, *COLUMNS)
    body = [
        (escaped(row.key), *(f"{getattr(row, column):,}" for column in COLUMNS)) for row in rows
    ]
    totals = ("total", *(f"{sum(getattr(row, c) for row in rows):,}" for c in COLUMNS))
    table = [header, *body, totals]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        first = cells[0].ljust(widths[0])
        return "  ".join([first, *(c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))])

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(header), rule, *(line(r) for r in body), rule, line(totals)]) + "\n"
