"""Scenario TOML download and upload restore the whole app state (sidebar "Scenario file").

Round trips: every example scenario uploaded into a fresh app gives, once the Design page has rebuilt the design
from its widgets, exactly the scenario's design, power settings and seed; a design built in the UI, downloaded
(the builder function: AppTest cannot read download bytes) and uploaded into a fresh app gives the same design.
Refusals: invalid files and scenarios the pages cannot show change nothing; data paths are never opened as
written, only their bare names inside the session's workspace ``uploads/`` folder.
"""

from __future__ import annotations

import copy
import os
import sys
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest
from app_support import new_app, page, texts
from streamlit.testing.v1 import AppTest

from app_pages._data_sources import BUILTIN, UPLOAD
from app_pages._design_conduct import ACCRUAL_MODES
from app_pages._scenario_io import UPLOAD_KEY
from app_pages._scenario_state import (
    MissingUploadError,
    apply_restore,
    design_form_names,
    form_params,
    page_design,
    prepare_restore,
    scenario_files,
)
from trials.scenario import load_scenario, parse_scenario_text

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
VA_CSV = ROOT / "tests" / "data" / "va_lung.csv"
VA_SCHEMA = EXAMPLES / "va_lung_schema.toml"
MISSING = "upload it (and its schema) on the Data page first, then upload the scenario again"


def _scenario_examples() -> list[Path]:
    return [p for p in sorted(EXAMPLES.glob("*.toml")) if "cohort" in tomllib.loads(p.read_text(encoding="utf-8"))]


# ------------------------------------------------------------------------------------------------- helpers
def _upload(at: AppTest, text: str | bytes, name: str = "scenario.toml") -> AppTest:
    raw = text.encode("utf-8") if isinstance(text, str) else text
    uploader = next(u for u in at.sidebar.get("file_uploader") if u.key == UPLOAD_KEY)
    uploader.set_value((name, raw, "application/toml")).run()
    assert not at.exception, at.exception
    return at


def _uploads(at: AppTest) -> Path:
    folder = Path(os.environ["INSILICO_WORKSPACE"]) / at.session_state["workspace_token"] / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _state(at: AppTest) -> dict:
    """What a refused upload must leave alone."""
    ss = at.session_state
    cohort = ss.get("cohort")
    return {"cohort": (cohort.name, cohort.sha256) if cohort is not None else None, "design": ss.get("design"),
            "settings": ss.get("settings"), "seed": ss.get("seed"), "upload": ss.get("upload"),
            "form": copy.deepcopy(dict(ss.get("form") or {}))}


def _va_upload_text(effect: str = "{ hazard_ratio = 0.7 }") -> str:
    """examples/va_lung_tte.toml with the VA lung table and its schema as data files instead of the built-in."""
    text = (EXAMPLES / "va_lung_tte.toml").read_text(encoding="utf-8")
    text = text.replace('builtin = "va-lung"', 'data = "va_lung.csv"\nschema = "va_lung.schema.toml"')
    return text.replace("effect = { hazard_ratio = 0.7 }", f"effect = {effect}")


def _assert_design_page_matches(at: AppTest, scenario, design=None) -> None:
    """The Design page, rebuilt from the restored widgets, gives the scenario's design, settings and seed."""
    page(at, "design")
    assert not at.error, texts(at.error)
    ss = at.session_state
    assert ss["design"] == (scenario.design if design is None else design)
    assert ss["settings"] == scenario.power
    assert ss["seed"] == scenario.seed
    assert at.text_input(key="w_design_n_total").value == ", ".join(map(str, scenario.power.n_total))
    shown = {k.removeprefix("w_design_") for k in ss if k.startswith("w_design_")}
    assert shown <= set(design_form_names()), shown - set(design_form_names())


