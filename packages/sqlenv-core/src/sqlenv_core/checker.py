"""Execution-match answer checker: free-text ANSWER versus the gold result rows.

The agent answers in whatever shape a language model produces (a scalar, a comma
list, JSON, a markdown table, one value per line). ``parse_answer`` turns that text
into rows, and ``check_answer`` compares them with the rows the gold SQL returned,
following Spider's execution match:

* rows are a multiset (duplicates count); their order matters only when the gold SQL
  has a top-level ORDER BY;
* columns may be permuted, with one permutation for all rows;
* numbers compare by value: integers exactly; floats to the float noise of a computed
  value (1e-12 relative: another summation order or an equivalent query), or to the
  precision the answer wrote (at least two decimals, half a unit either way). Never a
  loose band: 1e-6 accepted 54930145.9 for 54930138.9;
* strings compare trimmed and case-folded; NULL equals ``null``/``none``/an empty cell.

The earlier SQLEnv checker compared sets of truncated values with a 1% tolerance,
which accepted wrong answers (``25.9`` for 25, lost duplicates, wrong order); every
rule here is strict where that one was loose. ``format_answer`` is the inverse the
oracle policy uses: its text is always accepted for the rows it was made from.
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import lru_cache

from .schemas import Cell

Rows = list[list[Cell]]

__all__ = [
    "CheckResult",
    "check_answer",
    "format_answer",
    "normalize_cell",
    "parse_answer",
]

REL_TOL = 1e-12
"""Float noise: about 4,500 units in the last place, the rounding error of summing
thousands of floats in another order (a naive sum of n values errs by at most about
n * 1.1e-16 relative), so an equivalent query's float matches the gold's. Anything
wider accepts wrong numbers (1e-6 took 54930145.9 for a gold of 54930138.9)."""
ABS_TOL = 1e-12
"""Noise around zero, where relative error means nothing (a difference that cancels)."""
MAX_PERMUTED_COLUMNS = 6
"""Column permutations are tried up to this width; wider results must keep gold order."""
_MAX_MATCHING = 400
"""Largest group of rows matched pair by pair when sorting alone cannot pair them."""
_MAX_LITERAL_CHARS = 100_000

_EMPTY_MARKERS = frozenset(
    {"[]", "none", "(none)", "empty", "(empty)", "empty set", "no data", "no rows"}
    | {"no result", "no results", "no results found"}
)
_NULL_WORDS = frozenset({"null", "none"})
_NUMBER_START = frozenset("+-.0123456789")
_QUOTES = "\"'`"

_FENCE = re.compile(r"```(?:[\w+.-]*[ \t]*\n)?(.*?)```", re.DOTALL)
_PREFIX = re.compile(  # Answer: / answer - / **Answer:** / Final answer =
    r"(?:\*\*)?(?:final\s+)?answer\s*(?:\*\*\s*[:=-]|[:=-](?:\s*\*\*(?=\s|$))?)\s*", re.IGNORECASE
)
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.([0-9]*))?|\.([0-9]+))(?:[eE]([+-]?[0-9]{1,6}))?")
_PIPE = re.compile(r"(?<!\\)\|")
_RULE_CELL = r"\s*:?-{3,}:?\s*"
_RULE = re.compile(rf"[|+]?{_RULE_CELL}(?:[|+]{_RULE_CELL})*[|+]?")
_BULLET = re.compile(r"(?:[-*•+]|[0-9]{1,4}[.)])\s+")


class _Decimal(float):
    """A float parsed from text that remembers how many decimal places the text gave.

    ``places`` is the position of the last written digit (``3.30`` → 2, ``1.5e-3`` → 4),
    which decides whether a rounded answer may match a longer gold float. It behaves as
    a plain float everywhere else (hash, equality, arithmetic).
    """

    __slots__ = ("places",)
    places: int

    def __new__(cls, value: float, places: int) -> _Decimal:
        obj = super().__new__(cls, value)
        obj.places = places
        return obj


# --------------------------------------------------------------------------- parsing


def _number(text: str) -> int | float | None:
    """The number ``text`` spells (already trimmed), or None if it is not a plain number.

    Only ASCII decimal notation is accepted: ``1,234``, ``nan``, ``0x10`` or ``1_000``
    stay strings. Floats that give two or more decimals come back as ``_Decimal``.
    """
    m = _NUMBER.fullmatch(text)
    if m is None:
        return None
    frac, frac_only, exp = m.groups()
    if frac is None and frac_only is None and exp is None:
        return int(text) if len(text) <= 4000 else None  # int() refuses longer digit strings
    value = float(text)
    places = len(frac or frac_only or "") - int(exp or 0)
    return _Decimal(value, places) if places >= 2 and math.isfinite(value) else value


def _text_cell(token: str) -> Cell:
    """One cell written as plain text: quoted → literal string, null words → None."""
    t = token.strip()
    if len(t) >= 2 and t[0] == t[-1] and t[0] in _QUOTES:
        return t[1:-1]
    if not t or t.casefold() in _NULL_WORDS:
        return None
    number = _number(t)
    return t if number is None else number


def _value_cell(value: object) -> Cell:
    """One cell from a JSON or Python literal value (booleans are SQLite integers)."""
    if value is None or isinstance(value, str | _Decimal):
        return value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        number = _number(repr(value))
        return value if number is None else number
    if isinstance(value, bytes):
        return "x'" + value.hex() + "'"
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return str(value)


def _value_rows(value: object) -> list[list[Cell]]:
    """Rows from a decoded JSON/Python value: a scalar, a list of scalars, rows or objects."""
    if isinstance(value, dict):
        if len(value) == 1:
            (inner,) = value.values()
            if isinstance(inner, list | tuple):  # {"rows": [...]}: a wrapper, not a row
                return _value_rows(inner)
        return [[_value_cell(v) for v in value.values()]]
    if isinstance(value, tuple) and not all(isinstance(v, list | tuple) for v in value):
        return [[_value_cell(v) for v in value]] if value else []  # (1, 'a'): one row
    if not isinstance(value, list | tuple):
        return [[_value_cell(value)]]
    rows: list[list[Cell]] = []
    for item in value:
        if isinstance(item, list | tuple):
            row = [_value_cell(v) for v in item]
        elif isinstance(item, dict):
            row = [_value_cell(v) for v in item.values()]
        else:
            row = [_value_cell(item)]
        if row:  # [[]] is an empty result, not a row without columns
            rows.append(row)
    return rows


def _json_float(text: str) -> float:
    number = _number(text)
    return number if isinstance(number, float) else float(text)


def _decode(text: str) -> tuple[bool, object]:
    """``(True, value)`` if ``text`` is a JSON or Python literal, else ``(False, None)``."""
    try:
        return True, json.loads(text, parse_float=_json_float)
    except (ValueError, RecursionError):
        pass
    if text[0] in "[(" and len(text) <= _MAX_LITERAL_CHARS:
        try:
            return True, ast.literal_eval(text)
        except Exception:  # SyntaxError, ValueError, MemoryError, RecursionError, ...
            pass
    return False, None


def _split_commas(line: str) -> list[str]:
    """Split on commas outside double quotes (``"Smith, John", 42`` is two cells)."""
    if '"' not in line:
        return line.split(",")
    fields: list[str] = []
    start, quoted = 0, False
    for i, ch in enumerate(line):
        if ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            fields.append(line[start:i])
            start = i + 1
    fields.append(line[start:])
    return fields


def _pipe_cells(line: str) -> list[Cell]:
    """The cells of a table line; outer borders count only when the line starts with one."""
    if line.startswith("|"):
        line = line[1:]
        if line.endswith("|") and not line.endswith("\\|"):
            line = line[:-1]
    return [_text_cell(part.replace("\\|", "|")) for part in _PIPE.split(line)]


def _pipe_rows(lines: list[str]) -> list[list[Cell]]:
    """A pipe table; a separator line (``|---|``) marks the line above it as a header."""
    rules = [bool(_RULE.fullmatch(line)) for line in lines]
    header = next((i - 1 for i in range(1, len(lines)) if rules[i] and not rules[i - 1]), -1)
    return [_pipe_cells(ln) for i, ln in enumerate(lines) if not rules[i] and i != header]


def _line_rows(lines: list[str]) -> list[Rows]:
    """One row per line; lines are split on commas only if all give the same count > 1.

    Split lines come with a second reading, one cell per line, because commas are
    also ordinary text (``Fontana, CA``); ``check_answer`` accepts either reading.
    """
    if all(_BULLET.match(line) for line in lines):
        lines = [line[_BULLET.match(line).end() :] for line in lines]  # type: ignore[union-attr]
    if all(line[0] in "[(" and line[-1] in "])" for line in lines):
        rows: list[list[Cell]] = []
        for line in lines:
            ok, value = _decode(line)
            if not ok:
                break
            decoded = _value_rows([value])
            rows.append(decoded[0] if decoded else [])
        else:
            return [rows]
    split = [_split_commas(line) for line in lines]
    width = len(split[0])
    whole = [[_text_cell(line)] for line in lines]
    if width > 1 and all(len(fields) == width for fields in split):
        return [[[_text_cell(f) for f in fields] for fields in split], whole]
    return [whole]


def _unwrap(text: str) -> str:
    """Strip whitespace, a code fence and an ``Answer:`` prefix (in any nesting)."""
    s = text.strip()
    while True:
        before = s
        fence = _FENCE.fullmatch(s)
        if fence:
            s = fence.group(1).strip()
        prefix = _PREFIX.match(s)
        if prefix:
            s = s[prefix.end() :].strip()
        if len(s) > 4 and s.startswith("**") and s.endswith("**") and "**" not in s[2:-2]:
            s = s[2:-2].strip()  # markdown bold around the whole answer
        if s == before:
            return s


def _parse(text: str) -> list[Rows]:
    """The readings of an answer: the rows it most likely means, then an alternative."""
    s = _unwrap(text)
    if not s or s.casefold().rstrip(".").strip() in _EMPTY_MARKERS:
        return [[]]
    if s[0] in '[{("' or s in ("true", "false", "null"):
        ok, value = _decode(s)
        if ok:
            return [_value_rows(value)]
    if len(s) >= 2 and s[0] == s[-1] and s[0] in _QUOTES and s[0] not in s[1:-1]:
        return [[[s[1:-1]]]]  # a quoted scalar is one literal string, commas and all
    lines = [stripped for line in s.splitlines() if (stripped := line.strip())]
    if any(_PIPE.search(line) for line in lines):
        return [_pipe_rows(lines)]
    if len(lines) > 1:
        return _line_rows(lines)
    if s[0] == "[" and s[-1] == "]":  # [alice, bob]: brackets around a bare list
        return [[[_text_cell(field)] for field in _split_commas(s[1:-1])]]
    fields = _split_commas(s)
    if len(fields) == 1:
        return [[[_text_cell(s)]]]
    return [[[_text_cell(field)] for field in fields], [[_text_cell(s)]]]


def _readings(text: str) -> list[Rows]:
    """``_parse`` that never raises: an unforeseen failure falls back to one string cell."""
    try:
        return _parse(text if isinstance(text, str) else str(text))
    except Exception:  # pragma: no cover - defensive; the property tests find none
        stripped = str(text).strip()
        return [[[stripped]] if stripped else []]


def _plain(rows: Rows) -> Rows:
    return [[float(c) if type(c) is _Decimal else c for c in row] for row in rows]


def parse_answer(text: str) -> list[list[Cell]]:
    """Parse free answer text into rows of cells; never raises.

    Accepted shapes, tried in this order after stripping whitespace, a code fence and
    an ``Answer:`` prefix: empty markers (``[]``, ``none``, ``no results``, ...) → no
    rows; JSON or a Python literal (a scalar, ``[1, 2]`` as one-cell rows, a list of
    lists or of objects as rows); a quoted scalar; a pipe or markdown table (a header
    above a ``|---|`` line is dropped); one row per line (comma-separated cells only
    when every line has the same number); a single-line comma list (one-cell rows).
    """
    return _plain(_readings(text)[0])


# ------------------------------------------------------------------------ comparison


def normalize_cell(cell: Cell) -> object:
    """The comparison key of one cell, shared with the reward's value-overlap layer.

    Numbers are compared by value (``25.0`` → ``25``; a string that spells a number,
    as SQLite TEXT columns often do, becomes that number); other strings are trimmed
    and case-folded; a blank string or the text ``null``/``none`` is NULL (``None``),
    since no reader can tell them apart; booleans are 0/1. Two keys that are ``==``
    always match; floats may also match within tolerance (see ``check_answer``).
    """
    kind = type(cell)
    if kind is str:
        return _cached_text(cell) if len(cell) <= NORMALIZE_CACHE_CHARS else _normalize_text(cell)
    if kind is int or cell is None:
        return cell
    if kind is float:
        return int(cell) if cell.is_integer() else cell  # type: ignore[union-attr]
    if isinstance(cell, bool):
        return int(cell)
    if isinstance(cell, int | float):  # _Decimal keeps its places; int subclasses
        return cell
    return normalize_cell(str(cell))


NORMALIZE_CACHE_CHARS = 64
"""Strings up to this long have their comparison key cached (Spider's cells are short);
longer ones are normalised afresh, so the cache holds at most ``NORMALIZE_CACHE_SIZE``
short strings and their keys: under 12 MiB even for 4-byte characters."""
NORMALIZE_CACHE_SIZE = 1 << 14


def _normalize_text(text: str) -> object:
    """``normalize_cell`` of a string."""
    text = text.strip()
    if not text:
        return None
    if text[0] in _NUMBER_START:
        number = _number(text)
        if number is not None:
            return int(number) if type(number) is float and number.is_integer() else number
    folded = text.casefold()
    return None if folded in _NULL_WORDS else folded


_cached_text = lru_cache(maxsize=NORMALIZE_CACHE_SIZE)(_normalize_text)
"""``_normalize_text`` of short strings, cached: gold cells recur on every rollout."""


def _cell_eq(a: object, g: object) -> bool:
    """Whether answer key ``a`` matches gold key ``g``."""
    if a == g:
        return True
    if not isinstance(g, float) or isinstance(a, str) or a is None:
        return False  # strings and NULL match exactly; integer golds match exactly
    if g != g:
        return a != a  # NaN (not produced by SQLite, but keep equality reflexive)
    try:
        if math.isclose(a, g, rel_tol=REL_TOL, abs_tol=ABS_TOL):  # type: ignore[arg-type]
            return True
        if type(a) is _Decimal and a.places >= 2:  # rounded to the decimals it wrote
            return abs(a - g) <= 0.5 * 10.0**-a.places + 1e-12 * max(1.0, abs(g))
    except (OverflowError, TypeError):
        pass
    return False


def _row_eq(a: tuple[object, ...], g: tuple[object, ...]) -> bool:
    return a == g or all(map(_cell_eq, a, g))


def _sort_key(cell: object) -> tuple[int, object]:
    if cell is None:
        return (0, 0)
    return (2, cell) if isinstance(cell, str) else (1, cell)


def _row_key(row: tuple[object, ...]) -> tuple[tuple[int, object], ...]:
    return tuple(map(_sort_key, row))


def _signature(row: tuple[object, ...]) -> tuple[object, ...]:
    """The exact (non-numeric) part of a row: rows can only match within one signature."""
    return tuple(c if c is None or isinstance(c, str) else 0 for c in row)


def _perfect_matching(edges: list[list[int]]) -> bool:
    """Whether every left node gets its own right node (Kuhn's augmenting paths)."""
    owner: dict[int, int] = {}

    def augment(k: int, seen: set[int]) -> bool:
        for j in edges[k]:
            if j not in seen:
                seen.add(j)
                if j not in owner or augment(owner[j], seen):
                    owner[j] = k
                    return True
        return False

    return all(augment(k, set()) for k in range(len(edges)))


def _bipartite(answer: list[tuple[object, ...]], gold: list[tuple[object, ...]]) -> bool:
    """Multiset equality under tolerant equality, as a row matching per signature group.

    Needed when rounding makes sorting pair rows wrongly, e.g. gold (4.331, "b"),
    (4.334, "a") answered as (4.33, "b"), (4.33, "a").
    """
    groups: dict[tuple[object, ...], tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
    for i, row in enumerate(answer):
        groups[_signature(row)][0].append(i)
    for j, row in enumerate(gold):
        groups[_signature(row)][1].append(j)
    for ans_ids, gold_ids in groups.values():
        if len(ans_ids) != len(gold_ids) or len(ans_ids) > _MAX_MATCHING:
            return False
        edges: list[list[int]] = []
        for i in ans_ids:
            edges.append([j for j in gold_ids if _row_eq(answer[i], gold[j])])
            if not edges[-1]:
                return False
        if not _perfect_matching(edges):
            return False
    return True


def _same_multiset(
    answer: list[tuple[object, ...]], gold: list[tuple[object, ...]], exact: bool
) -> bool:
    """Multiset equality of rows: exact keys first, then sorted pairs, then a matching.

    ``exact`` says the gold holds no float, so tolerant equality is plain ``==``.
    """
    if Counter(answer) == Counter(gold):
        return True
    if exact:
        return False
    if all(map(_row_eq, sorted(answer, key=_row_key), sorted(gold, key=_row_key))):
        return True
    return _bipartite(answer, gold)


def _column_fits(
    answer: list[tuple[object, ...]], gold: list[tuple[object, ...]], ordered: bool, exact: bool
) -> list[list[bool]]:
    """Which answer column can stand for which gold column (the first permutation prune).

    ``fits[i][j]`` compares answer column i with gold column j: in place when order
    matters, else as sorted sequences, which is exact as long as a column's answer
    values are written to one precision (the final row comparison is always exact).
    """
    if ordered:
        return [[all(map(_cell_eq, a, g)) for g in gold] for a in answer]
    a_counts, g_counts = [Counter(a) for a in answer], [Counter(g) for g in gold]
    if exact:
        return [[a == g for g in g_counts] for a in a_counts]
    a_sorted = [sorted(a, key=_sort_key) for a in answer]
    g_sorted = [sorted(g, key=_sort_key) for g in gold]
    return [
        [
            a_counts[i] == g_counts[j] or all(map(_cell_eq, a_sorted[i], g_sorted[j]))
            for j in range(len(gold))
        ]
        for i in range(len(answer))
    ]


def _rows_match(
    answer: list[tuple[object, ...]], gold: list[tuple[object, ...]], ordered: bool
) -> bool:
    """Equal rows (same shape assumed) up to a column permutation, in order if ``ordered``.

    Column orders are searched depth first, gold column by gold column; an unordered
    partial order is kept only while the rows projected on the columns placed so far
    still match as multisets, which cuts the search down to a few nodes.
    """
    if not gold:
        return True
    if ordered and all(map(_row_eq, answer, gold)):
        return True
    if not ordered and Counter(answer) == Counter(gold):
        return True
    exact = not any(isinstance(c, float) for row in gold for c in row)
    width = len(gold[0])
    if width == 1 or width > MAX_PERMUTED_COLUMNS:
        return not ordered and _same_multiset(answer, gold, exact)
    answer_cols = list(zip(*answer, strict=True))
    fits = _column_fits(answer_cols, list(zip(*gold, strict=True)), ordered, exact)
    gold_prefixes = [[row[: k + 1] for row in gold] for k in range(width)]

    def extend(perm: list[int]) -> bool:
        k = len(perm)
        if k == width:
            return True
        for i in range(width):
            if i in perm or not fits[i][k]:
                continue
            perm.append(i)
            if ordered or k == 0:  # the column fits alone decide these
                ok = True
            else:
                projected = list(zip(*(answer_cols[c] for c in perm), strict=True))
                ok = _same_multiset(projected, gold_prefixes[k], exact)
            if ok and extend(perm):
                return True
            perm.pop()
        return False

    return extend([])


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The verdict on one answer; truthy exactly when the answer is correct.

    ``reason`` is a short explanation safe to show the agent: it may state the expected
    row or column count but never a gold value. ``parsed_rows`` is what was understood.
    """

    correct: bool
    reason: str
    parsed_rows: list[list[Cell]]

    def __bool__(self) -> bool:
        return self.correct


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


_WRONG_ORDER = "right rows in the wrong order"


def _verdict(raw: Rows, gold: list[tuple[object, ...]], order_matters: bool) -> tuple[bool, str]:
    """Compare one reading of the answer with the normalized gold rows."""
    ans = [tuple(map(normalize_cell, row)) for row in raw]
    if (not ans and gold == [(None,)]) or (not gold and ans == [(None,)]):
        return True, "correct"
    n_gold, n_ans = len(gold), len(ans)
    m_gold = len(gold[0]) if gold else 0
    if n_ans and any(len(row) != len(ans[0]) for row in ans):
        return False, "answer rows have different numbers of values"
    m_ans = len(ans[0]) if ans else 0
    if n_gold == 1 and m_gold > 1 and m_ans == 1 and n_ans == m_gold:
        ans = [tuple(row[0] for row in ans)]  # a flat list answering a single row
    elif m_gold == 1 and n_gold > 1 and n_ans == 1 and m_ans == n_gold:
        ans = [(cell,) for cell in ans[0]]  # one row of values answering a single column
    n_ans, m_ans = len(ans), len(ans[0]) if ans else 0

    if n_ans != n_gold:
        return False, f"expected {_plural(n_gold, 'row')}, got {n_ans}"
    if n_gold and m_ans != m_gold:
        return False, f"expected {_plural(m_gold, 'column')}, got {m_ans}"
    if _rows_match(ans, gold, order_matters):
        return True, "correct"
    if order_matters and _rows_match(ans, gold, False):
        return False, _WRONG_ORDER
    return False, "values differ"


def check_answer(answer: str, gold_rows: list[list[Cell]], order_matters: bool) -> CheckResult:
    """Parse ``answer`` and compare it with ``gold_rows`` by execution match.

    The result is truthy when correct, so ``if check_answer(...)`` reads naturally,
    and carries the ``reason`` the engine shows after a wrong answer.

    Beyond Spider's rules it accepts: a one-cell result as its scalar; a flat list for
    a single-row or single-column result in the other orientation (``Alice, 42`` for
    one row of two columns); NULL for an empty result or the reverse, since ``none``
    means both to a reader; and unquoted commas read as text when reading them as
    separators fails (``Fontana, CA``), since the answer is then literally the gold.
    """
    gold = [tuple(map(normalize_cell, row)) for row in gold_rows]
    best: tuple[int, str, Rows] | None = None
    for raw in _readings(answer):
        correct, reason = _verdict(raw, gold, order_matters)
        if correct:
            return CheckResult(True, reason, _plain(raw))
        rank = 0 if reason == _WRONG_ORDER else 1  # else the first reading's reason
        if best is None or rank < best[0]:
            best = (rank, reason, raw)
    assert best is not None  # _readings always gives at least one reading
    return CheckResult(False, best[1], _plain(best[2]))


def format_answer(rows: list[list[Cell]]) -> str:
    """Canonical answer text for ``rows``, which ``check_answer`` always accepts.

    JSON is the one format that keeps every cell intact (commas, pipes, newlines,
    quotes, blanks, NULL, exact floats). A one-cell result is written as its scalar
    when that round-trips, because that is how a person would answer.
    """
    if len(rows) == 1 and len(rows[0]) == 1:
        (cell,) = rows[0]
        if cell is None or isinstance(cell, str | int) or math.isfinite(cell):
            return json.dumps(cell, ensure_ascii=False)
    return json.dumps(rows, ensure_ascii=False)
