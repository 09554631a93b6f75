from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlenv_core.config import RewardConfig
from sqlenv_core.dataset import load_dataset
from sqlenv_core.env import SQLEnvironment
from sqlenv_core.evaluation import evaluate
from sqlenv_core.policies import OraclePolicy, RandomPolicy
from sqlenv_core.reward import cardinality_score, numeric_closeness, similarity, value_overlap
from sqlenv_core.schemas import SQLAction

from .conftest import build_tiny_data

cells = st.one_of(
    st.none(),
    st.integers(-(10**6), 10**6),
    st.floats(-1e6, 1e6, allow_nan=False),
    st.text(max_size=8),
)
rows_strategy = st.lists(st.lists(cells, min_size=1, max_size=3), max_size=6)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    environment = SQLEnvironment(
        load_dataset(build_tiny_data(tmp_path_factory.mktemp("d") / "data"))
    )
    yield environment
    environment.close()


def test_components_on_known_cases():
    assert cardinality_score(10, 1) == pytest.approx(0.1)
    assert cardinality_score(1, 4) == pytest.approx(0.25)
    assert cardinality_score(0, 0) == 1.0
    from collections import Counter

    assert value_overlap(Counter("ab"), Counter("ab")) == 1.0
    assert value_overlap(Counter("a"), Counter("b")) == 0.0
    assert numeric_closeness([], []) is None
    assert numeric_closeness([], [3.0]) == 0.0
    assert numeric_closeness([90.0], [100.0]) == pytest.approx(0.9)


@given(rows_strategy, rows_strategy)
def test_similarity_is_bounded_and_one_on_identity(pred, gold):
    score = similarity(pred, gold)
    assert 0.0 <= score <= 1.0 + 1e-12
    assert similarity(gold, gold) == pytest.approx(1.0)


def test_similarity_rewards_closer_results():
    gold = [[42]]
    assert similarity([[42]], gold) > similarity([[40]], gold) > similarity([[1]], gold)
    assert similarity([["a"], ["b"]], [["a"], ["b"], ["c"]]) > similarity(
        [["x"]], [["a"], ["b"], ["c"]]
    )


ACTIONS = st.sampled_from(
    [
        ("DESCRIBE", "customer"),
        ("DESCRIBE", "orders"),
        ("DESCRIBE", "nope"),
        ("SAMPLE", "customer"),
        ("SAMPLE", "orders"),
        ("QUERY", "SELECT count(*) FROM customer"),
        ("QUERY", "SELECT name FROM customer"),
        ("QUERY", "SELECT * FROM orders"),
        ("QUERY", "SELECT 3"),
        ("QUERY", "SELECT bad"),
        (
            "QUERY",
            "SELECT c.name, sum(o.amount) FROM customer c JOIN orders o ON o.customer_id = c.id "
            "GROUP BY c.name",
        ),
        ("ANSWER", "3"),
        ("ANSWER", "wrong"),
    ]
)


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(["t_count", "t_names", "t_totals"]), st.lists(ACTIONS, min_size=1, max_size=40)
)
def test_shaping_summed_over_any_episode_stays_below_0_3(env, qid, actions):
    env.reset(question_id=qid)
    for kind, arg in actions:
        obs = env.step(SQLAction(action_type=kind, argument=arg))
        if obs.done:
            break
    layers = env.state.reward_by_layer
    shaping = layers.operational + layers.progress
    assert shaping < 0.3
    cfg = RewardConfig()
    assert shaping <= cfg.new_info_cap + cfg.progress_weight + 1e-9
    if not env.state.correct:
        assert env.state.total_reward < 0.3


def _play(env, qid, actions):
    env.reset(question_id=qid)
    for kind, arg in actions:
        if env.step(SQLAction(action_type=kind, argument=arg)).done:
            break
    return env.state.total_reward


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 14))
def test_repeating_a_query_never_beats_answering(env, repeats):
    query = ("QUERY", "SELECT count(*) FROM customer")
    spam = _play(env, "t_count", [query] * repeats)
    answered = _play(env, "t_count", [query, ("ANSWER", "3")])
    assert spam < answered
    assert spam <= _play(env, "t_count", [query])  # each repeat costs


def test_describing_every_table_never_beats_answering(env):
    explore = [
        ("DESCRIBE", "customer"),
        ("DESCRIBE", "orders"),
        ("SAMPLE", "customer"),
        ("SAMPLE", "orders"),
    ] * 4
    explored = _play(env, "t_count", explore)
    answered_blind = _play(env, "t_count", [("ANSWER", "3")])
    assert explored < 0.3 < answered_blind


def test_oracle_return_is_far_above_random(env):
    questions = list(env.dataset)
    oracle = evaluate(env, OraclePolicy(env.dataset), questions)
    random_ = evaluate(env, RandomPolicy(seed=3), questions)
    assert oracle.success_rate == 1.0
    assert oracle.mean_return > 1.0
    assert random_.mean_return < 0.5 * oracle.mean_return


@given(
    st.lists(st.floats(-1e6, 1e6), max_size=30),
    st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=30),
)
def test_numeric_closeness_equals_the_brute_force_nearest(pred, gold):
    def brute(p_list, g_list):
        if not p_list:
            return 0.0
        return sum(
            max(1.0 - min(1.0, abs(p - g) / max(abs(p), abs(g), 1.0)) for p in p_list)
            for g in g_list
        ) / len(g_list)

    assert numeric_closeness(pred, gold) == pytest.approx(brute(pred, gold), abs=1e-12)


@given(st.lists(rows_strategy, min_size=1, max_size=6), rows_strategy)
def test_remembered_phi_equals_phi_computed_afresh(results, gold):
    """The per-gold memo of phi (keyed by the exact result) changes no reward."""
    from sqlenv_core.reward import RewardTracker

    config = RewardConfig()
    memo, fresh = RewardTracker(config, gold), RewardTracker(config, gold)
    for i, rows in enumerate(results * 2):  # every result twice: the second from the memo
        key = tuple(map(tuple, rows))
        got = memo.query(("Q", i), rows, ("info", i), key)
        want = fresh.query(("Q", i), rows, ("info", i))
        assert got == want
        assert memo.phi == pytest.approx(similarity(rows, gold, config), abs=1e-12)


def test_phi_memo_is_per_gold_answer_and_per_config():
    from sqlenv_core.reward import RewardTracker

    rows = [[1], [2]]
    key = tuple(map(tuple, rows))
    gold_a, gold_b = [[1], [2]], [[7]]
    assert RewardTracker(RewardConfig(), gold_a).query("q", rows, "i", key).progress == pytest.approx(0.15)
    # equal-looking gold rows of another question, and another config: no stale phi
    assert RewardTracker(RewardConfig(), gold_b).query("q", rows, "i", key).progress < 0.05
    heavy = RewardConfig(progress_weight=0.3)
    assert RewardTracker(heavy, gold_a).query("q", rows, "i", key).progress == pytest.approx(0.3)
    count_only = RewardConfig(weight_value_overlap=0.0, weight_numeric=0.0)
    assert RewardTracker(count_only, gold_b).query("q", [[1]], "i", ((1,),)).progress == pytest.approx(0.15)
