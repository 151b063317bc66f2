"""The learned oracle of one molecule property: two data-space models fitted on a user's table.

Both read molecules, never the VAE's codes, and are of families other than the latent head's
(see :mod:`latentsteer.learned.card`):

* **certifier**: a random forest (300 trees, a tenth of the inputs tried per split) on Morgan
  bits (radius 2, 2 048 bits, as :mod:`.similarity`) and :data:`DESCRIPTORS`;
* **guide**: gradient-boosted trees (scikit-learn's histogram boosting, 300 rounds at rate
  0.05) on :data:`DESCRIPTORS` and the 167 MACCS keys, seeded apart from the certifier.

Both are cross-validated with 5 shuffled folds; the card records MAE and R² of the pooled
held-out predictions, in the property's units. **Applicability** is a molecule's largest
Tanimoto similarity (Morgan r2, 2 048 bits) to the table's molecules. Its threshold comes from
the same folds: the 5th percentile of each held-out molecule's largest similarity to its
fold's training molecules, i.e. as far from the data as 95 % of the molecules whose errors the
card reports. It is floored at 0.3, below which Morgan similarities are typical of unrelated
drug-like pairs: a table of scattered molecules (the solubility set's 5th percentile is 0.27)
never counts a molecule that far from all of them as inside.

Nothing fitted is stored: the folder holds ``table.parquet`` (``smiles``, ``value``) and
``card.json`` with the seed and hyper-parameters, and :func:`load_molecule_oracle` refits the
models deterministically from them on first use (a pickle would run code from a file; a refit
reads only numbers). The refit is identical for the same RDKit and scikit-learn versions (the
card records both). Measured on an AMD EPYC, 2 cores shared with other jobs (load 4 to 7),
wall time (CPU time): on 2 000 molecules the fit with cross-validation 59 s (38 s), the final
fits 7 s (7 s); the refit at load from 1 017 molecules, features and both models, 9 s (9 s);
predicting 1 000 molecules 4 s (4 s, mostly RDKit's descriptors); their applicability 0.3 s.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from latentsteer.atomic import write_table
from latentsteer.domains.molecules.property_table import parse_molecule
from latentsteer.domains.molecules.similarity import FP_BITS, FP_RADIUS
from latentsteer.errors import LatentsteerError
from latentsteer.learned.card import CARD_FILE, PropertyCard, Role
from latentsteer.learned.table import PropertyTable

TABLE_FILE = "table.parquet"
FOLDS = 5
PERCENTILE = 5.0  # of held-out molecules' similarity to their training folds
FLOOR = 0.3  # the lowest applicability threshold
# Fixed by name, not RDKit's whole ``descList``: that list grows between releases, and the
# refit at load time must read the same inputs. These are the cheap 2-D descriptors (the
# whole list runs at ~140 molecules/s, these at ~500/s); the VSA bins come three calls at once.
SCALARS = (
    "MolWt", "HeavyAtomMolWt", "ExactMolWt", "NumValenceElectrons", "MolLogP", "MolMR", "TPSA",
    "LabuteASA", "FractionCSP3", "HeavyAtomCount", "NHOHCount", "NOCount", "NumHAcceptors",
    "NumHDonors", "NumHeteroatoms", "NumRotatableBonds", "NumAromaticRings",
    "NumAromaticCarbocycles", "NumAromaticHeterocycles", "NumAliphaticRings",
    "NumAliphaticCarbocycles", "NumAliphaticHeterocycles", "NumSaturatedRings", "RingCount",
    "BalabanJ", "BertzCT", "HallKierAlpha", "Kappa1", "Kappa2", "Kappa3", "Chi0v", "Chi1v",
    "Chi2v", "Chi3v", "Chi4v", "Chi0n", "Chi1n", "Chi2n", "Chi3n", "Chi4n",
)  # fmt: skip
VSA_BINS = {"PEOE_VSA": 14, "SMR_VSA": 10, "SlogP_VSA": 12}
DESCRIPTORS = SCALARS + tuple(f"{k}{i}" for k, n in VSA_BINS.items() for i in range(1, n + 1))
MACCS_BITS = 167
CLIP = 1e9  # trees read float32: larger descriptor values (none expected) would overflow
CERTIFIER = {"n_estimators": 300, "max_features": 0.1, "min_samples_leaf": 1}
# Leaves of at least 5 molecules, not scikit-learn's 20: a 30-row table leaves 24 per fold,
# where 20 allows no split at all (cross-validated R² -0.01 against 0.94 on 30 molecules'
# heavy-atom counts); on the 1 017 pIC50 and 1 267 solubility rows the two agree within 0.01.
GUIDE = {"learning_rate": 0.05, "max_iter": 300, "min_samples_leaf": 5, "early_stopping": False}
APPLICABILITY = (
    f"max Tanimoto similarity to the table's molecules (Morgan r{FP_RADIUS}, {FP_BITS} bits)"
)


@dataclass
class Features:
    """What both models read, for the molecules that parse.

    Attributes:
        valid: ``(n,)`` which inputs parse (the arrays below hold those rows only).
        morgan: ``(m, 2048)`` uint8 Morgan bits.
        descriptors: ``(m, len(DESCRIPTORS))`` float32, finite.
        maccs: ``(m, 167)`` uint8 MACCS keys.
    """

    valid: np.ndarray
    morgan: np.ndarray
    descriptors: np.ndarray
    maccs: np.ndarray

    def inputs(self, role: Role) -> np.ndarray:
        """``(m, k)`` float32 inputs of the role's model."""
        parts = (self.morgan, self.descriptors) if role == "certifier" else (
            self.descriptors, self.maccs)  # fmt: skip
        return np.hstack([p.astype(np.float32, copy=False) for p in parts])


