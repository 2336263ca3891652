"""Saved generators: round trip, model card contents, refusal of tampered or incompatible saves."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cohorts.generators.persist as persist
from cohorts.errors import InvalidDataError
from cohorts.generators import get_generator
from cohorts.generators.persist import load_generator, read_model_card, save_generator
from cohorts.schema import CohortSchema
from cohorts.provenance import sha256_file

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def fitted():
    df = pd.read_csv(DATA / "va_lung.csv")
    schema = CohortSchema.from_dict({"id": "patient_id",
                                     "baseline": {"numeric": ["Age_in_years", "Karnofsky_score"],
                                                  "categorical": ["Celltype", "Treatment"]},
                                     "outcome": {"type": "tte", "time": "time_days", "event": "death"}})
    return get_generator("default").fit(df, schema, rng=np.random.default_rng(1))


@pytest.fixture
def saved(fitted, tmp_path):
    return save_generator(fitted, tmp_path / "gen", training_data_sha256="ab" * 32, seed=1,
                          metrics={"detection_auc": 0.55, "nan": float("nan")})


def test_round_trip_samples_identically(fitted, saved):
    loaded = load_generator(saved)
    a = fitted.sample(300, rng=np.random.default_rng(5))
    b = loaded.sample(300, rng=np.random.default_rng(5))
    pd.testing.assert_frame_equal(a, b)


def test_model_card_records_what_a_reviewer_checks(fitted, saved):
    card = read_model_card(saved)
    assert card["generator"] == "default" and card["seed"] == 1
    assert card["training_data_sha256"] == "ab" * 32
    assert card["schema"] == fitted.schema_.to_dict()
    assert card["hyperparameters"] == fitted.get_params()
    assert card["n_train_patients"] == 137
    assert card["model_sha256"] == sha256_file(saved / "model.pkl")
    assert card["metrics"] == {"detection_auc": 0.55, "nan": None}
    assert {"numpy", "pandas", "scikit-learn", "torch", "python"} <= set(card["package_versions"])
    assert card["training_seconds"] > 0


def test_edited_card_is_refused(saved):
    path = saved / "model_card.json"
    card = json.loads(path.read_text())
    card["seed"] = 2
    path.write_text(json.dumps(card))
    with pytest.raises(InvalidDataError, match="modified after it was written"):
        load_generator(saved)


def test_replaced_model_file_is_refused(saved):
    (saved / "model.pkl").write_bytes(b"not the model")
    with pytest.raises(InvalidDataError, match="does not match the SHA-256"):
        load_generator(saved)


def test_other_package_versions_are_refused_unless_allowed(saved, monkeypatch):
    real = persist.package_versions

    def newer(packages=persist.PINNED_PACKAGES):
        v = real(packages)
        v["scikit-learn"] = "99.0.0"
        return v

    monkeypatch.setattr(persist, "package_versions", newer)
    with pytest.raises(InvalidDataError, match=r"scikit-learn .* \(saved\) vs 99.0.0 \(installed\)"):
        load_generator(saved)
    assert load_generator(saved, allow_version_mismatch=True).is_fitted


def test_unfitted_or_missing(tmp_path):
    with pytest.raises(InvalidDataError, match="fitted"):
        save_generator(get_generator("default"), tmp_path / "x", training_data_sha256="", seed=None)
    with pytest.raises(InvalidDataError, match="no model_card.json"):
        load_generator(tmp_path)
