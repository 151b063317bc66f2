"""Where a steering request reads its sources: given by name, or the pipeline's folders in
the checkout that holds the model folder, never the working directory."""

from __future__ import annotations

import pytest

from latentsteer.errors import LatentsteerError
from latentsteer.request import checkout_of, source_paths

DEFAULTS = {"judge": "models/judge", "certifier": "models/certifier", "data": "data/raw",
            "extra": None}  # fmt: skip


def test_defaults_resolve_in_the_checkout_of_the_model_not_the_working_directory(
    tmp_path, monkeypatch
):
    repo = tmp_path / "repo"
    (repo / "models" / "vae").mkdir(parents=True)
    (repo / "dvc.yaml").write_text("stages: {}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the working directory must not matter
    got = source_paths(repo / "models" / "vae", DEFAULTS, {"certifier": None})
    assert got == {"judge": str(repo.resolve() / "models/judge"), "certifier": None,
                   "data": str(repo.resolve() / "data/raw"), "extra": None}  # fmt: skip
    assert checkout_of(repo / "models" / "vae") == repo.resolve()


def test_a_model_outside_any_checkout_needs_its_sources_named(tmp_path):
    model = tmp_path / "loose" / "vae"
    model.mkdir(parents=True)
    if checkout_of(model) is not None:  # pragma: no cover - a tmp folder inside a checkout
        pytest.skip("the temporary folder lies inside a pipeline checkout")
    with pytest.raises(LatentsteerError, match="no pipeline checkout .*give its sources: "
                       "--judge, --certifier, --data$"):  # fmt: skip
        source_paths(model, DEFAULTS, {})
    given = {"judge": "j", "certifier": "c", "data": "d"}
    assert source_paths(model, DEFAULTS, given) == {**given, "extra": None}
