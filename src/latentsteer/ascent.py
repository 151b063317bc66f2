"""Batched latent gradient ascent: move n codes at once towards their goals.

All codes move together in one tensor program (on the model's device). Samples are
independent: the loss is the sum of per-sample objectives, so each code gets exactly the
gradient of its own objective. A sample that meets a stop rule is frozen — its gradient is
zeroed and its code restored after the optimiser step, so Adam's momentum cannot drift it —
while the others go on.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch

from latentsteer.domain import Oracle
from latentsteer.guide import Guide
from latentsteer.model import MultiHeadVAE
from latentsteer.objectives import BoundGoal, Goal, all_satisfied, combine
from latentsteer.oracles import Verification, verify
from latentsteer.readout import Readout
from latentsteer.readout import readout as make_readout
from latentsteer.safeguards import Safeguard, anchor, manifold_scores, penalty
from latentsteer.trust_region import TrustRegion, per_sample_budget


@dataclass
class StopRule:
    """Per-sample stop rules besides the step budget (each ``None``/``False`` to switch off)."""

    when_satisfied: bool = True  # stop once every goal that can be satisfied is
    grad_tol: float | None = 1e-5  # stop when the code's gradient norm falls below this
    patience: int | None = None  # stop after this many steps without improving the objective
    min_delta: float = 1e-4  # what counts as an improvement, for patience
    # With a guide: stop an open-ended sample after this many checks without a better
    # accepted frame (it then returns to its best one).
    guide_patience: int = 3

    def __post_init__(self) -> None:
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be a positive integer or null; got {self.patience!r}")
        if self.guide_patience < 1:
            raise ValueError(
                f"guide_patience must be a positive integer; got {self.guide_patience!r}"
            )


@dataclass
class SteerResult:
    """What :func:`steer` returns.

    Attributes:
        z: ``(T+1, n, d)`` the path of every code (CPU); frozen samples repeat their code.
        predicted: head name → ``(T+1, n)`` values, or ``(T+1, n, k)`` class probabilities.
        scores: goal label → ``(T+1, n)`` that goal's score along the path.
        objective: ``(T+1, n)`` the combined objective (safeguard penalties included).
        manifold: safeguard name → ``(n,)`` its score at the final codes.
        stop_reason: per sample: ``satisfied``, ``grad``, ``patience`` or ``steps``; with a
            guide ``confirmed`` (every goal confirmed by the in-loop oracles), ``stalled``,
            ``untrusted``, ``steps`` or ``budget`` (an open-ended sample back at its best
            accepted frame; ``budget``: its oracle calls were spent), or ``unconfirmed`` (no
            frame accepted: back at its start); ``held`` for a row kept still
            (``ascend``'s ``moving``).
        stop_step: ``(n,)`` the step each sample stopped at.
        wall_seconds: time spent in the ascent.
        model_calls: ``(n,)`` evaluations of the objective per sample (one forward and
            backward pass per step for gradient methods); default ``stop_step + 1``.
        calls_path: ``(T+1, n)`` calls spent by each step; default ``min(t, stop_step) + 1``.
        oracle_calls: ``(n,)`` frames of each sample read by in-loop oracles (0 unguided).
        attempts: ``(n,)`` times each sample was steered from its start (1, or more where
            :mod:`latentsteer.retry` tried again; the path is the last attempt's, the calls
            all of them, so a retried sample's first frame already carries the calls spent).

    Methods that move pixels rather than codes (:mod:`latentsteer.baselines`) return the
    same type, with ``z`` the encoder's codes of their images and ``images`` given.
    """

    z: torch.Tensor
    predicted: dict[str, torch.Tensor]
    scores: dict[str, torch.Tensor]
    objective: torch.Tensor
    manifold: dict[str, torch.Tensor]
    stop_reason: list[str]
    stop_step: torch.Tensor
    wall_seconds: float
    model: MultiHeadVAE = field(repr=False)
    _images: torch.Tensor | None = field(default=None, repr=False)
    model_calls: torch.Tensor | None = None
    calls_path: torch.Tensor | None = field(default=None, repr=False)
    oracle_calls: torch.Tensor | None = None
    attempts: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.calls_path is None:  # one (gradient) evaluation per step taken, and the start
            steps = torch.arange(len(self.z))[:, None]
            self.calls_path = torch.minimum(steps, self.stop_step[None]) + 1
        if self.model_calls is None:
            self.model_calls = self.calls_path[-1]
        if self.oracle_calls is None:
            self.oracle_calls = torch.zeros(self.z.shape[1], dtype=torch.long)
        if self.attempts is None:
            self.attempts = torch.ones(self.z.shape[1], dtype=torch.long)

    @property
    def images(self) -> torch.Tensor:
        """``(T+1, n, *sample_shape)`` the decoded path (computed once, on demand)."""
        if self._images is None:
            self._images = self.images_at(range(len(self.z)))
        return self._images

    def images_at(self, steps: Sequence[int]) -> torch.Tensor:
        """``(len(steps), n, *sample_shape)`` the decoded path at the given steps only."""
        if self._images is not None:
            return self._images[list(steps)]
        with torch.no_grad():
            z = self.z[list(steps)]
            flat = z.reshape(-1, z.shape[-1]).to(self.model.device)
            parts = [self.model.decode(b).cpu() for b in flat.split(4096)]
        decoded = torch.cat(parts)  # (len(steps) · n, *sample_shape)
        return decoded.reshape(*z.shape[:2], *decoded.shape[1:])

    @property
    def final_images(self) -> torch.Tensor:
        """``(n, *sample_shape)`` the decoded final codes."""
        return self.images[-1]

    def verify(self, oracle: Oracle, workers: int | None = None) -> Verification:
        """Measure the final samples with the domain's oracle, next to the heads' predictions.

        Returns:
            A :class:`~latentsteer.oracles.Verification`; its ``summary()`` gives the
            predicted-vs-measured gap per head.
        """
        final = {k: v[-1] for k, v in self.predicted.items()}
        return verify(self.model, oracle, self.final_images, final, workers=workers)


class PathRecord:
    """Per-step records of an ascent, stacked into :class:`SteerResult` fields at the end."""

    def __init__(self, goals: list[BoundGoal]) -> None:
        self.goals = goals
        self.z: list[torch.Tensor] = []
        self.predicted: list[dict[str, torch.Tensor]] = []
        self.objective: list[torch.Tensor] = []
        self.scores: dict[str, list[torch.Tensor]] = {g.label: [] for g in goals}

    def add(self, z: torch.Tensor, pred: dict[str, torch.Tensor], obj: torch.Tensor) -> None:
        """Record one step: codes ``(n, d)``, predictions, and the objective ``(n,)``."""
        self.z.append(z.detach().cpu().clone())
        self.predicted.append({k: v.detach().cpu() for k, v in pred.items()})
        self.objective.append(obj.detach().cpu())
        for g in self.goals:
            self.scores[g.label].append(g.score(pred).detach().cpu())

    def stacked(self) -> dict[str, object]:
        """``z``, ``predicted``, ``scores`` and ``objective``, each stacked over steps."""
        return {
            "z": torch.stack(self.z),
            "predicted": {
                k: torch.stack([p[k] for p in self.predicted]) for k in self.predicted[0]
            },
            "scores": {k: torch.stack(v) for k, v in self.scores.items()},
            "objective": torch.stack(self.objective),
        }


def read_live(
    read: Readout, z: torch.Tensor, live: torch.Tensor, last: dict[str, torch.Tensor] | None
) -> dict[str, torch.Tensor]:
    """Predictions for every row of ``z (n, d)``, computing only the ``live (n,)`` rows.

    The readout is most of a step's cost (``mixed`` decodes and re-encodes each code), and
    once samples stop a batch would otherwise go on paying for them until the last one
    stops. Rows outside ``live`` keep their entries of ``last`` (their codes have not moved
    since), detached: a stopped sample gets no gradient anyway.

    Returns:
        head name → ``(n,)`` values or ``(n, k)`` probabilities; the ``live`` rows carry
        gradients to ``z``.
    """
    if last is None or bool(live.all()):
        return read(z)
    idx = torch.nonzero(live).flatten()
    if not len(idx):
        return {k: v.detach() for k, v in last.items()}
    part = read(z[idx])
    return {k: v.detach().index_put((idx,), part[k]) for k, v in last.items()}


def _bind(
    goals: list[Goal | BoundGoal], model: MultiHeadVAE, z0: torch.Tensor, read: Readout
) -> list[BoundGoal]:
    bound = [g.bind(model, z0, read) if isinstance(g, Goal) else g for g in goals]
    if not bound:
        raise ValueError("ascend() needs at least one goal")
    return bound


def ascend(
    model: MultiHeadVAE,
    start: torch.Tensor,
    goals: list[Goal | BoundGoal],
    *,
    steps: int = 200,
    lr: float = 0.05,
    optimizer: Literal["adam", "sgd"] = "adam",
    safeguards: list[Safeguard] | None = None,
    stop: StopRule | None = None,
    penalty_weight: float = 10.0,
    readout: Literal["code", "cycle", "mixed"] = "code",
    seed: int = 0,
    guide: Guide | None = None,
    check_every: int = 10,
    moving: torch.Tensor | None = None,
    oracle_budget: int | torch.Tensor | None = None,
) -> SteerResult:
    """Steer codes by gradient ascent on the model's heads.

    Args:
        model: a trained model (put in eval mode here).
        start: ``(n, d)`` starting codes (prior draws, encoded images, ...).
        goals: declared goals (bound here to ``model`` and ``start``) or bound ones.
        steps: largest number of optimiser steps.
        lr: step size.
        optimizer: ``adam`` or ``sgd``.
        safeguards: manifold safeguards; their weighted scores are subtracted from the
            objective, and their projections applied after each step.
        stop: per-sample stop rules.
        penalty_weight: weight of the quadratic penalty on violated constraints.
        readout: how the heads read a code: ``code`` (at ``z``), ``cycle`` (at the
            encoding of its decoded image) or ``mixed``; see :mod:`latentsteer.readout`.
        seed: seeds anything random in the ascent (kept for reproducibility of callers that
            add noise; plain ascent is deterministic).
        guide: in-loop oracle checks (:class:`~latentsteer.guide.Guide`, or any callable
            ``(z (m, d), idx (m,), z0 (m, d)) -> Check``). Every ``check_every`` steps and
            at the last, the samples still moving are checked; a sample stops once the
            guide accepts it (goals that can be met), or, with an open-ended goal, once
            its best accepted frame has not improved for ``stop.guide_patience`` checks or
            the guide no longer trusts the heads. A stopped sample goes back to its best
            accepted frame, or to its start if none was accepted. The heads' own stop
            rules are off then: the oracles decide.
        check_every: steps between guide checks.
        moving: ``(n,)`` bool, the rows that may move (all by default). The others hold
            still from the first step: never stepped nor checked, stop reason ``held``
            (a second attempt at some samples, :mod:`latentsteer.retry`).
        oracle_budget: oracle calls (frames the guide reads) allowed per sample: an int
            >= 1, or ``(n,)`` integers (what each has left; 0 only for rows held still);
            ``None`` for no cap. A sample stops at the check that spends its last call and
            ends as any stopped sample does (see :mod:`latentsteer.trust_region`), so
            ``oracle_calls <= oracle_budget``. Without a guide no oracle is called in the
            loop and it changes nothing.

    Returns:
        A :class:`SteerResult`.

    Raises:
        ValueError: bad shapes, NaNs, unknown goals or settings.
    """
    if steps < 1:
        raise ValueError(f"steps must be a positive integer; got {steps}")
    if not lr > 0:
        raise ValueError(f"lr must be positive; got {lr}")
    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"optimizer must be adam or sgd; got {optimizer!r}")
    if check_every < 1:
        raise ValueError(f"check_every must be a positive integer; got {check_every}")
    torch.manual_seed(seed)
    model.eval()
    rules = stop or StopRule()
    z0 = model._as_codes(start).detach()  # validates shape and finiteness
    guards = anchor(model, z0, safeguards or [])
    read = make_readout(model, readout)
    bound = _bind(list(goals), model, z0, read)
    objective_of = combine(bound, penalty=penalty_weight)
    # "Every goal satisfied" can only happen when no goal is open-ended (max/min).
    can_finish = all(g.satisfied is not None for g in bound)

    z = z0.clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr) if optimizer == "adam" else torch.optim.SGD([z], lr=lr)
    n = len(z)
    active = torch.ones(n, dtype=torch.bool, device=z.device)
    stop_step = torch.full((n,), steps, dtype=torch.long)
    reason = ["steps"] * n
    if moving is not None:
        if moving.shape != (n,) or moving.dtype != torch.bool:
            raise ValueError(f"moving must be a bool mask of shape ({n},); got "
                             f"{moving.dtype} {tuple(moving.shape)}")  # fmt: skip
        active &= moving.to(z.device)
        for i in torch.nonzero(~moving).flatten().tolist():
            reason[i], stop_step[i] = "held", 0
    # A tensor may give 0 to rows held still (a retry: nothing left); an int is >= 1.
    allowed = per_sample_budget(oracle_budget, n, least=0 if moving is not None else 1)
    if allowed is not None and bool((allowed[active.cpu()] < 1).any()):
        raise ValueError("oracle_budget must be >= 1 for every moving row (hold the others "
                         f"still); got {allowed.tolist()[:8]}")  # fmt: skip
    best = torch.full((n,), -float("inf"), device=z.device)
    since_best = torch.zeros(n, dtype=torch.long, device=z.device)
    record = PathRecord(bound)

    def freeze(mask: torch.Tensor, why: str, t: int) -> None:
        for i in torch.nonzero(mask & active).flatten().tolist():
            reason[i] = why
            stop_step[i] = t
        active.logical_and_(~mask)

    region = None
    if guide is not None:
        # A guide may read a goal as open-ended (a class goal: ever more surely that class).
        settles = can_finish and not getattr(guide, "keeps_improving", False)
        region = TrustRegion(z0, settles, rules.guide_patience, budget=allowed)
    start_time = time.perf_counter()
    last: dict[str, torch.Tensor] | None = None  # every row's latest predictions
    for t in range(steps + 1):
        # The rows that may move or be rolled back at this step; the others sit still, so
        # their predictions are the ones last computed and the readout skips them.
        live = active.clone()
        if region is not None and (t % check_every == 0 or t == steps) and active.any():
            assert guide is not None
            with torch.no_grad():
                idx = torch.nonzero(active).flatten()
                verdict = region.update(idx, z, guide(z[idx].detach(), idx, z0[idx]), t == steps)
                for i, r in zip(idx[verdict.done].tolist(), verdict.reasons, strict=True):
                    reason[i], stop_step[i] = r, t
                active[idx[verdict.done]] = False
                # Momentum would carry a rolled-back code straight back where it broke.
                state = opt.state.get(z, {})
                if verdict.rolled_back.numel() and "exp_avg" in state:
                    state["exp_avg"][verdict.rolled_back] = 0.0
                elif verdict.rolled_back.numel() and "momentum_buffer" in state:
                    state["momentum_buffer"][verdict.rolled_back] = 0.0
        pred = last = read_live(read, z, live, last)
        obj = objective_of(pred) - penalty(model, z, guards)  # (n,)
        if guide is not None and hasattr(guide, "penalty"):
            obj = obj - guide.penalty(z, live)  # what the in-loop judge reads, kept in view
        record.add(z, pred, obj)
        if t == steps:
            break
        with torch.no_grad():
            if region is None and rules.when_satisfied and can_finish:
                freeze(all_satisfied(bound, pred), "satisfied", t)
            if region is None and rules.patience is not None:
                improved = obj > best + rules.min_delta
                best = torch.where(improved, obj, best)
                since_best = torch.where(improved, 0, since_best + 1)
                freeze(since_best >= rules.patience, "patience", t)
        if not active.any():
            break
        # Gradient with respect to the codes only: the model's weights collect nothing.
        (grad,) = torch.autograd.grad(-(obj * active).sum(), z)
        z.grad = grad
        with torch.no_grad():
            if region is None and rules.grad_tol is not None:
                freeze(z.grad.norm(dim=1) < rules.grad_tol, "grad", t)
            z.grad[~active] = 0.0
            before = z.detach().clone()
        opt.step()
        with torch.no_grad():
            moved = before  # already a copy: frozen rows keep their pre-step code
            if region is None:
                moved[active] = z[active]
            else:  # each sample's step, scaled by its trust region
                step = (z - before)[active] * region.scale[active, None]
                moved[active] = before[active] + step
            for g in guards:
                moved[active] = g.project(moved[active])
            z.copy_(moved)
    wall = time.perf_counter() - start_time
    final = z.detach()
    return SteerResult(
        **record.stacked(),  # type: ignore[arg-type]
        manifold=manifold_scores(model, final, guards),
        stop_reason=reason,
        stop_step=stop_step,
        wall_seconds=wall,
        model=model,
        oracle_calls=None if region is None else region.calls.cpu(),
    )
