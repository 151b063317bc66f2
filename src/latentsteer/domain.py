"""The domain contract: what one kind of data must supply for the shared engine to steer it.

The engine (goals, batched ascent, stop rules, safeguards, readouts, gradient-free
baselines, the closed loop, the experiment runner, metrics, the report, tracking, the CLI)
never imports a domain. A domain is an object with the methods below; the registry
(:mod:`latentsteer.registry`) finds it by the name a model folder records. What a domain
supplies, and nothing more:

* **networks** — the encoder and decoder for its data (:meth:`Domain.networks`), the
  reconstruction likelihood and how decoder outputs become samples. The heads, the VAE loss,
  training, DDP, resume and model folders are shared (:mod:`latentsteer.model`,
  :mod:`latentsteer.train`).
* **oracles** — property measures of decoded samples and, optionally, an independent judge
  for one class property, behind the :class:`Oracle` protocol. Which properties an oracle
  reads decides which goals can be verified; the rest are reported *unverified*.
* **tolerances** — per measured property, in its units: what counts as "got it".
* **starts** — how a start spec becomes codes (:meth:`Domain.parse_start`): prior draws
  are shared (``random:N``); test items and the user's own files are the domain's.
* **shows** — how samples are drawn into files people read (:meth:`Domain.save_grid`).
* **your own property** (optional) — how a user's table of measured samples is read
  (:meth:`Domain.read_property_table`), encoded (:meth:`Domain.table_codes`, after
  :meth:`Domain.adapt_model` where the model cannot take its samples) and how its learned
  oracle is fitted and loaded (:meth:`Domain.fit_property_oracle`,
  :meth:`Domain.load_property_oracle`); :mod:`latentsteer.learned` does the rest.

Data splits and label measures (the Parquet columns) are the domain's pipeline stages; the
engine reads only the training tensors they produce (:class:`latentsteer.train.Dataset`).
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pandas as pd
import torch
from torch import nn

from latentsteer.errors import LatentsteerError
from latentsteer.methods import ENGINE_METHODS

if TYPE_CHECKING:
    # The model, the steering context and the settings sit above this contract (the model
    # is built from a domain); its signatures name them by what a domain sees of them.
    from latentsteer.learned.card import PropertyOracle
    from latentsteer.learned.table import PropertyTable
    from latentsteer.protocols import ContextSettings, LatentModel, ModelShape, SteeringContext


@dataclass
class OracleReport:
    """Oracle readings of ``n`` decoded samples.

    Attributes:
        measures: ``n`` rows, one column per measured property (label column names).
        label: ``(n,)`` the judge's class of each sample (``-1`` everywhere without a judge).
        confidence: ``(n,)`` the judge's probability of that class.
        probabilities: ``(n, k)`` the judge's class probabilities (``k = 0`` without one).
        class_column: the label column the judge reads (e.g. ``digit``), or ``None``.
    """

    measures: pd.DataFrame
    label: np.ndarray
    confidence: np.ndarray
    probabilities: np.ndarray
    class_column: str | None = None

    def rows(self, start: int, stop: int) -> OracleReport:
        """The readings of samples ``start:stop``."""
        return self.take(np.arange(start, stop))

    def take(self, index: np.ndarray) -> OracleReport:
        """The readings of the samples ``index (m,)``, in that order (repeats allowed)."""
        return OracleReport(
            self.measures.iloc[index].reset_index(drop=True),
            self.label[index],
            self.confidence[index],
            self.probabilities[index],
            self.class_column,
        )


class Oracle(Protocol):
    """Reads decoded samples; never the model's heads.

    Attributes:
        measures: the label columns :meth:`read` measures (e.g. ``thickness``).
        class_column: the label column the judge reads (e.g. ``digit``), or ``None``.
        describe: what it is, for ``metrics.json`` (e.g. ``measures (scikit-image), certifier``).
    """

    measures: tuple[str, ...]
    class_column: str | None
    describe: str

    def read(
        self,
        samples: torch.Tensor,
        workers: int | None = None,
        properties: Sequence[str] | None = None,
    ) -> OracleReport:
        """Measure and judge ``(n, *sample_shape)`` samples: the ``properties`` among
        :attr:`measures` (``None``: all of them), and the judge's class."""
        ...

    def probabilities(self, samples: torch.Tensor) -> torch.Tensor:
        """``(n, k)`` the judge's class probabilities (no gradient; ``k = 0`` without one)."""
        ...

    def log_probabilities(self, samples: torch.Tensor) -> torch.Tensor:
        """``(n, k)`` the judge's class log-probabilities, differentiable in ``samples``."""
        ...

    def embed(self, samples: torch.Tensor) -> torch.Tensor:
        """``(n, f)`` features for realism scores (the judge's penultimate layer)."""
        ...


