"""The static half of the sandbox's SQL check: one read-only query, judged by sqlglot.

Kept apart from ``sandbox`` so that sqlglot (about 0.1 s to import) loads at the first
query that needs a verdict, not at every process start. The sandbox caches verdicts;
see its module docstring for how this check fits with the authorizer behind it.
"""

from __future__ import annotations

import logging
import re
from typing import Final

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

__all__ = ["verdict"]


def _not_the_command_fallback(record: logging.LogRecord) -> bool:
    """sqlglot warns on stderr (through its ``sqlglot`` logger) each time it parses a
    statement it does not model, such as EXPLAIN or REPLACE, as a ``Command``. Here that is
    a verdict, not a problem: the statement is refused with a reason the agent sees. Only
    that warning is dropped; sqlglot's other messages pass."""
    return "Falling back to parsing as a 'Command'" not in record.getMessage()


logging.getLogger("sqlglot").addFilter(_not_the_command_fallback)

_QUERY_TYPES: Final = (exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Subquery, exp.Values)
"""Top-level statement types that are queries (a CTE is an argument of one of these)."""

_WRITE_TYPES: Final = (
    exp.DML,  # INSERT, UPDATE, DELETE, MERGE, COPY
    exp.DDL,  # CREATE (and INSERT again)
    exp.Drop,
    exp.Alter,
    exp.Attach,
    exp.Detach,
    exp.Pragma,
    exp.Analyze,
    exp.Command,  # what sqlglot falls back to for REPLACE, VACUUM, EXPLAIN, ALTER ...
    exp.Transaction,
    exp.Commit,
    exp.Rollback,
    exp.TruncateTable,
)
"""Nodes that must not occur anywhere in an accepted tree (e.g. ``WITH x AS (..) DELETE``)."""

_KIND_BY_TYPE: Final[dict[type, str]] = {
    exp.Insert: "INSERT",
    exp.Update: "UPDATE",
    exp.Delete: "DELETE",
    exp.Merge: "MERGE",
    exp.Create: "CREATE",
    exp.Drop: "DROP",
    exp.Alter: "ALTER",
    exp.Attach: "ATTACH",
    exp.Detach: "DETACH",
    exp.Pragma: "PRAGMA",
    exp.Analyze: "ANALYZE",
    exp.Transaction: "BEGIN",
    exp.Commit: "COMMIT",
    exp.Rollback: "ROLLBACK",
    exp.TruncateTable: "TRUNCATE",
}

_FIRST_WORD: Final = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?(?:\*/|$))*([A-Za-z_]\w*)", re.S)


def _kind(node: exp.Expr, sql: str) -> str:
    """A short upper-case name for a rejected statement, e.g. ``INSERT`` or ``VACUUM``."""
    if isinstance(node, exp.Command):
        return str(node.this).upper()
    for cls in type(node).__mro__:
        kind = _KIND_BY_TYPE.get(cls)
        if kind is not None:
            return kind
    match = _FIRST_WORD.match(sql)
    return match.group(1).upper() if match else type(node).__name__.upper()


def verdict(sql: str) -> tuple[str | None, str]:
    """``(error, sql_to_run)``: ``error`` is None when ``sql`` may run.

    ``sql_to_run`` is ``sql`` itself, or ``sql`` without the extra trailing semicolons
    that sqlglot accepts but Python's ``sqlite3`` counts as a second statement.
    """
    try:
        parsed = sqlglot.parse(sql, read="sqlite")
    except (SqlglotError, RecursionError):
        # sqlglot does not know every SQLite construct (and recurses on deep nesting). A
        # query it cannot parse may still be valid SQLite, so let SQLite decide: the
        # read-only file and the authorizer, not this check, make running it safe.
        return None, sql
    # Empty statements come back as None, a comment after the last ";" as a Semicolon.
    statements = [tree for tree in parsed if tree is not None and type(tree) is not exp.Semicolon]
    if not statements:
        return "empty query; write a single SELECT statement", sql
    if len(statements) > 1:
        return f"only one statement per QUERY; got {len(statements)}", sql
    tree = statements[0]
    if not isinstance(tree, _QUERY_TYPES):
        return f"only a single read-only SELECT is allowed; got {_kind(tree, sql)}", sql
    write = tree.find(*_WRITE_TYPES)
    if write is not None:
        return f"only a single read-only SELECT is allowed; got {_kind(write, sql)}", sql
    if len(parsed) > 1:  # "SELECT 1;;": one statement, then empty ones
        return None, sql.rstrip(" \t\r\n\f;")
    return None, sql
