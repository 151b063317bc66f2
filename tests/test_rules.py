"""The engine's one success rule set (rules.py), its use for candidates (verdicts.py), the
budgeted oracle (budget.py) and the common metrics schema (metrics_schema.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from latentsteer.budget import BudgetedOracle
from latentsteer.goalspec import parse_goal
from latentsteer.metrics_schema import COMMON, check_metrics
from latentsteer.rules import goal_rule, target
from latentsteer.verdicts import judge, judge_table

BEFORE = np.array([2.0, 2.0, 2.0, 2.0, np.nan])
AFTER = np.array([2.5, 1.5, 3.9, 2.0, 3.0])


@pytest.mark.parametrize(
    "goal, progress, met",
    [
        ("t=max", [0.5, -0.5, 1.9, 0.0, np.nan], [1, 0, 1, 0, 0]),
        ("t=min", [-0.5, 0.5, -1.9, 0.0, np.nan], [0, 1, 0, 0, 0]),
        ("t=keep", [-0.5, -0.5, -1.9, 0.0, np.nan], [1, 1, 0, 1, 0]),
        # +2 from 2 asks for 4: 3.9 is within 0.5, 2.5 is 1.5 away (0.5 closer than the start)
        ("t=+2", [0.5, -0.5, 1.9, 0.0, np.nan], [0, 0, 1, 0, 0]),
        ("t=-0.5", [-0.5, 0.5, -1.9, 0.0, np.nan], [0, 1, 0, 1, 0]),
        ("t=2.4", [0.3, -0.5, -1.1, 0.0, np.nan], [1, 0, 0, 1, 0]),
    ],
)
def test_each_rule_by_hand(goal, progress, met):
    got_progress, got_met = goal_rule(parse_goal(goal), BEFORE, AFTER, tol=0.5)
    np.testing.assert_allclose(got_progress, progress, atol=1e-12)
    assert got_met.tolist() == [bool(v) for v in met]


def test_targets_and_open_goals():
    assert target(parse_goal("t=+2"), 1.5) == 3.5
    assert target(parse_goal("t=keep"), 1.5) == 1.5
    assert float(target(parse_goal("t=4"), 1.5)) == 4.0
    with pytest.raises(ValueError, match="'t=max' is open-ended"):
        target(parse_goal("t=max"), 1.0)


class _Request:
    def __init__(self, goals, bounds=None, similarity=0.4):
        self.specs = [parse_goal(g) for g in goals]
        self.bounds = bounds or {}
        self.similarity = similarity


def test_judge_applies_goals_bounds_and_similarity():
    request = _Request(["a=max", "b=keep"], bounds={"c": [None, 1.0]})
    values = pd.DataFrame({"a": [3.0, 3.0, 3.0, 0.5, 3.0], "b": [1.0, 1.05, 2.0, 1.0, 1.0],
                           "c": [0.5, 2.0, 0.5, 0.5, 0.5]})  # fmt: skip
    sims = np.array([0.9, 0.9, 0.9, 0.9, 0.3])
    same = np.zeros(5, dtype=bool)
    v = judge(request, values, {"a": 1.0, "b": 1.0, "c": 0.0}, sims, same,
              spread={"a": 2.0, "b": 1.0}, tolerance={"a": 0.1, "b": 0.1})  # fmt: skip
    # 0: all good; 1: outside the bound; 2: b moved; 3: a fell; 4: too far from the start
    assert v.success.tolist() == [True, False, False, False, False]
    assert v.acceptable.tolist() == [True, True, False, False, False]
    np.testing.assert_allclose(v.score, [1.0, 1.0, 1.0, -0.25, 1.0])
    assert v.best() == 0  # most rules met: candidate 1 breaks the bound
    assert v.ranked().tolist() == [0, 1, 2, 3]  # rules met, then score; 4 is not similar
    assert v.improving().tolist() == [0]


def test_judge_table_grades_row_by_row_and_empty():
    request = _Request(["a=max"], similarity=0.0)
    values = pd.DataFrame({"a": [2.0, 0.0]})
    starts = pd.DataFrame({"a": [1.0, 1.0]})
    v = judge_table(request, values, starts, np.ones(2), np.zeros(2, dtype=bool), {"a": 1.0},
                    {"a": 0.1})  # fmt: skip
    assert v.success.tolist() == [True, False]
    empty = judge_table(request, values.iloc[:0], starts.iloc[:0], np.ones(0),
                        np.zeros(0, dtype=bool), {"a": 1.0}, {"a": 0.1})  # fmt: skip
    assert empty.goals.shape == (0, 1) and len(empty.success) == 0


def test_budgeted_oracle_counts_caches_and_caps():
    measured = []

    def measure(keys, workers):
        measured.extend(keys)
        return pd.DataFrame({"x": [float(len(k)) for k in keys]})

    cache: dict = {}
    oracle = BudgetedOracle(measure, ["x"], budget=2, n=2, cache=cache)
    first = oracle.measure(0, ["a", "bb", "a", "ccc"])  # 'a' twice costs once; 'ccc' is over
    assert first.x.tolist()[:3] == [1.0, 2.0, 1.0] and np.isnan(first.x.iloc[3])
    assert oracle.calls.tolist() == [2, 0] and oracle.left(0) == 0
    again = BudgetedOracle(measure, ["x"], budget=5, n=1, cache=cache)
    again.measure(0, ["bb"])  # charged to this method, measured once in all
    assert again.calls.tolist() == [1] and measured == ["a", "bb"]
    with pytest.raises(ValueError, match="budget must be an integer >= 0"):
        BudgetedOracle(measure, ["x"], budget=-1, n=1)


def test_check_metrics_names_what_is_wrong():
    good = {"n": 3, "method": "latent", "goals": ["a=max"], "success_rate": 0.5,
            "predicted_success_rate": 1.0, "success_gap": 0.5, "oracle_calls": 2.0,
            "model_calls": 10.0, "wall_s": 1.5, "in_loop_oracles": "none",
            "certified_by": "x", "reference_data": "none"}  # fmt: skip
    assert set(good) == set(COMMON)
    check_metrics(good)
    with pytest.raises(ValueError, match="lack the common keys wall_s"):
        check_metrics({k: v for k, v in good.items() if k != "wall_s"})
    with pytest.raises(ValueError, match="metrics\\['n'\\] = 3.0"):
        check_metrics({**good, "n": 3.0})


def test_every_domain_names_its_methods_from_the_one_vocabulary():
    from latentsteer.methods import ENGINE_METHODS, VOCABULARY
    from latentsteer.registry import get_domain

    assert set(ENGINE_METHODS) <= set(VOCABULARY)
    for name in ("mnist", "molecules"):
        methods = get_domain(name).methods
        assert methods[0] == "latent" and set(methods) <= set(VOCABULARY), name