def featurise(smiles: Sequence[object], full: bool = True) -> Features:
    """Features of ``smiles`` (a multi-fragment SMILES is read as its largest fragment, as the
    table was; an empty or unparsable one is marked invalid).

    Args:
        full: also the descriptors and MACCS keys (about 500 molecules/s on one core, against
            some 20 000/s for the Morgan bits alone, which is all applicability needs); without
            them those arrays have no columns.
    """
    from rdkit import DataStructs
    from rdkit.Chem import Descriptors, MACCSkeys, rdFingerprintGenerator
    from rdkit.Chem import rdMolDescriptors as rd

    scalar = dict(Descriptors.descList)
    missing = [name for name in SCALARS if name not in scalar]
    if missing:
        raise LatentsteerError(f"this RDKit lacks the descriptors {', '.join(missing)}")
    vsa = (rd.PEOE_VSA_, rd.SMR_VSA_, rd.SlogP_VSA_)
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=FP_RADIUS, fpSize=FP_BITS)
    mols = [parse_molecule(s)[0] for s in smiles]
    valid = np.array([m is not None for m in mols], dtype=bool)
    read = [m for m in mols if m is not None]
    bits = np.zeros((len(read), FP_BITS), dtype=np.uint8)
    maccs = np.zeros((len(read), MACCS_BITS if full else 0), dtype=np.uint8)
    d = np.zeros((len(read), len(DESCRIPTORS) if full else 0))
    for row, mol in enumerate(read):
        bits[row] = gen.GetFingerprintAsNumPy(mol)
        if not full:
            continue
        DataStructs.ConvertToNumpyArray(MACCSkeys.GenMACCSKeys(mol), maccs[row])
        values = []
        for name in SCALARS:
            try:
                values.append(float(scalar[name](mol)))
            except (ValueError, RuntimeError, ZeroDivisionError, OverflowError):
                values.append(0.0)  # a descriptor undefined for this molecule reads 0
        for f in vsa:
            values.extend(f(mol))
        d[row] = values
    d = np.clip(np.nan_to_num(d, nan=0.0, posinf=0.0, neginf=0.0), -CLIP, CLIP)
    return Features(valid, bits, d.astype(np.float32), maccs)


