"""Compact text renderings of results and schemas, written for a language model to read.

Pipe tables with a header, cells cut to a width, and an explicit count line
("showing 20 of 1,234 rows") so an agent never mistakes a preview for the whole.
"""

from __future__ import annotations

from collections.abc import Sequence

from .schemas import Cell

__all__ = ["render_cell", "render_rows", "row_count_line", "schema_line"]


def render_cell(value: Cell, width: int) -> str:
    if value is None:
        text = "NULL"
    elif isinstance(value, float):
        text = repr(value)
    else:
        text = str(value)
    text = text.replace("\n", "\\n").replace("|", "\\|")
    return text if len(text) <= width else text[: width - 1] + "…"


def row_count_line(shown: int, total: int, lower_bound: bool) -> str:
    total_text = f"more than {total:,}" if lower_bound else f"{total:,}"
    if shown < total or lower_bound:
        return f"(showing {shown:,} of {total_text} rows)"
    return f"({total:,} row{'' if total == 1 else 's'})"


def render_rows(
    columns: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    *,
    total: int,
    lower_bound: bool,
    max_rows: int,
    width: int,
) -> str:
    shown = rows[:max_rows]
    lines = [" | ".join(render_cell(c, width) for c in columns)]
    lines.extend(" | ".join(render_cell(c, width) for c in row) for row in shown)
    lines.append(row_count_line(len(shown), total, lower_bound))
    return "\n".join(lines)


def schema_line(
    table: str, columns: Sequence[tuple[str, str, bool]], fks: Sequence[tuple[str, str, str]]
) -> str:
    """``singer(singer_id INTEGER PK, name TEXT, stadium_id INT -> stadium.stadium_id)``."""
    refs = {col: f"{t}.{c}" for col, t, c in fks}
    parts = []
    for name, type_, pk in columns:
        piece = f"{name} {type_ or 'ANY'}"
        if pk:
            piece += " PK"
        if name in refs:
            piece += f" -> {refs[name]}"
        parts.append(piece)
    return f"{table}({', '.join(parts)})"
