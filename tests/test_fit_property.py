"""``latentsteer fit-property`` end to end on a tiny digit model: the new model folder, its
property as a goal's oracle, and every bad input as one line with nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_model
from test_image_property import bars

from latentsteer.cli import main
from latentsteer.learned.attach import WithLearned, learned_readings, load_properties
from latentsteer.learned.card import cards_of
from latentsteer.loading import load_model
from latentsteer.model import save_model

ROWS = 60


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, np.ndarray]:
    root = tmp_path_factory.mktemp("fit")
    save_model(tiny_model(latent_dim=6), root / "vae")
    config = json.loads((root / "vae" / "config.json").read_text())
    config["measure"] = {"scale": 4}  # an entry of how the model was made: kept
    (root / "vae" / "config.json").write_text(json.dumps(config))
    images, length = bars(ROWS, seed=1)
    np.savez(root / "bars.npz", images=images, bar=length)
    return root, root / "bars.npz", images


def test_fit_property_writes_a_model_with_the_head_and_the_oracle(folders, capsys):
    root, table, images = folders
    out = root / "with_bar"
    code = main(["fit-property", "--model", str(root / "vae"), "--table", str(table),
                 "--column", "bar", "--name", "bar_length", "--out", str(out),
                 "--device", "cpu"])  # fmt: skip
    assert code == 0
    said = capsys.readouterr().out
    assert f"bar_length: {ROWS} rows of bars.npz" in said and "held-out R²" in said
    old, new = load_model(root / "vae"), load_model(out)
    assert new.head_names == [*old.head_names, "bar_length"]
    z = torch.randn(5, 6)
    with torch.no_grad():  # everything the input model did, the new one does the same
        torch.testing.assert_close(new.decode(z), old.decode(z))
        for name in old.head_names:
            torch.testing.assert_close(new.predict(z)[name], old.predict(z)[name])
    assert json.loads((out / "config.json").read_text())["measure"] == {"scale": 4}
    card = json.loads((out / "metrics.json").read_text())["properties"]["bar_length"]
    assert card["rows"] == ROWS and card["refused"] == 0 and card["encoded"] == ROWS
    assert card["head_rows_heldout"] == 12 and card["tolerance_from"] == "cross-validated error"
    assert card["tolerance"] == pytest.approx(card["oracle_certifier_mae"])
    assert cards_of(out)["bar_length"].column == "bar"
    # the property is read like any measure: the guide in the loop, the certifier grading
    oracles = load_properties(new, out)
    assert new.domain.tolerances["bar_length"] == card["tolerance"]
    values, applicability = learned_readings(oracles, images, "certifier")
    assert np.isfinite(values.bar_length).mean() > 0.9  # the table's own images: inside
    # NaN exactly where the sample is outside the applicability domain (unverifiable)
    odd = np.stack([np.zeros((28, 28)), np.ones((28, 28)), *images[:3]]).astype(np.float32)
    value, where = learned_readings(oracles, odd, "certifier")
    inside = oracles["bar_length"].card.inside(where.bar_length.to_numpy())
    np.testing.assert_array_equal(np.isnan(value.bar_length.to_numpy()), ~inside)
    assert where.bar_length.to_numpy()[1] > where.bar_length.to_numpy()[2:].max()

    class Base:  # the domain's oracle of the other measures
        measures, class_column, describe = ("thickness",), "digit", "measures"

        def read(self, samples, workers=None, properties=None):
            import pandas as pd

            from latentsteer.domain import OracleReport

            n = len(samples)
            return OracleReport(pd.DataFrame({"thickness": np.ones(n)}), np.zeros(n, int),
                                np.ones(n), np.ones((n, 10)) / 10, "digit")  # fmt: skip

    view = WithLearned(Base(), oracles, "guide")
    assert view.measures == ("thickness", "bar_length")
    assert "learned bar_length guide" in view.describe
    report = view.read(torch.as_tensor(images[:4]), properties=["bar_length"])
    guide = learned_readings(oracles, images[:4], "guide")[0].bar_length
    np.testing.assert_allclose(report.measures.bar_length, guide)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--column", "Bar"], "no array 'Bar'; did you mean 'bar'?"),
        (["--column", "bar", "--name", "height"], "'height' is a built-in property"),
        (["--column", "bar", "--name", "digit"], "already has a property 'digit'"),
        (["--column", "bar", "--tolerance", "-1"], "tolerance must be a positive number"),
        (["--column", "bar", "--table", "CSV"], "is a molecule table"),
        (["--column", "bar", "--out", "MODEL"], "must be a new folder"),
    ],
)
def test_fit_property_bad_input_is_one_line_and_writes_nothing(folders, capsys, args, message):
    root, table, _ = folders
    (root / "mols.csv").write_text("smiles,bar\nCCO,1.0\n")
    out = root / "never"
    given = {"--table": str(table), "--out": str(out)}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        given[flag] = {"CSV": str(root / "mols.csv"), "MODEL": str(root / "vae")}.get(value, value)
    argv = ["fit-property", "--model", str(root / "vae"), "--device", "cpu"]
    for flag, value in given.items():
        argv += [flag, value]
    before = sorted(p.name for p in root.iterdir())
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert sorted(p.name for p in root.iterdir()) == before  # nothing written
