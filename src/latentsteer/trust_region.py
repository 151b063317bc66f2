"""A per-sample trust region driven by oracle checks: how far each code may move.

The closed loop (:mod:`latentsteer.guide`) reads every sample every few steps and says
whether its goals hold (``accept``), how far its open-ended goals got (``value``), and
whether it has gone somewhere it must not (``broken``: a ``keep`` constraint no longer
holds as the oracles read it, or the heads stopped tracking the measures). A search that
only watched the heads would find out about none of this. :class:`TrustRegion` turns the
verdicts into moves:

* **broken** → the sample goes back to its last safe frame (the last checked one that was
  not broken; its start at first) and its steps are halved: the region shrinks where the
  heads proved wrong, instead of the sample being given up at the first mistake;
* after ``shrinks`` halvings without a safe way on, the sample stops;
* **accepted** goals that can be met (targets, classes, changes) → the sample stops there;
* open-ended goals (``max``/``min``) → the best accepted frame is kept, and the sample stops
  once ``patience`` checks bring no better one;
* with an oracle budget, a sample stops at the check that spends its last call (``budget``
  calls: frames of it the oracles read), like any other stop;
* a stopped sample ends on its best accepted frame, or on its start if it never had one: an
  honest "nothing found" rather than a result the oracles did not confirm.

A stopped sample's reason is, first that applies: ``unconfirmed`` (no accepted frame: back
at its start), ``confirmed``, ``untrusted``, ``stalled``, ``steps`` (the search's last
check), ``oracle_budget`` (its oracle calls are spent, and nothing else would have stopped
it; a search's ``budget`` is its model calls).

It imports no domain: any guide that returns a :class:`Check` drives it, for the gradient
ascent and the gradient-free searches alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Check:
    """An oracle reading of ``m`` frames (one per sample still moving).

    Attributes:
        accept: ``(m,)`` every goal holds, as the in-loop oracles read the frame.
        value: ``(m,)`` progress of the open-ended goals (0 when there are none).
        broken: ``(m,)`` a constraint no longer holds or the heads are no longer trusted.
    """

    accept: torch.Tensor
    value: torch.Tensor
    broken: torch.Tensor


@dataclass
class Verdict:
    """What :meth:`TrustRegion.update` decided for the checked samples.

    Attributes:
        done: ``(m,)`` which of them stop now.
        reasons: the stop reason of each one that stops: ``confirmed``, ``stalled``,
            ``untrusted``, ``steps``, ``oracle_budget`` or ``unconfirmed`` (precedence in the module
            docstring).
        rolled_back: rows (indices into all ``n``) moved back to a safe frame.
    """

    done: torch.Tensor
    reasons: list[str]
    rolled_back: torch.Tensor


class TrustRegion:
    """Per-sample bookkeeping of oracle checks (see the module docstring).

    Args:
        z0: ``(n, d)`` the start codes (where a sample with no accepted frame returns).
        can_finish: no goal is open-ended, so a sample is done once a frame is accepted.
        patience: checks without a better accepted frame before an open-ended sample stops.
        shrinks: step halvings after broken frames before a sample stops.
        budget: oracle calls allowed per sample: an int for all, or ``(n,)`` integers (what
            each has left); ``None`` for no cap. A sample stops at the check that brings its
            ``calls`` to its budget. A sample with a budget of 0 must not be checked (hold it
            still): its first check would already spend one call too many.

    Attributes:
        scale: ``(n,)`` each sample's step scale (1 at first, halved when it breaks).
        calls: ``(n,)`` frames of each sample the oracles read.
        budget: ``(n,)`` long, each sample's oracle budget, or ``None``.

    Raises:
        ValueError: a budget that is not an integer >= 0 (per sample) of shape ``(n,)``.
    """

    def __init__(
        self,
        z0: torch.Tensor,
        can_finish: bool,
        patience: int = 3,
        shrinks: int = 3,
        budget: int | torch.Tensor | None = None,
    ) -> None:
        n, dev = len(z0), z0.device
        self.z0, self.can_finish, self.patience, self.shrinks = z0, can_finish, patience, shrinks
        self.budget = per_sample_budget(budget, n, "budget", least=0)
        if self.budget is not None:
            self.budget = self.budget.to(dev)
        self.best_z = z0.clone()  # (n, d) best accepted frame
        self.safe_z = z0.clone()  # (n, d) last frame that was not broken
        self.best_value = torch.full((n,), -float("inf"), device=dev)
        self.has_best = torch.zeros(n, dtype=torch.bool, device=dev)
        self.stale = torch.zeros(n, dtype=torch.long, device=dev)
        self.breaks = torch.zeros(n, dtype=torch.long, device=dev)
        self.scale = torch.ones(n, device=dev)
        self.calls = torch.zeros(n, dtype=torch.long, device=dev)

    def update(self, idx: torch.Tensor, z: torch.Tensor, check: Check, last: bool) -> Verdict:
        """Take a check of samples ``idx (m,)`` at codes ``z[idx]``; move codes in ``z``
        (in place) back to a safe frame where broken, and to their final frame where done."""
        dev = z.device
        idx = idx.to(dev)
        accept, value = check.accept.to(dev), check.value.to(dev)
        broken = check.broken.to(dev)
        self.calls[idx] += 1
        better = accept & ~broken & (value > self.best_value[idx])  # (m,)
        won = idx[better]
        self.best_value[won] = value[better]
        self.best_z[won] = z[won].detach()
        self.has_best[won] = True
        safe = idx[~broken]
        self.safe_z[safe] = z[safe].detach()
        bad = idx[broken]
        z[bad] = self.safe_z[bad]
        self.breaks[bad] += 1
        self.scale[bad] *= 0.5
        if self.can_finish:
            done = accept & ~broken
        else:
            # Patience counts from the first accepted frame: a slow start is not a stall.
            self.stale[idx] = torch.where(better | ~self.has_best[idx], 0, self.stale[idx] + 1)
            done = self.stale[idx] >= self.patience
        gave_up = self.breaks[idx] > self.shrinks
        spent = torch.zeros_like(done)
        if self.budget is not None:
            spent = self.calls[idx] >= self.budget[idx]  # (m,) its last allowed call is made
        done = done | gave_up | spent
        if last:
            done = torch.ones_like(done)
        rows = idx[done]
        found = self.has_best[rows]
        z[rows] = torch.where(found[:, None], self.best_z[rows], self.z0[rows])
        reasons = []
        for ok, quit_, stalled, out in zip(
            found.tolist(), gave_up[done].tolist(), (self.stale[rows] >= self.patience).tolist(),
            spent[done].tolist(), strict=True,
        ):  # fmt: skip
            if not ok:
                reasons.append("unconfirmed")
            elif self.can_finish:
                reasons.append("confirmed")
            elif quit_:
                reasons.append("untrusted")
            elif stalled:
                reasons.append("stalled")
            else:  # the budget only where the last check would not have stopped it anyway
                reasons.append("oracle_budget" if out and not last else "steps")
        return Verdict(done, reasons, bad)


def per_sample_budget(
    budget: int | torch.Tensor | None, n: int, name: str = "oracle_budget", least: int = 1
) -> torch.Tensor | None:
    """An oracle budget as ``(n,)`` long calls per sample (``None`` stays ``None``).

    Args:
        budget: an int for every sample, or ``(n,)`` integers, one per sample.
        n: number of samples.
        name: the setting's name, for the error.
        least: the smallest budget accepted (an int budget must be at least 1 regardless).

    Raises:
        ValueError: not an integer (tensor) of shape ``(n,)`` with every entry >= ``least``.
    """
    if budget is None:
        return None
    if isinstance(budget, torch.Tensor):
        ok = (
            budget.shape == (n,)
            and not budget.dtype.is_floating_point
            and not budget.dtype.is_complex
            and budget.dtype != torch.bool
            and bool((budget >= least).all())
        )
        if not ok:
            raise ValueError(
                f"{name} must be an integer >= {least} per sample, of shape ({n},); got "
                f"{budget.dtype} {tuple(budget.shape)} {budget.tolist()[:8]}"
            )
        return budget.long()
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < max(least, 1):
        raise ValueError(f"{name} must be an integer >= {max(least, 1)} or None; got {budget!r}")
    return torch.full((n,), budget, dtype=torch.long)
