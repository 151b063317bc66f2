"""Molecule steering on the tiny model: the similarity rule, the success rules, the oracle
budget, the CSV output, the baselines and the CLI's one-line errors."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from molecule_model import SMILES, trained_model
from rdkit import Chem, DataStructs
from rdkit.Chem import rdFingerprintGenerator

import latentsteer
from latentsteer.cli import main, parse_bound
from latentsteer.domains.molecules.calibration import HeadCalibration, fit_calibration
from latentsteer.domains.molecules.domain import MOLECULES
from latentsteer.domains.molecules.experiments import (
    MoleculeExperimentConfig,
    StartsConfig,
    select_starts,
)
from latentsteer.domains.molecules.neighbours import nearest_training, with_neighbours
from latentsteer.domains.molecules.oracle_calls import CountedOracle
from latentsteer.domains.molecules.properties import measure_molecules
from latentsteer.domains.molecules.proposal_settings import ProposalSettings
from latentsteer.domains.molecules.proposals import read_rows
from latentsteer.domains.molecules.proposers import PROPOSERS, propose_for
from latentsteer.domains.molecules.similarity import fingerprints, similarity, tanimoto
from latentsteer.domains.molecules.starts import read_starts
from latentsteer.domains.molecules.steering import property_spreads, steer_molecules, write_outcome
from latentsteer.experiment_config import configure
from latentsteer.model import save_model
from latentsteer.verdicts import judge

TOL = {"qed": 0.05, "logp": 0.5, "sa": 0.25}
PROPOSER = {f.name for f in dataclasses.fields(ProposalSettings)}


def experiment(**settings):
    """A molecule experiment as the CLI and the library build one: the molecule domain's
    defaults, then ``settings`` (the proposers' own ones gathered under ``proposer``)."""
    own = {k: settings.pop(k) for k in list(settings) if k in PROPOSER}
    return configure(MOLECULES, {**settings, "proposer": own} if own else settings)


SPREAD = {"qed": 0.1, "logp": 1.0, "sa": 0.5}


@pytest.fixture(autouse=True)
def _away_from_the_checkout(tmp_path, monkeypatch):
    """Run where no pipeline labels lie: a steering request reads data/molecules/labels
    from the working folder when it is there (neighbours, calibration)."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def model():
    return trained_model()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, model):
    folder = tmp_path_factory.mktemp("molecules") / "vae"
    save_model(model, folder)
    return folder


# ------------------------------------------------------------------ similarity
def test_similarity_is_tanimoto_on_2048_bit_morgan_fingerprints():
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    a, b = (gen.GetFingerprint(Chem.MolFromSmiles(s)) for s in ("c1ccccc1O", "c1ccccc1N"))
    assert similarity("c1ccccc1O", "c1ccccc1N") == pytest.approx(
        DataStructs.TanimotoSimilarity(a, b)
    )
    assert similarity("CCO", "OCC") == 1.0
    assert similarity("CCO", "not a smiles") == 0.0
    # Remembered fingerprints are the same bits, however often they are asked for.
    again = fingerprints(["c1ccccc1O", "c1ccccc1O", "not a smiles", ""])
    assert again[0] == a and again[1] is again[0] and again[2:] == [None, None]
    sims = tanimoto(a, [b, None, a])
    assert sims.tolist() == [pytest.approx(DataStructs.TanimotoSimilarity(a, b)), 0.0, 1.0]


# ------------------------------------------------------------------ the rules
def _values(**cols):
    return pd.DataFrame(cols)


def test_rules_max_keep_bounds_and_similarity():
    task = experiment(goals=["qed=max", "logp=keep"], similarity=0.4, bounds={"sa": [None, 3]})
    values = _values(
        qed=[0.6, 0.6, 0.6, 0.4, 0.7, np.nan],
        logp=[1.2, 2.0, 1.2, 1.0, 1.0, np.nan],
        sa=[2.0, 2.0, 2.0, 2.0, 4.0, np.nan],
    )
    sims = np.array([0.5, 0.5, 0.3, 0.9, 0.9, 0.9])
    start = {"qed": 0.5, "logp": 1.0, "sa": 2.5}
    same = np.zeros(6, dtype=bool)
    v = judge(task, values, start, sims, same, SPREAD, TOL)
    # 0: all hold; 1: logP moved by 1.0 > 0.5; 2: too dissimilar; 3: QED fell;
    # 4: SA above its bound (acceptable, not a success); 5: not a molecule
    assert v.success.tolist() == [True, False, False, False, False, False]
    assert v.acceptable.tolist() == [True, False, False, False, True, False]
    assert v.score[0] == pytest.approx((0.6 - 0.5) / 0.1)
    assert v.best() == 0  # both 0 and 4 are acceptable; 0 meets the bound too


def test_among_equally_good_results_one_the_heads_also_accept_is_returned():
    task = experiment(goals=["qed=max"], similarity=0.0, bounds={"qed": [0.9, None]})
    values = _values(qed=[0.95, 0.93, 0.85, 0.97])
    v = judge(task, values, {"qed": 0.75}, np.ones(4), np.zeros(4, dtype=bool), SPREAD, TOL)
    assert v.success.tolist() == [True, True, False, True]
    assert v.best() == 3  # RDKit alone: the highest QED
    # The heads call 1 and 2 successes: 1 is returned, a success by RDKit as 3 was; 2, which
    # RDKit grades a failure, never wins over a success.
    assert v.best(np.array([False, True, True, False])) == 1
    assert v.best(np.array([False, False, True, False])) == 3
    assert v.best(np.zeros(4, dtype=bool)) == v.best()


def test_the_start_itself_never_counts_and_targets_use_the_tolerance():
    task = experiment(goals=["logp=2.0"], similarity=0.0)
    values = _values(logp=[2.3, 2.3, 2.7])
    same = np.array([True, False, False])
    v = judge(task, values, {"logp": 1.0}, np.ones(3), same, SPREAD, TOL)
    assert v.success.tolist() == [False, True, False]
    assert v.acceptable.tolist() == [False, True, True]  # closer than the start: progress


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"goals": ["potency=max"]}, "unknown property 'potency'; accepted: qed, logp"),
        ({"goals": ["qed=max"], "similarity": 1.5}, "similarity must be a number in [0, 1]"),
        ({"goals": ["qed=max"], "similarity": -0.1}, "similarity must be a number in [0, 1]"),
        ({"goals": ["qed=max"], "bounds": {"logp": [3, 1]}}, "bounds.logp must be [lo, hi]"),
        ({"goals": ["qed=max"], "method": "magic"}, "method magic: not a method of molecules"),
        ({"goals": ["logp=keep"]}, "at least one goal must ask for a change"),
        ({"goals": ["qed=max"], "budget": 0}, "budget must be a positive integer; got 0"),
        ({"goals": ["qed=max"], "init": 1}, "model_budget and init must be at least 2"),
        ({"goals": ["qed=max"], "box": 0}, "box must be positive; got 0"),
    ],
)
def test_bad_tasks_are_one_line(kwargs, message):
    with pytest.raises(ValueError, match=None) as info:
        experiment(**kwargs)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_bounds_parse_from_the_command_line():
    assert parse_bound("logp=1:3") == ("logp", [1.0, 3.0])
    assert parse_bound("qed=0.9:") == ("qed", [0.9, None])
    with pytest.raises(ValueError, match="bad bound 'logp>1'"):
        parse_bound("logp>1")


# ------------------------------------------------------------------ the oracle budget
def test_calls_are_distinct_molecules_per_start_and_stop_at_the_budget():
    cache: dict = {}
    oracle = CountedOracle(budget=2, n=2, cache=cache)
    first = oracle.measure(0, ["CCO", "CCO", "CCN"])
    assert oracle.calls.tolist() == [2, 0]
    assert first.qed.notna().all()
    again = oracle.measure(0, ["CCO", "CCC"])  # CCO is free, CCC is over the budget
    assert oracle.calls.tolist() == [2, 0]
    assert again.qed.notna().tolist() == [True, False]
    # Another method sharing the cache is charged in full.
    other = CountedOracle(budget=5, n=2, cache=cache)
    other.measure(1, ["CCO"])
    assert other.calls.tolist() == [0, 1]
    direct = measure_molecules(["CCO"], workers=1, progress=False)
    assert first.qed[0] == pytest.approx(direct.qed[0])


# ------------------------------------------------------------------ steering end to end
@pytest.fixture(scope="module")
def starts(model):
    return read_starts(model, ["CCCO", "c1ccccc1", "CC(=O)N"])


def test_every_molecule_method_has_one_proposer_and_the_vocabulary_names_it():
    from latentsteer.methods import VOCABULARY

    assert tuple(PROPOSERS) == MOLECULES.methods  # served in the order the domain declares
    assert set(PROPOSERS) <= set(VOCABULARY)


def test_the_library_refuses_settings_molecules_do_not_take(model_dir, tmp_path):
    src = tmp_path / "my.smi"
    src.write_text("CCCO\n")
    for settings, message in [
        ({"proposer": {"replica": 2}}, "proposer: unknown setting replica; accepted: replicas"),
        ({"prior": 0.1}, "prior: not used by molecules models; their settings: goals"),
        ({"method": "data_space"}, "method data_space: not a method of molecules models"),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            latentsteer.steer(["logp=max"], str(src), model=model_dir, out=tmp_path / "o",
                              **settings)  # fmt: skip
        assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("method", ["latent", "random_search", "cmaes", "bayesopt", "ga"])
def test_every_method_keeps_the_rules_and_the_budget(model, starts, method):
    task = experiment(goals=["logp=max"], similarity=0.0, budget=8, method=method, steps=6,
                        replicas=2, invert_steps=20, population=4)  # fmt: skip
    out = steer_molecules(model, starts, task, property_spreads(model, task.properties))
    table = out.table
    assert table.start.tolist() == ["CCCO", "c1ccccc1", "CC(=O)N"]  # input order
    assert (table.oracle_calls <= 8).all()
    # RDKit's verdict, recomputed here from the written SMILES.
    again = measure_molecules(table.smiles.tolist(), workers=1, progress=False)
    assert np.allclose(again.logp, table.logp)
    improved = (table.logp > table.start_logp) & table.changed
    assert table.success.tolist() == improved.tolist()
    unchanged = ~table.changed
    assert (table.smiles[unchanged] == pd.Series(starts.smiles)[unchanged]).all()
    assert (table.similarity[unchanged] == 1.0).all()
    gain = np.where(table.changed, table.logp - table.start_logp, 0.0)
    assert out.metrics["improvement_logp"] == pytest.approx(gain.mean())
    assert out.metrics["success_rate"] == pytest.approx(table.success.mean())
    assert out.metrics["certified_by"].startswith("RDKit")


def test_the_first_starts_of_an_outcome_are_summarised_over_them_alone(model, starts):
    task = experiment(goals=["logp=max"], similarity=0.0, budget=6, steps=4, replicas=2,
                        invert_steps=10)  # fmt: skip
    out = steer_molecules(model, starts, task, property_spreads(model, task.properties))
    two = out.first(2)
    assert two.table.equals(out.table.head(2))
    assert two.metrics["n"] == 2 and two.metrics["sliced_from"] == 3
    assert two.metrics["success_rate"] == pytest.approx(out.table.success.head(2).mean())
    gain = np.where(two.table.changed, two.table.logp - two.table.start_logp, 0.0)
    assert two.metrics["improvement_logp"] == pytest.approx(gain.mean())
    share = out.metrics["wall_s"] * 2 / 3  # summaries round to 0.01 s
    assert two.metrics["wall_s"] == pytest.approx(share, abs=0.006)
    assert len(two.verdicts.success) == 2 and len(two.paths) == 2
    assert two.metrics["logp_rule"] == pytest.approx(out.verdicts.goals[:2, 0].mean())
    assert out.first(10).metrics["n"] == 3  # no more than it has
    # Given the training molecules, the share of changed results they hold is counted again.
    data = pd.DataFrame({"canonical": [out.table.smiles[0], "CCCCCC"]})
    counted = out.first(2, data).metrics
    changed = two.table.changed
    if changed.any():
        held = two.table.smiles[changed].isin(set(data.canonical)).mean()
        assert counted["from_training"] == pytest.approx(held)
    else:
        assert "from_training" not in counted


def test_a_threshold_nothing_meets_returns_every_start(model, starts):
    task = experiment(goals=["logp=max"], similarity=1.0, budget=5, steps=4, replicas=2,
                        invert_steps=10)  # fmt: skip
    out = steer_molecules(model, starts, task, property_spreads(model, task.properties))
    assert out.table.smiles.tolist() == starts.smiles
    assert out.metrics["success_rate"] == 0.0 and out.metrics["improvement_logp"] == 0.0


def test_best_of_dataset_picks_the_best_similar_training_molecule(model, starts):
    data = measure_molecules(SMILES, workers=1, progress=False)
    task = experiment(goals=["logp=max"], similarity=0.3, method="dataset")
    out = steer_molecules(model, starts, task, property_spreads(model, task.properties),
                          dataset=data)  # fmt: skip
    assert (out.table.oracle_calls == 0).all()
    for row in out.table.itertuples():
        near = [s for s in data.canonical if similarity(row.start, s) >= 0.3 and s != row.start]
        best = max((data.logp[data.canonical == s].iloc[0] for s in near), default=None)
        if best is not None and best > row.start_logp:
            assert row.logp == pytest.approx(best)
        else:
            assert not row.changed


def test_nearest_training_molecules_are_offered_within_the_threshold(model, starts):
    data = measure_molecules(SMILES, workers=1, progress=False)
    fps = fingerprints(data.canonical.tolist())
    near = nearest_training(model, starts.smiles, fingerprints(starts.smiles), data, fps,
                            k=3, threshold=0.2)  # fmt: skip
    smiles, rows, predicted, sims = near
    for i, start in enumerate(starts.smiles):
        near_all = [(similarity(start, s), s) for s in data.canonical if s != start]
        want = sorted([w for w in near_all if w[0] >= 0.2], reverse=True)[:3]
        assert np.allclose(sims[i], [w for w, _ in want])  # the most similar, in order
        assert start not in smiles[i] and len(smiles[i]) == len(want)
        assert rows[i].shape == (len(smiles[i]), model.domain.vocabulary.length)
        assert list(predicted[i].columns) == ["qed", "logp"] and len(predicted[i]) == len(want)
    none = nearest_training(
        model, starts.smiles, fingerprints(starts.smiles), data, fps, k=3, threshold=1.0
    )  # only the starts themselves are that close
    assert [len(m) for m in none[0]] == [0, 0, 0] and all(len(r) == 0 for r in none[1])
    # Added to proposals once each, beside what the ascent proposed.
    task = experiment(goals=["logp=max"], similarity=0.2, budget=6, steps=4, replicas=2,
                        invert_steps=10)  # fmt: skip
    props = propose_for(model, starts.tokens, task)
    both = with_neighbours(props, near)
    for i in range(len(starts.smiles)):
        assert both.smiles[i][: len(props.smiles[i])] == props.smiles[i]
        assert set(both.smiles[i]) == set(props.smiles[i]) | set(smiles[i])
        assert len(both.smiles[i]) == len(set(both.smiles[i])) == len(both.rows[i])
        assert len(both.predicted[i]) == len(both.similarity[i]) == len(both.smiles[i])


def test_the_ascent_with_training_molecules_keeps_budget_and_rules(model, starts):
    data = measure_molecules(SMILES, workers=1, progress=False)
    task = experiment(goals=["logp=max"], similarity=0.2, budget=6, steps=4, replicas=2,
                        invert_steps=10, neighbours=8)  # fmt: skip
    out = steer_molecules(model, starts, task, property_spreads(model, task.properties),
                          dataset=data)  # fmt: skip
    assert (out.table.oracle_calls <= 6).all()
    assert out.metrics["neighbours"] > 0 and 0.0 <= out.metrics.get("from_training", 0) <= 1
    ok = out.table.changed & (out.table.similarity >= 0.2) & (out.table.logp > out.table.start_logp)
    assert out.table.success.tolist() == ok.tolist()
    off = steer_molecules(model, starts, replace(task, proposer={**task.proposer, "neighbours": 0}),
                          property_spreads(model, task.properties), dataset=data)  # fmt: skip
    assert "neighbours" not in off.metrics
    with pytest.raises(ValueError, match="proposer.neighbours must be an integer >= 0; got -1"):
        ProposalSettings.of({"neighbours": -1})


def test_calibration_maps_the_heads_quantiles_onto_rdkits(model):
    smiles = SMILES * 2
    measured = measure_molecules(smiles, workers=1, progress=False)
    tokens = model.domain.encode_smiles(smiles).float()
    cal = fit_calibration(model, tokens, measured)
    assert set(cal.knots) == {"qed", "logp"} and cal.molecules == 32
    raw = read_rows(model, tokens)
    mapped = cal.apply(raw)
    for c in ("qed", "logp"):  # same quantiles as RDKit's values, same order as the heads'
        q = np.linspace(0.05, 0.95, 7)
        assert np.allclose(np.quantile(mapped[c], q), np.quantile(measured[c], q), atol=1e-6)
        order = np.argsort(raw[c].to_numpy(), kind="stable")
        assert (np.diff(mapped[c].to_numpy()[order]) >= -1e-12).all()
    lo, hi = cal.knots["logp"][0][[0, -1]]
    out = cal.apply(pd.DataFrame({"logp": [lo - 2.0, hi + 3.0], "sa": [1.0, 2.0]}))
    assert out.logp.tolist() == pytest.approx([cal.knots["logp"][1][0] - 2.0,
                                               cal.knots["logp"][1][-1] + 3.0])  # fmt: skip
    assert out.sa.tolist() == [1.0, 2.0]  # no head, untouched
    with pytest.raises(ValueError, match="same >= 20 molecules"):
        fit_calibration(model, tokens[:5], measured[:5])
    # a head the values do not cover (a fitted property's) stays raw; the others are mapped
    partial = fit_calibration(model, tokens, measured.drop(columns="logp"))
    assert set(partial.knots) == {"qed"}
    assert partial.apply(raw).logp.tolist() == raw.logp.tolist()


def test_the_heads_verdict_reads_calibrated_values(model, starts):
    task = experiment(goals=["qed=max"], bounds={"logp": [None, 1.0]}, similarity=0.0,
                        budget=6, steps=4, replicas=2, invert_steps=10)  # fmt: skip
    spread = property_spreads(model, task.properties)
    plain = steer_molecules(model, starts, task, spread)
    same = HeadCalibration({c: (np.array([-1e3, 1e3]), np.array([-1e3, 1e3]))
                            for c in ("qed", "logp")}, 2)  # fmt: skip
    again = steer_molecules(model, starts, task, spread, calibration=same)
    pd.testing.assert_frame_equal(plain.table, again.table)
    # Read 100 higher, no logP meets the bound in the heads' eyes; RDKit decides alike.
    high = HeadCalibration({"logp": (np.array([-1e3, 1e3]), np.array([-900.0, 1100.0]))}, 2)
    shifted = steer_molecules(model, starts, task, spread, calibration=high)
    assert not shifted.table.heads_success.fillna(False).any()
    assert shifted.table.success.tolist() == (
        shifted.table.changed & (shifted.table.logp <= 1.0)
        & (shifted.table.qed > shifted.table.start_qed)).tolist()  # fmt: skip


def test_unguarded_reports_the_heads_claims_beside_rdkit(model, starts):
    task = experiment(goals=["logp=max"], similarity=0.0, method="latent", guide=False, steps=30,
                        lr=0.2)  # fmt: skip
    out = steer_molecules(model, starts, task, property_spreads(model, task.properties))
    assert (out.table.oracle_calls == 1).all()
    assert "predicted_logp" in out.metrics and "measured_logp" in out.metrics
    assert out.metrics["measured_logp"] == pytest.approx(out.table.logp.mean())


def test_outputs_are_written_together(model, starts, tmp_path):
    task = experiment(goals=["qed=max"], similarity=0.0, budget=4, steps=4, replicas=2,
                        invert_steps=10)  # fmt: skip
    out = steer_molecules(model, starts, task, property_spreads(model, task.properties))
    write_outcome(out, tmp_path / "run")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "grid.png", "metrics.json", "molecules.csv"
    ]  # fmt: skip
    table = pd.read_csv(tmp_path / "run" / "molecules.csv")
    for col in ("start", "smiles", "similarity", "start_qed", "qed", "start_sa", "sa"):
        assert col in table
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["n"] == 3


def test_an_outcomes_metrics_are_its_rows_summarised_in_the_common_schema(model, starts):
    from latentsteer.metrics_schema import check_metrics

    task = experiment(goals=["logp=max"], similarity=0.0, budget=6, steps=4, replicas=2,
                        invert_steps=10)  # fmt: skip
    out = steer_molecules(model, starts, task, property_spreads(model, task.properties))
    m, table = out.metrics, out.table
    check_metrics(m)
    assert (m["n"], m["method"], m["goals"]) == (3, "latent", ["logp=max"])
    success = table.success.to_numpy(dtype=bool)
    readable = table.heads_success.notna().to_numpy()
    heads = table.heads_success[readable].astype(bool).to_numpy()
    assert readable.any()  # else the rate is null and the gap has nothing to compare
    assert m["success_rate"] == pytest.approx(success.mean())
    assert m["predicted_success_rate"] == pytest.approx(heads.mean())
    # signed, heads minus RDKit, over the results the heads read
    assert m["success_gap"] == pytest.approx(heads.mean() - success[readable].mean())
    assert m["oracle_calls"] == pytest.approx(table.oracle_calls.mean())
    assert m["model_calls"] == pytest.approx(table.model_calls.mean())
    # The one result interface of every domain (latentsteer.outcome.SteerOutcome).
    per = out.per_sample
    assert per["success"].tolist() == success.tolist()
    said = zip(table.heads_success, readable, strict=True)
    assert per["predicted_success"].tolist() == [bool(h) and r for h, r in said]  # unread: False
    assert per["oracle_calls"].tolist() == table.oracle_calls.tolist()
    assert per["model_calls"].tolist() == table.model_calls.tolist()
    assert per["changed"].tolist() == table.changed.tolist()
    assert all(len(v) == len(table) for v in per.values())


def test_the_report_table_keeps_published_rows_apart(model, starts):
    from latentsteer.domains.molecules.steering_table import COLUMNS, steering_table

    task = experiment(goals=["logp=max"], similarity=0.0, budget=4, steps=4, replicas=2,
                        invert_steps=10)  # fmt: skip
    m = steer_molecules(model, starts, task, property_spreads(model, task.properties)).metrics
    text = steering_table({"mine": {"latent_d0": m}})
    ours = [line for line in text.splitlines() if line.startswith("| mine |")]
    assert len(ours) == 1 and f"{100 * m['success_rate']:.1f}%" in ours[0]
    published = [line for line in text.splitlines() if "published" in line]
    assert len(published) == 13 and not any("mine" in line for line in published)
    widths = {line.count("|") for line in text.splitlines()}
    assert widths == {len(COLUMNS) + 1}  # every row fills every column


# ------------------------------------------------------------------ experiments
def test_starts_are_the_lowest_or_a_seeded_draw_in_range(model):
    table = measure_molecules(SMILES, workers=1, progress=False)
    vocab = model.domain.vocabulary
    lowest = select_starts(table, vocab, StartsConfig(n=3, lowest="logp"))
    assert lowest.logp.tolist() == sorted(table.logp)[:3]
    ranged = select_starts(table, vocab, StartsConfig(n=2, where={"logp": [0.0, 1.0]}))
    assert ranged.logp.between(0, 1).all()
    with pytest.raises(ValueError, match="only 16 test molecules qualify"):
        select_starts(table, vocab, StartsConfig(n=40))
    cfg = MoleculeExperimentConfig(goals=["qed=max"], similarity=[0.0, 0.4],
                                   baselines=["ga"], baseline_similarity=[0.4])  # fmt: skip
    assert cfg.baselines_at(0.0) == [] and cfg.baselines_at(0.4) == ["ga"]
    with pytest.raises(ValueError, match="unknown baseline 'bo'"):
        MoleculeExperimentConfig(goals=["qed=max"], baselines=["bo"])


# ------------------------------------------------------------------ the CLI
def test_cli_writes_one_row_per_start_in_input_order(model_dir, tmp_path, capsys):
    src = tmp_path / "my.smi"
    src.write_text("CCCO\nc1ccccc1\n")
    out = tmp_path / "run"
    args = ["steer", "--model", str(model_dir), "--start", str(src), "--goal", "logp=max",
            "--similarity", "0.2", "--budget", "5", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    table = pd.read_csv(out / "molecules.csv")
    assert table.start.tolist() == ["CCCO", "c1ccccc1"]
    ok = table.success
    assert (table.similarity[ok] >= 0.2).all() and (table.logp[ok] > table.start_logp[ok]).all()
    assert "(certified by RDKit" in capsys.readouterr().out


@pytest.mark.parametrize("method", ["latent", "ga", "random_search"])
def test_cli_takes_every_molecule_method(model_dir, tmp_path, method):
    src = tmp_path / "my.smi"
    src.write_text("CCCO\nc1ccccc1\n")
    out = tmp_path / "run"
    args = ["steer", "--model", str(model_dir), "--start", str(src), "--goal", "logp=max",
            "--similarity", "0.2", "--budget", "5", "--method", method,
            "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["method"] == method
    assert (pd.read_csv(out / "molecules.csv").oracle_calls <= 5).all()


@pytest.mark.parametrize(
    "content, flags, message",
    [
        (
            "CCO\n",
            ["--method", "data_space"],
            "method data_space: not a method of molecules models; theirs: latent, "
            "random_search, cmaes, bayesopt, ga, dataset",
        ),  # fmt: skip
        ("CCO\nnot_a_smiles\n", [], "line 2 ('not_a_smiles'): does not parse as SMILES"),
        ("CCO\n", ["--goal", "potency=max"], "unknown property 'potency'"),
        ("CCO\n", ["--similarity", "1.2"], "similarity must be a number in [0, 1]"),
        ("CCO\n", ["--knn", "1.0"], "knn: not used by molecules models"),
        ("C[Se]C\n", [], "outside the model's vocabulary"),
        ("CCO\n", ["--goal", "mw=max"], "the model's heads predict logp, qed, not mw"),
    ],
)
def test_cli_errors_are_one_line_and_write_nothing(model_dir, tmp_path, capsys, content,
                                                    flags, message):  # fmt: skip
    src = tmp_path / "my.smi"
    src.write_text(content)
    out = tmp_path / "run"
    goal = [] if "--goal" in flags else ["--goal", "logp=max"]
    args = ["steer", "--model", str(model_dir), "--start", str(src), *goal, *flags,
            "--out", str(out)]  # fmt: skip
    assert main(args) != 0
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_a_molecule_method_is_refused_for_a_model_of_another_domain(tmp_path, capsys):
    from toy_domain import TOY, make_model

    from latentsteer import registry

    registry.register(TOY)
    save_model(make_model(), tmp_path / "toy")
    args = ["steer", "--model", str(tmp_path / "toy"), "--goal", "size=max", "--method", "ga",
            "--out", str(tmp_path / "o")]  # fmt: skip
    assert main(args) != 0
    err = capsys.readouterr().err.strip()
    assert err.endswith("method ga: not a method of toy models; theirs: latent, data_space, "
                        "random_search, cmaes, bayesopt")  # fmt: skip
    assert len(err.splitlines()) == 1 and not (tmp_path / "o").exists()


def test_similarity_is_refused_for_a_model_of_another_domain(tmp_path, capsys):
    from toy_domain import TOY, make_model

    from latentsteer import registry

    registry.register(TOY)
    save_model(make_model(), tmp_path / "toy")
    args = ["steer", "--model", str(tmp_path / "toy"), "--goal", "size=max",
            "--similarity", "0.4", "--out", str(tmp_path / "o")]  # fmt: skip
    assert main(args) != 0
    err = capsys.readouterr().err.strip()
    assert "similarity: not used by toy models; their settings: goals, start" in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "o").exists()
    assert "budget" in err.split("their settings:")[1]  # an oracle budget for every domain
