"""An oracle-call budget per start for the closed loop (trust_region, ascent, blackbox, retry)."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_model
from test_retry import AttemptGuide

from latentsteer.ascent import StopRule, ascend
from latentsteer.blackbox import blackbox_search
from latentsteer.objectives import Maximize, Target
from latentsteer.random_search import RandomSearch
from latentsteer.retry import INSIST, ascend_with_retries
from latentsteer.trust_region import Check, TrustRegion


def _check(accept: list[bool], value: list[float], broken: list[bool] | None = None) -> Check:
    broken = broken or [False] * len(accept)
    return Check(torch.tensor(accept), torch.tensor(value), torch.tensor(broken))


def _frame(k: float, n: int = 3) -> torch.Tensor:
    """Every sample's code at ``(k, k)``: the frame tells which check it was read at."""
    return torch.full((n, 2), float(k))


def test_trust_region_stops_each_sample_at_its_budget_on_its_best_accepted_frame():
    region = TrustRegion(torch.zeros(3, 2), can_finish=False, patience=10,
                         budget=torch.tensor([3, 3, 5]))  # fmt: skip
    # Row 0 is accepted with values 1, 5, 2 (best: frame 2); row 1 never; row 2 rises.
    values = [[1.0, 0.0, 1.0], [5.0, 0.0, 2.0], [2.0, 0.0, 3.0]]
    for k, value in enumerate(values, start=1):
        z = _frame(k)
        verdict = region.update(torch.arange(3), z, _check([True, False, True], value), False)
        if k < 3:
            assert not verdict.done.any()
    assert verdict.done.tolist() == [True, True, False]
    assert verdict.reasons == ["oracle_budget", "unconfirmed"]
    assert z[0].tolist() == [2.0, 2.0]  # back on its best accepted frame
    assert z[1].tolist() == [0.0, 0.0]  # nothing accepted: back at its start
    assert z[2].tolist() == [3.0, 3.0]  # still moving: untouched
    # Row 2 goes on to its own budget of 5; its best is the fourth frame (value 4).
    for k, value in ((4, 4.0), (5, 0.5)):
        z = _frame(k)
        verdict = region.update(torch.tensor([2]), z, _check([True], [value]), False)
    assert verdict.done.tolist() == [True] and verdict.reasons == ["oracle_budget"]
    assert z[2].tolist() == [4.0, 4.0]
    assert region.calls.tolist() == [3, 3, 5]


@pytest.mark.parametrize(
    ("can_finish", "patience", "shrinks", "checks", "last", "reason"),
    [
        # Confirmed at the check that spends the budget: confirmed wins.
        (True, 3, 3, [([False], [0.0], [False]), ([True], [0.0], [False])], False, "confirmed"),
        # Stalled (patience 1) at the same check as the budget.
        (False, 1, 3, [([True], [1.0], [False]), ([True], [0.0], [False])], False, "stalled"),
        # Broken past the halvings allowed at the same check as the budget.
        (False, 3, 0, [([True], [1.0], [False]), ([True], [9.0], [True])], False, "untrusted"),
        # The search's last check spends the budget too: the budget cut nothing short.
        (False, 3, 3, [([True], [1.0], [False]), ([True], [2.0], [False])], True, "steps"),
        # Only the budget stops it.
        (False, 3, 3, [([True], [1.0], [False]), ([True], [2.0], [False])], False, "oracle_budget"),
        # Nothing accepted: back at its start, whatever stopped it.
        (False, 3, 3, [([False], [0.0], [False]), ([False], [0.0], [False])], False,
         "unconfirmed"),
    ],
)  # fmt: skip
def test_other_stop_reasons_take_precedence_over_the_budget(
    can_finish, patience, shrinks, checks, last, reason
):
    region = TrustRegion(torch.zeros(1, 2), can_finish, patience, shrinks, budget=2)
    for k, (accept, value, broken) in enumerate(checks, start=1):
        is_last = last and k == len(checks)
        verdict = region.update(torch.tensor([0]), _frame(k, 1), _check(accept, value, broken),
                                is_last)  # fmt: skip
    assert verdict.done.tolist() == [True] and verdict.reasons == [reason]
    assert region.calls.tolist() == [2]


def test_budget_settings_are_validated():
    with pytest.raises(ValueError, match=r"budget must be an integer >= 1 or None; got 0"):
        TrustRegion(torch.zeros(2, 2), True, budget=0)
    with pytest.raises(ValueError, match=r"budget must be an integer >= 0 per sample, of shape"):
        TrustRegion(torch.zeros(2, 2), True, budget=torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match=r"budget must be an integer >= 0 per sample"):
        TrustRegion(torch.zeros(2, 2), True, budget=torch.tensor([1.0, 2.0]))
    model, z0 = tiny_model(), _z0()
    goals = [Target("thickness", 2.6)]
    for bad in (0, -1, 1.5, True, "2"):
        message = rf"^oracle_budget must be an integer >= 1 or None; got {bad!r}$"
        with pytest.raises(ValueError, match=message):
            ascend(model, z0, goals, steps=2, oracle_budget=bad)
        with pytest.raises(ValueError, match=message):
            blackbox_search(model, z0, goals, RandomSearch(z0, 0.5, 2, 0), budget=4,
                            oracle_budget=bad)  # fmt: skip
        with pytest.raises(ValueError, match=message):
            ascend_with_retries(model, z0, goals, guide=AttemptGuide({}), retries=1, steps=2,
                                oracle_budget=bad)  # fmt: skip
    # A per-sample budget may be 0 only for rows held still.
    moving = torch.tensor([True, False, True])
    with pytest.raises(ValueError, match=r"oracle_budget must be >= 1 for every moving row"):
        ascend(model, z0, goals, steps=2, moving=moving, oracle_budget=torch.tensor([0, 0, 1]))
    ascend(model, z0, goals, steps=2, moving=moving, oracle_budget=torch.tensor([1, 0, 1]))


