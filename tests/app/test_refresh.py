"""A browser refresh, two sessions side by side, cancelling from the page, and the page guard (AppTest).

A refresh starts a new streamlit session with an empty ``session_state``; the address keeps ``?ws=<key>``, which
an AppTest gets through ``at.query_params``. The real-browser versions are in tests/browser/.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from app_support import TIMEOUT, new_app, page, texts, wait_job
from streamlit.testing.v1 import AppTest

from app_pages._jobs import read_statuses
from app_pages._runs import workspace_root

PAGES = ("data", "generator", "design", "power", "outcome", "report", "runs")

def _small_design(at: AppTest, n: str = "60, 120", replicates: int = 40) -> AppTest:
    page(at, "design")
    at.text_input(key="w_design_n_total").set_value(n).run()
    at.number_input(key="w_design_replicates").set_value(replicates).run()
    assert not at.exception and not at.error, texts(at.error)
    return at


def test_a_refresh_comes_back_to_the_same_state():
    at = _small_design(new_app())
    token = at.session_state["workspace_token"]
    design, settings = at.session_state["design"], at.session_state["settings"]

    again = new_app(token)                                   # the refreshed page: a new session, same address
    assert again.session_state["workspace_token"] == token
    assert again.session_state["design"] == design and again.session_state["settings"] == settings
    page(again, "design")                                # the widgets show what was entered
    assert again.text_input(key="w_design_n_total").value == "60, 120"
    assert again.number_input(key="w_design_replicates").value == 40
    for name in PAGES:                                    # every page runs on the restored state
        page(again, name)
        assert not again.exception, (name, again.exception)


def test_a_refresh_during_a_run_shows_the_finished_run():
    at = _small_design(new_app())
    page(at, "power")
    next(b for b in at.button if b.label == "Run simulation").click().run()
    job = at.session_state["power_job"]
    token = at.session_state["workspace_token"]
    assert job.running

    again = page(new_app(token), "power")                   # refresh while it runs
    assert again.session_state["power_job"] is job
    if job.running:                                       # its progress is shown on the page and in the sidebar
        bars = [p.proto.text for p in again.get("progress")]
        assert len(bars) == 2 and all(t.startswith("Simulating: ") and "left)" in t for t in bars), bars
    job.join(TIMEOUT)
    assert job.state == "finished", job.error or job.traceback
    again.run()
    assert not again.exception, again.exception
    result = again.session_state["power_result"]
    assert result.n_total == (60, 120) and result.settings.replicates == 40
    assert "Type I error (no effect)" in [m.label for m in again.metric]
    page(again, "runs")
    (status,) = [s for s in read_statuses(workspace_root() / token) if s.kind == "power"]
    assert status.state == "finished" and status.run_dir == Path(again.session_state["power_run_dir"]).name
    assert status.run_dir in texts(again.caption) or status.run_dir in str(again.dataframe[0].value)
    page(again, "report")                                # the report is built from that run
    assert again.session_state["cohort"].sha256 in again.session_state["report_html"][1]


def test_two_sessions_do_not_see_each_other():
    a = _small_design(new_app())
    page(a, "power")
    next(b for b in a.button if b.label == "Run simulation").click().run()
    a.session_state["power_job"].join(TIMEOUT)
    a.run()
    token_a = a.session_state["workspace_token"]
    run_a = Path(a.session_state["power_run_dir"])

    b = new_app()                                            # another browser: no address key
    token_b = b.session_state["workspace_token"]
    assert token_b != token_a
    assert "cohort" in b.session_state and "power_result" not in b.session_state
    page(b, "report")
    assert "Run a simulation first" in texts(b.info)     # no run of session a is offered
    page(b, "runs")
    assert "No runs yet" in texts(b.info)
    assert not (workspace_root() / token_b / "runs").exists() or not any((workspace_root() / token_b / "runs").iterdir())
    assert run_a.parent.parent == workspace_root() / token_a

    for forged in (f"../{token_a}", token_a.upper(), token_a + "0", "", "x" * 24):   # never another workspace
        c = new_app(forged)
        assert c.session_state["workspace_token"] not in (token_a, forged)
        assert "power_result" not in c.session_state


def test_cancel_from_the_power_page_stops_the_run_and_writes_nothing():
    at = _small_design(new_app(), n="100, 200, 300, 400, 500", replicates=20000)
    page(at, "power")
    next(b for b in at.button if b.label == "Run simulation").click().run()
    job = at.session_state["power_job"]
    cancel = next(b for b in at.button if b.label == "Cancel" and b.key.startswith("w_cancel_power_job"))
    cancel.click().run()
    job.join(TIMEOUT)
    assert job.state == "cancelled"
    at.run()
    assert "cancelled" in texts(at.info)
    assert "power_result" not in at.session_state
    folder = workspace_root() / at.session_state["workspace_token"]
    assert not (folder / "runs").exists() or not any((folder / "runs").iterdir())
    (status,) = read_statuses(folder)
    assert status.state == "cancelled" and status.run_dir is None


def _guarded(kind: str):
    import streamlit as st

    from app_pages._session import begin_session, page_guard
    from cohorts.errors import InvalidScenarioError
    begin_session()
    st.session_state["kept"] = 1
    with page_guard("test"):
        st.write("before")
        if kind == "mistake":
            raise InvalidScenarioError(["power.n_total: must be positive", "effect.value: missing"])
        {}["bug"]


def test_the_page_guard_shows_sentences_not_tracebacks():
    mistake = AppTest.from_function(_guarded, args=("mistake",), default_timeout=30).run()
    assert not mistake.exception
    assert "power.n_total: must be positive" in texts(mistake.error)
    bug = AppTest.from_function(_guarded, args=("bug",), default_timeout=30).run()
    assert "Internal error while showing the test page: KeyError" in texts(bug.error)
    assert bug.expander[0].label.startswith("Technical details")
    assert len(bug.exception) == 1 and bug.exception[0] in bug.expander[0].exception   # folded away

    from app_pages._jobs import (
        recall_session,  # kept for a refresh even though the page failed
    )
    assert recall_session(bug.session_state["workspace_token"])["kept"] == 1


def test_widget_keys_are_never_kept():
    from app_pages._jobs import recall_session
    at = _small_design(new_app())
    kept = recall_session(at.session_state["workspace_token"])
    assert kept and "form" in kept and "design" in kept
    assert not [k for k in kept if k.startswith("w_")]
    assert np.isfinite(kept["seed"])


def test_a_generator_trained_under_other_roles_is_not_adopted():
    """The roles change while training runs (same data, so the same generator key): the finished generator,
    trained with the old roles, must not become the session's."""
    from dataclasses import replace
    at = page(new_app(), "generator")
    next(b for b in at.button if b.label == "Train generator").click().run()
    job = at.session_state["fit_job"]
    cohort = at.session_state["cohort"]
    fewer = replace(cohort.schema, categorical=tuple(c for c in cohort.schema.categorical if c != "c9orf72"))
    at.session_state["cohort"] = replace(cohort, schema=fewer)      # what the Data page does on a role change
    job.join(TIMEOUT)
    assert job.state == "finished" and job.result.schema_ == cohort.schema
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["fit_job"].adopted and "generator" not in at.session_state

    at.session_state["cohort"] = cohort                                # the same roles: adopted as before
    at.run()                                                          # (the button's arguments are bound per run)
    next(b for b in at.button if b.label == "Train generator").click().run()
    wait_job(at, "fit_job")
    assert at.session_state["generator"].schema_ == cohort.schema
