"""Gradient-free baselines (random search, CMA-ES, Bayesian optimisation) on a tiny model."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from conftest import tiny_model
from test_experiment import ctx  # noqa: F401  (the tiny experiment context fixture)
from torch import nn

from latentsteer.bayesopt import BayesOpt
from latentsteer.blackbox import blackbox_search
from latentsteer.cmaes import CMAES
from latentsteer.experiment import ExperimentConfig, run_experiment, search_strategy
from latentsteer.objectives import Keep, Maximize, Minimize, Target
from latentsteer.random_search import RandomSearch

STRATEGIES = {
    "random_search": lambda z: RandomSearch(z, sigma=0.5, population=4, seed=0),
    "cmaes": lambda z: CMAES(z, sigma=0.5, population=4, seed=0),
    "bayesopt": lambda z: BayesOpt(z, box=1.5, init=4, q=2, seed=0),
}


class Recording:
    """A strategy wrapper that keeps every candidate and value the search tells it."""

    def __init__(self, strategy) -> None:
        self.strategy, self.told = strategy, []

    def ask(self) -> torch.Tensor:
        return self.strategy.ask()

    def tell(self, candidates: torch.Tensor, values: torch.Tensor) -> None:
        self.told.append((candidates.clone(), values.clone()))
        self.strategy.tell(candidates, values)


@pytest.mark.parametrize("method", list(STRATEGIES))
def test_search_improves_objective_within_budget(method):
    model = tiny_model()
    z0 = model.sample_prior(5, seed=3)
    strategy = Recording(STRATEGIES[method](z0))
    res = blackbox_search(model, z0, [Maximize("thickness")], strategy, budget=13, readout="code")
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
    # The objective of Maximize("thickness") read at the code is thickness / training sd.
    sd = float(np.std([1.0, 2.0, 3.0, 4.0], ddof=1))  # tiny_model's target scaling
    torch.testing.assert_close(res.objective, pred / sd)
    # The start and then the candidates were told, with the objective's values; the first
    # 12 candidates per start are the ones counted (BayesOpt's last round asks one more), and
    # the incumbent after the last round is the best of those.
    candidates = torch.cat([c for c, _ in strategy.told])  # (m, 5, d)
    values = torch.cat([v for _, v in strategy.told])  # (m, 5)
    assert len(candidates) == (14 if method == "bayesopt" else 13)
    assert torch.equal(candidates[0], z0.cpu())
    direct = model.predict(candidates.flatten(0, 1))["thickness"].detach() / sd
    torch.testing.assert_close(values, direct.reshape(values.shape))
    counted = values[:13]
    best = counted.argmax(dim=0)
    torch.testing.assert_close(res.objective[-1], counted.max(dim=0).values)
    torch.testing.assert_close(res.z[-1], candidates[best, torch.arange(5)])


class Bowl(nn.Module):
    """A head reading ``-|z - c|²``: the objective's optimum is known, at ``c``."""

    def __init__(self, c: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("c", c)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return -((z - self.c) ** 2).sum(-1, keepdim=True)


OPTIMUM = torch.tensor([0.6, -0.4])
# Starts at distance 1, 1 and 0.85 from the optimum, each inside its own BayesOpt box.
STARTS = OPTIMUM + torch.tensor([[1.0, 0.0], [0.0, -1.0], [-0.6, 0.6]])
BOWL = {  # strategy, budget, the distance from the optimum it must reach
    "random_search": (lambda z: RandomSearch(z, sigma=0.5, population=4, seed=0), 41, 0.5),
    "cmaes": (lambda z: CMAES(z, sigma=0.5, population=4, seed=0), 41, 0.1),
    "bayesopt": (lambda z: BayesOpt(z, box=1.5, init=4, q=2, seed=0), 13, 0.15),
    # the molecule baselines' cheaper setting: short fits, each from the last one's optimum
    "bayesopt_warm": (
        lambda z: BayesOpt(z, box=1.5, init=4, q=2, seed=0, fit_iterations=30, warm_start=True),
        13,
        0.15,
    ),  # fmt: skip
}


def bowl_search(method: str, goal) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Search a 2-d model whose thickness head is the bowl: codes path, objective path, sd."""
    model = tiny_model(latent_dim=2)
    model.heads["thickness"] = Bowl(OPTIMUM)
    make, budget, _ = BOWL[method]
    res = blackbox_search(model, STARTS, [goal], make(STARTS), budget=budget, readout="code")
    assert res.model_calls.tolist() == [budget] * 3
    return res.z, res.objective, float(np.std([1.0, 2.0, 3.0, 4.0], ddof=1))


@pytest.mark.parametrize("method", list(BOWL))
def test_search_reaches_the_known_optimum(method):
    z, objective, sd = bowl_search(method, Maximize("thickness"))
    # The objective is thickness / sd = mean / sd - |z - c|², its maximum mean / sd at c.
    analytic = 2.5 / sd - ((z - OPTIMUM) ** 2).sum(-1)
    torch.testing.assert_close(objective, analytic)
    start, end = (z[0] - OPTIMUM).norm(dim=1), (z[-1] - OPTIMUM).norm(dim=1)
    assert (objective[-1] > objective[0]).all() and (end < start).all()
    assert (end < BOWL[method][2]).all(), end  # near the optimum within the budget
    assert (objective[-1] <= 2.5 / sd).all()


@pytest.mark.parametrize("method", list(BOWL))
def test_search_with_the_wrong_objective_does_not_find_the_optimum(method):
    # Minimising the same head is the wrong objective for this problem: the search must go
    # the other way, so the check above cannot pass by any search that merely moves.
    z, objective, sd = bowl_search(method, Minimize("thickness"))
    torch.testing.assert_close(objective, ((z - OPTIMUM) ** 2).sum(-1) - 2.5 / sd)
    start, end = (z[0] - OPTIMUM).norm(dim=1), (z[-1] - OPTIMUM).norm(dim=1)
    assert (end > start).all() and (end > BOWL[method][2]).all()


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
    peak = z0 + torch.tensor([0.25, -0.15, 0.1])  # inside each box; f is 0 there, < 0 elsewhere

    def f(z):  # a smooth bowl whose peak is inside each box
        return -((z - peak) ** 2).sum(-1)

    bo.tell(z0[None], f(z0)[None])
    design = bo.ask()
    assert design.shape == (4, 2, 3)
    assert ((design - z0).abs() <= 0.5 + 1e-6).all()
    assert len(torch.unique(design[:, 0], dim=0)) == 4  # a space-filling design, no repeats
    bo.tell(design, f(design))
    best_design = f(torch.cat([z0[None], design])).max(0).values
    asked = []
    proposals = bo.ask()
    assert proposals.shape == (3, 2, 3)
    for _ in range(4):
        assert ((proposals - z0).abs() <= 0.5 + 1e-6).all()
        asked.append(proposals)
        bo.tell(proposals, f(proposals))
        proposals = bo.ask()
    # The 12 GP proposals alone, without the design: each problem's best beats the design's
    # best by a real margin and lies near the peak (the design's best is 0.1 below it).
    asked = torch.cat(asked)
    values = f(asked)
    found = values.max(dim=0).values
    assert (found < 0).all() and (best_design < -0.05).all()
    assert (found > best_design).all() and (-found < 0.25 * -best_design).all()
    where = asked[values.argmax(dim=0), torch.arange(2)]
    assert ((where - peak).norm(dim=-1) < 0.2).all()
    # What it was told is what it holds: the start, the design and the proposals, in order,
    # each code at its place in the unit cube of its box (z0 - box to z0 + box).
    told = torch.cat([z0[None], design, asked])
    assert bo.X.shape == (2, 17, 3) and bo.Y.shape == (2, 17, 1)
    torch.testing.assert_close(bo.X.transpose(0, 1).float(), (told - z0) / (2 * 0.5) + 0.5)
    torch.testing.assert_close(bo.Y.squeeze(-1).T.float(), f(told))


def test_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "cma", None)
    cfg = ExperimentConfig(goals=["thickness=max"], method="cmaes", start="random:2")
    with pytest.raises(
        ImportError, match=r"needs the 'cma' package: pip install 'latentsteer\[baselines\]'"
    ):
        search_strategy(cfg, torch.zeros(2, 4))


def test_bad_baseline_settings_get_clear_errors():
    goals = ["thickness=max"]
    with pytest.raises(ValueError, match="model_budget and init must be at least 2"):
        ExperimentConfig(goals=goals, method="random_search", model_budget=1)
    with pytest.raises(ValueError, match="cmaes needs population >= 2"):
        ExperimentConfig(goals=goals, method="cmaes", population=1)
    with pytest.raises(ValueError, match="sigma must be positive"):
        ExperimentConfig(goals=goals, method="random_search", sigma=0)


def test_baseline_experiment_records_calls_and_success(ctx):  # noqa: F811
    cfg = ExperimentConfig(goals=["thickness=+0.3", "digit=keep"], method="cmaes",
                           start="random:4", model_budget=9, population=4,
                           record_every=1)  # fmt: skip
    out = run_experiment(cfg, ctx)
    m = out.metrics
    assert m["method"] == "cmaes"
    calls = out.per_sample["model_calls"]
    assert m["model_calls"] == pytest.approx(calls.mean())
    assert m["success_rate"] == pytest.approx(out.per_sample["success"].mean())
    curve = out.per_frame
    assert curve["calls_by_frame"][0] == 1 and np.all(np.diff(curve["calls_by_frame"]) >= 0)
    assert curve["success_by_frame"][-1] == pytest.approx(m["success_rate"])
    assert m["n"] == 4 and len(calls) == 4 and (calls >= 1).all() and (calls <= 9).all()
    for when in ("start", "end"):
        feats = torch.as_tensor(out.per_sample[f"features_{when}"], dtype=torch.float64)
        mean_pairwise = torch.cdist(feats, feats)[torch.triu_indices(4, 4, 1).unbind()].mean()
        assert m[f"diversity_{when}"] == pytest.approx(float(mean_pairwise), rel=1e-3, abs=1e-6)
    assert m["diversity_start"] > 0
    ratio = m["diversity_end"] / m["diversity_start"]  # of values rounded to 6 places
    assert m["diversity_ratio"] == pytest.approx(ratio, rel=1e-3)


def test_bayesopt_warm_start_fits_from_the_last_hyperparameters(monkeypatch):
    import botorch.fit

    fit = botorch.fit.fit_gpytorch_mll
    seen = []  # the lengthscales each fit starts from, and what it ends at

    def recording(mll, **kwargs):
        before = mll.model.covar_module.lengthscale.detach().clone()
        out = fit(mll, **kwargs)
        seen.append((before, mll.model.covar_module.lengthscale.detach().clone()))
        return out

    monkeypatch.setattr(botorch.fit, "fit_gpytorch_mll", recording)

    def f(z):
        return -((z - 0.2) ** 2).sum(-1)

    def rounds(warm: bool) -> list:
        seen.clear()
        bo = BayesOpt(torch.zeros(2, 3), box=0.5, init=3, q=2, seed=0, raw_samples=16,
                      fit_iterations=5, warm_start=warm)  # fmt: skip
        for _ in range(3):
            z = bo.ask()
            bo.tell(z, f(z))
        if warm:  # the outcome transform's statistics belong to the data: never carried
            assert bo._hyper and not any(k.startswith("outcome_transform") for k in bo._hyper)
        return list(seen)

    warm = rounds(True)
    assert len(warm) == 2  # the design, then two fits
    torch.testing.assert_close(warm[1][0], warm[0][1])  # the second starts at the first's end
    cold = rounds(False)
    assert not torch.allclose(cold[1][0], cold[0][1])  # from the defaults again
    torch.testing.assert_close(cold[1][0], cold[0][0])
