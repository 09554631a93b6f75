"""Tests of the answer checker: a table of verdicts, parser formats and properties."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlenv_core.checker import (
    CheckResult,
    check_answer,
    format_answer,
    normalize_cell,
    parse_answer,
)
from sqlenv_core.dataset import default_data_dir
from sqlenv_core.schemas import Cell

Rows = list[list[Cell]]
AB: Rows = [["a"], ["b"]]
AAB: Rows = [["a"], ["a"], ["b"]]
PAIRS: Rows = [[1, "x"], [2, "y"]]
WIDE: Rows = [[1, 2, 3, 4, 5, 6, 7]]

# (answer text, gold rows, order_matters, expected verdict, id)
CHECK_CASES: list[tuple[str, Rows, bool, bool, str]] = [
    # --- the earlier SQLEnv's false positives, now rejected
    ("25.9", [[25]], False, False, "fp-truncated-int"),
    ("25", [[25.9]], False, False, "fp-truncated-gold"),
    ("26", [[25.9]], False, False, "no-rounding-to-int"),
    ("a, b", AAB, False, False, "fp-duplicates-lost"),
    ("b, a", AB, True, False, "fp-order-ignored-with-order-by"),
    ("95000.1", [[95000]], False, False, "fp-loose-tolerance-int"),
    ("3.14", [[3.15]], False, False, "fp-loose-tolerance-float"),
    # --- integers and floats
    ("42", [[42]], False, True, "int-scalar"),
    ("42", [[43]], False, False, "int-wrong"),
    ("-3", [[-3]], False, True, "int-negative"),
    ("+7", [[7]], False, True, "int-explicit-plus"),
    ("25.0", [[25]], False, True, "zero-fraction-equals-int"),
    ("25", [[25.0]], False, True, "int-equals-integral-float-gold"),
    ("25.00", [[24.996]], False, True, "rounded-to-integral-value"),
    ("123456790", [[123456789]], False, False, "big-int-exact"),
    ("123456789.4", [[123456789]], False, False, "int-gold-has-no-tolerance"),
    ("9223372036854775807", [[9223372036854775807]], False, True, "int64-max"),
    ("9223372036854775806", [[9223372036854775807]], False, False, "int64-off-by-one"),
    ("0", [[-0.0]], False, True, "negative-zero"),
    ("1e3", [[1000]], False, True, "scientific-notation"),
    ("1,234", [[1234]], False, False, "thousands-separator-is-a-list"),
    ("0.30000000000000004", [[0.3]], False, True, "float-relative-tolerance"),
    ("0.3", [[0.30000000000000004]], False, True, "float-tolerance-reverse"),
    ("3.33", [[3.3333]], False, True, "float-rounded-2dp"),
    ("3.333", [[3.3333]], False, True, "float-rounded-3dp"),
    ("3.3", [[3.3333]], False, False, "float-rounded-1dp-rejected"),
    ("3.34", [[3.3333]], False, False, "float-misrounded"),
    ("3.33", [[3.3389]], False, False, "float-truncated-rejected"),
    ("2.68", [[2.675]], False, True, "float-half-up"),
    ("2.67", [[2.675]], False, True, "float-half-down"),
    ("3.1415927", [[math.pi]], False, True, "float-7dp"),
    ("3", [[math.pi]], False, False, "float-to-int-rejected"),
    ("42", [["42"]], False, True, "numeric-text-gold"),
    ("42.0", [[" 42 "]], False, True, "numeric-text-gold-padded"),
    ('"42"', [[42]], False, True, "quoted-number"),
    # --- one-cell results equal their scalar
    ("[5]", [[5]], False, True, "one-cell-json-list"),
    ("[[5]]", [[5]], False, True, "one-cell-json-rows"),
    ('"5"', [[5]], False, True, "one-cell-json-string"),
    ("Answer: 5", [[5]], False, True, "answer-prefix"),
    ("```\n5\n```", [[5]], False, True, "code-fence"),
    # --- strings
    ("ford", [["Ford"]], False, True, "string-case-folded"),
    ("  FORD  ", [[" Ford "]], False, True, "string-trimmed"),
    ("fords", [["Ford"]], False, False, "string-wrong"),
    ("new  york", [["new york"]], False, False, "inner-whitespace-kept"),
    ("straße", [["STRASSE"]], False, True, "unicode-casefold"),
    ('"Smith, John"', [["Smith, John"]], False, True, "quoted-string-with-comma"),
    ("Smith, John", [["Smith, John"]], False, True, "unquoted-comma-read-as-text"),
    ("Smith, Jon", [["Smith, John"]], False, False, "unquoted-comma-text-wrong"),
    ("Smith, John", [["Smith"], ["John"]], False, True, "unquoted-comma-read-as-list"),
    ("Rome, IT\nOslo, NO", [["Rome, IT"], ["Oslo, NO"]], True, True, "comma-lines-as-text"),
    ("Rome, IT\nOslo, NO", [["Oslo, NO"], ["Rome, IT"]], True, False, "comma-lines-order"),
    ("'ford'", [["ford"]], False, True, "single-quoted-scalar"),
    ("x'0a1b'", [["x'0a1b'"]], False, True, "blob-literal"),
    ("42", [["forty-two"]], False, False, "number-vs-text"),
    # --- NULL
    ("null", [[None]], False, True, "null-json"),
    ("NULL", [[None]], False, True, "null-upper"),
    ("None", [[None]], False, True, "none-for-null-scalar"),
    ("[null]", [[None]], False, True, "null-in-json-list"),
    ("a, , b", [["a"], [None], ["b"]], True, True, "empty-cell-is-null"),
    ("a, none, b", [["a"], [None], ["b"]], True, True, "none-cell-is-null"),
    ("0", [[None]], False, False, "zero-is-not-null"),
    ('"null"', [[None]], False, True, "quoted-null-is-null"),
    ("null", [["NULL"]], False, True, "null-text-gold-is-null"),
    ('[""]', [[None]], False, True, "blank-string-is-null"),
    # --- empty results
    ("[]", [], False, True, "empty-json"),
    ("no results", [], False, True, "empty-no-results"),
    ("(empty)", [], False, True, "empty-parenthesised"),
    ("No rows.", [], False, True, "empty-no-rows"),
    ("none", [], True, True, "empty-none"),
    ("null", [], False, True, "null-for-empty"),
    ("42", [], False, False, "value-for-empty"),
    ("[]", [[1]], False, False, "empty-for-value"),
    # --- booleans from JSON
    ("true", [[1]], False, True, "json-true"),
    ("[false]", [[0]], False, True, "json-false"),
    ("true", [[0]], False, False, "json-true-not-zero"),
    # --- rows are a multiset; order only with ORDER BY
    ("b, a", AB, False, True, "order-free-without-order-by"),
    ("a, b", AB, True, True, "order-kept"),
    ("a, b, a", AAB, False, True, "duplicates-any-order"),
    ("a, b, b", AAB, False, False, "duplicates-wrong-multiplicity"),
    ("a, a, b", AAB, True, True, "duplicates-ordered"),
    ("a, b, c", AB, False, False, "extra-row"),
    ("a", AB, False, False, "missing-row"),
    ("A\nB", AB, True, True, "newline-list-ordered"),
    ("b\na", AB, True, False, "newline-list-wrong-order"),
    # --- columns may be permuted consistently
    ('[["x", 1], ["y", 2]]', PAIRS, False, True, "columns-permuted"),
    ('[["x", 1], ["y", 2]]', PAIRS, True, True, "columns-permuted-ordered"),
    ('[["y", 2], ["x", 1]]', PAIRS, True, False, "columns-permuted-wrong-order"),
    ('[["x", 2], ["y", 1]]', PAIRS, False, False, "columns-recombined"),
    ("[[1, 2], [3, 4]]", [[2, 1], [4, 3]], False, True, "numeric-columns-permuted"),
    ("[[1, 4], [3, 2]]", [[2, 1], [4, 3]], False, False, "inconsistent-permutation"),
    ("x | 1\ny | 2", PAIRS, False, True, "pipe-rows"),
    ("| id | name |\n|---|---|\n| 1 | x |\n| 2 | y |", PAIRS, True, True, "markdown-table"),
    ("1, x\n2, y", PAIRS, False, True, "csv-lines"),
    ("[(1, 'x'), (2, 'y')]", PAIRS, True, True, "python-tuples"),
    ("x | 1 | 0", PAIRS[:1], False, False, "extra-column"),
    ('[[1, "x"], [2]]', PAIRS, False, False, "ragged-rows"),
    ("[[1, 2, 3, 4, 5, 6, 7]]", WIDE, False, True, "wide-identity"),
    ("[[2, 1, 3, 4, 5, 6, 7]]", WIDE, False, False, "wide-not-permuted"),
    ("[[1, 2, 3, 4, 5, 6]]", [[6, 5, 4, 3, 2, 1]], False, True, "six-columns-permuted"),
    # --- a flat list answers a single row or a single column
    ("Alice, 42", [["alice", 42]], False, True, "flat-list-for-single-row"),
    ("42, Alice", [["alice", 42]], False, True, "flat-list-permuted"),
    ("a | b", AB, True, True, "single-row-for-single-column"),
    ("b | a", AB, True, False, "single-row-wrong-order"),
    # --- tolerance inside multi-row results
    ('[[4.33, "b"], [4.33, "a"]]', [[4.331, "b"], [4.334, "a"]], False, True, "rounded-ties"),
    ("3.33, 6.67", [[6.6667], [3.3333]], False, True, "rounded-list-unordered"),
    ("3.33, 6.67", [[6.6667], [3.3333]], True, False, "rounded-list-wrong-order"),
]


@pytest.mark.parametrize(
    ("answer", "gold", "order_matters", "expected"),
    [case[:4] for case in CHECK_CASES],
    ids=[case[4] for case in CHECK_CASES],
)
def test_check_answer(answer: str, gold: Rows, order_matters: bool, expected: bool) -> None:
    assert check_answer(answer, gold, order_matters).correct is expected


def test_case_table_is_large_and_ids_unique() -> None:
    ids = [case[4] for case in CHECK_CASES]
    assert len(ids) >= 60
    assert len(set(ids)) == len(ids)


# (answer text, parsed rows, id)
PARSE_CASES: list[tuple[str, Rows, str]] = [
    ("42", [[42]], "int"),
    ("-3", [[-3]], "negative-int"),
    ("3.5", [[3.5]], "float"),
    ("1e3", [[1000.0]], "exponent"),
    ("ford", [["ford"]], "word"),
    ('"ford"', [["ford"]], "double-quoted"),
    ("'ford'", [["ford"]], "single-quoted"),
    ("`ford`", [["ford"]], "backticked"),
    ("  ford \n", [["ford"]], "whitespace"),
    ("alice, bob, charlie", [["alice"], ["bob"], ["charlie"]], "comma-list"),
    ("1,234", [[1], [234]], "comma-digits"),
    ('"a", "b"', [["a"], ["b"]], "quoted-comma-list"),
    ("[alice, bob]", [["alice"], ["bob"]], "bracketed-bare-list"),
    ("42", [[42]], "json-int"),
    ('"x"', [["x"]], "json-string"),
    ("null", [[None]], "json-null"),
    ("true", [[1]], "json-true"),
    ("[1, 2, 3]", [[1], [2], [3]], "json-list"),
    ('[[1, "a"], [2, "b"]]', [[1, "a"], [2, "b"]], "json-rows"),
    ('[{"a": 1, "b": "x"}]', [[1, "x"]], "json-objects"),
    ('{"count": 5}', [[5]], "json-object"),
    ('{"rows": [[1], [2]]}', [[1], [2]], "json-wrapper-object"),
    ("[[]]", [], "json-empty-row"),
    ("[[1, [2, 3]]]", [[1, "[2, 3]"]], "json-nested-cell"),
    ("[(1, 'a'), (2, None)]", [[1, "a"], [2, None]], "python-tuples"),
    ("(1, 'a')", [[1, "a"]], "python-tuple-row"),
    ("a | 1\nb | 2", [["a", 1], ["b", 2]], "pipe-rows"),
    ("| a | 1 |", [["a", 1]], "pipe-row-bordered"),
    ("| n | v |\n|:---|---:|\n| a | 1 |", [["a", 1]], "markdown-header-dropped"),
    ("| n |\n|---|", [], "markdown-header-only"),
    ("+---+\n| n |\n+---+\n| 1 |\n| 2 |\n+---+", [[1], [2]], "box-table"),
    (r"a \| b | 1", [["a | b", 1]], "escaped-pipe"),
    ("+1 555 | x\n(0) 7 | y", [["+1 555", "x"], ["(0) 7", "y"]], "pipe-rows-plus-and-paren"),
    ("| a | |\n| b | 2 |", [["a", None], ["b", 2]], "pipe-empty-last-cell"),
    ("a\nb\n\nc", [["a"], ["b"], ["c"]], "newline-list"),
    ("a, 1\nb, 2", [["a", 1], ["b", 2]], "newline-csv"),
    ("Smith, John\nDoe", [["Smith, John"], ["Doe"]], "newline-uneven-commas"),
    ('"Smith, John", 3\nDoe, 4', [["Smith, John", 3], ["Doe", 4]], "newline-csv-quoted"),
    ("1. alice\n2. bob", [["alice"], ["bob"]], "numbered-list"),
    ("- alice\n- bob", [["alice"], ["bob"]], "bulleted-list"),
    ("-1\n-2", [[-1], [-2]], "negative-lines-not-bullets"),
    ("[1, 'a']\n[2, 'b']", [[1, "a"], [2, "b"]], "one-literal-per-line"),
    ("x, null, , NULL, None", [["x"], [None], [None], [None], [None]], "null-cells"),
    ("[]", [], "empty-json"),
    ("none", [], "empty-none"),
    ("No results.", [], "empty-no-results"),
    ("empty", [], "empty-word"),
    ("(empty)", [], "empty-parenthesised"),
    ("no rows", [], "empty-no-rows"),
    ("", [], "empty-text"),
    ("   \n ", [], "blank-text"),
    ("```json\n[1, 2]\n```", [[1], [2]], "code-fence-json"),
    ("```\nford\n```", [["ford"]], "code-fence-bare"),
    ("Answer: 42", [[42]], "answer-colon"),
    ("answer - ford", [["ford"]], "answer-dash"),
    ("**Answer:** 42", [[42]], "answer-bold"),
    ("Final answer: **ford**", [["ford"]], "answer-bold-value"),
    ("Answer: ```json\n[1]\n```", [[1]], "answer-then-fence"),
]


@pytest.mark.parametrize(
    ("text", "rows"), [case[:2] for case in PARSE_CASES], ids=[case[2] for case in PARSE_CASES]
)
def test_parse_answer(text: str, rows: Rows) -> None:
    assert parse_answer(text) == rows


def test_parse_answer_returns_plain_cells() -> None:
    rows = parse_answer("[3.30, 2]")
    assert rows == [[3.3], [2]]
    assert type(rows[0][0]) is float


@pytest.mark.parametrize(
    ("cell", "key"),
    [
        (None, None),
        (5, 5),
        (5.0, 5),
        (-0.0, 0),
        (2.5, 2.5),
        (True, 1),
        (" Ford ", "ford"),
        ("42", 42),
        (" 2.50 ", 2.5),
        ("1,234", "1,234"),
        ("nan", "nan"),
        ("", None),
        (" NULL ", None),
        ("  ", None),
        ("x'0A'", "x'0a'"),
    ],
)
def test_normalize_cell(cell: Cell, key: object) -> None:
    got = normalize_cell(cell)
    assert got == key
    assert type(got) is type(key) or isinstance(got, float)


def test_normalize_cell_is_hashable_and_equal_across_types() -> None:
    assert len({normalize_cell(c) for c in (25, 25.0, "25", " 25.0 ", "25.00")}) == 1


def test_reasons_do_not_leak_values() -> None:
    gold: Rows = [["secret-a"], ["secret-b"], ["secret-c"]]
    results = [
        check_answer("x, y", gold, False),
        check_answer("x, y, z", gold, False),
        check_answer("secret-c, secret-b, secret-a", gold, True),
        check_answer("[[1, 2], [3, 4], [5, 6]]", gold, False),
        check_answer("a | b\nc", gold, False),
        check_answer("secret-b, x\nsecret-a, y\nsecret-c, z", gold, False),
        check_answer("secret-b, c\nsecret-a, c\nsecret-c, c", [["secret-a, c"]] * 3, True),
        check_answer("b, 1\na, 1", [["a, 1"], ["b, 1"]], True),
    ]
    assert [r.reason for r in results] == [
        "expected 3 rows, got 2",
        "values differ",
        "right rows in the wrong order",
        "expected 1 column, got 2",
        "answer rows have different numbers of values",
        "expected 1 column, got 2",
        "expected 1 column, got 2",
        "right rows in the wrong order",
    ]
    assert all(not r.correct and "secret" not in r.reason for r in results)


def test_correct_result_is_truthy() -> None:
    result = check_answer("Answer: 3.30", [[3.3]], False)
    assert result == CheckResult(correct=True, reason="correct", parsed_rows=[[3.3]])
    assert result and not check_answer("3.4", [[3.3]], False)


# --------------------------------------------------------------------- properties

cells = st.one_of(
    st.none(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.text(),
    st.sampled_from(["", " ", "null", "None", "[]", "a, b", "x | y", "1,234", '"q"', "x'0a'"]),
    st.sampled_from(["42", " 7 ", "-0.0", "1e3", "Answer: 1", "```", "**b**", "\n", "ß", "é"]),
)


@st.composite
def results(draw: st.DrawFn) -> Rows:
    width = draw(st.integers(min_value=1, max_value=5))
    row = st.lists(cells, min_size=width, max_size=width)
    return draw(st.lists(row, max_size=8))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=results(), order_matters=st.booleans())
def test_format_answer_round_trips(rows: Rows, order_matters: bool) -> None:
    assert check_answer(format_answer(rows), rows, order_matters)


@settings(max_examples=200, deadline=None)
@given(rows=results(), extra=st.lists(cells, min_size=5, max_size=5))
def test_an_extra_row_is_always_wrong(rows: Rows, extra: list[Cell]) -> None:
    assume(rows or normalize_cell(extra[0]) is not None)  # NULL answers an empty result
    longer = [*rows, extra[: len(rows[0])] if rows else extra[:1]]
    assert not check_answer(format_answer(longer), rows, False)


@settings(max_examples=200, deadline=None)
@given(rows=results(), data=st.data())
def test_row_and_column_order_free_without_order_by(rows: Rows, data: st.DataObject) -> None:
    shuffled = data.draw(st.permutations(rows))
    if rows:
        perm = data.draw(st.permutations(range(len(rows[0]))))
        shuffled = [[row[i] for i in perm] for row in shuffled]
    assert check_answer(json.dumps(shuffled), rows, False)


@pytest.mark.parametrize(
    "rows",
    [
        [["a,b"], ["c|d"], ["e\nf"], ['"q"'], [" pad "], [""], [None]],
        [[0.1 + 0.2, -0.0, 1e16, 2.5e-310, 1.7976931348623157e308, math.inf, -math.inf]],
        [[1, "1"], ["1", 1]],
        [["Ünïcødé ✓", 9223372036854775807, -9223372036854775808]],
        [[None]],
        [["none"]],
        [[""]],
        [["[]"]],
        [],
    ],
    ids=["awkward-strings", "awkward-floats", "mixed-types", "unicode-bigint", "null",
         "none-text", "empty-string", "brackets-text", "no-rows"],
)  # fmt: skip
def test_format_answer_round_trips_awkward_results(rows: Rows) -> None:
    for order_matters in (False, True):
        assert check_answer(format_answer(rows), rows, order_matters)


def test_format_answer_scalar_for_one_cell() -> None:
    assert format_answer([[42]]) == "42"
    assert format_answer([["ford"]]) == '"ford"'
    assert format_answer([[None]]) == "null"
    assert format_answer([[1, 2]]) == "[[1, 2]]"


answer_texts = st.one_of(
    st.text(),
    st.text(alphabet="[]{}()\"'`,|:-.eE+ \n\t0123456789abnulx*#"),
    st.lists(st.sampled_from(["[", "]", "(", ")", "|", ",", "\n", '"', "'", "---", "```"])).map(
        "".join
    ),
)


@settings(max_examples=1000, deadline=None)
@given(text=answer_texts, rows=results(), order_matters=st.booleans())
def test_never_raises(text: str, rows: Rows, order_matters: bool) -> None:
    parsed = parse_answer(text)
    assert isinstance(parsed, list)
    assert all(isinstance(row, list) for row in parsed)
    assert isinstance(check_answer(text, rows, order_matters).correct, bool)


@pytest.mark.parametrize(
    "text",
    ["[" * 5000, "(" * 5000 + ")" * 5000, "9" * 5000, "1e" + "9" * 5000, "\x00", "|" * 1000],
    ids=["deep-json", "deep-tuple", "long-int", "long-exponent", "nul", "pipes"],
)
def test_never_raises_on_pathological_text(text: str) -> None:
    parse_answer(text)
    assert check_answer(text, [[1]], False).correct in (True, False)


# ------------------------------------------------------------------------ real data


@pytest.mark.parametrize("split", ["eval", "train"])
def test_format_answer_round_trips_real_gold(split: str) -> None:
    path = default_data_dir() / "questions" / f"{split}.jsonl"
    if not path.is_file():
        pytest.skip(f"{path} not built")
    with path.open(encoding="utf-8") as fh:
        records = [json.loads(line) for line in fh if line.strip()]
    failures = [
        r["id"]
        for r in records
        if not check_answer(format_answer(r["gold_rows"]), r["gold_rows"], r["order_matters"])
    ]
    assert not failures, f"{len(failures)} of {len(records)} gold results fail: {failures[:10]}"
