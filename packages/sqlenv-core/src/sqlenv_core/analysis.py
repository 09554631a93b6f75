"""Static facts about a gold SQL query, read from its sqlglot syntax tree (SQLite dialect).

* :func:`spider_hardness` ports Spider's published hardness rule (``Evaluator.eval_hardness``
  in ``evaluation.py`` of taoyds/spider) from Spider's own parse onto a sqlglot tree.
* :func:`order_matters` says whether the gold fixes the row order of its result.
* :func:`tables_involved` lists the real tables a query reads.
* :func:`answer_shape` classifies a result table as scalar, list or table.

Every function that takes SQL raises ``ValueError`` when sqlglot cannot parse it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from .schemas import AnswerShape, Difficulty

__all__ = [
    "HardnessCounts",
    "answer_shape",
    "hardness_counts",
    "order_matters",
    "spider_hardness",
    "tables_involved",
]

DIALECT = "sqlite"

# Spider's AGG_OPS besides 'none': max, min, count, sum, avg.
_AGGREGATES = (exp.Max, exp.Min, exp.Count, exp.Sum, exp.Avg)
# Spider's UNIT_OPS besides 'none': a val_unit is at most one binary arithmetic operation.
_ARITHMETIC = (exp.Sub, exp.Add, exp.Mul, exp.Div)
_QUERY = (exp.Select, exp.SetOperation)


def _parse(sql: str) -> exp.Expression:
    try:
        tree = sqlglot.parse_one(sql, read=DIALECT)
    except SqlglotError as exc:
        raise ValueError(f"cannot parse SQL: {exc}") from exc
    if tree is None:
        raise ValueError("cannot parse SQL: empty statement")
    return _unwrap(tree)


def _unwrap(node: exp.Expression) -> exp.Expression:
    """Strip parentheses around a whole query: ``(SELECT ...)`` is the SELECT."""
    while isinstance(node, exp.Subquery | exp.Paren) and isinstance(node.this, exp.Expression):
        node = node.this
    return node


# --------------------------------------------------------------------------- hardness


class HardnessCounts(NamedTuple):
    """The three counts Spider's hardness rule is defined on."""

    component1: int
    component2: int
    others: int


class _Conditions(NamedTuple):
    """A condition flattened the way Spider stores it: ``[cond, 'and'|'or', cond, ...]``."""

    leaves: list[exp.Expression]
    ors: int
    connectors: int


def _flatten(condition: exp.Expression | None) -> _Conditions:
    leaves: list[exp.Expression] = []
    ors = 0

    def walk(node: exp.Expression) -> None:
        nonlocal ors
        if isinstance(node, exp.Paren):
            walk(node.this)
        elif isinstance(node, exp.And | exp.Or):
            ors += isinstance(node, exp.Or)
            walk(node.this)
            walk(node.expression)
        else:
            leaves.append(node)

    if condition is not None:
        walk(condition)
    return _Conditions(leaves, ors, max(len(leaves) - 1, 0))


def _negated(leaf: exp.Expression) -> bool:
    """Spider's ``not_op``: ``NOT IN``, ``NOT LIKE``, ``NOT BETWEEN``."""
    return isinstance(leaf, exp.Not) or bool(leaf.args.get("negate"))


def _is_like(leaf: exp.Expression) -> bool:
    inner = leaf.this if isinstance(leaf, exp.Not) else leaf
    return isinstance(inner, exp.Like)


def _direct_queries(node: exp.Expression) -> int:
    """Queries inside ``node`` that are not themselves inside another query in ``node``."""
    count = 0
    for child in node.iter_expressions():
        if isinstance(child, _QUERY):
            count += 1
        else:
            count += _direct_queries(child)
    return count


def _leading_aggregate(node: exp.Expression) -> bool:
    """Spider gives a SELECT item an aggregate when the item starts with one."""
    if isinstance(node, exp.Alias):
        node = node.this
    while isinstance(node, _ARITHMETIC):
        node = node.this
    return isinstance(node, _AGGREGATES)


def _operand_aggregates(node: exp.Expression) -> int:
    """Aggregates among the (at most two) operands of a Spider ``val_unit``."""
    operands = [node.this, node.expression] if isinstance(node, _ARITHMETIC) else [node]
    return sum(isinstance(op, _AGGREGATES) for op in operands)


def _top_select(tree: exp.Expression) -> tuple[exp.Select | None, bool]:
    """The SELECT Spider's parse calls the query, and whether a set operation follows it.

    Spider's parser reads ``A UNION B ORDER BY x`` as ``A`` with ``union = (B ORDER BY x)``,
    so only the leftmost SELECT's own clauses count and the set operation is one nested query.
    """
    node = _unwrap(tree)
    has_set_op = False
    while isinstance(node, exp.SetOperation):
        has_set_op = True
        node = _unwrap(node.this)
    return (node if isinstance(node, exp.Select) else None), has_set_op