class RisingGuide:
    """Accepts rows 0 and 1 at every check with a value that rises with each check of that
    row (so they never stall), and never row 2."""

    def __init__(self) -> None:
        self.seen = torch.zeros(3)

    def __call__(self, z: torch.Tensor, idx: torch.Tensor, z0: torch.Tensor) -> Check:
        self.seen[idx] += 1
        m = len(idx)
        return Check(idx < 2, self.seen[idx].clone(), torch.zeros(m, dtype=torch.bool))


def _z0() -> torch.Tensor:
    return torch.randn(3, 4, generator=torch.Generator().manual_seed(3))


def test_guided_ascent_spends_at_most_its_oracle_budget():
    model, z0 = tiny_model(), _z0()
    settings = dict(steps=6, lr=0.1, check_every=1, stop=StopRule(guide_patience=2))
    free = ascend(model, z0, [Maximize("thickness")], guide=RisingGuide(), **settings)
    assert free.oracle_calls.tolist() == [7, 7, 7]  # every step 0..6 checked
    assert free.stop_reason == ["steps", "steps", "unconfirmed"]
    res = ascend(model, z0, [Maximize("thickness")], guide=RisingGuide(), oracle_budget=2,
                 **settings)  # fmt: skip
    assert res.oracle_calls.tolist() == [2, 2, 2]
    assert res.stop_reason == ["oracle_budget", "oracle_budget", "unconfirmed"]
    assert res.stop_step.tolist() == [1, 1, 1]
    # Rows 0 and 1 end on their best accepted frame (the second check's, at step 1), row 2
    # at its start; nothing moves after.
    torch.testing.assert_close(res.z[-1, :2], free.z[1, :2])
    torch.testing.assert_close(res.z[-1, 2], z0[2])
    assert not torch.equal(res.z[1, :2], z0[:2])
    # Without a guide the budget changes nothing: no oracle is called in the loop.
    plain = ascend(model, z0, [Maximize("thickness")], steps=6, lr=0.1)
    capped = ascend(model, z0, [Maximize("thickness")], steps=6, lr=0.1, oracle_budget=1)
    assert torch.equal(plain.z, capped.z) and plain.stop_reason == capped.stop_reason
    assert capped.oracle_calls.tolist() == [0, 0, 0]


def test_guided_search_spends_at_most_its_oracle_budget():
    model, z0 = tiny_model(), _z0()

    def search(oracle_budget):
        return blackbox_search(model, z0, [Maximize("thickness")], RandomSearch(z0, 0.5, 4, 0),
                               budget=21, guide=RisingGuide(), check_every=1,
                               oracle_budget=oracle_budget)  # fmt: skip

    free = search(None)
    # Rounds 0..5 (1 + 5 rounds of 4 calls), then the final check once the budget is spent.
    assert free.oracle_calls.tolist() == [7, 7, 7]
    res = search(3)
    assert res.oracle_calls.tolist() == [3, 3, 3]
    assert res.stop_reason == ["oracle_budget", "oracle_budget", "unconfirmed"]
    assert res.stop_step.tolist() == [2, 2, 2]
    # Stopped starts stop spending model calls too: 1 + 4 per round for two rounds.
    assert res.model_calls.tolist() == [9, 9, 9]
    torch.testing.assert_close(res.z[-1, 2], z0[2])


def test_retries_share_the_budget_and_skip_samples_with_nothing_left():
    # Checks at steps 0, 5, 10, 12 of each attempt. Row 1 is confirmed at its second check,
    # row 0 in the second attempt, row 2 never (see test_retry.py).
    settings = dict(steps=12, lr=0.1, check_every=5)
    model, z0 = tiny_model(), _z0()
    guide = AttemptGuide({0: {1}, 1: {0}, 2: set()})
    res = ascend_with_retries(model, z0, [Target("thickness", 2.6)], guide=guide, retries=2,
                              oracle_budget=7, **settings)  # fmt: skip
    # First attempt: 4, 2, 4 calls. Second (3, -, 3 left): row 0 confirmed after 2, row 2
    # stops at its third check (step 10), its budget spent. No third attempt: nothing left.
    assert res.oracle_calls.tolist() == [6, 2, 7]
    assert res.stop_reason == ["confirmed", "confirmed", "unconfirmed"]
    assert res.attempts.tolist() == [2, 1, 2] and guide.insisted == [INSIST]
    assert res.stop_step.tolist() == [5, 5, 10]
    per_row = [sum(i in rows for _, rows in guide.checked) for i in range(3)]
    assert per_row == res.oracle_calls.tolist()
    torch.testing.assert_close(res.z[-1, 2], z0[2])
    # A budget the first attempt spends leaves nothing to retry.
    guide = AttemptGuide({0: {1}, 1: {0}, 2: set()})
    res = ascend_with_retries(model, z0, [Target("thickness", 2.6)], guide=guide, retries=2,
                              oracle_budget=4, **settings)  # fmt: skip
    assert res.oracle_calls.tolist() == [4, 2, 4] and res.attempts.tolist() == [1, 1, 1]
    assert guide.insisted == []
