"""Gradient-free steering: the same objective as :func:`~latentsteer.ascent.ascend`, by search.

The baselines that latent gradient ascent is compared with (random search, CMA-ES, Bayesian
optimisation) differ only in how they propose codes. :func:`blackbox_search` runs any of
them as a :class:`Strategy` — ``ask`` for candidate codes, ``tell`` their values — on all
``n`` starts at once, and returns the same :class:`~latentsteer.ascent.SteerResult`, so their
outcomes go through the same oracles, metrics and figures.

The objective is exactly the ascent's: the goals' combined score through the same readout,
minus the weighted safeguard penalties. Each start is its own problem; its path is the
incumbent (best code so far) after each round.

**Model calls** are counted per start: one call is one evaluation of the objective at one
code (a decode plus the heads). A start stops counting once its incumbent satisfies every
goal, like the ascent's ``stop_when_satisfied`` (the strategy may still propose codes for
it, which are evaluated but not counted and never replace its incumbent).

With a ``guide`` the search is closed-loop like the ascent (:mod:`latentsteer.guide`): every
``check_every`` rounds the in-loop oracles read the incumbents still searching, a start
stops once they confirm its goals (or, open-ended, once its best confirmed incumbent stalls,
the heads lose their trust or its ``oracle_budget`` of oracle calls is spent), and it ends
on its best confirmed incumbent or its start.
"""

from __future__ import annotations

import time
from typing import Literal, Protocol

import torch

from latentsteer.ascent import PathRecord, SteerResult
from latentsteer.guide import Guide
from latentsteer.model import MultiHeadVAE
from latentsteer.objectives import BoundGoal, Goal, all_satisfied, combine
from latentsteer.readout import Predictions
from latentsteer.readout import readout as make_readout
from latentsteer.safeguards import Safeguard, anchor, manifold_scores, penalty
from latentsteer.trust_region import TrustRegion, per_sample_budget


class Strategy(Protocol):
    """A gradient-free optimiser of ``n`` independent problems in ``d`` dimensions."""

    def ask(self) -> torch.Tensor:
        """Candidates to evaluate next: ``(m, n, d)`` codes, ``m`` per problem (CPU)."""
        ...

    def tell(self, candidates: torch.Tensor, values: torch.Tensor) -> None:
        """Their objective values: ``candidates (m, n, d)``, ``values (m, n)``, higher better."""
        ...


