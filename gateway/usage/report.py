"""`gateway usage`: usage totals as an aligned table or CSV, for operators' terminals and sheets."""

from __future__ import annotations

import csv
import io

from gateway.usage.schemas import UsageRow

COLUMNS = ("requests", "prompt_tokens", "completion_tokens", "total_tokens")


def as_csv(rows: list[UsageRow], group_by: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow((group_by, *COLUMNS))
    for row in rows:
        writer.writerow((row.key, *(getattr(row, column) for column in COLUMNS)))
    return out.getvalue()


def as_table(rows: list[UsageRow], group_by: str) -> str:
    header = (group_by, *COLUMNS)
    body = [(row.key, *(f"{getattr(row, column):,}" for column in COLUMNS)) for row in rows]
    totals = ("total", *(f"{sum(getattr(row, c) for row in rows):,}" for c in COLUMNS))
    table = [header, *body, totals]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        first = cells[0].ljust(widths[0])
        return "  ".join([first, *(c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))])

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(header), rule, *(line(r) for r in body), rule, line(totals)]) + "\n"
