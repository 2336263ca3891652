"""AppTest walkthrough of the Streamlit app: Data -> Generator -> Design -> Power -> Report.

The background jobs (training, simulation) run in threads; the tests wait for a job's thread, then rerun the
script the way the polling fragment would.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from app_support import new_app, page, texts, wait_job
from streamlit.testing.v1 import AppTest

from app_pages._data_sources import UPLOAD


@pytest.fixture(scope="module")
def walked() -> AppTest:
    """The app after a whole walk on the built-in ALS cohort with a small power run."""
    at = new_app()
    # Data: the default built-in cohort, labelled as simulated
    assert at.session_state["cohort"].name == "als-natural-history"
    assert "not patient data" in texts(at.warning)
    assert at.metric[0].value == "3,000"

    # Generator: train in the background, then the validation figures
    page(at, "generator")
    at.button[0].click().run()
    assert not at.exception, at.exception
    wait_job(at, "fit_job")
    assert at.session_state["generator"].is_fitted
    assert "trained" in texts(at.success)
    assert len(at.tabs) == 2

    # Design: small run
    page(at, "design")
    at.text_input(key="w_design_n_total").set_value("60, 120").run()
    at.number_input(key="w_design_replicates").set_value(50).run()
    at.text_input(key="w_design_visits_months").set_value("0, 2, 4, 6").run()
    assert not at.exception and not at.error, texts(at.error)
    assert at.session_state["settings"].n_total == (60, 120)

    # Power: start, switch page while it runs, come back
    page(at, "power")
    at.button[0].click().run()
    assert not at.exception, at.exception
    page(at, "design")
    page(at, "power")
    wait_job(at, "power_job")
    return at


def test_power_results_shown(walked):
    at = walked
    result = at.session_state["power_result"]
    assert result.settings.replicates == 50 and result.n_total == (60, 120)
    assert all(0.0 <= p <= 1.0 for p in result.power)
    assert 0.0 <= result.type1_error <= 1.0
    table = at.dataframe[0].value
    assert list(table["n_total"]) == [60, 120]
    assert table["power"].between(0, 1).all()
    labels = [m.label for m in at.metric]
    assert "Type I error (no effect)" in labels
    assert not at.warning  # results match the current design


def test_page_switch_keeps_design(walked):
    at = walked
    design = at.session_state["design"]
    page(at, "data")
    page(at, "design")
    assert at.text_input(key="w_design_n_total").value == "60, 120"
    assert at.number_input(key="w_design_replicates").value == 50
    assert at.text_input(key="w_design_visits_months").value == "0, 2, 4, 6"
    assert at.session_state["design"] == design
    assert "Design:** slope" in texts(at.sidebar.caption)


def test_report_page(walked):
    """The power run wrote a run directory in the session's workspace; the Report page builds from it."""
    from analysis.run_reader import open_run_dir
    at = page(walked, "report")
    assert not at.exception, at.exception
    run = open_run_dir(at.session_state["power_run_dir"])
    assert run.kind == "power" and run.verify() == []
    assert Path(os.environ["INSILICO_WORKSPACE"]) in run.path.parents
    labels = [b.label for b in at.get("download_button")]
    assert {"HTML report", "manifest.json", "Raw data (zip)", "Whole run directory (zip)"} <= set(labels)
    html = at.session_state["report_html"][1]
    result = at.session_state["power_result"]
    assert str(result.seed) in html and at.session_state["cohort"].sha256 in html
    assert html.count("plotly.js v") == 1
    assert 'builtin = "als-natural-history"' in texts(at.code)
    np.testing.assert_array_equal(run.power_result().power, result.power)


def test_report_page_builds_the_pdf(walked):
    from analysis.report_pdf import pdf_renderer_problem
    at = page(walked, "report")
    if pdf_renderer_problem() is not None and not os.environ.get("INSILICO_REQUIRE_BROWSER"):
        pytest.skip(pdf_renderer_problem())
    next(b for b in at.button if b.label == "Build the PDF").click().run(timeout=120)
    assert not at.exception, at.exception
    pdf = at.session_state["report_pdf"][1]
    assert pdf.startswith(b"%PDF-") and b"%%EOF" in pdf[-1024:]
    assert "PDF report" in [b.label for b in at.get("download_button")]


