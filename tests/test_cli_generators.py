"""`insilico import | train | sample | evaluate`: the generator workflow from the command line."""

import json
from pathlib import Path

import pandas as pd
import pytest

from cli import main
from cli_generators import parse_params
from cohorts.errors import InvalidScenarioError

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "cohorts" / "fixtures"
VA_SCHEMA = """
id = "patient_id"
[baseline]
numeric = ["Age_in_years", "Karnofsky_score", "Months_from_Diagnosis"]
categorical = ["Celltype", "Prior_therapy", "Treatment"]
[outcome]
type = "tte"
time = "time_days"
event = "death"
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    (d / "schema.toml").write_text(VA_SCHEMA)
    rc = main(["train", str(ROOT / "tests" / "data" / "va_lung.csv"), "--schema", str(d / "schema.toml"),
               "--generator", "cart", "--out", str(d / "gen"), "--seed", "3", "--json", "--quiet"])
    assert rc == 0
    return d


def test_train_writes_card_with_holdout_and_metrics(trained):
    card = json.loads((trained / "gen" / "model_card.json").read_text())
    assert card["generator"] == "cart" and card["seed"] == 3
    assert 35 <= len(card["holdout_ids"]) <= 47          # 30 % of 137 patients
    assert card["n_train_patients"] == 137 - len(card["holdout_ids"])
    assert 0 <= card["metrics"]["fidelity"]["detection_auc"] <= 1


def test_sample_same_seed_identical_file(trained, capsys):
    a, b = trained / "a.csv", trained / "b.csv"
    for out in (a, b):
        assert main(["sample", str(trained / "gen"), "--n", "120", "--seed", "9", "--out", str(out), "--quiet"]) == 0
    assert a.read_bytes() == b.read_bytes()
    assert main(["sample", str(trained / "gen"), "--n", "120", "--seed", "10", "--out", str(b), "--quiet"]) == 0
    assert a.read_bytes() != b.read_bytes()
    assert len(pd.read_csv(a)) == 120


def test_sample_with_criteria(trained):
    out = trained / "eligible.csv"
    assert main(["sample", str(trained / "gen"), "--n", "80", "--seed", "1", "--out", str(out), "--quiet",
                 "--criteria", "Karnofsky_score >= 60 and Celltype in ['adeno', 'large']"]) == 0
    df = pd.read_csv(out)
    assert (df["Karnofsky_score"] >= 60).all() and set(df["Celltype"]) <= {"adeno", "large"}


def test_evaluate_json_uses_the_recorded_holdout(trained, capsys):
    assert main(["evaluate", str(trained / "gen"), "--data", str(ROOT / "tests" / "data" / "va_lung.csv"),
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    card = json.loads((trained / "gen" / "model_card.json").read_text())
    assert out["n_holdout"] == len(card["holdout_ids"]) and out["n_train"] == card["n_train_patients"]
    # same seed and split as at training: the numbers recorded in the card are reproduced
    assert out["fidelity"]["detection_auc"] == card["metrics"]["fidelity"]["detection_auc"]


def test_tampered_generator_exits_2(trained, capsys):
    card_path = trained / "gen" / "model_card.json"
    card = json.loads(card_path.read_text())
    card["generator"] = "copula"
    bad = trained / "bad"
    bad.mkdir()
    (bad / "model.pkl").write_bytes((trained / "gen" / "model.pkl").read_bytes())
    (bad / "model_card.json").write_text(json.dumps(card))
    assert main(["sample", str(bad), "--n", "5", "--seed", "1", "--out", str(trained / "x.csv")]) == 2
    assert "modified after it was written" in capsys.readouterr().err


def test_import_proact_then_train(tmp_path):
    assert main(["import", "proact", str(FIX / "proact.zip"), "--out", str(tmp_path / "pa")]) == 0
    df = pd.read_csv(tmp_path / "pa" / "cohort.csv")
    assert {"alsfrs_r", "month", "site_of_onset"} <= set(df.columns)
    assert main(["train", str(tmp_path / "pa" / "cohort.csv"), "--schema", str(tmp_path / "pa" / "schema.toml"),
                 "--out", str(tmp_path / "g"), "--seed", "1", "--holdout", "0", "--quiet"]) == 0


def test_import_adam_tte(tmp_path):
    assert main(["import", "adam", "--adsl", str(FIX / "adam" / "adsl.xpt"), "--adtte",
                 str(FIX / "adam" / "adtte.xpt"), "--paramcd", "OS", "--out", str(tmp_path / "ad")]) == 0
    assert "type = \"tte\"" in (tmp_path / "ad" / "schema.toml").read_text()


def test_params_are_parsed_as_toml_literals_never_evaluated():
    assert parse_params(["epochs=50", "dp_epsilon=3.0", "smoothing='density'", "flag=true", "word=abc"]) == {
        "epochs": 50, "dp_epsilon": 3.0, "smoothing": "density", "flag": True, "word": "abc"}
    assert parse_params(["x=__import__('os')"]) == {"x": "__import__('os')"}   # a plain string, not code
    with pytest.raises(InvalidScenarioError, match="NAME=VALUE"):
        parse_params(["no_equals"])