@dataclass
class Start:
    """Starting codes and, when they come from data, those samples and their labels.

    Attributes:
        z: ``(n, d)`` starting codes.
        samples: ``(n, *sample_shape)`` the source samples, or ``None`` for prior draws.
        labels: ``(n,)`` true classes of the oracle's class property where known, else
            ``None``.
        spec: the spec it was made from.
    """

    z: torch.Tensor
    samples: torch.Tensor | None
    labels: np.ndarray | None
    spec: str

    @property
    def images(self) -> torch.Tensor | None:
        """The source samples (the name the image domains use)."""
        return self.samples


class Domain:
    """Base class of a domain; override what your data needs (see the module docstring).

    Attributes:
        name: what model folders record and the registry looks up.
        sample_shape: the shape of one decoded sample, e.g. ``(28, 28)``.
        tolerances: measured property → success tolerance, in its units.
        start_help: the start specs :meth:`parse_start` accepts, for error messages.
        match_on: the measure matched realism pairs samples on, besides the class.
        sources: what :meth:`load_context` reads besides the model, name → default path.
        methods: the steering methods its models take (``latentsteer steer --method``);
            the shared engine's by default; the first is the default method.
        settings: the experiment settings its models take besides the common ones
            (``None``: every one the engine's trajectories read).
        experiment_defaults: experiment settings whose default differs for its models.
    """

    name: str = ""
    sample_shape: tuple[int, ...] = ()
    tolerances: Mapping[str, float] = {}
    start_help: str = "random:N"
    # The measure the matched realism score pairs samples on, besides the judge's class
    # (MNIST: thickness); None pairs on the class alone.
    match_on: str | None = None
    # What a steering context reads besides the model (judges, data), with the pipeline's
    # paths as defaults; the CLI and latentsteer.steer() take each as an option.
    sources: Mapping[str, str | None] = {}
    # The `method`s a steering request on this domain's models may name (the vocabulary of
    # methods.py); the CLI offers the union over known domains and checks the model's own.
    methods: tuple[str, ...] = ENGINE_METHODS
    # The ExperimentConfig fields its experiments take besides experiment_config's
    # COMMON_SETTINGS; None: those of the engine's trajectories. The CLI, the library and
    # params.yaml refuse the others for its models, in one line.
    settings: tuple[str, ...] | None = None
    # ExperimentConfig fields whose default differs for this domain's models
    # (molecules: fewer, smaller ascent steps, a similarity threshold).
    experiment_defaults: Mapping[str, object] = {}
    # "module:function(domain, model_dir, settings, sources, cached) -> Context", imported
    # when a context is first loaded: a stage that only builds or trains models then does
    # not depend on the steering engine (dvc.yaml declares what each stage imports).
    context_loader: str | None = None
    # What `latentsteer sample --out` can write (write_samples), by file suffix.
    sample_suffixes: tuple[str, ...] = (".png",)
    # The suffixes of the sample files this domain reads (measure_file, read_samples), so
    # `latentsteer measure FILE` can tell the domain from the file.
    file_suffixes: tuple[str, ...] = ()
    # The tables of measured samples `latentsteer fit-property` reads for its models ("":
    # none), for the help texts.
    table_help: str = ""

    # ---------------------------------------------------------------- model folders
    def config_entries(self) -> dict[str, object]:
        """What a model of this domain records in its folder's ``config.json`` besides its
        architecture (molecules: the vocabulary); none by default."""
        return {}

    def configured(self, entries: Mapping[str, object]) -> Domain:
        """The domain as a model folder's ``config.json`` ``entries`` configure it (the
        inverse of :meth:`config_entries`); this domain itself by default.

        Raises:
            ValueError: entries this domain needs are missing or malformed (one line).
        """
        return self

    # ---------------------------------------------------------------- networks
    def networks(self, config: ModelShape) -> tuple[nn.Module, nn.Module]:
        """An encoder ``(B, *sample_shape) → (B, 2d)`` (means, then log-variances) and a
        decoder ``(B, d) → (B, *sample_shape)`` logits, built from ``config``."""
        raise NotImplementedError

    def reconstruction_nll(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``(B,)`` negative log-likelihood of samples ``x`` under decoder ``logits``."""
        raise NotImplementedError

    def to_samples(self, logits: torch.Tensor) -> torch.Tensor:
        """Decoder logits → samples (differentiable); the identity by default."""
        return logits

    def check_samples(self, x: torch.Tensor) -> torch.Tensor:
        """Validate a batch of samples ``(n, *sample_shape)`` given by a user.

        Raises:
            ValueError: wrong shape or non-finite values (one line).
        """
        if x.ndim != 1 + len(self.sample_shape) or tuple(x.shape[1:]) != self.sample_shape:
            want = ", ".join(["n", *map(str, self.sample_shape)])
            raise ValueError(f"samples must have shape ({want}); got {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise ValueError("samples contain NaN or infinite values")
        return x

    def augment(self, x: torch.Tensor, amount: int, g: torch.Generator) -> torch.Tensor:
        """A training batch, randomly perturbed by up to ``amount`` (none by default)."""
        return x

    # ---------------------------------------------------------------- steering
    def load_context(
        self,
        model_dir: str | os.PathLike[str],
        settings: ContextSettings,
        sources: Mapping[str, str | os.PathLike[str] | None],
        cached: str | os.PathLike[str] | None = None,
    ) -> SteeringContext:
        """Everything an experiment reads besides its settings: the model on
        ``settings.device``, the in-loop oracle and the certifier, the realism reference and
        the kNN codes (``cached``: a file the pipeline's context stage wrote).

        Raises:
            LatentsteerError: a missing or damaged source (one line).
        """
        if self.context_loader is None:
            raise LatentsteerError(f"steering is not available for {self.name} models yet")
        module, attr = self.context_loader.split(":")
        loader = getattr(importlib.import_module(module), attr)
        return loader(self, model_dir, settings, sources, cached)

    def check_experiment(self, cfg: object) -> None:
        """Refuse an experiment this domain's models cannot run (one line); the settings'
        own ranges are :class:`~latentsteer.experiment_config.ExperimentConfig`'s. Nothing
        more by default.

        Raises:
            ValueError: the domain's own reason.
        """

    # ---------------------------------------------------------------- starts
    def parse_start(
        self,
        spec: str,
        model: LatentModel,
        seed: int = 0,
        data_root: str | os.PathLike[str] | None = None,
    ) -> Start:
        """Turn a start spec into codes: ``random:N`` here; a domain adds its own forms.

        Raises:
            ValueError: a spec that is none of the accepted forms (one line).
        """
        if m := re.fullmatch(r"random:(\d+)", spec):
            n = int(m.group(1))
            if n < 1:
                raise ValueError(f"start {spec!r}: N must be at least 1")
            return Start(model.sample_prior(n, seed=seed), None, None, spec)
        raise ValueError(f"bad start {spec!r}; accepted: {self.start_help}")

    # ---------------------------------------------------------------- shows
    def save_grid(self, samples: torch.Tensor, path: str | os.PathLike[str]) -> None:
        """Draw ``(rows, cols, *sample_shape)`` samples (rows: samples, columns: steps) as
        one PNG at ``path``."""
        raise NotImplementedError

    def write_samples(self, samples: torch.Tensor, path: str | os.PathLike[str]) -> None:
        """Write decoded samples ``(n, *sample_shape)`` to ``path`` (``latentsteer sample``):
        by default a PNG grid of :meth:`save_grid`, filled row by row."""
        import math

        n = len(samples)
        cols = math.ceil(math.sqrt(n))
        rows = math.ceil(n / cols)
        blank = torch.zeros(rows * cols - n, *samples.shape[1:])  # fill the last row
        grid = torch.cat([samples.cpu(), blank]).reshape(rows, cols, *samples.shape[1:])
        self.save_grid(grid, path)

    def measure_file(
        self,
        path: str | os.PathLike[str],
        workers: int | None = None,
        options: Mapping[str, object] | None = None,
    ) -> pd.DataFrame:
        """The oracle's measures of every sample in a user's file, one row each, in input
        order (``latentsteer measure``). ``options`` tune the measures, the domain's own.

        Raises:
            ValueError: an unreadable file or bad options (one line, nothing written).
        """
        raise ValueError(f"the {self.name} domain measures no files")

    def read_samples(self, path: str | os.PathLike[str]) -> torch.Tensor:
        """Samples ``(n, *sample_shape)`` from a user's file (for starts and ``measure``)."""
        raise ValueError(f"the {self.name} domain reads no sample files; got {Path(path)}")

    # ---------------------------------------------------------------- your own property
    # "module" serving properties fitted from a user's table (read_property_table,
    # table_codes, fit_property_oracle, load_property_oracle, and optionally adapt_model),
    # imported on first use like context_loader: stages that never fit a property do not
    # depend on it. None: this domain's models take no fitted properties.
    property_support: str | None = None

    def _support(self) -> object:
        if self.property_support is None:
            raise ValueError(f"the {self.name} domain takes no properties of your own")
        return importlib.import_module(self.property_support)

    def builtin_properties(self) -> set[str]:
        """The property names its oracles measure already (a fitted property may not take
        one): the tolerance table's by default."""
        return set(self.tolerances)

    def moved(self, old_dir: str | os.PathLike[str], new_dir: str | os.PathLike[str]) -> Domain:
        """The domain for a copy of a model folder at ``new_dir`` (entries relative to the
        folder, such as the molecules' labels, rewritten); itself by default."""
        return self

    def read_property_table(self, path: str | os.PathLike[str], column: str) -> PropertyTable:
        """A user's table of samples and measured ``column`` values, checked
        (:func:`latentsteer.learned.table.property_values`).

        Raises:
            ValueError: an unreadable table, another domain's samples, or bad values (one line).
        """
        return self._support().read_property_table(path, column)  # type: ignore[attr-defined]

    def adapt_model(
        self,
        model: LatentModel,
        table: PropertyTable,
        model_dir: str | os.PathLike[str],
        seed: int = 0,
    ) -> tuple[LatentModel, dict[str, object]]:
        """The model, adapted so it can encode the table's samples where it cannot (molecules:
        a longer row, new tokens, fine-tuned with its training data, read from ``model_dir``);
        the model itself and no report where the support module has no ``adapt_model``."""
        adapt = getattr(self._support(), "adapt_model", None)
        return (model, {}) if adapt is None else adapt(model, table, model_dir, seed)

    def table_codes(
        self, model: LatentModel, table: PropertyTable
    ) -> tuple[torch.Tensor, np.ndarray, list[str]]:
        """The posterior means ``(m, d)`` of the table's samples the model can encode, their
        row indices ``(m,)``, and one line per row it cannot (``line 12: …``)."""
        return self._support().table_codes(model, table)  # type: ignore[attr-defined]

    def fit_property_oracle(
        self,
        table: PropertyTable,
        name: str,
        folder: str | os.PathLike[str],
        seed: int = 0,
        tolerance: float | None = None,
    ) -> PropertyOracle:
        """Fit the learned oracle of ``name`` on ``table`` (certifier and guide, see
        :mod:`latentsteer.learned.card`), with 5-fold cross-validated errors and the
        applicability threshold, and write its files and ``card.json`` into ``folder``.

        Args:
            tolerance: the goal tolerance in the property's units (``None``: the
                certifier's cross-validated MAE).
        """
        fit = self._support().fit_property_oracle  # type: ignore[attr-defined]
        return fit(table, name, folder, seed=seed, tolerance=tolerance)

    def load_property_oracle(self, folder: str | os.PathLike[str]) -> PropertyOracle:
        """The learned oracle :meth:`fit_property_oracle` wrote into ``folder``.

        Raises:
            LatentsteerError: missing or damaged files (one line).
        """
        return self._support().load_property_oracle(folder)  # type: ignore[attr-defined]