def test_scenario_download_reproduces_the_app_numbers(walked):
    """The scenario TOML the Report page offers gives the same numbers through the library (the CLI's path).

    The app's fitted generator is reused (fitting is deterministic per seed: the generator contract tests).
    """
    from analysis.workflow import run_power
    from trials.scenario import parse_scenario_text

    at = page(walked, "report")
    toml = next(c.value for c in at.code if "[cohort]" in c.value)
    scenario = parse_scenario_text(toml)
    ui = at.session_state["power_result"]
    assert scenario.design == ui.design and scenario.power == ui.settings and scenario.seed == ui.seed
    assert at.session_state["generator_meta"][1:] == (scenario.cohort.generator, scenario.seed)
    again = run_power(at.session_state["generator"], scenario.design, scenario.power, seed=scenario.seed)
    np.testing.assert_array_equal(again.power, ui.power)
    np.testing.assert_array_equal(again.p_values_null, ui.p_values_null)


def test_bad_upload_shows_error_not_exception():
    at = new_app()
    at.radio(key="w_data_data_source").set_value(UPLOAD).run()
    at.file_uploader[0].set_value(("broken.csv", b"id,x\n1,2\n2,\"3\n", "text/csv")).run()
    assert not at.exception, at.exception
    assert "broken.csv" in texts(at.error)


def test_upload_with_wrong_roles_shows_error():
    csv = (Path(__file__).resolve().parents[1] / "data" / "va_lung.csv").read_bytes()
    at = new_app()
    at.radio(key="w_data_data_source").set_value(UPLOAD).run()
    at.file_uploader[0].set_value(("va_lung.csv", csv, "text/csv")).run()
    assert not at.exception and not at.error, texts(at.error)
    assert at.session_state["cohort"].schema.outcome.type == "tte"
    # an event column that is not 0/1 is reported inline
    event_box = next(s for s in at.selectbox if s.label.startswith("Event column"))
    event_box.set_value("Celltype").run()
    assert not at.exception, at.exception
    assert "Celltype" in texts(at.error)


def test_design_effect_modifiers_and_a_bad_subgroup():
    """The Design page's effect modifiers reach the design; a bad subgroup expression is an inline error."""
    at = new_app()
    page(at, "design")
    at.number_input(key="w_design_responder_pct").set_value(60.0).run()
    at.text_input(key="w_design_effect_subgroup").set_value("age < 60").run()
    assert not at.exception and not at.error
    effect = at.session_state["design"].effect
    assert effect.responder_fraction == pytest.approx(0.6) and effect.subgroup == "age < 60"
    at.text_input(key="w_design_effect_subgroup").set_value("age <").run()
    assert not at.exception and at.error
    at.text_input(key="w_design_effect_subgroup").set_value("__import__('os')").run()
    assert not at.exception and at.error


def test_sample_size_search_equals_the_library_call():
    """Power page, "Find N": runs in the background and gives exactly run_sample_size's answer for the seed (the
    numbers `insilico sample-size` prints for the same scenario)."""
    from analysis.workflow import fit_generator, run_sample_size

    at = new_app()
    page(at, "design")
    at.text_input(key="w_design_n_total").set_value("60, 120").run()
    at.number_input(key="w_design_replicates").set_value(100).run()
    page(at, "power")
    at.number_input(key="w_power_target").set_value(0.7).run()
    at.button[1].click().run()
    assert not at.exception, at.exception
    wait_job(at, "sample_size_job")
    ui = at.session_state["sample_size_job"].result
    ss = at.session_state
    gen = fit_generator(ss["cohort"], "default", seed=ss["seed"])
    ref = run_sample_size(gen, ss["design"], ss["settings"], seed=ss["seed"], target=0.7)
    assert ui.to_json_dict() == ref.to_json_dict()
    assert f"**{ref.search.n_recommended}**" in texts(at.success) or str(ref.search.n_recommended) in \
        texts(at.success)
    assert "earlier design" not in texts(at.warning)
    at.number_input(key="w_power_target").set_value(0.9).run()          # another target: the answer is stale
    assert "This search is for an earlier design, cohort, seed or target" in texts(at.warning)