def blackbox_search(
    model: MultiHeadVAE,
    start: torch.Tensor,
    goals: list[Goal],
    strategy: Strategy,
    *,
    budget: int = 500,
    safeguards: list[Safeguard] | None = None,
    penalty_weight: float = 10.0,
    readout: Literal["code", "cycle", "mixed"] = "mixed",
    stop_when_satisfied: bool = True,
    guide: Guide | None = None,
    check_every: int = 10,
    guide_patience: int = 3,
    oracle_budget: int | None = None,
) -> SteerResult:
    """Maximise the steering objective of each start with a gradient-free strategy.

    Args:
        model: trained model.
        start: ``(n, d)`` starting codes; the start itself is the first evaluated code.
        goals: declared goals, bound here to ``model`` and ``start``.
        strategy: proposes candidates (it was built for these starts).
        budget: model calls per start, the start's own evaluation included.
        safeguards: their weighted scores are subtracted from the objective (projections
            are not applied: a search strategy keeps to its own region).
        penalty_weight: weight of violated-constraint penalties.
        readout: how the heads read a code (see :mod:`latentsteer.readout`).
        stop_when_satisfied: stop counting a start's calls once all its goals hold (by the
            heads; with a guide, by the in-loop oracles).
        guide: in-loop oracle checks every ``check_every`` rounds (see the module doc and
            :func:`~latentsteer.ascent.ascend`); ``guide_patience`` as ``StopRule``'s.
        oracle_budget: oracle calls (incumbents the guide reads) allowed per start, an int
            >= 1 or ``None`` for no cap: a start stops at the check that spends its last
            one, so ``oracle_calls <= oracle_budget``. Without a guide it changes nothing.

    Returns:
        A :class:`SteerResult` whose steps are rounds: ``z[t]`` is each start's incumbent after
        round ``t`` (``z[0]`` the start), and ``model_calls`` counts calls per start.

    Raises:
        ValueError: a ``budget`` under 2, ``check_every`` under 1 or a bad ``oracle_budget``.
    """
    if budget < 2:
        raise ValueError(f"budget must be at least 2 model calls; got {budget}")
    if check_every < 1:
        raise ValueError(f"check_every must be a positive integer; got {check_every}")
    model.eval()
    z0 = model._as_codes(start).detach()
    allowed = per_sample_budget(oracle_budget, len(z0))
    guards = anchor(model, z0, safeguards or [])
    read = make_readout(model, readout)
    bound = [g if isinstance(g, BoundGoal) else g.bind(model, z0, read) for g in goals]
    objective_of = combine(bound, penalty=penalty_weight)
    closed = all(g.satisfied is not None for g in bound)
    checks = None
    if guide is not None:
        settles = closed and not getattr(guide, "keeps_improving", False)
        checks = TrustRegion(z0, settles, guide_patience, budget=allowed)
    # The heads' word stops a start only when no guide is there to check it.
    can_finish = stop_when_satisfied and closed and checks is None

    @torch.no_grad()
    def evaluate(z: torch.Tensor) -> tuple[torch.Tensor, Predictions, torch.Tensor]:
        z = z.to(model.device, torch.float32)
        pred = read(z)
        if can_finish:
            ok = all_satisfied(bound, pred)
        else:
            ok = torch.zeros(len(z), dtype=torch.bool, device=z.device)
        return objective_of(pred) - penalty(model, z, guards), pred, ok

    n = len(z0)
    begin = time.perf_counter()
    best_obj, best_pred, done = evaluate(z0)
    best_z = z0.clone()
    calls = torch.ones(n, dtype=torch.long)
    active = ~done.cpu()
    stop_step = torch.zeros(n, dtype=torch.long)
    reason = ["satisfied" if not a else "budget" for a in active.tolist()]
    record = PathRecord(bound)

    def check(t: int, last: bool) -> None:
        """Guide check of the incumbents still searching; finished ones roll back."""
        nonlocal best_obj, best_pred
        assert guide is not None and checks is not None
        idx = torch.nonzero(active).flatten().to(best_z.device)
        if not len(idx):
            return
        verdict = checks.update(idx, best_z, guide(best_z[idx], idx, z0[idx]), last=last)
        for i, r in zip(idx[verdict.done].tolist(), verdict.reasons, strict=True):
            reason[i], stop_step[i] = r, t
        active[idx[verdict.done].cpu()] = False
        best_obj, best_pred, _ = evaluate(best_z)  # rolled-back rows read afresh

    if checks is not None:
        check(0, last=False)
    record.add(best_z, best_pred, best_obj)
    spent = [calls.clone()]
    strategy.tell(z0.cpu()[None], best_obj.cpu()[None])
    t = 0
    while active.any() and int(calls[active].max()) < budget:
        t += 1
        candidates = strategy.ask()  # (m, n, d)
        room = budget - calls  # a start never gets more calls than its budget
        values = torch.empty(candidates.shape[:2])
        for j, cand in enumerate(candidates):
            obj, pred, ok = evaluate(cand)
            values[j] = obj.cpu()
            counted = (active & (room > j)).to(model.device)
            better = counted & (obj > best_obj)
            best_obj = torch.where(better, obj, best_obj)
            best_z = torch.where(better[:, None], cand.to(best_z), best_z)
            best_pred = {k: _where(better, pred[k], v) for k, v in best_pred.items()}
            newly = (better & ok).cpu() & active
            for i in torch.nonzero(newly).flatten().tolist():
                reason[i], stop_step[i] = "satisfied", t
            calls += counted.cpu().long()
            active &= ~newly
        strategy.tell(candidates, values)
        if checks is not None and t % check_every == 0:
            check(t, last=False)
        record.add(best_z, best_pred, best_obj)
        spent.append(calls.clone())
    if checks is not None and active.any():
        # The budget is spent: every start ends on a checked code, recorded as one more row.
        t += 1
        check(t, last=True)
        record.add(best_z, best_pred, best_obj)
        spent.append(calls.clone())
    stop_step[active] = t
    return SteerResult(
        **record.stacked(),  # type: ignore[arg-type]
        manifold=manifold_scores(model, best_z, guards),
        stop_reason=reason,
        stop_step=stop_step,
        wall_seconds=time.perf_counter() - begin,
        model=model,
        model_calls=calls,
        calls_path=torch.stack(spent),
        oracle_calls=None if checks is None else checks.calls.cpu(),
    )


def _where(mask: torch.Tensor, new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    """Rows of ``new`` where ``mask (n,)`` holds, else of ``old`` (any trailing shape)."""
    return torch.where(mask.view(-1, *[1] * (new.ndim - 1)), new, old)
