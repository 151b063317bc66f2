"""Goals, safeguards and the batched ascent, on a tiny seeded model."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_model

from latentsteer.ascent import StopRule, ascend, read_live
from latentsteer.model import MultiHeadVAE
from latentsteer.objectives import Class, Increase, Keep, Maximize, Minimize, Target, combine
from latentsteer.safeguards import CycleConsistency, KNNDensity, PriorPenalty, Proximity, anchor


@pytest.fixture
def model() -> MultiHeadVAE:
    return tiny_model()


@pytest.mark.parametrize(
    ("goal", "message"),
    [
        (Maximize("colour"), "unknown property 'colour'; this model has digit, thickness"),
        (Maximize("digit"), "'digit' is a class head; use Class/Keep"),
        (Class("thickness", 3), "'thickness' is a regression head"),
        (Class("digit", 10), "classes run from 0 to 9"),
        (Target("thickness", 40.0), "thickness=40 is impossible for this model"),
        (Target("thickness", 3.0, tol=0), "tolerance must be positive"),
        (Keep("colour"), "unknown property 'colour'"),
    ],
)
def test_bad_goals_get_clear_errors(model, goal, message):
    with pytest.raises(ValueError, match=message):
        goal.bind(model, torch.zeros(2, 4))


def test_goal_scores_and_satisfaction(model):
    z = torch.randn(5, 4)
    pred = model.predict(z)
    value = pred["thickness"].detach()
    target = Target("thickness", 2.5, tol=0.2).bind(model, z)
    sd = float(model.target_std[1])
    torch.testing.assert_close(target.score(pred), -(((value - 2.5).abs() / sd) ** 2))
    assert torch.equal(target.satisfied(pred), (value - 2.5).abs() <= 0.2)
    assert (target.violation(pred) >= 0).all()
    up = Increase("thickness", by=0.5).bind(model, z)
    assert not up.satisfied(pred).any()  # nothing has risen yet
    # A band of ±tol (0.25) around start + 0.5: violated by 0.25 at the start.
    torch.testing.assert_close(up.violation(pred), torch.full((5,), (0.5 - 0.25) / sd))
    keep = Keep("digit").bind(model, z)
    start_class = pred["digit"].argmax(1)
    torch.testing.assert_close(
        keep.score(pred), pred["digit"].gather(1, start_class[:, None]).squeeze(1).log()
    )
    assert Maximize("thickness").bind(model, z).satisfied is None
    # A bound goal is a plain objective z (n, d) -> (n,).
    assert Minimize("thickness").bind(model, z)(z).shape == (5,)


def test_constraints_enter_only_when_violated(model):
    z = torch.randn(6, 4)
    pred = model.predict(z)
    keep = Keep("thickness", tol=100.0).bind(model, z)  # always satisfied
    obj = Maximize("thickness").bind(model, z)
    torch.testing.assert_close(combine([obj, keep])(pred), combine([obj])(pred))
    tight = Keep("thickness", tol=1e-6).bind(model, z + 1.0)  # start elsewhere: violated
    assert (combine([obj, tight])(pred) <= combine([obj])(pred)).all()


def test_batched_equals_one_at_a_time(model):
    z0 = torch.randn(3, 4)
    goals = [Increase("thickness", by=0.3), Keep("digit")]
    batch = ascend(model, z0, goals, steps=30, lr=0.05)
    for i in range(3):
        alone = ascend(model, z0[i : i + 1], goals, steps=30, lr=0.05)
        torch.testing.assert_close(alone.z[-1, 0], batch.z[-1, i], atol=1e-5, rtol=1e-5)
        assert alone.stop_reason[0] == batch.stop_reason[i]


def test_maximize_raises_prediction_and_records_path(model):
    z0 = torch.randn(4, 4)
    res = ascend(model, z0, [Maximize("thickness")], steps=25, lr=0.1, stop=StopRule(grad_tol=None))
    assert res.z.shape == (26, 4, 4)
    assert res.predicted["thickness"].shape == (26, 4)
    assert res.predicted["digit"].shape == (26, 4, 10)
    assert res.scores["thickness=max"].shape == (26, 4)
    assert (res.predicted["thickness"][-1] > res.predicted["thickness"][0]).all()
    assert res.stop_reason == ["steps"] * 4 and res.stop_step.tolist() == [25] * 4
    assert res.images.shape == (26, 4, 28, 28)
    torch.testing.assert_close(res.z[0], z0)
    assert all(p.grad is None for p in model.parameters())  # only codes moved


def test_satisfied_samples_freeze_while_others_go_on(model):
    z0 = torch.randn(2, 4)
    now = model.predict(z0)["thickness"].detach()
    # Sample 0 already sits at the target; sample 1 starts outside the (tight) tolerance.
    tol = float((now[1] - now[0]).abs()) / 4
    goals = [Target("thickness", float(now[0]), tol=tol)]
    res = ascend(model, z0, goals, steps=40, lr=0.05)
    assert res.stop_reason[0] == "satisfied" and res.stop_step[0] == 0
    assert torch.equal(res.z[-1, 0], z0[0])  # frozen: Adam's momentum never moved it
    assert not torch.equal(res.z[-1, 1], z0[1])


def test_read_live_computes_only_moving_rows_with_their_gradients(model):
    z = torch.randn(5, 4, requires_grad=True)
    last = {k: v.detach() + 100.0 for k, v in model.predict(z).items()}  # stale on purpose
    live = torch.tensor([True, False, True, False, False])
    seen = []

    def read(codes):
        seen.append(len(codes))
        return model.predict(codes)

    got = read_live(read, z, live, last)
    assert seen == [2]
    full = model.predict(z)
    for k in full:  # live rows read now, the others keep their last values
        torch.testing.assert_close(got[k][live], full[k][live])
        torch.testing.assert_close(got[k][~live], last[k][~live])
    (g,) = torch.autograd.grad(got["thickness"].sum(), z)
    (want,) = torch.autograd.grad(full["thickness"][live].sum(), z)
    torch.testing.assert_close(g, want)
    assert (g[~live] == 0).all()
    assert seen == [2] and read_live(read, z, torch.ones(5, dtype=torch.bool), last) is not None
    assert seen == [2, 5]  # every row live: one plain read


def test_stopped_samples_leave_the_readout(model, monkeypatch):
    z0 = torch.randn(2, 4)
    now = model.predict(z0)["thickness"].detach()
    tol = float((now[1] - now[0]).abs()) / 4
    rows: list[int] = []
    predict = model.predict

    def counting(z):
        rows.append(len(z))
        return predict(z)

    monkeypatch.setattr(model, "predict", counting)
    res = ascend(model, z0, [Target("thickness", float(now[0]), tol=tol)], steps=40, lr=0.05)
    assert res.stop_step[0] == 0 and res.stop_step[1] > 2
    assert rows[0] == 2 and set(rows[1:]) == {1}  # sample 0 stopped at once: read only once
    # What was recorded for the stopped sample is still what the heads read at its code.
    torch.testing.assert_close(
        res.predicted["thickness"][:, 0], predict(z0[:1])["thickness"].detach().expand(len(res.z))
    )
    torch.testing.assert_close(
        res.predicted["thickness"][-1, 1], predict(res.z[-1, 1:])["thickness"].detach()[0]
    )


def test_patience_stops_a_stalled_sample(model):
    res = ascend(model, torch.randn(2, 4), [Maximize("thickness")], steps=60, lr=1e-9,
                stop=StopRule(grad_tol=None, patience=5, min_delta=1e-3))  # fmt: skip
    assert res.stop_reason == ["patience", "patience"]
    assert (res.stop_step <= 6).all()


def test_safeguards(model):
    z = torch.randn(5, 4) * 3
    prior = PriorPenalty(radius=1.5)
    assert (prior.project(z).norm(dim=1) <= 1.5 + 1e-5).all()
    torch.testing.assert_close(prior.score(model, z), 0.5 * z.pow(2).sum(1))
    codes = torch.randn(50, 4)
    knn = KNNDensity(codes, k=1)
    torch.testing.assert_close(knn.score(model, codes[:3]), torch.zeros(3))
    assert (CycleConsistency().score(model, z) >= 0).all()
    res = ascend(model, z, [Maximize("thickness")], steps=10, safeguards=[prior, knn])
    assert (res.z[-1].norm(dim=1) <= 1.5 + 1e-4).all()
    assert set(res.manifold) == {"prior", "knn"} and res.manifold["knn"].shape == (5,)
    with pytest.raises(ValueError, match="at least k=10 codes"):
        KNNDensity(torch.randn(3, 4))


def test_proximity_holds_the_picture_near_the_start(model):
    z = torch.randn(6, 4, generator=torch.Generator().manual_seed(2))
    with pytest.raises(ValueError, match="anchored to the start codes"):
        Proximity().score(model, z)
    (anchored,) = anchor(model, z, [Proximity()])
    torch.testing.assert_close(anchored.score(model, z), torch.zeros(6))
    free = ascend(model, z, [Maximize("thickness")], steps=20, lr=0.2)
    held = ascend(model, z, [Maximize("thickness")], steps=20, lr=0.2,
                 safeguards=[Proximity(weight=50.0)])  # fmt: skip
    moved = lambda r: (r.final_images - r.images[0]).pow(2).sum(dim=(1, 2))  # noqa: E731
    assert (moved(held) < moved(free)).all()
    torch.testing.assert_close(held.manifold["proximity"], moved(held))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"steps": 0}, "steps must be a positive integer"),
        ({"lr": 0.0}, "lr must be positive"),
        ({"optimizer": "lbfgs"}, "optimizer must be adam or sgd"),
    ],
)
def test_bad_settings(model, kwargs, message):
    with pytest.raises(ValueError, match=message):
        ascend(model, torch.zeros(1, 4), [Maximize("thickness")], **kwargs)


def test_bad_start_codes(model):
    with pytest.raises(ValueError, match=r"z must have shape \(n, 4\)"):
        ascend(model, torch.zeros(2, 3), [Maximize("thickness")])
    with pytest.raises(ValueError, match="NaN"):
        ascend(model, torch.full((1, 4), float("nan")), [Maximize("thickness")])
    with pytest.raises(ValueError, match="at least one goal"):
        ascend(model, torch.zeros(1, 4), [])