# ----------------------------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("path", [pytest.param(p, id=p.stem) for p in _scenario_examples()])
def test_example_round_trip(path):
    text = path.read_text(encoding="utf-8")
    scenario = parse_scenario_text(text)
    at = _upload(new_app(timeout=60), text, path.name)
    assert not at.error, texts(at.error)
    assert "Restored" in texts(at.sidebar.success)
    ss = at.session_state
    assert ss["form"]["data_source"] == BUILTIN and ss["form"]["builtin"] == scenario.cohort.builtin
    assert ss["cohort"].name == scenario.cohort.builtin
    assert ss["design"] == scenario.design and ss["settings"] == scenario.power and ss["seed"] == scenario.seed
    _assert_design_page_matches(at, scenario)
    page(at, "generator")
    assert at.selectbox(key="w_generator_generator_name").value == scenario.cohort.generator
    assert at.number_input(key="w_generator_seed").value == scenario.seed


def test_an_arm_dropout_equal_to_the_overall_one_is_shown_as_none_of_its_own():
    """The Design page keeps an arm's own dropout only where it differs from the overall rate: a scenario that
    writes the overall rate out for an arm restores the same trial, and the sidebar says so."""
    text = (EXAMPLES / "als_enrichment.toml").read_text(encoding="utf-8")
    scenario = parse_scenario_text(text)
    p = scenario.design.dropout.per_month
    explicit = replace(scenario.design, arms=tuple(a if a.dropout_per_month is not None
                                                   else replace(a, dropout_per_month=p) for a in scenario.design.arms))
    from trials.scenario import Scenario, scenario_to_toml
    at = _upload(new_app(timeout=60), scenario_to_toml(Scenario(title="t", seed=scenario.seed, cohort=scenario.cohort,
                                                       design=explicit, power=scenario.power)))
    assert f"equals dropout.per_month ({p:g})" in texts(at.sidebar.caption)
    written, _ = page_design(explicit)
    assert written == scenario.design and written.dropout_hazards() == explicit.dropout_hazards()
    _assert_design_page_matches(at, scenario, design=written)


def test_uploaded_cohort_round_trip():
    """A scenario naming data files: found by name in the workspace's uploads folder, restored as an upload (the
    Data page rebuilds the very cohort from the restored column roles, so the design stays)."""
    text = _va_upload_text("{ hazard_ratio = 0.6, delay = 30, subgroup = \"Age_in_years < 60\" }")
    at = new_app(timeout=60)
    folder = _uploads(at)
    (folder / "va_lung.csv").write_bytes(VA_CSV.read_bytes())
    (folder / "va_lung.schema.toml").write_bytes(VA_SCHEMA.read_bytes())
    _upload(at, text)
    assert not at.error, texts(at.error)
    ss = at.session_state
    assert ss["upload"] == ("va_lung.csv", VA_CSV.read_bytes())
    assert ss["form"]["data_source"] == UPLOAD
    scenario = parse_scenario_text(text, base_dir=folder)
    _assert_design_page_matches(at, scenario)
    sha = ss["cohort"].sha256
    page(at, "data")
    assert not at.error, texts(at.error)
    assert at.radio(key="w_data_data_source").value == UPLOAD
    assert at.selectbox(key=next(k for k in ss if k.endswith(".time"))).value == "time_days"
    assert ss["cohort"].sha256 == sha and ss["design"] == scenario.design   # the Data page kept cohort and design

    # the download names the files by their bare names; with them beside it the CLI reads the same scenario
    files = scenario_files(ss["cohort"], ss["upload"], "default", {}, ss["design"], ss["settings"], ss["seed"])
    assert 'data = "va_lung.csv"' in files.toml and 'schema = "va_lung.schema.toml"' in files.toml
    assert files.schema_name == "va_lung.schema.toml" and files.data_name == "va_lung.csv"
    labels = [b.label for b in at.sidebar.get("download_button")]
    assert labels == ["Download scenario (TOML)", "Download its schema (TOML)"]


