"""The three reward layers, as small pure pieces plus one per-episode tracker.

* operational: ``exec_ok`` for an action that ran, ``new_info`` the first time a
  table is described or sampled or a result is seen (capped per episode), a
  ``repeat_penalty`` for an action already taken, and a ``step_cost`` on every
  non-ANSWER step.
* progress: potential-based shaping, ``progress_weight * (phi(s') - phi(s))``, where
  phi is the similarity of the latest QUERY result to the gold rows. It telescopes,
  so an episode's progress reward is ``progress_weight * phi(last result)``.
* terminal: ``correct`` for a right answer, ``wrong`` otherwise or when the budget
  runs out.

With ``exec_ok <= step_cost`` the shaping an episode can collect is bounded by
``new_info_cap + progress_weight`` whatever its length: the terminal reward stays
dominant. ``docs/reward.md`` has the table and the reasoning.
"""

from __future__ import annotations

import itertools
import math
import threading
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from .checker import normalize_cell
from .config import RewardConfig
from .memo import ByteBoundedMemo, rows_nbytes
from .schemas import Cell, RewardBreakdown

__all__ = ["RewardTracker", "cardinality_score", "numeric_closeness", "similarity", "value_overlap"]

Rows = Sequence[Sequence[Cell]]


def cardinality_score(n_pred: int, n_gold: int) -> float:
    """1 when the row counts agree, falling linearly with their relative difference."""
    return 1.0 - abs(n_pred - n_gold) / max(n_pred, n_gold, 1)


def value_overlap(pred: Mapping[Hashable, int], gold: Mapping[Hashable, int]) -> float:
    """Multiset F1 of the cell values: rewards finding the right values, in any layout."""
    if not pred and not gold:
        return 1.0
    common = 0
    for key, count in pred.items():
        other = gold.get(key)
        if other:
            common += count if count < other else other
    if common == 0:
        return 0.0
    precision = common / sum(pred.values())
    recall = common / sum(gold.values())
    return 2 * precision * recall / (precision + recall)


def _profile(rows: Rows) -> tuple[dict[Hashable, int], list[float]]:
    """The multiset of normalised cells and the finite numbers, in one pass."""
    bag: dict[Hashable, int] = {}
    numbers: list[float] = []
    get = bag.get
    for row in rows:
        for cell in row:
            key = normalize_cell(cell)
            bag[key] = get(key, 0) + 1
            kind = type(cell)
            if (kind is int or kind is float) and math.isfinite(cell):  # type: ignore[arg-type]
                numbers.append(float(cell))  # type: ignore[arg-type]
    return bag, numbers


def numeric_closeness(pred: Sequence[float], gold: Sequence[float]) -> float | None:
    """Mean over gold numbers of how close the nearest predicted number is.

    ``None`` when the gold has no numbers, so the layer's weight goes to the others.
    An aggregate off by 10% still earns most of this component, unlike exact overlap.
    The score ``1 - |p - g| / max(|p|, |g|, 1)`` only falls as ``p`` moves away from
    ``g`` on either side, so the two sorted neighbours of ``g`` hold the best one.
    """
    if not gold:
        return None
    if not pred:
        return 0.0
    ordered = sorted(pred)
    last = len(ordered) - 1
    total = 0.0
    for g in gold:
        i = bisect_left(ordered, g)
        best = 0.0
        for p in (ordered[min(i, last)], ordered[max(i - 1, 0)]):
            score = 1.0 - min(1.0, abs(p - g) / max(abs(p), abs(g), 1.0))
            best = max(best, score)
        total += best
    return total / len(gold)


PHI_MEMO_BYTES: Final = 16 << 20
"""Bytes of (gold answer, result) -> phi the process remembers, over all questions: the G
rollouts of a GRPO group and later epochs run the same queries on the same question again
and again. Bounded by bytes, not entries, because the keys are whole results."""
PHI_MEMO_ENTRY_BYTES: Final = 256 << 10
"""A result bigger than this is not remembered (its phi is recomputed: a pass over it)."""
_GOLD_CACHE_SIZE: Final = 4096
"""Gold profiles kept; each is about the size of its question's gold rows, which the
dataset holds anyway, so this bound is one of the dataset, not of what clients send."""

# (gold profile's token, result rows as a tuple of tuples) -> phi; see RewardTracker.query
_phi_memo: ByteBoundedMemo[tuple[int, Hashable], float] = ByteBoundedMemo(
    PHI_MEMO_BYTES, PHI_MEMO_ENTRY_BYTES
)
_tokens = itertools.count()


@dataclass(frozen=True)
class _GoldProfile:
    n_rows: int
    bag: dict[Hashable, int]
    numbers: list[float]
    # unique for the process's life (an id() could be reused once the profile is gone):
    # the phi memo's entries name their gold answer and config by it
    token: int = field(default_factory=lambda: next(_tokens), compare=False)

    @classmethod
    def of(cls, rows: Rows) -> _GoldProfile:
        return cls(len(rows), *_profile(rows))


