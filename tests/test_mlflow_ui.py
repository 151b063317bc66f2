"""The MLflow UI on a store the real pipeline wrote, as a person sees it in a browser.

A tiny `dvc repro` fills `mlflow.db` (and the artefact folder next to it); `mlflow ui` serves
that store on loopback, the way `make ui` does; headless Chromium, driven by Playwright,
then checks the experiment list, the experiment's kind tag and the address that opens it on
its runs table, the runs table with a metric column, and an optimisation run's
`results/grid.png` rendered as an image.

Chromium comes from Debian (`/usr/bin/chromium`), never from `playwright install`. Without
it or the `playwright` package the tests skip locally and fail under CI.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow_proc import mlflow_server
from PIL import Image
from tiny_pipeline import ALL_TINY, PROPERTY_STAGES, copy_repo, dvc

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")  # Debian's; `make test` installs it when it can
if not CHROMIUM.exists() and shutil.which("chromium"):
    CHROMIUM = Path(shutil.which("chromium"))
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
WAIT_MS = 30_000  # MLflow's React UI renders asynchronously; every wait is bounded by this
STAGE_RUNS = ["train_judge", "train_certifier", "train", "evaluate", "calibrate", "report"]
OPTIMIZE_RUNS = [f"optimize@{name}" for name in ALL_TINY]
# the digits' fitted property: its fit and its experiment log to the same experiment
PROPERTY_RUNS = [s.replace("@", "_") for s in PROPERTY_STAGES]


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must run the MLflow UI test)")
    pytest.skip(reason)


@pytest.fixture(scope="module", autouse=True)
def _browser_available() -> None:
    """Checked before the pipeline runs, so a machine without a browser skips at once."""
    if importlib.util.find_spec("playwright") is None:
        _missing("the `playwright` package is not installed (pip install -e '.[dev]')")
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        _missing(f"{CHROMIUM} not found (apt-get install chromium, or `make test` as root)")


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A tiny repo copy after `dvc repro`: its mlflow.db holds every stage's run."""
    repo = copy_repo(tmp_path_factory.mktemp("ui") / "repo")
    dvc("repro", cwd=repo)
    return repo


@pytest.fixture(scope="module")
def runs(repo) -> dict[str, object]:
    """The store's runs by name, read through MLflow's client: what the UI must show."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("latentsteer-mnist")
    assert experiment is not None, "the pipeline logged no `latentsteer` experiment"
    found = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert set(found) == {*STAGE_RUNS, *OPTIMIZE_RUNS, *PROPERTY_RUNS}, sorted(found)
    return found


@pytest.fixture(scope="module")
def ui_url(repo, tmp_path_factory) -> Iterator[str]:
    """`mlflow ui` on the tiny store, as `make ui` starts it (loopback only, repo as cwd).

    The runs' artifact URIs are absolute local paths (`<repo>/mlruns/<exp>/<run>/artifacts`,
    set when the pipeline created the experiment), so the server reads them directly: no
    `--artifacts-destination` is needed, that flag only applies to `mlflow-artifacts:` URIs.
    """
    log = tmp_path_factory.mktemp("ui-log") / "mlflow-ui.log"
    with mlflow_server(
        "ui", "--backend-store-uri", f"sqlite:///{repo / 'mlflow.db'}", cwd=repo, log=log
    ) as url:
        yield url


@pytest.fixture(scope="module")
def browser(_browser_available):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True, timeout=WAIT_MS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser, ui_url):
    context = browser.new_context(viewport={"width": 1920, "height": 1080}, base_url=ui_url)
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def shot(page, tmp_path, request):
    """``shot(name)`` saves a full-page screenshot under tmp_path (and $LATENTSTEER_UI_SHOTS).

    A last one, ``final``, is taken at teardown whatever the outcome.
    """
    extra = os.environ.get("LATENTSTEER_UI_SHOTS")

    def take(name: str) -> Path:
        path = tmp_path / f"{request.node.name}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        if extra:
            Path(extra).mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, Path(extra) / path.name)
        return path

    yield take
    take("final")  # the page as the test left it: on a failure, what went wrong


def _close_assistant(page) -> None:
    """Close MLflow's assistant side panel (it narrows the runs table) when it is open."""
    close = page.get_by_role("button", name="Close", exact=True)
    if close.count() == 1 and close.is_visible():
        close.click()


def _open_runs_table(page) -> None:
    """Experiments list → the `latentsteer` experiment's runs table (model-training view).

    MLflow 3.17 opens an experiment in the view of the sidebar's GenAI / Model training
    switch (GenAI until a person switches; the browser remembers it), whatever the
    experiment's ``mlflow.experimentKind`` tag says, so a fresh browser has to switch.
    """
    page.goto("/#/experiments")
    page.get_by_text("Model training", exact=True).click()
    page.get_by_role("link", name="latentsteer-mnist", exact=True).click()
    page.get_by_role("link", name="optimize@up", exact=True).wait_for()
    _close_assistant(page)