def max_similarity(queries: np.ndarray, reference: np.ndarray, block: int = 2048) -> np.ndarray:
    """``(n,)`` each query's largest Tanimoto similarity to the reference bits.

    Args:
        queries: ``(n, bits)`` 0/1 fingerprints.
        reference: ``(m, bits)`` 0/1 fingerprints, ``m >= 1``.
        block: rows of either side multiplied at once (bounds memory at ``block²`` floats).
    """
    best = np.zeros(len(queries))
    ref_count = reference.sum(1, dtype=np.float32)
    for i in range(0, len(queries), block):
        q = queries[i : i + block].astype(np.float32)
        q_count = q.sum(1)
        for j in range(0, len(reference), block):
            r = reference[j : j + block].astype(np.float32)
            common = q @ r.T  # exact: counts below 2**24 are whole float32s
            union = q_count[:, None] + ref_count[None, j : j + block] - common
            sim = np.divide(common, union, out=np.zeros_like(common), where=union > 0)
            best[i : i + block] = np.maximum(best[i : i + block], sim.max(1))
    return best


def _fit(role: Role, seed: int, x: np.ndarray, y: np.ndarray) -> object:
    """The role's model fitted on ``x (m, k)``, ``y (m,)``; seeded (the guide at
    ``seed + 1``), and predicting the same numbers however many cores there are."""
    from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor

    if role == "certifier":
        jobs = min(2, os.cpu_count() or 1)  # each tree is grown alike on any worker
        model = RandomForestRegressor(**CERTIFIER, n_jobs=jobs, random_state=seed).fit(x, y)
        # Parallel prediction sums the trees in whichever order threads finish, which
        # moves the last digits between runs; one thread sums them in order.
        return model.set_params(n_jobs=1)
    with _one_thread():
        return HistGradientBoostingRegressor(**GUIDE, random_state=seed + 1).fit(x, y)


def _predict(model: object, x: np.ndarray) -> np.ndarray:
    with _one_thread():
        return model.predict(x)  # type: ignore[attr-defined]


def _one_thread() -> AbstractContextManager[object]:
    """A context in which OpenMP (the boosting's histograms) runs one thread: on a small
    table its threads mostly wait for each other, and on a busy machine (other processes
    on the cores) they spin, measured 5× slower than one thread on 2 cores."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="openmp")


def _check_role(role: str) -> None:
    if role not in ("certifier", "guide"):
        raise ValueError(f"role must be 'certifier' or 'guide'; got {role!r}")


class MoleculePropertyOracle:
    """The learned oracle of one property (both roles), refitted from its table on first use.

    Attributes:
        card: what was fitted, its cross-validated errors and its applicability threshold.
        smiles: the table's canonical SMILES (``m``); ``values`` their ``(m,)`` values.
    """

    def __init__(
        self,
        card: PropertyCard,
        smiles: list[str],
        values: np.ndarray,
        features: Features | None = None,
    ) -> None:
        self.card = card
        self.smiles = smiles
        self.values = values
        self._features = features
        self._models: dict[str, object] = {}

    @property
    def features(self) -> Features:
        """The table's features (computed on first use when loaded).

        Raises:
            LatentsteerError: a table SMILES this RDKit cannot read.
        """
        if self._features is None:
            features = featurise(self.smiles)
            if not features.valid.all():
                bad = self.smiles[int(np.flatnonzero(~features.valid)[0])]
                raise LatentsteerError(f"the {self.card.name} table holds {bad!r}, which this "
                                       "RDKit cannot read; fit the property again")  # fmt: skip
            self._features = features
        return self._features

    def model(self, role: Role = "certifier") -> object:
        """The role's fitted scikit-learn model (fitted here on the whole table the first
        time it is asked for)."""
        _check_role(role)
        if role not in self._models:
            seed = int(self.card.extra["seed"])  # type: ignore[call-overload]
            self._models[role] = _fit(role, seed, self.features.inputs(role), self.values)
        return self._models[role]

    def predict(self, samples: Sequence[str], role: Role = "certifier") -> np.ndarray:
        """``(n,)`` the role's predictions for SMILES (NaN where one is empty or unparsable)."""
        _check_role(role)
        feats = featurise(_smiles_list(samples))
        out = np.full(len(feats.valid), np.nan)
        if feats.valid.any():
            out[feats.valid] = _predict(self.model(role), feats.inputs(role))
        return out

    def applicability(self, samples: Sequence[str]) -> np.ndarray:
        """``(n,)`` each SMILES's largest Tanimoto similarity to the table's molecules (1 for
        a table molecule; NaN where one is empty or unparsable)."""
        feats = featurise(_smiles_list(samples), full=False)
        out = np.full(len(feats.valid), np.nan)
        if feats.valid.any():
            out[feats.valid] = max_similarity(feats.morgan, self.features.morgan)
        return out