def test_va_lung_example_from_data_files(tmp_path):
    """examples/va_lung_tte.toml with the table and schema files (put into the workspace first): the same design;
    and the downloaded scenario, saved beside the two files, is what ``insilico power`` reads."""
    text = _va_upload_text()
    at = new_app(timeout=60)
    folder = _uploads(at)
    (folder / "va_lung.csv").write_bytes(VA_CSV.read_bytes())
    (folder / "va_lung.schema.toml").write_bytes(VA_SCHEMA.read_bytes())
    _upload(at, text)
    scenario = parse_scenario_text(text, base_dir=folder)
    _assert_design_page_matches(at, scenario)
    ss = at.session_state
    files = scenario_files(ss["cohort"], ss["upload"], "default", {}, ss["design"], ss["settings"], ss["seed"])
    (tmp_path / files.name).write_text(files.toml, encoding="utf-8")
    (tmp_path / files.data_name).write_bytes(VA_CSV.read_bytes())
    (tmp_path / files.schema_name).write_text(files.schema_toml, encoding="utf-8")
    cli = load_scenario(tmp_path / files.name)
    assert cli.design == scenario.design and cli.power == scenario.power and cli.seed == scenario.seed
    assert cli.cohort.data == tmp_path / "va_lung.csv"


def test_data_page_upload_then_scenario():
    """The table uploaded on the Data page (no schema file in the session): its column roles are used, said so."""
    at = new_app(timeout=60)
    at.radio(key="w_data_data_source").set_value(UPLOAD).run()
    at.file_uploader(key="w_data_upload").set_value(("va_lung.csv", VA_CSV.read_bytes(), "text/csv")).run()
    assert not at.exception and not at.error, texts(at.error)
    _upload(at, _va_upload_text())
    assert not at.error, texts(at.error)
    assert "column roles set on the Data page" in texts(at.sidebar.caption)
    scenario = parse_scenario_text(_va_upload_text(), base_dir=_uploads(at))
    _assert_design_page_matches(at, scenario)


def test_download_after_ui_edits_round_trips():
    at = new_app(timeout=60)
    page(at, "generator")
    at.number_input(key="w_generator_hp_default_copula_shrinkage").set_value(0.1).run()
    at.number_input(key="w_generator_seed").set_value(7).run()
    page(at, "design")
    edits = [("number_input", "treatment_alloc", 2.0), ("number_input", "slope_reduction_pct", 29.0),
             ("number_input", "responder_pct", 80.0), ("text_input", "effect_subgroup", "age < 65"),
             ("text_input", "visits_months", "0, 2, 4, 6"), ("number_input", "dropout_pct", 3.0),
             ("selectbox", "accrual_mode", ACCRUAL_MODES[1]), ("number_input", "accrual_months", 9.0),
             ("text_input", "eligibility", "18 <= age <= 75"),
             ("text_area", "enrichment", "site_of_onset == 'Bulbar' : 2"), ("checkbox", "looks_on", True),
             ("text_input", "looks_fractions", "0.5, 1"), ("selectbox", "looks_spending", "pocock"),
             ("text_input", "n_total", "90, 150"), ("number_input", "replicates", 200),
             ("number_input", "alpha", 0.025)]
    for kind, name, value in edits:
        getattr(at, kind)(key=f"w_design_{name}").set_value(value).run()
        assert not at.exception and not at.error, (name, texts(at.error))
    ss = at.session_state
    design, settings = ss["design"], ss["settings"]
    assert design.looks is not None and design.eligibility is not None and design.accrual is not None
    assert design.effect.value == 0.29 and ss["seed"] == 7
    assert [b.label for b in at.sidebar.get("download_button")] == ["Download scenario (TOML)"]

    params = form_params("default", ss["form"])
    assert params == {"copula_shrinkage": 0.1}
    files = scenario_files(ss["cohort"], None, "default", params, design, settings, ss["seed"])
    scenario = parse_scenario_text(files.toml)
    assert scenario.design == design and scenario.power == settings and scenario.seed == 7
    assert scenario.cohort.builtin == "als-natural-history" and scenario.cohort.generator_params == params

    fresh = _upload(new_app(timeout=60), files.toml, files.name)
    assert not fresh.error, texts(fresh.error)
    _assert_design_page_matches(fresh, scenario)
    assert fresh.checkbox(key="w_design_looks_on").value is True
    assert fresh.text_area(key="w_design_enrichment").value == "site_of_onset == 'Bulbar' : 2.0"
    page(fresh, "generator")
    assert fresh.number_input(key="w_generator_hp_default_copula_shrinkage").value == 0.1
    assert fresh.number_input(key="w_generator_seed").value == 7