def test_experiment_is_tagged_and_its_address_opens_the_runs_table(page, shot, runs, repo):
    """The experiment says it is model development, and its address with
    ``workflowType=machine_learning`` lands on the runs table, every run listed, no click."""
    from mlflow.tracking import MlflowClient

    experiment_id = next(iter(runs.values())).info.experiment_id
    client = MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")
    tags = client.get_experiment(experiment_id).tags
    assert tags.get("mlflow.experimentKind") == "custom_model_development"
    page.goto(f"/#/experiments/{experiment_id}?workflowType=machine_learning")
    for name in [*STAGE_RUNS, *OPTIMIZE_RUNS]:
        page.get_by_role("link", name=name, exact=True).wait_for()
    assert re.search(rf"#/experiments/{experiment_id}/runs\b", page.url), page.url
    _close_assistant(page)
    assert page.get_by_text(f"{len(runs)} matching runs").is_visible()
    shot("landing")


@pytest.mark.xfail(
    strict=True,
    reason="MLflow 3.17 picks the view from the sidebar's GenAI / Model training switch, not "
    "from the experiment's mlflow.experimentKind tag; when this passes, _open_runs_table "
    "no longer needs its 'Model training' click",
)
def test_a_fresh_browser_lands_on_the_runs_table(page, runs):
    page.goto("/#/experiments")
    page.get_by_role("link", name="latentsteer-mnist", exact=True).click()
    page.get_by_role("link", name="optimize@up", exact=True).wait_for(timeout=10_000)


def test_experiment_is_listed(page, shot, runs):
    page.goto("/#/experiments")
    link = page.get_by_role("link", name="latentsteer-mnist", exact=True)
    link.wait_for()
    assert link.is_visible()
    shot("experiments")
    link.click()
    page.wait_for_url(re.compile(r"#/experiments/\d+"))
    experiment_id = next(iter(runs.values())).info.experiment_id
    assert f"#/experiments/{experiment_id}" in page.url


def test_runs_table_shows_each_stage_and_success_rate(page, shot, runs):
    _open_runs_table(page)
    for name in [*STAGE_RUNS, *OPTIMIZE_RUNS]:
        assert page.get_by_role("link", name=name, exact=True).is_visible(), name
    assert page.get_by_text(f"{len(runs)} matching runs").is_visible()

    # Metrics are hidden by default: add the `success_rate` column as a person would.
    page.get_by_role("button", name="Columns", exact=True).click()
    page.get_by_placeholder("Search columns").fill("success_rate")
    page.locator("span").filter(has_text=re.compile(r"^success_rate$")).last.click()
    page.keyboard.press("Escape")
    header = page.locator("[role=columnheader][col-id]").filter(
        has_text=re.compile(r"^\s*success_rate\s*$")
    )
    header.wait_for()
    col_id = header.get_attribute("col-id")
    assert col_id and "success_rate" in col_id
    shot("runs-table")

    for name in OPTIMIZE_RUNS:
        run = runs[name]
        cell = page.locator(f'[role=row][row-id="{run.info.run_id}"] [col-id="{col_id}"]')
        text = cell.inner_text().strip()
        assert float(text) == pytest.approx(run.data.metrics["success_rate"], abs=1e-5), name
    for name in STAGE_RUNS:  # stages that log no success_rate show a dash
        cell = page.locator(f'[role=row][row-id="{runs[name].info.run_id}"] [col-id="{col_id}"]')
        assert cell.inner_text().strip() == "-", name


def test_optimize_run_shows_grid_png(page, shot, runs, repo):
    run = runs["optimize@up"]
    served = Path(run.info.artifact_uri.removeprefix("file://")) / "results" / "grid.png"
    assert served.is_file(), f"artefact not where the run says: {run.info.artifact_uri}"
    assert served.is_relative_to(repo), "artefacts should live in the repo's own store"

    _open_runs_table(page)
    page.get_by_role("link", name="optimize@up", exact=True).click()
    page.wait_for_url(re.compile(rf"runs/{run.info.run_id}"))
    page.get_by_role("tab", name="Artifacts").click()
    page.get_by_text("results", exact=True).click()
    with page.expect_response(lambda r: "get-artifact" in r.url and "grid.png" in r.url) as got:
        page.get_by_text("grid.png", exact=True).click()
    assert got.value.status == 200, got.value.url

    image = page.get_by_alt_text("results/grid.png").first
    handle = image.element_handle()
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=handle, timeout=WAIT_MS
    )
    width, height = handle.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert (width, height) == Image.open(served).size
    # The bytes behind the <img> (a blob the UI built from the server's answer) are the file's.
    shown = handle.evaluate(
        "async img => Array.from(new Uint8Array(await (await fetch(img.src)).arrayBuffer()))"
    )
    assert bytes(shown) == served.read_bytes(), "the UI shows other bytes than the artefact"
    assert served.read_bytes() == (repo / "results" / "up" / "grid.png").read_bytes()
    assert image.is_visible()
    shot("grid-png")
