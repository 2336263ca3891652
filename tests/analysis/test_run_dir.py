"""Run directories (`insilico power|sample-size|sweep --out`) and `insilico reproduce`.

Checked against independent computations: the file hashes with hashlib, the power table with a pandas groupby of
the raw decisions and statsmodels' Clopper-Pearson interval, the rebuilt PowerResult against the live one; and
the failure modes: an edited manifest, an edited raw table, changed data, a non-empty target, an interrupted write.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from analysis.run_reader import open_run_dir
from cli import main

ROOT = Path(__file__).resolve().parents[2]
SLOPE = str(ROOT / "examples" / "als_slope.toml")


def run_cli(argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def power_run(tmp_path_factory):
    """A power run directory of the ALS slope example (40 replicates, with the generator evaluation) and the
    --json the same command printed."""
    d = tmp_path_factory.mktemp("runs") / "als"
    rc, out, err = run_cli(["power", SLOPE, "--replicates", 40, "--out", d, "--json", "--quiet"])
    assert rc == 0, err
    return d, json.loads(out)


def test_layout_and_manifest_describe_the_run(power_run):
    d, printed = power_run
    files = {p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file()}
    assert {"manifest.json", "scenario.toml", "generator/model.pkl", "generator/model_card.json",
            "results/summary.json", "results/table.csv", "raw/replicates.parquet", "evaluation/summary.csv",
            "figures/power_curve.json", "figures/marginals.json", "figures/trajectory.json"} <= files
    m = json.loads((d / "manifest.json").read_text())
    assert (m["kind"], m["seed"], m["settings"]["replicates"]) == ("power", 20261122, 40)
    assert m["command"].startswith("insilico power ") and "--out" in m["command"]
    assert (d / "scenario.toml").read_text() == Path(SLOPE).read_text()  # verbatim
    assert m["scenario"]["sha256"] == hashlib.sha256(Path(SLOPE).read_bytes()).hexdigest()
    assert m["cohort"]["builtin"] == "als-natural-history" and len(m["cohort"]["sha256"]) == 64
    assert m["versions"]["numpy"] == np.__version__ and m["platform"]
    assert m["started"] <= m["finished"] and m["elapsed_s"] >= 0
    # every other file is hashed, and the hashes are the files' real SHA-256
    assert set(m["files"]) == files - {"manifest.json"}
    for name, sha in m["files"].items():
        assert hashlib.sha256((d / name).read_bytes()).hexdigest() == sha, name
    # the manifest's results are what --json printed, without wall-clock fields
    printed = {k: v for k, v in printed.items() if k not in ("title", "cohort", "generator", "elapsed_s")}
    assert m["summary"] == printed
    assert open_run_dir(d).verify() == []


def test_raw_replicates_recompute_the_power_table(power_run):
    d, printed = power_run
    raw = pd.read_parquet(d / "raw" / "replicates.parquet")
    R, ns = 40, printed["n_total"]
    assert len(raw) == 2 * len(ns) * R
    by = raw.groupby(["scenario", "n_total"])["rejected"].agg(["sum", "count"])
    assert (by["count"] == R).all()
    eff, null = by.loc["effect"], by.loc["null"]
    np.testing.assert_allclose(eff["sum"].to_numpy() / R, printed["power"], rtol=0, atol=0)
    lo, hi = proportion_confint(eff["sum"].to_numpy(), R, alpha=0.05, method="beta")
    np.testing.assert_allclose(np.nan_to_num(lo, nan=0.0), printed["power_ci_low"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(np.nan_to_num(hi, nan=1.0), printed["power_ci_high"], rtol=1e-12, atol=1e-15)
    assert null["sum"].sum() / (len(ns) * R) == pytest.approx(printed["type1_error"], abs=0)
    # a decision is "p < alpha" for this fixed design
    assert (raw["rejected"] == (raw["p_value"] < 0.05)).all()


def test_power_result_rebuilt_from_the_directory_equals_the_table_on_disk(power_run):
    d, _ = power_run
    run = open_run_dir(d)
    result = run.power_result()
    on_disk = pd.read_csv(d / "results" / "table.csv")
    pd.testing.assert_frame_equal(result.table().reset_index(drop=True), on_disk, check_dtype=False,
                                  rtol=1e-12, atol=1e-15)
    gen = run.generator()
    assert gen.is_fitted and run.cohort().sha256 == run.manifest["cohort"]["sha256"]


def test_reproduce_gives_identical_results_and_exit_0(power_run):
    d, _ = power_run
    rc, out, err = run_cli(["reproduce", d, "--quiet"])
    assert rc == 0, out + err
    assert out.strip().endswith("reproduced: identical results")
    assert "raw/replicates.parquet: 320 rows" in out and "generator evaluation" in out


def test_a_report_written_into_the_run_directory_does_not_break_reproduce(power_run, tmp_path):
    c = _copy(power_run[0], tmp_path)
    rc, out, err = run_cli(["report", c, "--format", "html"])
    assert rc == 0, err
    assert Path(out.strip()) == c / "report" / "report.html" and (c / "report" / "report.html").is_file()
    assert open_run_dir(c).verify() == []
    (c / "stray.txt").write_text("added later")
    assert open_run_dir(c).verify() == ["stray.txt: not recorded in the manifest (added after the run)"]


def _copy(d: Path, tmp_path: Path) -> Path:
    c = tmp_path / "copy"
    shutil.copytree(d, c)
    return c


def test_reproduce_fails_with_a_diff_on_a_tampered_manifest(power_run, tmp_path):
    c = _copy(power_run[0], tmp_path)
    m = json.loads((c / "manifest.json").read_text())
    true_power = m["summary"]["power"][2]
    m["summary"]["power"][2] = 0.999
    (c / "manifest.json").write_text(json.dumps(m, indent=2))
    rc, out, _ = run_cli(["reproduce", c, "--json"])
    assert rc == 1
    res = json.loads(out)
    assert res["identical"] is False
    assert any("manifest.json was edited" in p for p in res["integrity"])
    assert f"summary.power[2]: recorded 0.999, re-run {true_power!r}" in res["differences"]


def test_reproduce_fails_on_an_edited_raw_table_and_names_the_cell(power_run, tmp_path):
    c = _copy(power_run[0], tmp_path)
    raw = pd.read_parquet(c / "raw" / "replicates.parquet")
    old = float(raw.loc[5, "p_value"])
    raw.loc[5, "p_value"] = 0.5
    raw.to_parquet(c / "raw" / "replicates.parquet", index=False)
    rc, out, _ = run_cli(["reproduce", c, "--quiet"])
    assert rc == 1
    assert "INTEGRITY: raw/replicates.parquet: changed after the run" in out
    assert f"DIFFERENT: raw/replicates.parquet row 5, p_value: recorded 0.5, re-run {old!r}" in out


def test_out_is_never_overwritten(power_run, capsys):
    d, _ = power_run
    before = json.loads((d / "manifest.json").read_text())
    rc, _, err = run_cli(["power", SLOPE, "--replicates", 10, "--out", d, "--quiet"])
    assert rc == 2 and "exists and is not an empty directory" in err
    assert json.loads((d / "manifest.json").read_text()) == before


def test_an_interrupted_write_leaves_no_directory(tmp_path, monkeypatch):
    import analysis.run_dir as run_dir

    def boom(*a, **k):
        raise RuntimeError("disk full")
    monkeypatch.setattr(run_dir, "generator_fingerprint", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        run_cli(["power", SLOPE, "--replicates", 5, "--out", tmp_path / "run", "--quiet", "--no-evaluation"])
    assert list(tmp_path.iterdir()) == []  # neither the run nor its temporary sibling


@pytest.fixture(scope="module")
def uploaded_run(tmp_path_factory):
    """A power run on an uploaded cohort (VA lung CSV + schema next to the scenario), no evaluation."""
    src = tmp_path_factory.mktemp("study")
    shutil.copy(ROOT / "tests" / "data" / "va_lung.csv", src / "va.csv")
    shutil.copy(ROOT / "examples" / "va_lung_schema.toml", src / "va.schema.toml")
    text = (ROOT / "examples" / "va_lung_tte.toml").read_text().replace(
        'builtin = "va-lung"', 'data = "va.csv"\nschema = "va.schema.toml"')
    (src / "scenario.toml").write_text(text)
    d = src / "run"
    rc, _, err = run_cli(["power", src / "scenario.toml", "--replicates", 20, "--out", d, "--quiet",
                          "--no-evaluation"])
    assert rc == 0, err
    return d


def test_an_uploaded_cohort_is_copied_and_its_hash_checked(uploaded_run, tmp_path):
    d = uploaded_run
    m = json.loads((d / "manifest.json").read_text())
    assert (m["cohort"]["data_file"], m["cohort"]["schema_file"]) == ("inputs/va.csv", "inputs/va.schema.toml")
    assert m["cohort"]["sha256"] == hashlib.sha256((ROOT / "tests" / "data" / "va_lung.csv").read_bytes()).hexdigest()
    assert m["evaluation"] is None and not (d / "evaluation").exists()
    rc, out, _ = run_cli(["reproduce", d, "--quiet"])
    assert rc == 0, out
    c = _copy(d, tmp_path)
    data = c / "inputs" / "va.csv"
    data.write_text(data.read_text().replace("\n", "\r\n", 1))  # same numbers, different bytes
    rc, out, _ = run_cli(["reproduce", c, "--quiet"])
    assert rc == 1
    assert "DIFFERENT: cohort: " in out and "the data changed since the run" in out


def test_sample_size_run_reproduces(tmp_path):
    d = tmp_path / "size"
    rc, out, err = run_cli(["sample-size", SLOPE, "--replicates", 60, "--n-min", 40, "--n-max", 400,
                            "--out", d, "--json", "--quiet", "--no-evaluation"])
    assert rc == 0, err
    m = json.loads((d / "manifest.json").read_text())
    assert m["kind"] == "sample_size" and m["settings"]["target"] == 0.8
    assert m["summary"]["n_recommended"] == json.loads(out)["n_recommended"]
    table = pd.read_parquet(d / "raw" / "evaluations.parquet")
    assert len(table) == len(json.loads(out)["evaluations"])
    rc, out, _ = run_cli(["reproduce", d, "--quiet"])
    assert rc == 0, out


def test_sweep_run_reproduces_in_process(tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text("[grid]\neffect = [0.25, 0.5]\nn_total = [40, 60]\n")
    d = tmp_path / "sweep"
    rc, _, err = run_cli(["sweep", SLOPE, "--grid", grid, "--out", d, "--replicates", 15, "--workers", 0, "--quiet"])
    assert rc == 0, err
    assert (d / "grid.toml").read_text() == grid.read_text()
    rc, out, _ = run_cli(["reproduce", d, "--quiet"])
    assert rc == 0, out


def test_reproduce_of_a_directory_without_manifest_is_a_user_error(tmp_path):
    rc, _, err = run_cli(["reproduce", tmp_path])
    assert rc == 2 and "no manifest.json" in err