def test_a_restored_file_is_applied_once():
    """Reruns and page switches keep later edits; uploading the file again applies it again."""
    text = (EXAMPLES / "als_slope.toml").read_text(encoding="utf-8")
    at = _upload(new_app(timeout=60), text)
    page(at, "design")
    at.text_input(key="w_design_n_total").set_value("70").run()
    page(at, "data")
    page(at, "design")
    assert at.text_input(key="w_design_n_total").value == "70"
    assert at.session_state["settings"].n_total == (70,)
    _upload(at, text)
    assert at.text_input(key="w_design_n_total").value == "60, 120, 180, 240"
    assert at.session_state["settings"].n_total == (60, 120, 180, 240)


# --------------------------------------------------------------------------------------------------- refusals
BAD = {"syntax": ("title = \"x\nseed = 1\n", "not valid TOML"),
       "unknown key": ((EXAMPLES / "als_slope.toml").read_text(encoding="utf-8").replace("replicates =", "replicats ="),
                       "power.replicats: unknown key (did you mean 'replicates'?)"),
       "bad effect": ((EXAMPLES / "va_lung_tte.toml").read_text(encoding="utf-8").replace("hazard_ratio = 0.7",
                                                                                          "hazard_ratio = -0.7"),
                      "effect.hazard_ratio: must be > 0"),
       "not showable": ((EXAMPLES / "va_lung_tte.toml").read_text(encoding="utf-8")
                        .replace("hazard_ratio = 0.7", "hazard_ratio = 0.7, until = 200")
                        .replace("replicates = 1000", "replicates = 5"),
                        "arms[1].effect.until: the Design page has no waning effect"),
       "wrong cohort": ((EXAMPLES / "als_slope.toml").read_text(encoding="utf-8")
                        .replace("als-natural-history", "va-lung"), "endpoint.analysis: 'slope' analyses")}


@pytest.mark.parametrize("case", list(BAD))
def test_invalid_scenario_is_an_inline_error_and_changes_nothing(case):
    text, message = BAD[case]
    at = page(new_app(timeout=60), "design")
    before = _state(at)
    _upload(at, text)
    assert message in texts(at.sidebar.error)
    if case == "not showable":
        assert "power.replicates: the Design page takes 10 to 100000" in texts(at.sidebar.error)
    assert not at.sidebar.success
    assert _state(at) == before


@pytest.mark.parametrize("where", ["absolute", "relative", "passwd"])
def test_data_paths_outside_the_workspace_are_never_used(where, tmp_path):
    """A scenario naming a real, valid table outside the workspace (another session's folder, any path) is
    refused: only the bare name is looked up in this session's uploads folder."""
    at = new_app(timeout=60)
    other = _uploads(at).parents[1] / "other"   # a neighbouring workspace: root/other
    for folder in (tmp_path, other):
        folder.mkdir(exist_ok=True)
        (folder / "va_lung.csv").write_bytes(VA_CSV.read_bytes())
        (folder / "va_lung.schema.toml").write_bytes(VA_SCHEMA.read_bytes())
    data, schema, name = {"absolute": (tmp_path / "va_lung.csv", tmp_path / "va_lung.schema.toml", "va_lung.csv"),
                          "relative": ("../../other/va_lung.csv", "../../other/va_lung.schema.toml", "va_lung.csv"),
                          "passwd": ("/etc/passwd", "/etc/passwd", "passwd")}[where]
    text = _va_upload_text().replace('data = "va_lung.csv"', f'data = "{data}"').replace(
        'schema = "va_lung.schema.toml"', f'schema = "{schema}"')
    before = _state(at)
    _upload(at, text)
    assert f"This scenario uses the uploaded file {name}: {MISSING}" in texts(at.sidebar.warning)
    assert not at.sidebar.success and not at.sidebar.error
    assert _state(at) == before and before["cohort"][0] == "als-natural-history"


