"""Gradient-free baselines (random search, CMA-ES, Bayesian optimisation) on a tiny model."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from conftest import tiny_model
from test_experiment import ctx  # noqa: F401  (the tiny experiment context fixture)

from latentsteer.bayesopt import BayesOpt
from latentsteer.blackbox import blackbox_search
from latentsteer.cmaes import CMAES
from latentsteer.experiment import ExperimentConfig, run_experiment, search_strategy
from latentsteer.objectives import Keep, Maximize, Target
from latentsteer.random_search import RandomSearch

STRATEGIES = {
    "random_search": lambda z: RandomSearch(z, sigma=0.5, population=4, seed=0),
    "cmaes": lambda z: CMAES(z, sigma=0.5, population=4, seed=0),
    "bayesopt": lambda z: BayesOpt(z, box=1.5, init=4, q=2, seed=0),
}


@pytest.mark.parametrize("method", list(STRATEGIES))
def test_search_improves_objective_within_budget(method):
    model = tiny_model()
    z0 = model.sample_prior(5, seed=3)
    res = blackbox_search(
        model, z0, [Maximize("thickness")], STRATEGIES[method](z0), budget=13, readout="code"
    )
    assert torch.equal(res.z[0], z0.cpu())
    # The incumbent never gets worse, and only the budget is spent: 1 + 12 calls each.
    assert (res.objective.diff(dim=0) >= 0).all()
    assert res.model_calls.tolist() == [13] * 5
    assert res.calls_path[0].tolist() == [1] * 5 and (res.calls_path.diff(dim=0) >= 0).all()
    assert res.stop_reason == ["budget"] * 5
    pred = res.predicted["thickness"]
    assert (pred[-1] > pred[0]).all()  # each start found a thicker code than its own
    # The recorded predictions are those of the recorded codes.
    again = model.predict(res.z[-1])["thickness"].detach()
    assert torch.allclose(again, pred[-1], atol=1e-5)


def test_search_stops_counting_once_satisfied():
    model = tiny_model()
    z0 = model.sample_prior(6, seed=4)
    now = model.predict(z0)["thickness"].detach()
    goals = [Target("thickness", float(now.mean()), tol=5.0), Keep("digit")]  # true at z0
    res = blackbox_search(model, z0, goals, RandomSearch(z0, 0.5, 4, 0), budget=50)
    assert res.stop_reason == ["satisfied"] * 6
    assert res.model_calls.tolist() == [1] * 6  # the start's own evaluation only


def test_cmaes_uses_population_and_seed():
    z0 = torch.zeros(3, 4)
    ca = CMAES(z0, 0.3, 5, seed=7).ask()
    cb = CMAES(z0, 0.3, 5, seed=7).ask()  # cma draws from numpy's global generator, seeded
    assert ca.shape == (5, 3, 4) and torch.equal(ca, cb)
    assert not torch.equal(ca[:, 0], ca[:, 1])  # each start has its own strategy and seed


def test_bayesopt_design_then_proposals_stay_in_box():
    z0 = torch.randn(2, 3, generator=torch.Generator().manual_seed(0))
    bo = BayesOpt(z0, box=0.5, init=5, q=3, seed=0, raw_samples=32)

    def f(z):  # a smooth bowl whose peak is inside each box
        return -((z - z0 - 0.2) ** 2).sum(-1)

    bo.tell(z0[None], f(z0)[None])
    design = bo.ask()
    assert design.shape == (4, 2, 3)
    bo.tell(design, f(design))
    best_design = f(torch.cat([z0[None], design])).max(0).values
    proposals = bo.ask()
    assert proposals.shape == (3, 2, 3)
    assert ((proposals - z0).abs() <= 0.5 + 1e-6).all()
    for _ in range(3):
        bo.tell(proposals, f(proposals))
        proposals = bo.ask()
    found = bo.Y.squeeze(-1).max(dim=1).values.float()
    assert (found >= best_design).all() and (found > best_design).any()


def test_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "cma", None)
    cfg = ExperimentConfig(method="cmaes", start="random:2")
    with pytest.raises(
        ImportError, match=r"needs the 'cma' package: pip install 'latentsteer\[baselines\]'"
    ):
        search_strategy(cfg, torch.zeros(2, 4))


def test_bad_baseline_settings_get_clear_errors():
    with pytest.raises(ValueError, match="budget and init must be at least 2"):
        ExperimentConfig(method="random_search", budget=1)
    with pytest.raises(ValueError, match="cmaes needs population >= 2"):
        ExperimentConfig(method="cmaes", population=1)
    with pytest.raises(ValueError, match="sigma must be positive"):
        ExperimentConfig(method="random_search", sigma=0)


def test_baseline_experiment_records_calls_and_success(ctx):  # noqa: F811
    cfg = ExperimentConfig(goals=["thickness=+0.3", "digit=keep"], method="cmaes",
                           start="random:4", budget=9, population=4, record_every=1)  # fmt: skip
    out = run_experiment(cfg, ctx)
    m = out.metrics
    assert m["method"] == "cmaes" and 1 <= m["model_calls_per_sample"] <= 9
    calls = out.per_sample["model_calls"]
    assert m["model_calls_per_sample"] == pytest.approx(calls.mean())
    assert m["success_rate"] == pytest.approx(out.per_sample["success"].mean())
    curve = out.per_frame
    assert curve["calls_by_frame"][0] == 1 and np.all(np.diff(curve["calls_by_frame"]) >= 0)
    assert curve["success_by_frame"][-1] == pytest.approx(m["success_rate"])
    assert m["diversity_start"] > 0 and m["diversity_ratio"] > 0