def _smiles_list(samples: Sequence[str]) -> list[str]:
    if isinstance(samples, str):
        raise ValueError("give a list of SMILES, not one string")
    return list(samples)


def cross_validate(
    features: Features, values: np.ndarray, seed: int
) -> tuple[dict[str, float], np.ndarray]:
    """5-fold cross-validated errors of both roles, and the held-out similarities.

    Returns:
        ``cv`` (``certifier_mae``, ``certifier_r2``, ``guide_mae``, ``guide_r2``, over the
        pooled held-out predictions) and ``(m,)`` each molecule's largest similarity to the
        training molecules of the fold that held it out.
    """
    from sklearn.metrics import mean_absolute_error, r2_score
    from sklearn.model_selection import KFold

    held = {role: np.zeros(len(values)) for role in ("certifier", "guide")}
    similar = np.zeros(len(values))
    folds = KFold(FOLDS, shuffle=True, random_state=seed).split(values)
    inputs = {role: features.inputs(role) for role in held}  # type: ignore[arg-type]
    for train, test in folds:
        for role, x in inputs.items():
            model = _fit(role, seed, x[train], values[train])  # type: ignore[arg-type]
            held[role][test] = _predict(model, x[test])
        similar[test] = max_similarity(features.morgan[test], features.morgan[train])
    cv = {}
    for role, pred in held.items():
        cv[f"{role}_mae"] = float(mean_absolute_error(values, pred))
        cv[f"{role}_r2"] = float(r2_score(values, pred))
    return cv, similar


