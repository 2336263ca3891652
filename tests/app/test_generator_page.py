"""AppTest of the Generator page on the built-in VA lung cohort (137 patients, so every job takes seconds):
train, evaluate, compare, and the save / load round trip through a zip.

AppTest cannot read a download button's bytes, so the zip builder and loader are tested directly, then the
built zip is uploaded through the page's file uploader.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from app_pages._generator_jobs import (extract_generator_zip, generator_zip, hyperparameter_defaults,
                                       load_generator_zip)
from cohorts.errors import InvalidDataError

APP = str(Path(__file__).resolve().parents[2] / "app.py")
TIMEOUT = 60
SEED = 7


def _texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def _ok(at: AppTest) -> AppTest:
    assert not at.exception, at.exception
    return at


def _generator_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    _ok(at.run())
    _ok(at.selectbox(key="w_data_builtin").set_value("va-lung").run())
    assert at.session_state["cohort"].name == "va-lung"
    _ok(at.switch_page("app_pages/generator.py").run())
    _ok(at.number_input(key="w_generator_seed").set_value(SEED).run())
    return at


def _wait(at: AppTest, job_key: str) -> AppTest:
    job = at.session_state[job_key]
    job.join(TIMEOUT)
    assert not job.running, f"{job_key} did not finish in {TIMEOUT} s"
    assert job.error is None and job.exception is None, job.error or job.traceback
    return _ok(at.run())


def _click(at: AppTest, label: str) -> AppTest:
    return _ok(next(b for b in at.button if b.label == label).click().run())


@pytest.fixture(scope="module")
def cohort():
    from cohorts.builtin import load_builtin
    return load_builtin("va-lung")


@pytest.fixture(scope="module")
def fitted(cohort):
    from analysis.workflow import fit_generator
    return fit_generator(cohort, "cart", seed=SEED)


@pytest.fixture(scope="module")
def trained_app() -> AppTest:
    """The page after training "default" then "cart" (the session's generator is cart)."""
    at = _generator_page()
    for family in ("default", "cart"):
        _ok(at.selectbox(key="w_generator_generator_name").set_value(family).run())
        _click(at, "Train generator")
        _wait(at, "fit_job")
        assert at.session_state["generator_meta"][1:] == (family, SEED)
        assert at.session_state["generator"].is_fitted
        assert f"Generator **{family}** trained" in _texts(at.success)
    assert len(at.tabs) == 2  # baseline covariates + Kaplan-Meier
    assert "cart (seed 7)" in _texts(at.sidebar.caption)
    return at


# ------------------------------------------------------------------------------------------ train
def test_train_default_and_cart(trained_app):
    at = trained_app
    assert at.session_state["generator"].name == "cart"
    assert any(b.label == "Train again" for b in at.button)
    assert "Hyperparameters:" in _texts(at.caption)


def test_hyperparameter_form_reaches_the_generator():
    defaults = hyperparameter_defaults("cart")
    assert defaults["min_samples_leaf"] == 5 and defaults["max_depth"] is None  # optional: int | None
    assert "visit_order" not in defaults  # no default of a scalar type, no annotation: not editable
    at = _generator_page()
    _ok(at.selectbox(key="w_generator_generator_name").set_value("cart").run())
    _ok(at.number_input(key="w_generator_hp_cart_min_samples_leaf").set_value(12).run())
    _ok(at.text_input(key="w_generator_hp_cart_max_depth").set_value("four").run())
    assert "max depth: 'four' is not an integer" in _texts(at.error)
    assert next(b for b in at.button if b.label == "Train generator").disabled
    _ok(at.text_input(key="w_generator_hp_cart_max_depth").set_value("4").run())
    assert not at.error
    _click(at, "Train generator")
    _wait(at, "fit_job")
    gen = at.session_state["generator"]
    assert gen.min_samples_leaf == 12 and gen.max_depth == 4
    assert at.session_state["generator_params"] == {"min_samples_leaf": 12, "max_depth": 4}
    assert "custom hyperparameters" in _texts(at.sidebar.caption)


# ---------------------------------------------------------------------------------- evaluate, compare
def test_evaluation_shows_summary_and_matches_the_cli_path(cohort):
    from analysis.workflow import evaluation_stream, fit_generator
    from cohorts.evaluate import evaluate_generator, split_train_holdout

    at = _generator_page()
    _click(at, "Evaluate")
    _wait(at, "eval_job")
    summary = at.dataframe[0].value
    assert {"name", "value", "target", "meets_target"} <= set(summary.columns)
    assert "detection AUC (holdout vs synthetic)" in set(summary["name"])
    assert any(t.label.startswith("Held-out") for t in at.tabs)
    assert "targets met" in _texts(at.markdown)
    # the same numbers as `insilico train --holdout 0.3 --seed 7` (cli_generators.py)
    train, holdout = split_train_holdout(cohort.data, cohort.schema, holdout_fraction=0.3, rng=evaluation_stream(SEED))
    gen = fit_generator(cohort, "default", seed=SEED, data=train)
    report = evaluate_generator(gen, train, holdout, cohort.schema, rng=evaluation_stream(SEED))
    ui = at.session_state["evaluation"].report
    assert ui.fidelity.detection_auc == report.fidelity.detection_auc
    assert ui.privacy.membership_auc == report.privacy.membership_auc


def test_comparison_table_has_both_families():
    at = _generator_page()
    _ok(at.multiselect(key="w_generator_compare_families").set_value(["copula", "cart"]).run())
    _click(at, "Compare")
    _wait(at, "compare_job")
    table = at.dataframe[0].value
    assert sorted(table["family"]) == ["cart", "copula"]
    assert table["detection_auc"].is_monotonic_increasing
    assert not at.warning


# -------------------------------------------------------------------------------------- save / load
def test_zip_round_trip_samples_identically(cohort, fitted):
    data = generator_zip(fitted, training_data_sha256=cohort.sha256, seed=SEED, metrics={"x": 1.0})
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert sorted(zf.namelist()) == ["model.pkl", "model_card.json"]
    loaded, card = load_generator_zip(data, schema=cohort.schema)
    assert card["seed"] == SEED and card["training_data_sha256"] == cohort.sha256 and card["metrics"] == {"x": 1.0}
    a = fitted.sample(40, rng=np.random.default_rng(3))
    b = loaded.sample(40, rng=np.random.default_rng(3))
    pd.testing.assert_frame_equal(a, b)


def _rezip(data: bytes, edit) -> bytes:
    """A copy of a generator zip with ``edit(name, bytes) -> (name, bytes) | None`` applied to each member."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            member = edit(name, src.read(name))
            if member is not None:
                dst.writestr(*member)
    return out.getvalue()


def test_unsafe_or_foreign_zips_are_refused(cohort, fitted, tmp_path):
    good = generator_zip(fitted, training_data_sha256=cohort.sha256, seed=SEED)
    evil = _rezip(good, lambda n, b: (n, b) if n != "model_card.json" else ("../evil", b))
    with pytest.raises(InvalidDataError, match=r"'\.\.'"):
        extract_generator_zip(evil, tmp_path / "a")
    assert not (tmp_path / "evil").exists()
    absolute = _rezip(good, lambda n, b: ("/tmp/model.pkl", b) if n == "model.pkl" else (n, b))
    with pytest.raises(InvalidDataError, match="absolute"):
        extract_generator_zip(absolute, tmp_path / "b")
    buf = io.BytesIO(good)
    with zipfile.ZipFile(buf, "a") as zf:
        zf.writestr("run_me.py", "print(1)")
    with pytest.raises(InvalidDataError, match="run_me.py"):
        extract_generator_zip(buf.getvalue(), tmp_path / "c")
    with pytest.raises(InvalidDataError, match="more than"):
        extract_generator_zip(good, tmp_path / "d", max_bytes=1000)
    with pytest.raises(InvalidDataError, match="not a zip"):
        extract_generator_zip(b"not a zip", tmp_path / "e")
    # a zip of the directory `insilico train` writes (one folder level) is accepted
    nested = _rezip(good, lambda n, b: (f"my_generator/{n}", b))
    assert sorted(p.name for p in extract_generator_zip(nested, tmp_path / "f").iterdir()) == \
        ["model.pkl", "model_card.json"]


def test_schema_mismatch_is_refused_before_unpickling(cohort):
    from analysis.workflow import fit_generator
    from cohorts.cohort import Cohort
    from cohorts.schema import CohortSchema

    d = cohort.schema.to_dict()
    d["baseline"]["categorical"] = [c for c in d["baseline"]["categorical"] if c != "Treatment"]
    schema = CohortSchema.from_dict(d)
    other = Cohort(name="va-lung-no-treatment", data=cohort.data.drop(columns=["Treatment"]), schema=schema)
    gen = fit_generator(other, "copula", seed=1)
    data = generator_zip(gen, training_data_sha256=other.sha256, seed=1)
    with pytest.raises(InvalidDataError, match="other column roles.*baseline"):
        load_generator_zip(data, schema=cohort.schema)


def test_upload_loads_the_generator_and_refuses_tampered_or_evil_zips(cohort, fitted):
    data = generator_zip(fitted, training_data_sha256=cohort.sha256, seed=11)
    at = _generator_page()
    uploader = at.get("file_uploader")[0]
    _ok(uploader.set_value(("gen.zip", data, "application/zip")).run())
    assert not at.error, _texts(at.error)
    loaded = at.session_state["generator"]
    pd.testing.assert_frame_equal(loaded.sample(30, rng=np.random.default_rng(5)),
                                  fitted.sample(30, rng=np.random.default_rng(5)))
    assert at.session_state["generator_meta"] == (cohort.sha256, "cart", 11)
    assert at.selectbox(key="w_generator_generator_name").value == "cart"
    assert at.number_input(key="w_generator_seed").value == 11
    assert "cart (seed 11, loaded from a file)" in _texts(at.sidebar.caption)
    assert "loaded from **gen.zip**" in _texts(at.success)
    assert any("model card" in e.label.lower() for e in at.expander)

    def edit_card(name, raw):
        if name != "model_card.json":
            return name, raw
        card = json.loads(raw)
        card["seed"] = 12345
        return name, json.dumps(card).encode()
    tampered = _rezip(data, edit_card)
    _ok(at.get("file_uploader")[0].set_value(("tampered.zip", tampered, "application/zip")).run())
    assert "modified after it was written" in _texts(at.error)
    assert at.session_state["generator"] is loaded  # the session keeps its generator

    evil = _rezip(data, lambda n, b: ("../evil", b) if n == "model.pkl" else (n, b))
    _ok(at.get("file_uploader")[0].set_value(("evil.zip", evil, "application/zip")).run())
    assert "'..'" in _texts(at.error)
