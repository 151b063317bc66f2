"""Second attempts at the samples the closed loop could not confirm (retry.py)."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_model

from latentsteer.ascent import ascend
from latentsteer.experiment_config import ExperimentConfig
from latentsteer.objectives import Target
from latentsteer.retry import INSIST, ascend_with_retries, merge_attempts
from latentsteer.trust_region import Check

GOALS = [Target("thickness", 2.6)]
SETTINGS = dict(steps=12, lr=0.1, check_every=5)


class AttemptGuide:
    """Accepts a sample at its second check of an attempt (not at its start), in the
    attempts that ``accepts`` names for it; records which rows each check read and what it
    was asked to insist on."""

    def __init__(self, accepts: dict[int, set[int]], keeps_a_class: bool = True) -> None:
        self.accepts, self.keeps_a_class = accepts, keeps_a_class
        self.attempt, self.insisted = 0, []
        self.checked: list[tuple[int, list[int]]] = []

    def insist(self, factor: float) -> None:
        self.insisted.append(factor)
        self.attempt += 1

    def __call__(self, z: torch.Tensor, idx: torch.Tensor, z0: torch.Tensor) -> Check:
        rows = idx.tolist()
        self.checked.append((self.attempt, rows))
        seen = [sum(i in r for a, r in self.checked if a == self.attempt) for i in rows]
        pairs = zip(rows, seen, strict=True)
        ok = [self.attempt in self.accepts.get(i, set()) and k > 1 for i, k in pairs]
        m = len(rows)
        return Check(torch.tensor(ok), torch.zeros(m), torch.zeros(m, dtype=torch.bool))


def _z0() -> torch.Tensor:
    return torch.randn(3, 4, generator=torch.Generator().manual_seed(3))


def test_held_rows_neither_move_nor_are_checked():
    guide = AttemptGuide({0: {0}, 1: {0}, 2: {0}})  # row -> the attempts accepting it
    moving = torch.tensor([True, False, True])
    res = ascend(tiny_model(), _z0(), GOALS, guide=guide, moving=moving, **SETTINGS)
    assert res.stop_reason == ["confirmed", "held", "confirmed"]
    assert res.stop_step.tolist() == [5, 0, 5] and res.oracle_calls.tolist() == [2, 0, 2]
    assert (res.z[:, 1] == _z0()[1]).all()  # the whole path sits at its start
    assert all(1 not in rows for _, rows in guide.checked)
    with pytest.raises(ValueError, match=r"moving must be a bool mask of shape \(3,\)"):
        ascend(tiny_model(), _z0(), GOALS, guide=guide, moving=torch.ones(2, dtype=torch.bool))


def test_unconfirmed_samples_are_steered_again_from_their_start_insisting_on_the_digit():
    model, z0 = tiny_model(), _z0()
    # Row 1 is confirmed at once, row 0 in the second attempt, row 2 never.
    guide = AttemptGuide({0: {1}, 1: {0}, 2: set()})
    res = ascend_with_retries(model, z0, GOALS, guide=guide, retries=2, **SETTINGS)
    assert res.stop_reason == ["confirmed", "confirmed", "unconfirmed"]
    assert guide.insisted == [INSIST, INSIST]  # row 2 was still unconfirmed after one
    # Only the unconfirmed samples are read again.
    assert {i for a, rows in guide.checked if a == 1 for i in rows} == {0, 2}
    assert {i for a, rows in guide.checked if a == 2 for i in rows} == {2}
    # Row 0's recorded path is its second attempt: from its start to its confirmed frame.
    torch.testing.assert_close(res.z[0, 0], z0[0])
    assert res.stop_step[0] == 5 and torch.equal(res.z[-1, 0], res.z[5, 0])
    torch.testing.assert_close(res.z[-1, 2], z0[2])  # nothing found: back at its start
    # Calls count every attempt: 13 + 6 for row 0, 6 for row 1, 13 three times for row 2.
    assert res.model_calls.tolist() == [19, 6, 39] and res.attempts.tolist() == [2, 1, 3]
    assert torch.equal(res.calls_path[-1], res.model_calls)
    per_row = [sum(i in rows for _, rows in guide.checked) for i in range(3)]
    assert res.oracle_calls.tolist() == per_row == [6, 2, 12]


def test_no_retry_when_switched_off_or_when_no_digit_is_kept():
    for retries, keeps in ((0, True), (2, False)):
        guide = AttemptGuide({0: {1}, 1: {0}}, keeps_a_class=keeps)
        res = ascend_with_retries(tiny_model(), _z0(), GOALS, guide=guide, retries=retries,
                                  **SETTINGS)  # fmt: skip
        assert res.stop_reason == ["unconfirmed", "confirmed", "unconfirmed"]
        assert guide.insisted == [] and {a for a, _ in guide.checked} == {0}
    with pytest.raises(ValueError, match="retries must be >= 0; got -1"):
        ascend_with_retries(tiny_model(), _z0(), GOALS, guide=AttemptGuide({}), retries=-1)
    with pytest.raises(ValueError, match="retries must be >= 0; got -1"):
        ExperimentConfig(goals=["thickness=+2", "digit=keep"], retries=-1)


def test_merged_attempts_take_each_row_from_its_attempt_and_pad_the_shorter_path():
    model, z0 = tiny_model(), _z0()
    first = ascend(model, z0, GOALS, steps=4, lr=0.1)
    second = ascend(model, z0 + 1.0, GOALS, steps=9, lr=0.1, seed=1)
    rows = torch.tensor([False, True, False])
    both = merge_attempts(first, second, rows)
    assert both.z.shape == second.z.shape  # the longer attempt's length
    torch.testing.assert_close(both.z[:, 1], second.z[:, 1])
    torch.testing.assert_close(both.z[: len(first.z), 0], first.z[:, 0])
    assert (both.z[len(first.z) :, 0] == first.z[-1, 0]).all()  # held at its last code
    for k in first.predicted:
        torch.testing.assert_close(both.predicted[k][-1, 1], second.predicted[k][-1, 1])
    assert both.stop_step.tolist() == [first.stop_step[0], second.stop_step[1], first.stop_step[2]]
    assert both.model_calls[1] == first.model_calls[1] + second.model_calls[1]
    assert both.model_calls[0] == first.model_calls[0]
    assert both.attempts.tolist() == [1, 2, 1]
    assert both.wall_seconds == pytest.approx(first.wall_seconds + second.wall_seconds)