def fit_molecule_oracle(
    table: PropertyTable,
    name: str,
    folder: str | os.PathLike[str],
    seed: int = 0,
    tolerance: float | None = None,
) -> MoleculePropertyOracle:
    """Fit, cross-validate and write the learned oracle of ``name`` (see the module doc).

    Args:
        table: the checked table (:func:`.property_table.read_molecule_table`).
        name: the property's name.
        folder: where ``table.parquet`` and ``card.json`` go (created; existing files of
            those names are replaced, each atomically).
        seed: seeds the folds and both models (recorded for the refit at load time).
        tolerance: "got it" in the property's units; ``None``: the certifier's CV MAE.

    Returns:
        The oracle, ready to predict (its models are fitted on first use).

    Raises:
        ValueError: a tolerance that is not a positive number, or fewer rows than folds.
    """
    from rdkit import __version__ as rdkit_version
    from sklearn import __version__ as sklearn_version

    if tolerance is not None and not (np.isfinite(tolerance) and tolerance > 0):
        raise ValueError(f"tolerance must be a positive number; got {tolerance!r}")
    smiles = [str(s) for s in table.samples]  # type: ignore[attr-defined]
    values = np.asarray(table.values, dtype=np.float64)
    if len(values) < 2 * FOLDS:
        raise ValueError(f"{table.path}: {len(values)} molecules; the fit needs at least "
                         f"{2 * FOLDS}")  # fmt: skip
    start = time.perf_counter()
    features = featurise(smiles)
    if not features.valid.all():
        bad = int(np.flatnonzero(~features.valid)[0])
        raise ValueError(f"{table.path}: {table.where[bad]}: {smiles[bad]!r} does not parse")
    cv, similar = cross_validate(features, values, seed)
    measured = float(np.percentile(similar, PERCENTILE))
    card = PropertyCard(
        name=name,
        column=table.column,
        table=Path(table.path).name,
        rows=len(values),
        certifier=f"random forest ({CERTIFIER['n_estimators']} trees) on Morgan r{FP_RADIUS} "
        f"{FP_BITS}-bit fingerprints and {len(DESCRIPTORS)} RDKit descriptors",
        guide=f"gradient-boosted trees ({GUIDE['max_iter']} rounds) on {len(DESCRIPTORS)} "
        f"RDKit descriptors and {MACCS_BITS} MACCS keys",
        cv=cv,
        tolerance=float(tolerance) if tolerance is not None else cv["certifier_mae"],
        tolerance_from="given" if tolerance is not None else "cross-validated error",
        applicability=APPLICABILITY,
        threshold=max(measured, FLOOR),
        inside_when="at_least",
        value_range=(float(values.min()), float(values.max())),
        extra={
            "seed": seed,
            "folds": FOLDS,
            "certifier_params": dict(CERTIFIER),
            "guide_params": dict(GUIDE),
            "descriptors": list(DESCRIPTORS),
            "threshold_percentile": PERCENTILE,
            "threshold_floor": FLOOR,
            "threshold_measured": measured,
            "versions": {"rdkit": rdkit_version, "scikit-learn": sklearn_version},
            "fit_seconds": round(time.perf_counter() - start, 2),
        },
    )
    _write(card, smiles, values, Path(folder))
    return MoleculePropertyOracle(card, smiles, values, features)


def _write(card: PropertyCard, smiles: list[str], values: np.ndarray, folder: Path) -> None:
    """``table.parquet`` then ``card.json``, each replaced atomically (the card, written last,
    records the table's SHA-256, so a folder is complete exactly when its card matches)."""
    write_table(pd.DataFrame({"smiles": smiles, "value": values}), folder / TABLE_FILE)
    card.extra["table_sha256"] = hashlib.sha256((folder / TABLE_FILE).read_bytes()).hexdigest()
    with tempfile.TemporaryDirectory(dir=folder, prefix=f".{CARD_FILE}.") as tmp:
        card.write(tmp)
        os.replace(Path(tmp, CARD_FILE), folder / CARD_FILE)


def load_molecule_oracle(folder: str | os.PathLike[str]) -> MoleculePropertyOracle:
    """The oracle :func:`fit_molecule_oracle` wrote into ``folder``: the card and table are
    read and checked now; the table's features and each role's model are computed on first
    use (a refit: see the module doc).

    Raises:
        LatentsteerError: a missing or damaged card or table (one line).
    """
    card = PropertyCard.read(folder)
    path = Path(folder, TABLE_FILE)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise LatentsteerError(f"{path} is missing: the property {card.name!r} cannot be "
                               "refitted; fit it again") from None  # fmt: skip
    except OSError as exc:
        raise LatentsteerError(f"{path} cannot be read ({exc.strerror or exc})") from None
    if hashlib.sha256(data).hexdigest() != card.extra.get("table_sha256"):
        raise LatentsteerError(f"{path} is not the table {CARD_FILE} was fitted on (SHA-256); "
                               "fit the property again")  # fmt: skip
    frame = pd.read_parquet(io.BytesIO(data))  # the very bytes checked, not a second read
    if not {"smiles", "value"} <= set(frame.columns) or "seed" not in card.extra:
        raise LatentsteerError(f"{folder} is not a molecule property oracle (no smiles and "
                               "value columns, or no seed)")  # fmt: skip
    smiles = [str(s) for s in frame["smiles"]]
    values = frame["value"].to_numpy(dtype=np.float64)
    return MoleculePropertyOracle(card, smiles, values)