# ----------------------------------------------------------------------------------------- the logic directly
_OPENED: list[str] | None = None


def _audit(event: str, args) -> None:
    if _OPENED is not None and event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
        _OPENED.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)


def _opened_while(fn):
    global _OPENED
    _OPENED = []
    try:
        return fn(), list(_OPENED)
    finally:
        _OPENED = None


def test_prepare_restore_opens_nothing_outside_the_uploads_folder(tmp_path):
    """Audit hook: no file outside ``uploads/`` is opened, even where the scenario names a real one; a file of the
    same bare name inside ``uploads/`` is the one used."""
    outside, uploads = tmp_path / "outside", tmp_path / "ws" / "uploads"
    outside.mkdir()
    uploads.mkdir(parents=True)
    (outside / "va_lung.csv").write_bytes(VA_CSV.read_bytes())
    (outside / "va_lung.schema.toml").write_bytes(VA_SCHEMA.read_bytes())
    base = _va_upload_text("{ hazard_ratio = 0.7, subgroup = \"Age_in_years < 60\" }")
    for data in (outside / "va_lung.csv", "../outside/va_lung.csv", "/etc/passwd"):
        text = base.replace('data = "va_lung.csv"', f'data = "{data}"').replace(
            'schema = "va_lung.schema.toml"', f'schema = "{outside / "va_lung.schema.toml"}"')

        def attempt(text=text):
            with pytest.raises(MissingUploadError, match="This scenario uses the uploaded file"):
                prepare_restore(text.encode(), "s.toml", uploads=uploads)
        _, opened = _opened_while(attempt)
        assert not [p for p in opened if str(outside) in p or "passwd" in p], opened
    # a different table of the same name inside the workspace is the one used
    inside = b"\n".join(VA_CSV.read_bytes().splitlines()[:60]) + b"\n"
    (uploads / "va_lung.csv").write_bytes(inside)
    (uploads / "va_lung.schema.toml").write_bytes(VA_SCHEMA.read_bytes())
    text = base.replace('data = "va_lung.csv"', f'data = "{outside / "va_lung.csv"}"')
    restore, opened = _opened_while(lambda: prepare_restore(text.encode(), "s.toml", uploads=uploads))
    assert restore.upload == ("va_lung.csv", inside) and restore.cohort.n_patients == 59
    assert opened and not [p for p in opened if str(outside) in p], opened


class _FinishedJob:
    running = False


class _RunningJob:
    running = True


def test_apply_restore_resets_stale_state(tmp_path):
    """Form values the scenario does not set go back to the pages' defaults, widget keys are dropped, results of
    another cohort and finished unkeyed jobs are dropped, a running job is kept."""
    from cohorts.builtin import load_builtin
    restore = prepare_restore((EXAMPLES / "als_slope.toml").read_bytes(), "als_slope.toml", uploads=tmp_path)
    running = _RunningJob()
    ss = {"cohort": load_builtin("va-lung"), "power_result": 1, "power_key": 2, "w_design_hybrid_on": True,
          "w_data_builtin": "va-lung", "w_generator_seed": 3, "w_other": 4, "sample_size_job": _FinishedJob(),
          "sweep_job": running, "form": {"accrual_months": 3.0, "hybrid_on": True, "hp_cart_max_depth": "4",
                                         "builtin": "va-lung", "looks_fractions": "0.3, 1"}}
    apply_restore(ss, restore)
    assert {"power_result", "power_key", "sample_size_job", "w_design_hybrid_on", "w_data_builtin",
            "w_generator_seed"}.isdisjoint(ss)
    assert ss["sweep_job"] is running and ss["w_other"] == 4
    form = ss["form"]
    assert "accrual_months" not in form and "looks_fractions" not in form and form["hybrid_on"] is False
    assert form["hp_cart_max_depth"] == "4" and form["builtin"] == "als-natural-history"
    assert ss["design"] == restore.scenario.design and ss["cohort"].name == "als-natural-history"
