"""One steering experiment, from its settings to oracle-verified results on disk.

An experiment is an entry under ``experiments:`` in ``params.yaml`` (or the flags of
``latentsteer steer``): where to start, which goals, which method, how many steps, which
safeguards. :func:`run_experiment` runs it and measures the outcome with the independent
oracles; :func:`write_results` writes the files both the DVC stage and the CLI produce:

* ``trajectory.npz`` — ``images`` float32 ``(F, n, *sample_shape)`` (the decoded samples;
  MNIST: 28×28 in [0, 1]), ``z`` ``(F, n, d)``,
  ``step`` ``(F,)`` (which optimiser step each frame is; every ``record_every``-th step plus
  the last), ``predicted_<head>`` per frame; per sample ``stop_step``, ``stop_reason``,
  ``model_calls``, and ``success`` / ``predicted_success`` (every goal, by the oracles / the
  heads); per frame ``success_by_frame`` and ``calls_by_frame`` (oracle success against
  model calls spent);
* ``grid.png`` — rows are samples, columns are steps;
* ``curves.png`` — predicted and measured value of each goal per step, mean ± sd;
* ``metrics.json`` — oracle success, measured change, predicted-vs-measured gap, realism,
  diversity, manifold scores, stop reasons, model calls and wall time.

Everything specific to the data comes from the model's domain (:mod:`latentsteer.domain`):
how starts are read, the oracles, the tolerances and how samples are drawn. Realism is the
Fréchet distance in the certifying judge's features to real test samples, twice: to the
whole reference set (``realism_*``), and to the real samples matched to each sample on the
judge's class and the domain's ``match_on`` measure (``realism_matched_*``; MNIST: the
thickness), which does not count "these are all thick 3s" as unrealism. Each is reported
for the start and the end.

Success is always judged by the certifying oracle (MNIST: Morpho-MNIST measures of the
decoded image and the certifier judge), goal by goal, with the domain's per-property
tolerance (``oracle_tol`` overrides it) for regression goals:

=================  =============================================================
``prop=max|min``    the measured value moved that way
``prop=+D|-D``      the measured change is within the tolerance of ``D``
``prop=V``          the measured value is within the tolerance of ``V``
``prop=keep``       the measured value moved by at most the tolerance
``class=K``         the judge reads ``K`` (MNIST: ``digit=K``)
``class=keep``      the judge reads the start's class (the true label for test samples)
=================  =============================================================

The same rules applied to the heads' own readout give the *predicted* success, so the two
can be compared.
"""

# The run goes one way, a module a step: settings (experiment_config) -> what it reads
# (context) -> start, goals and ascent (runner) -> verdicts and metrics (grading) -> files
# (results). This module names the public pieces in one place.
from latentsteer.context import Context, safeguards
from latentsteer.experiment_config import ExperimentConfig, heads_band
from latentsteer.grading import CONFIDENT, assess, goal_keys, goal_success, success_curve
from latentsteer.results import Outcome, curves, summary_line, write_results
from latentsteer.runner import closed_loop, recorded_steps, run_experiment, search_strategy
from latentsteer.tolerances import goal_tolerance

__all__ = [
    "CONFIDENT", "Context", "ExperimentConfig", "Outcome", "assess", "closed_loop", "curves",
    "goal_keys", "goal_success", "goal_tolerance", "heads_band", "recorded_steps",
    "run_experiment", "safeguards", "search_strategy", "success_curve", "summary_line",
    "write_results",
]  # fmt: skip
