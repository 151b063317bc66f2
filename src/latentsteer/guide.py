"""Closed-loop steering: cheap oracles read the decoded samples while the codes move.

The heads are a model of the oracles, and gradient ascent is good at finding where a model
is wrong: predictions rise while the measured property does not, or the digit drifts while
the head still reads the old one. So every few steps the ascent (:func:`ascend` with a
``guide``) decodes the codes still moving and hands them to a :class:`Guide`, which reads
them with the domain's *in-loop* oracle (:class:`~latentsteer.domain.Oracle`; for MNIST the
Morpho-MNIST measures and the guide judge) and says per sample:

* **accept** — every goal holds as those oracles read the frame, and the heads agree with
  them on every class goal. A ``digit=K`` goal holds when the judge reads K (with at least
  ``confidence``, 0.5 by default); a ``keep`` on the digit when it still reads the start's
  digit with at least ``min(keep_confidence, its probability at the start)``. A band goal
  (``4.0``, ``+2``, ``keep`` on a measure) must hold inside ``1 − margin`` of its
  tolerance. For an open-ended goal (``max``/``min``) the measured value must have moved
  the right way; a bound (``>=+D``, ``<=-D``) must hold with one tolerance to spare, and
  the sample then settles like a band goal's (asked for at least 20 px² more ink, it does
  not go on to 100).
* **value** — how far the open-ended goals got, as measured (in training standard
  deviations), plus the judge's log-probability of each ``digit=K`` class, so the best
  accepted frame can be kept: a class goal goes on until the judge reads it as surely as
  the ascent can make it, not just past a threshold.
* **broken** — the sample went where it must not: a ``keep`` goal no longer holds as the
  oracles read it (the guide judge reads another digit, or below the start's confidence
  floor), or the heads no longer track the measures: the predicted change of an open-ended
  goal's property differs from the measured change by more than ``trust`` tolerances. Past
  that point the heads are extrapolating, and "as far as the model can be trusted" ends
  there. :class:`~latentsteer.trust_region.TrustRegion` sends a broken sample back to its
  last safe frame with smaller steps.

The guide also **aims the heads where the oracle wants**: after each check a band goal's
centre moves to what was asked plus the heads' measured error at that sample
(``predicted − measured``), so a head that over-reads thickness by 0.3 px is asked for
0.3 px more and the *drawn* digit lands on target.

The guide judge is then part of the loop, so it cannot certify the result:
:mod:`latentsteer.experiment` certifies with a second judge of another architecture and
seed that the loop never saw (the ``certifier``), and says which is which in every
``metrics.json``. The measures are the properties' definition, computed afresh on each
final image; an image they grade thick is thick by definition, and whether it still looks
like a digit is for the certifier and the realism score to say.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from latentsteer.domain import Oracle, OracleReport
from latentsteer.goalspec import GoalSpec
from latentsteer.model import MultiHeadVAE
from latentsteer.objectives import BoundGoal
from latentsteer.readout import Readout
from latentsteer.rules import goal_rule, target
from latentsteer.tolerances import tolerance
from latentsteer.trust_region import Check


@dataclass
class StartReading:
    """What the in-loop oracles read in the decoded starts.

    Attributes:
        report: the oracle's reading of the ``n`` decoded starts.
        reference: ``(n,)`` the class ``keep`` goals keep: the true label where known (test
            digits), else the guide judge's reading of the decoded start.
    """

    report: OracleReport
    reference: np.ndarray


def measured_columns(model: MultiHeadVAE, oracle: Oracle, specs: list[GoalSpec]) -> tuple[str, ...]:
    """The label columns the in-loop oracle must measure for these goals: those of the
    regression goals it can read. Measuring nothing else keeps each check cheap."""
    columns = (model.head_spec(s.prop).column for s in specs
               if model.head_spec(s.prop).kind == "regression")  # fmt: skip
    return tuple(dict.fromkeys(c for c in columns if c in oracle.measures))


def read_starts(
    model: MultiHeadVAE,
    oracle: Oracle,
    z0: torch.Tensor,
    labels: np.ndarray | None = None,
    properties: tuple[str, ...] | None = None,
) -> StartReading:
    """Decode the start codes ``z0 (n, d)`` and read them with the in-loop oracle: the
    ``properties`` among its measures (``None``: all) and its judge."""
    with torch.no_grad():
        samples = model.decode(z0.to(model.device))  # (n, *sample_shape)
    report = oracle.read(samples, properties=properties)
    reference = report.label if labels is None else np.asarray(labels)
    return StartReading(report, reference.astype(np.int64))


class Guide:
    """In-loop oracle checks for one batch of samples (see the module docstring).

    Args:
        model: the VAE whose codes are steered.
        oracle: the in-loop oracle (its judge must not certify the results).
        specs: the parsed goals, in the order of ``goals``.
        goals: the same goals bound to ``model`` and the starts; band goals' centres are
            moved in place.
        readout: how the heads read a code (as in the ascent).
        start: :func:`read_starts` of the starts.
        confidence: probability the guide judge must give a class goal's class.
        margin: share of a band goal's tolerance kept free (it must hold inside
            ``(1 − margin) · tolerance``).
        trust: the heads are trusted while predicted and measured change of an open-ended
            goal's property differ by at most ``trust`` tolerances.
        tolerances: per-property tolerance overrides of the domain's table.
        weight: weight of :meth:`penalty` in the ascent's objective (0 = checks only).
        keep_confidence: for ``keep`` on the digit, the guide judge must read the start's
            digit with at least ``min(keep_confidence, its probability at the start)``.
            Lower than ``confidence``: a thicker 7 the judge reads at 95% is still the 7,
            while a 3 made from a 5 must be read at 99% before anyone else will agree.
        keep_weight: weight of :meth:`penalty` on a ``keep`` goal's digit (0 = checks only).
    """

    def __init__(
        self,
        model: MultiHeadVAE,
        oracle: Oracle,
        specs: list[GoalSpec],
        goals: list[BoundGoal],
        readout: Readout,
        start: StartReading,
        confidence: float = 0.5,
        margin: float = 0.1,
        trust: float = 2.0,
        tolerances: dict[str, float] | None = None,
        weight: float = 10.0,
        keep_confidence: float = 0.9,
        keep_weight: float = 0.0,
    ) -> None:
        if len(specs) != len(goals):
            raise ValueError("the guide needs one goal spec per bound goal")
        if not 0 < confidence < 1:
            raise ValueError(f"guide confidence must be between 0 and 1; got {confidence!r}")
        if not 0 <= margin < 1:
            raise ValueError(f"guide margin must be in [0, 1); got {margin!r}")
        if not trust > 0:
            raise ValueError(f"guide trust must be positive; got {trust!r}")
        if not (weight >= 0 and keep_weight >= 0):
            raise ValueError(f"guide weights must be >= 0; got {weight!r}, {keep_weight!r}")
        self.model, self.oracle, self.read = model, oracle, readout
        self.columns = measured_columns(model, oracle, specs)  # what each check measures
        self.specs, self.goals, self.start = specs, goals, start
        self.confidence, self.margin, self.trust = confidence, margin, trust
        self.tolerances = tolerances
        self.keep_confidence = keep_confidence
        self.calls = 0
        # Per class goal the guide judge reads: the class ``(n,)``, its floor ``(n,)`` and the
        # weight of its shortfall in the penalty.
        self.classes: list[tuple[torch.Tensor, torch.Tensor, float]] = []
        self._keeps: list[bool] = []  # per entry of ``classes``: a ``keep`` goal
        self._last_penalty: torch.Tensor | None = None  # (n,) for the rows not recomputed
        n = len(start.reference)
        # The heads' reading of each start, computed at its first check: starts do not move.
        self._start_read: dict[str, torch.Tensor] = {}
        self._start_known = torch.zeros(n, dtype=torch.bool)
        for spec in specs:
            head = model.head_spec(spec.prop)
            if head.kind != "class" or head.column != oracle.class_column:
                continue
            if spec.kind == "keep":
                k = start.reference
                floor = np.minimum(keep_confidence, start.report.probabilities[np.arange(n), k])
            else:
                k, floor = np.full(n, int(spec.value)), np.full(n, confidence)  # type: ignore[arg-type]
            dev = model.device
            floor_t = torch.as_tensor(floor, dtype=torch.float32, device=dev)
            w = float(keep_weight if spec.kind == "keep" else weight)
            self.classes.append((torch.as_tensor(k, device=dev), floor_t, w))
            self._keeps.append(spec.kind == "keep")
        self.weight = weight

    def penalty(self, z: torch.Tensor, live: torch.Tensor | None = None) -> torch.Tensor:
        """``(n,)`` how far the guide judge is from each class goal, as a smooth penalty.

        For every class goal on the digit (``digit=K`` and ``digit=keep``), the weighted
        squared shortfall of the guide judge's log-probability of the class under its floor,
        read on the decoded image: ``Σ w · max(0, log floor − log p(k | D(z)))²``, with ``w``
        ``keep_weight`` for a ``keep`` and ``weight`` for a ``digit=K`` goal. It is zero
        where the judge already reads the class confidently, and its gradient moves the drawn
        digit — not only the code — towards what the judge reads. The judge steering here is
        why it cannot certify; the certifier does.

        Only the ``live (n,)`` rows (the samples still moving; all when ``None``) are
        decoded and judged: the others keep their last value, detached.
        """
        total = torch.zeros(len(z), device=z.device)
        if not any(w for _, _, w in self.classes):
            return total
        rows = torch.arange(len(z), device=z.device)
        last = self._last_penalty
        if last is not None and live is not None and len(last) == len(z):
            # A stopped sample's code no longer moves: its penalty is the one last computed.
            total = last.to(z.device).clone()
            rows = torch.nonzero(live.to(z.device)).flatten()
        if len(rows):
            # Most samples sit above every floor, where the penalty and its gradient are
            # exactly zero: read them without a graph, and differentiate only the others
            # (about one live sample in ten on thickness=max, digit=keep).
            with torch.no_grad():
                short = self._shortfall(z[rows], rows)  # (m,)
            below = torch.nonzero(short > 0).flatten()
            part = torch.zeros(len(rows), device=z.device)
            if len(below):
                part = part.index_put((below,), self._shortfall(z[rows[below]], rows[below]))
            total = total.index_put((rows,), part)
        self._last_penalty = total.detach()
        return total

    def _start_predictions(self, idx: torch.Tensor, z0: torch.Tensor) -> dict[str, torch.Tensor]:
        """The heads' predictions at the starts ``z0 (m, d)`` of samples ``idx (m,)``, on
        the CPU; each start is read once, at its first check."""
        new = ~self._start_known[idx]
        if bool(new.any()):
            fresh = self.read(z0[new.to(z0.device)])
            for k, v in fresh.items():
                if k not in self._start_read:
                    shape = (len(self._start_known), *v.shape[1:])
                    self._start_read[k] = torch.zeros(shape, dtype=v.dtype)
                self._start_read[k][idx[new]] = v.cpu()
            self._start_known[idx[new]] = True
        return {k: v[idx] for k, v in self._start_read.items()}

    def _shortfall(self, z: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """``(m,)`` :meth:`penalty` of the codes ``z (m, d)`` of samples ``rows (m,)``."""
        logp = self.oracle.log_probabilities(self.model.decode(z))  # (m, k)
        part = torch.zeros(len(rows), device=z.device)
        for k, floor, w in self.classes:
            short = floor[rows].log() - logp.gather(1, k[rows, None]).squeeze(1)
            part = part + w * short.clamp_min(0) ** 2
        return part

    def insist(self, factor: float) -> None:
        """Weigh the penalty on every kept digit ``factor`` times as much (a second attempt
        at the samples whose digit kept slipping asks the drawing for a surer one); class
        goals (``digit=K``) keep their weight.

        Raises:
            ValueError: a factor that is not positive.
        """
        if not factor > 0:
            raise ValueError(f"insist() needs a positive factor; got {factor!r}")
        pairs = zip(self.classes, self._keeps, strict=True)
        self.classes = [(k, floor, w * factor if keep else w) for (k, floor, w), keep in pairs]

    @property
    def keeps_a_class(self) -> bool:
        """Whether a goal keeps the judge's class (``digit=keep``): what :meth:`insist` and
        the raised floors change, so what a second attempt can do differently."""
        return any(self._keeps)

    @property
    def keeps_improving(self) -> bool:
        """Whether accepted samples go on improving (open-ended or class goals), rather than
        stopping at their first accepted frame (targets, changes, keep)."""
        open_ended = ("max", "min")
        return any(
            s.kind in open_ended or (s.kind != "keep" and self.model.head_spec(s.prop).kind
                                     == "class" and self.verifiable(s))
            for s in self.specs
        )  # fmt: skip

    def verifiable(self, spec: GoalSpec) -> bool:
        """Whether an in-loop oracle reads this goal's property."""
        head = self.model.head_spec(spec.prop)
        if head.kind == "regression":
            return head.column in self.oracle.measures
        return head.column == self.oracle.class_column

    def __call__(self, z: torch.Tensor, idx: torch.Tensor, z0: torch.Tensor) -> Check:
        """Read the frames ``z (m, d)`` of samples ``idx (m,)`` that started at ``z0 (m, d)``."""
        with torch.no_grad():
            samples = self.model.decode(z)  # (m, *sample_shape)
            pred = {k: v.cpu() for k, v in self.read(z).items()}
            pred0 = self._start_predictions(idx.cpu(), z0)
        report = self.oracle.read(samples, properties=self.columns)
        self.calls += len(z)
        rows = idx.cpu().numpy()
        m = len(z)
        accept = np.ones(m, dtype=bool)
        value = np.zeros(m)
        broken = np.zeros(m, dtype=bool)
        for spec, goal in zip(self.specs, self.goals, strict=True):
            if not self.verifiable(spec):
                continue  # no oracle reads it: the heads alone steer it (reported unverified)
            head = self.model.head_spec(spec.prop)
            p = pred[spec.prop].numpy()
            if head.kind == "class":
                if spec.kind == "keep":
                    k = self.start.reference[rows]
                    p_start = self.start.report.probabilities[rows, k]
                    floor = np.minimum(self.keep_confidence, p_start)
                else:
                    k = np.full(m, int(spec.value))  # type: ignore[arg-type]
                    floor = np.full(m, self.confidence)
                judged = report.probabilities[np.arange(m), k]
                holds = (report.label == k) & (judged >= floor)
                if spec.kind != "keep":
                    # A class goal keeps improving as the judge reads it more surely: the
                    # best accepted frame is the one it reads most confidently.
                    value += spec.weight * np.log(np.clip(judged, 1e-12, 1.0))
                # The heads must agree too, so that their success and the oracles' match.
                accept &= holds & (p.argmax(1) == k)
                if spec.kind == "keep":
                    broken |= ~holds  # the digit changed: a constraint broken, not a goal unmet
                    if goal.floor is not None and (~holds).any():
                        # Ask the heads for a surer digit where it slipped: the floor's
                        # distance to certainty shrinks fourfold at each slip.
                        slipped = idx[torch.as_tensor(~holds, device=idx.device)]
                        slipped = slipped.to(goal.floor.device)
                        goal.floor[slipped] = 1 - (1 - goal.floor[slipped]).clamp_min(1e-3) / 4
                continue
            tol = tolerance(head.column, self.tolerances, self.model.domain.tolerances)
            measured = report.measures[head.column].to_numpy()
            measured0 = self.start.report.measures[head.column].to_numpy()[rows]
            accept &= np.isfinite(measured)
            if spec.kind in ("max", "min", "at_least", "at_most"):  # open-ended
                gain, moved = goal_rule(spec, measured0, measured, tol)
                if spec.kind in ("at_least", "at_most"):
                    # A bound is met with one tolerance to spare (the shared rule, from a start
                    # one tolerance further back), so that an oracle misreading by up to that
                    # much cannot flip the verdict; then the sample settles.
                    back = tol if spec.kind == "at_least" else -tol
                    moved = goal_rule(spec, measured0 + back, measured, tol)[1]
                accept &= moved
                value += (
                    spec.weight
                    * np.nan_to_num(gain)
                    / float(self.model.target_std[self.model.head_names.index(spec.prop)])
                )
                drift = np.abs((p - pred0[spec.prop].numpy()) - (measured - measured0))
                broken |= ~(np.nan_to_num(drift, nan=np.inf) <= self.trust * tol)
                continue
            # A band goal must hold inside the tolerance less its margin (the shared rule).
            want = target(spec, measured0)
            # A start the oracle cannot read (outside a learned oracle's domain): aim where
            # the heads' own reading of the start says (its frames are never accepted).
            want = np.where(np.isfinite(want), want, target(spec, pred0[spec.prop].numpy()))
            holds = goal_rule(spec, measured0, measured, (1 - self.margin) * tol)[1]
            accept &= holds
            if spec.kind == "keep":
                broken |= ~holds
            # Aim the heads where the oracle wants the sample: what was asked, plus the
            # heads' own error there (bounded, so one odd measurement cannot throw it far).
            error = np.clip(np.nan_to_num(p - measured), -4 * tol, 4 * tol)
            assert goal.center is not None  # every band goal has one
            goal.center[idx] = torch.as_tensor(want + error, dtype=goal.center.dtype).to(
                goal.center.device
            )
        return Check(
            torch.as_tensor(accept), torch.as_tensor(value, dtype=torch.float32),
            torch.as_tensor(broken),
        )  # fmt: skip