def hardness_counts(sql: str) -> HardnessCounts:
    """Spider's ``count_component1``, ``count_component2`` and ``count_others`` for ``sql``."""
    select, has_set_op = _top_select(_parse(sql))
    if select is None:
        raise ValueError("not a SELECT query")

    joins: list[exp.Join] = select.args.get("joins") or []
    table_units = (1 if select.args.get("from_") is not None else 0) + len(joins)
    join_conds = [_flatten(join.args.get("on")) for join in joins]
    from_leaves = [leaf for cond in join_conds for leaf in cond.leaves]
    from_ors = sum(cond.ors for cond in join_conds)

    where_node = select.args.get("where")
    where = _flatten(where_node.this if where_node is not None else None)
    having_node = select.args.get("having")
    having = _flatten(having_node.this if having_node is not None else None)
    group_node = select.args.get("group")
    group = list(group_node.expressions) if group_node is not None else []
    order_node = select.args.get("order")
    order = [o.this for o in order_node.expressions] if order_node is not None else []
    all_leaves = from_leaves + where.leaves + having.leaves

    component1 = (
        bool(where.leaves)
        + bool(group)
        + bool(order)
        + (select.args.get("limit") is not None)
        + max(table_units - 1, 0)
        + from_ors
        + where.ors
        + having.ors
        + sum(_is_like(leaf) for leaf in all_leaves)
    )

    # get_nestedSQL: queries used as values in FROM/WHERE/HAVING conditions, plus one for a
    # following INTERSECT/EXCEPT/UNION. Subqueries in FROM and SELECT are not counted.
    component2 = sum(_direct_queries(leaf) for leaf in all_leaves) + has_set_op

    # count_others' aggregation count keeps two quirks of the original: it applies
    # ``has_agg`` (``unit[0] != 0``) to WHERE/HAVING condition units, whose first field is
    # the NOT flag, and to HAVING's 'and'/'or' strings, which always pass. So it counts
    # negated conditions and HAVING connectors, never the aggregates inside HAVING.
    aggregates = (
        sum(_leading_aggregate(item) for item in select.expressions)
        + sum(_negated(leaf) for leaf in where.leaves)
        + sum(isinstance(item, _AGGREGATES) for item in group)
        + sum(_operand_aggregates(item) for item in order)
        + sum(_negated(leaf) for leaf in having.leaves)
        + having.connectors
    )
    others = (
        (aggregates > 1)
        + (len(select.expressions) > 1)
        + (len(where.leaves) > 1)
        + (len(group) > 1)
    )
    return HardnessCounts(int(component1), int(component2), int(others))


def spider_hardness(sql: str) -> Difficulty:
    """Spider's difficulty level of a query: ``easy``, ``medium``, ``hard`` or ``extra``.

    A port of ``Evaluator.eval_hardness`` (taoyds/spider, ``evaluation.py``): component1
    counts WHERE, GROUP BY, ORDER BY, LIMIT, each joined table beyond the first, each OR
    and each LIKE; component2 counts nested queries; others counts more than one
    aggregate, SELECT item, WHERE condition or GROUP BY column.
    """
    c1, c2, others = hardness_counts(sql)
    if c1 <= 1 and others == 0 and c2 == 0:
        return "easy"
    if (others <= 2 and c1 <= 1 and c2 == 0) or (c1 <= 2 and others < 2 and c2 == 0):
        return "medium"
    if (
        (others > 2 and c1 <= 2 and c2 == 0)
        or (2 < c1 <= 3 and others <= 2 and c2 == 0)
        or (c1 <= 1 and others == 0 and c2 <= 1)
    ):
        return "hard"
    return "extra"


# --------------------------------------------------------------------------- other facts


def order_matters(sql: str) -> bool:
    """Whether the query's result order is fixed: it has a top-level ``ORDER BY``.

    Top-level means on the outermost SELECT or set operation. An ORDER BY inside a
    subquery or CTE (say, to pick the top row with LIMIT 1) does not order the output.
    Spider's official execution matcher instead tests whether ``"order by"`` occurs
    anywhere in the query text; we check the outermost query only.
    """
    tree = _parse(sql)
    return isinstance(tree, _QUERY) and tree.args.get("order") is not None


def tables_involved(sql: str, known_tables: Iterable[str] | None = None) -> list[str]:
    """The real tables the query reads, sorted and without duplicates.

    CTE names and aliases are not tables. SQLite matches names case-insensitively, so
    names are lower-cased, or, when ``known_tables`` is given, spelled as there (a
    name not in ``known_tables`` stays lower-cased).
    """
    tree = _parse(sql)
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    spelling = {name.lower(): name for name in known_tables or ()}
    found = {
        table.name.lower()
        for table in tree.find_all(exp.Table)
        if table.name and table.name.lower() not in ctes
    }
    return sorted(spelling.get(name, name) for name in found)


def answer_shape(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> AnswerShape:
    """``scalar`` for one row of one column, ``list`` for one column otherwise, else ``table``.

    A one-column result with no rows counts as a ``list``.
    """
    if len(columns) == 1:
        return "scalar" if len(rows) == 1 else "list"
    return "table"