# id(gold rows) -> (gold rows, config, profile). Holding the gold rows keeps their id
# from being reused while the entry lives, so the id is an exact key; a hit needs the
# same config object too, since phi's weights come from it.
_gold_profiles: OrderedDict[int, tuple[Rows, RewardConfig, _GoldProfile]] = OrderedDict()
_gold_lock = threading.Lock()


def _gold_profile(gold_rows: Rows, config: RewardConfig) -> _GoldProfile:
    """The gold answer's profile, shared by every episode of the question."""
    key = id(gold_rows)
    with _gold_lock:
        entry = _gold_profiles.get(key)
        if entry is not None and entry[0] is gold_rows and entry[1] is config:
            _gold_profiles.move_to_end(key)
            return entry[2]
    profile = _GoldProfile.of(gold_rows)
    with _gold_lock:
        _gold_profiles[key] = (gold_rows, config, profile)
        if len(_gold_profiles) > _GOLD_CACHE_SIZE:
            _gold_profiles.popitem(last=False)
    return profile


def similarity(pred_rows: Rows, gold_rows: Rows, config: RewardConfig | None = None) -> float:
    """phi in [0, 1]: 1 exactly when the result has the gold's rows and values."""
    return _similarity(pred_rows, _GoldProfile.of(gold_rows), config or RewardConfig())


def _similarity(pred_rows: Rows, gold: _GoldProfile, cfg: RewardConfig) -> float:
    bag, numbers = _profile(pred_rows)
    score = cfg.weight_cardinality * cardinality_score(len(pred_rows), gold.n_rows)
    score += cfg.weight_value_overlap * value_overlap(bag, gold.bag)
    weight = cfg.weight_cardinality + cfg.weight_value_overlap
    numeric = numeric_closeness(numbers, gold.numbers)
    if numeric is not None:
        score += cfg.weight_numeric * numeric
        weight += cfg.weight_numeric
    return score / weight if weight else 0.0


@dataclass
class RewardTracker:
    """Reward bookkeeping for one episode; the engine calls one method per step."""

    config: RewardConfig
    gold_rows: Rows
    phi: float = 0.0
    new_info_total: float = 0.0
    _seen_actions: set[int] = field(default_factory=set)
    _seen_info: set[int] = field(default_factory=set)
    _gold: _GoldProfile | None = None

    def exploration(
        self, action_key: Hashable, ok: bool, info_keys: Sequence[Hashable] = ()
    ) -> RewardBreakdown:
        """Operational reward of a DESCRIBE, SAMPLE or failed QUERY (no progress change)."""
        return RewardBreakdown.of(operational=self._operational(action_key, ok, info_keys))

    def query(
        self,
        action_key: Hashable,
        rows: Rows,
        info_key: Hashable,
        rows_key: Hashable | None = None,
    ) -> RewardBreakdown:
        """A QUERY that ran: operational reward plus the change in phi.

        ``rows_key``, when given, must equal ``tuple(map(tuple, rows))`` (an exact,
        hashable copy of the result): phi is then remembered per gold answer and
        result, so a result seen before costs one dict lookup instead of a pass over
        its cells. phi is a pure function of the two, so the memo changes no reward.
        """
        operational = self._operational(action_key, True, (info_key,))
        gold = self._gold
        if gold is None:
            gold = self._gold = _gold_profile(self.gold_rows, self.config)
        phi = None if rows_key is None else _phi_memo.get((gold.token, rows_key))
        if phi is None:
            phi = self._new_phi(gold, rows, rows_key)
        progress = self.config.progress_weight * (phi - self.phi)
        self.phi = phi
        return RewardBreakdown.of(operational, progress)

    def _new_phi(self, gold: _GoldProfile, rows: Rows, rows_key: Hashable | None) -> float:
        """phi of a result the memo does not hold (yet); remembered when it has a key."""
        phi = _similarity(rows, gold, self.config)
        if rows_key is not None:
            _phi_memo.put((gold.token, rows_key), phi, rows_nbytes(rows_key, len(rows)) + 80)
        return phi

    def answer(self, correct: bool) -> RewardBreakdown:
        return RewardBreakdown.of(terminal=self.config.correct if correct else self.config.wrong)

    def budget_exhausted(self) -> RewardBreakdown:
        return RewardBreakdown.of(terminal=self.config.budget_exhausted)

    def _operational(self, action_key: Hashable, ok: bool, info_keys: Sequence[Hashable]) -> float:
        cfg = self.config
        reward = -cfg.step_cost
        # The sets hold the keys' hashes, not the keys: a key may be a 100,000-character
        # query or a whole 8 MB result, and an episode may have 10,000 steps (such keys
        # once held 7.8 MB per step). A collision could only withhold a bonus or charge a
        # repeat penalty, never grant a reward (the same key always has the same hash).
        seen = self._seen_actions
        n = len(seen)
        seen.add(hash(action_key))
        if len(seen) == n:
            return reward - cfg.repeat_penalty
        if not ok:
            return reward
        reward += cfg.exec_ok
        seen_info = self._seen_info
        for key in info_keys:
            n = len(seen_info)
            seen_info.add(hash(key))
            if len(seen_info) != n:
                grant = min(cfg.new_info, cfg.new_info_cap - self.new_info_total)
                if grant > 0:
                    self.new_info_total += grant
                    reward += grant
        return reward
