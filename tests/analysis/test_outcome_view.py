"""Outcome view of one trial: Table 1 (tableone) against closed-form SMDs and pandas, numbers at risk against a
direct count, Kaplan-Meier steps against a hand-written product-limit estimator, trajectories against pandas and
scipy, subgroup rows against the registered estimator on the filtered frame, and one simulated replicate as
frames against the batch it came from (real trials: VA lung, GBSG2, progabide epilepsy, Beat the Blues)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.estimators import SINGLE, analyze_batch, cox_test, logrank_test, slope_test, ttest_test
from analysis.estimators._common import to_test_result
from analysis.outcome_view import (OneTrial, cohort_trial, forest_figure, km_figure, nice_times, numbers_at_risk,
                                   simulate_one_trial, subgroup_effects, table_one, trajectory_figure,
                                   trajectory_table)
from analysis.workflow import fit_generator
from cohorts.builtin import load_builtin
from cohorts.cohort import Cohort
from cohorts.errors import InvalidDataError, UnknownNameError
from cohorts.schema import CohortSchema
from trials.design import Arm, Dropout, Effect, Endpoint, TrialDesign
from trials.simulate import simulate_trials

DATA = Path(__file__).resolve().parents[1] / "data"
TOL = 1e-6      # Table 1 closed forms (values printed with 6 decimals by tableone: rounding <= 5e-7)
EXACT = 1e-12   # the same arithmetic reached by two paths


@pytest.fixture(scope="module")
def va() -> pd.DataFrame:
    df = pd.read_csv(DATA / "va_lung.csv")
    df.loc[[3, 40], "Age_in_years"] = np.nan      # missing values must be left out of means and SMDs
    df.loc[7, "Celltype"] = np.nan
    return df


def _smd_cont(x1, x0):
    x1, x0 = x1.dropna(), x0.dropna()
    return (x1.mean() - x0.mean()) / np.sqrt((x1.var(ddof=1) + x0.var(ddof=1)) / 2)


def _smd_bin(p1, p0):
    return (p1 - p0) / np.sqrt((p1 * (1 - p1) + p0 * (1 - p0)) / 2)


# --------------------------------------------------------------------------------------------- Table 1
def test_table_one_smd_counts_and_means_against_closed_forms_and_pandas(va):
    cont = ["Age_in_years", "Karnofsky_score", "Months_from_Diagnosis"]
    t = table_one(va, arm="Treatment", columns=[*cont, "Celltype", "Prior_therapy"], treated_value="test",
                  decimals=6)
    assert list(t.columns) == ["variable", "level", "column", "Missing", "Overall", "standard", "test", "SMD"]
    g = {a: va[va["Treatment"] == a] for a in ("standard", "test")}
    smd = t.dropna(subset=["SMD"]).set_index("column")["SMD"]
    diffs = []
    for c in cont:   # signed, treated minus control, sample SDs
        diffs.append(abs(smd[c] - _smd_cont(g["test"][c], g["standard"][c])))
        row = t[(t["column"] == c)].iloc[0]
        for arm, col in (("standard", "standard"), ("test", "test"), (None, "Overall")):
            x = (va if arm is None else g[arm])[c].dropna()
            m, s = map(float, re.fullmatch(r"([-\d.]+) \(([-\d.]+)\)", row[col]).groups())
            assert abs(m - x.mean()) < TOL and abs(s - x.std(ddof=1)) < TOL, (c, col)
        assert int(row["Missing"]) == int(va[c].isna().sum())
    p1, p0 = ((g[a]["Prior_therapy"] == "yes").mean() for a in ("test", "standard"))
    diffs.append(abs(smd["Prior_therapy"] - abs(_smd_bin(p1, p0))))   # binary: non-negative (Yang-Dalton)
    assert max(diffs) < TOL, max(diffs)
    # categorical counts and percentages per arm (missing shown as its own level)
    for c in ("Celltype", "Prior_therapy"):
        rows = t[t["column"] == c].set_index("level")
        for arm in ("standard", "test"):
            vc = g[arm][c].fillna("(missing)").value_counts()
            for level, cell in rows[arm].items():
                n, pct = re.fullmatch(r"(\d+) \(([\d.]+)\)", cell).groups()
                assert int(n) == int(vc.get(level, 0)), (c, arm, level)
                assert abs(float(pct) - 100 * vc.get(level, 0) / len(g[arm])) < TOL
    n_row = t[t["variable"] == "n"].iloc[0]
    assert (int(n_row["Overall"]), int(n_row["standard"]), int(n_row["test"])) == (137, 69, 68)


def test_table_one_direction_nonnormal_and_errors(va):
    a = table_one(va, arm="Treatment", columns=["Age_in_years", "Prior_therapy"], treated_value="test")
    b = table_one(va, arm="Treatment", columns=["Age_in_years", "Prior_therapy"], treated_value="standard")
    sa, sb = (x.dropna(subset=["SMD"]).set_index("column")["SMD"] for x in (a, b))
    assert abs(sa["Age_in_years"] + sb["Age_in_years"]) < EXACT and sa["Age_in_years"] > 0  # sign follows arms
    assert abs(sa["Prior_therapy"] - sb["Prior_therapy"]) < EXACT
    assert list(b.columns[5:7]) == ["test", "standard"]          # control first
    t = table_one(va, arm="Treatment", columns=["Months_from_Diagnosis"], nonnormal=["Months_from_Diagnosis"],
                  treated_value="test", decimals=6)
    cell = t.loc[t["column"] == "Months_from_Diagnosis", "test"].iloc[0]
    q = va.loc[va["Treatment"] == "test", "Months_from_Diagnosis"].quantile([0.5, 0.25, 0.75]).to_numpy()
    got = np.array(re.findall(r"[-\d.]+", cell), dtype=float)
    assert np.max(np.abs(got - q)) < TOL
    three = va.assign(Treatment=np.resize(["a", "b", "c"], len(va)))
    with pytest.raises(InvalidDataError, match="two arms"):
        table_one(three, arm="Treatment", columns=["Age_in_years"])
    with pytest.raises(InvalidDataError, match="nope"):
        table_one(va, arm="Treatment", columns=["nope"])
    with pytest.raises(InvalidDataError, match="categorical"):
        table_one(va, arm="Treatment", columns=["Celltype"], categorical=[])


# ------------------------------------------------------------------------------------ Kaplan-Meier
def _product_limit(t, e):
    """Kaplan-Meier by hand: S(t) at each distinct event time."""
    out = {}
    s = 1.0
    for u in np.unique(t[e == 1]):
        s *= 1.0 - np.sum((t == u) & (e == 1)) / np.sum(t >= u)
        out[u] = s
    return out


@pytest.mark.parametrize("name,time,event,arm", [("va_lung.csv", "time_days", "death", "Treatment"),
                                                  ("gbsg2.csv", "rfs_days", "event", "horTh")])
def test_numbers_at_risk_and_km_figure(name, time, event, arm):
    df = pd.read_csv(DATA / name)
    times = [0.0, 30.0, float(df[time].iloc[0]), 365.0, 700.5]      # includes an observed time (ties count)
    risk = numbers_at_risk(df, time=time, arm=arm, times=times)
    for a in risk.index:
        for tt in times:
            direct = sum(1 for x, g in zip(df[time], df[arm]) if g == a and x >= tt)
            assert risk.loc[a, tt] == direct
    fig = km_figure(df, time=time, event=event, arm=arm, time_unit="days", at_risk_times=times)
    assert "yaxis2" in fig.layout and np.array_equal(fig.layout.xaxis.tickvals, times)
    texts = {tr.name: [int(v) for v in tr.text] for tr in fig.data if tr.mode == "text"}
    for a in risk.index:
        assert texts[f"{a} at risk"] == risk.loc[a].tolist()
        curve = next(tr for tr in fig.data if tr.name.startswith(f"{a} (n = "))
        sub = df[df[arm] == a]
        hand = _product_limit(sub[time].to_numpy(float), sub[event].to_numpy(int))
        x, y = np.asarray(curve.x), np.asarray(curve.y)
        worst = max(abs(y[np.flatnonzero(x == u)[0]] - s) for u, s in hand.items())
        assert worst < EXACT, worst
    assert list(nice_times(999.0)) == [0, 200, 400, 600, 800]


# ---------------------------------------------------------------------------------------- trajectory
def test_trajectory_table_and_figure_against_pandas_and_scipy():
    df = pd.read_csv(DATA / "epilepsy_progabide_long.csv")
    df.loc[[0, 5, 17], "y"] = np.nan
    tab = trajectory_table(df, id="subject", visit="period", value="y", arm="trt")
    worst = 0.0
    for (a, v), g in df.dropna(subset=["y"]).groupby(["trt", "period"]):
        row = tab[(tab["arm"] == a) & (tab["period"] == v)].iloc[0]
        lo, hi = stats.t.interval(0.95, len(g) - 1, loc=g["y"].mean(), scale=stats.sem(g["y"]))
        assert row["n"] == len(g)
        worst = max(worst, abs(row["mean"] - g["y"].mean()), abs(row["sd"] - g["y"].std()),
                    abs(row["ci_low"] - lo), abs(row["ci_high"] - hi))
    assert worst < 1e-10, worst
    fig = trajectory_figure(df, id="subject", visit="period", value="y", arm="trt", arms=["placebo", "progabide"])
    for a in ("placebo", "progabide"):
        tr = next(t for t in fig.data if t.name == f"{a} mean")
        assert np.allclose(tr.y, tab.loc[tab["arm"] == a, "mean"], rtol=0, atol=EXACT)
    with pytest.raises(InvalidDataError, match="duplicated"):
        trajectory_table(pd.concat([df, df.head(1)]), id="subject", visit="period", value="y", arm="trt")


# ----------------------------------------------------------------------------------------- subgroups
def _same(row, res):
    got = row[["estimate", "ci_low", "ci_high", "p_value"]].to_numpy(float)
    ref = np.array([res.estimate, res.ci_low, res.ci_high, res.p_value])
    assert np.allclose(got, ref, rtol=0, atol=EXACT, equal_nan=True)
    assert (row["n_control"], row["n_treated"]) == res.n_per_arm


def test_subgroups_equal_the_estimator_on_the_filtered_frame(va):
    df = pd.read_csv(DATA / "va_lung.csv")
    kw = dict(time="time_days", event="death", arm="Treatment", treated_value="test")
    rows = subgroup_effects(df, analysis="cox", subgroups={"Cell type": "Celltype", "Age": "Age_in_years",
                                                            "Prior_therapy": ["yes", "no", "never"]}, **kw)
    _same(rows.iloc[0], cox_test(df, **kw))
    med = df["Age_in_years"].median()
    masks = {f"Cell type: {c}": df["Celltype"] == c for c in sorted(df["Celltype"].unique())}
    masks |= {f"Age: <= {med:.4g}": df["Age_in_years"] <= med, f"Age: > {med:.4g}": df["Age_in_years"] > med,
              "Prior_therapy: yes": df["Prior_therapy"] == "yes", "Prior_therapy: no": df["Prior_therapy"] == "no"}
    for label, mask in masks.items():
        row = rows.set_index("label").loc[label]
        _same(row, cox_test(df[mask], **kw))
        assert row["n"] == int(mask.sum()) and row["note"] == ""
    never = rows.set_index("label").loc["Prior_therapy: never"]
    assert np.isnan(never["estimate"]) and "too few" in never["note"] and never["n"] == 0
    assert rows.attrs["ratio"] and rows.attrs["null_value"] == 1.0
    # a level present in one arm only: NaN and a note, not an exception
    one_arm = df.assign(site=np.where((df["Treatment"] == "test") & (df["Celltype"] == "large"), "x", "y"))
    r = subgroup_effects(one_arm, analysis="logrank", subgroups=["site"], **kw).set_index("label")
    assert np.isnan(r.loc["site: x", "estimate"]) and "0 control" in r.loc["site: x", "note"]
    _same(r.loc["site: y"], logrank_test(one_arm[one_arm["site"] == "y"], **kw))


def test_subgroups_longitudinal_continuous_and_undefined():
    epi = pd.read_csv(DATA / "epilepsy_progabide_long.csv")
    kw = dict(id="subject", visit="period", value="y", arm="trt", treated_value="progabide")
    rows = subgroup_effects(epi, analysis="slope", subgroups=["base"], **kw)
    med = epi.groupby("subject")["base"].first().median()          # median over patients, not rows
    for label, mask in ((f"base: <= {med:.4g}", epi["base"] <= med), (f"base: > {med:.4g}", epi["base"] > med)):
        row = rows.set_index("label").loc[label]
        _same(row, slope_test(epi[mask], **kw))
        assert row["n"] == epi.loc[mask, "subject"].nunique()
    with pytest.raises(InvalidDataError, match="changes within patients"):
        subgroup_effects(epi, analysis="slope", subgroups=["V4"], **kw)
    btb = pd.read_csv(DATA / "beat_the_blues.csv")
    kw = dict(value="bdi.8m", arm="treatment", treated_value="BtheB", alpha=0.1)
    rows = subgroup_effects(btb, analysis="ttest", subgroups={"drug": "drug", "length": ["<6m", ">6m"]}, **kw)
    for _, row in rows.iloc[1:].iterrows():
        col = "drug" if row["subgroup"] == "drug" else "length"
        _same(row, ttest_test(btb[btb[col] == row["level"]], **kw))
    assert not rows.attrs["ratio"]
    # an estimator that is undefined in a subgroup (no events) gives NaN and a note
    va = pd.read_csv(DATA / "va_lung.csv")
    few = va.index % 8 == 0                                       # both arms, every event removed
    va = va.assign(grp=np.where(few, "few", "rest"), death=np.where(few, 0, va["death"]))
    r = subgroup_effects(va, analysis="cox", subgroups=["grp"], time="time_days", event="death", arm="Treatment",
                         treated_value="test").set_index("label")
    assert np.isnan(r.loc["grp: few", "estimate"]) and "not estimable" in r.loc["grp: few", "note"]
    with pytest.raises(UnknownNameError, match="cox"):
        subgroup_effects(va, analysis="coxx", subgroups=["grp"], arm="Treatment", treated_value="test")


def test_forest_figure():
    df = pd.read_csv(DATA / "va_lung.csv")
    rows = subgroup_effects(df, analysis="cox", subgroups={"Prior_therapy": ["yes", "no", "never"]},
                            time="time_days", event="death", arm="Treatment", treated_value="test")
    fig = forest_figure(rows)
    pts = next(t for t in fig.data if t.name == "estimate")
    assert np.allclose(pts.x, rows["estimate"].dropna(), rtol=0, atol=EXACT)
    assert fig.layout.xaxis.type == "log"
    assert list(next(t for t in fig.data if t.name == "no effect").x) == [1.0, 1.0]
    text = next(t for t in fig.data if t.name == "estimate (95% CI)").text
    assert text[-1] == "not estimable" and text[0].startswith("1.02 (0.714 to 1.45)")
    btb = pd.read_csv(DATA / "beat_the_blues.csv")
    diff = subgroup_effects(btb, analysis="ttest", subgroups=["drug"], value="bdi.8m", arm="treatment",
                            treated_value="BtheB")
    fig = forest_figure(diff)
    assert fig.layout.xaxis.type == "linear" and list(next(t for t in fig.data if t.name == "no effect").x) == [0, 0]


# ------------------------------------------------------------------------------- one trial as frames
@pytest.fixture(scope="module")
def va_generator():
    return fit_generator(load_builtin("va-lung"), "default", seed=5)


def _recording_simulation(generator, design, n, seed, monkeypatch):
    """simulate_trials with a recording draw: the batch and the PatientDraw it used."""
    seen = []
    original = type(generator).draw

    def draw(self, n_, **kw):
        d = original(self, n_, **kw)
        seen.append(d)
        return d
    with monkeypatch.context() as m:
        m.setattr(type(generator), "draw", draw)
        batch = simulate_trials(generator, design, n, 1, rng=np.random.default_rng(seed))
    assert len(seen) == 1
    return batch, seen[0]


def test_simulated_tte_trial_matches_its_batch(va_generator, monkeypatch):
    design = TrialDesign((Arm("standard"), Arm("test", 2.0, Effect("hazard_ratio", 0.6))),
                         Endpoint("cox", followup=300.0), Dropout(0.02))
    batch, draw = _recording_simulation(va_generator, design, 90, 11, monkeypatch)
    trial = simulate_one_trial(va_generator, design, 90, rng=np.random.default_rng(11))
    p = trial.patients
    assert isinstance(trial, OneTrial) and trial.arm == "arm" and len(p) == 90 and p["patient_id"].is_unique
    pd.testing.assert_frame_equal(p[list(draw.baseline.columns)], draw.baseline.reset_index(drop=True))
    assert ((p["arm"] == "test").to_numpy() == batch.treated[0]).all() and (p["arm"] == "test").sum() == 60
    assert np.array_equal(p["time_days"], batch.time[0]) and np.array_equal(p["death"], batch.event[0])
    for analysis in ("cox", "logrank"):
        ref = to_test_result(analyze_batch(batch, analysis))
        got = SINGLE[analysis](trial.data, **trial.analysis_kwargs(analysis))
        assert abs(got.estimate - ref.estimate) < EXACT and abs(got.p_value - ref.p_value) < EXACT
    again = simulate_one_trial(va_generator, design, 90, rng=np.random.default_rng(11))
    pd.testing.assert_frame_equal(again.patients, p)
    assert set(trial.covariates) == set(va_generator.schema_.baseline)
    t1 = trial.table_one()
    assert t1.iloc[0][["standard", "test"]].tolist() == ["30", "60"]
    with pytest.raises(InvalidDataError, match="does not suit"):
        trial.analysis_kwargs("slope")


def test_simulated_longitudinal_trial_matches_its_batch(monkeypatch):
    als = load_builtin("als-natural-history")
    ids = als.data["patient_id"].unique()[:250]
    gen = fit_generator(als, "default", seed=2, data=als.data[als.data["patient_id"].isin(ids)])
    design = TrialDesign((Arm("placebo"), Arm("drug", 1.0, Effect("slope_reduction", 0.3))),
                         Endpoint("slope", visits_months=(0, 2, 4, 6)), Dropout(0.04))
    batch, draw = _recording_simulation(gen, design, 80, 4, monkeypatch)
    trial = simulate_one_trial(gen, design, 80, rng=np.random.default_rng(4))
    y = batch.y[0]
    assert len(trial.data) == int(np.isfinite(y).sum()) and np.isnan(y).any()   # dropout rows are absent
    grid = trial.data.pivot(index="patient_id", columns="month", values="alsfrs_r").to_numpy()
    assert np.array_equal(grid[np.isfinite(y)], y[np.isfinite(y)])
    assert np.array_equal(trial.patients["alsfrs_r_baseline"], y[:, 0])
    pd.testing.assert_frame_equal(trial.patients[list(draw.baseline.columns)], draw.baseline)
    for analysis in ("slope", "ancova"):
        ref = to_test_result(analyze_batch(batch, analysis))
        got = SINGLE[analysis](trial.data, **trial.analysis_kwargs(analysis))
        assert abs(got.estimate - ref.estimate) < 1e-10 and abs(got.p_value - ref.p_value) < 1e-10
    assert trial.outcome_figure().data  # trajectory figure builds


def test_cohort_trial_real_data():
    va = cohort_trial(load_builtin("va-lung"), arm="Treatment", treated_value="test")
    assert "Treatment" not in va.covariates and len(va.patients) == 137
    res = SINGLE["cox"](va.data, **va.analysis_kwargs("cox"))
    assert abs(res.estimate - 1.018) < 5e-4 and abs(res.ci_low - 0.714) < 5e-4   # published: 1.018 (0.714-1.450)
    epi = pd.read_csv(DATA / "epilepsy_progabide_long.csv")
    schema = CohortSchema.from_dict({"id": "subject", "baseline": {"numeric": ["base", "age"],
                                                                     "categorical": ["trt"]},
                                     "outcome": {"type": "longitudinal", "visit": "period", "value": "y"}})
    trial = cohort_trial(Cohort("epilepsy", schema, epi[["subject", "base", "age", "trt", "period", "y"]]),
                         arm="trt", treated_value="progabide")
    first = epi[epi["period"] == 1].set_index("subject")["y"]
    assert np.array_equal(trial.patients["y_baseline"], trial.patients["subject"].map(first).astype(float))
    kw = trial.analysis_kwargs("slope")
    assert SINGLE["slope"](trial.data, **kw) == slope_test(epi, id="subject", visit="period", value="y",
                                                           arm="trt", treated_value="progabide")


def test_library_does_not_import_streamlit():
    code = "import sys, analysis.outcome_view; assert 'streamlit' not in sys.modules"
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)
