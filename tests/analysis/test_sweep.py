"""Parameter sweeps: grid validation message by message, the per-cell stream layout, identical numbers in-process
and on Dask (1 and 2 threads in-process workers, 2 worker processes), each cell against a direct computation,
and power / type I error against closed forms within binomial error."""

import json
import logging

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.power import TTestIndPower
from statsmodels.stats.proportion import proportion_confint
from support import KnownGenerator

from analysis.power import simulate_rejections
from analysis.sweep import SWEEP_COLUMNS, SweepResult, cell_stream, run_sweep
from analysis.sweep_grid import GRID_AXES, MAX_CELLS, load_grid, parse_grid, parse_grid_text
from analysis.workflow import evaluation_stream, seed_streams
from cohorts.errors import InvalidScenarioError
from trials.design import ANALYSIS_OUTCOME, Arm, Dropout, Effect, Endpoint, PowerSettings, TrialDesign
from trials.scenario import CohortRef, Scenario

Z = 4.0  # a 4-SD binomial band: a false alarm about once in 16,000 checks
LONG_ANALYSES = ", ".join(a for a, o in ANALYSIS_OUTCOME.items() if o == "longitudinal")


def band(p, n):
    return Z * np.sqrt(p * (1 - p) / n)


def scenario(kind="longitudinal", *, replicates=60, n_total=(30, 60), seed=5):
    if kind == "longitudinal":
        design = TrialDesign((Arm("placebo"), Arm("treated", 1, Effect("slope_reduction", 0.3))),
                             Endpoint("slope", (0, 3, 6)), Dropout(0.02))
    else:
        design = TrialDesign((Arm("placebo"), Arm("treated", 1, Effect("mean_difference", 0.5))),
                             Endpoint("ttest"), Dropout(0.0))
    # the cohort reference is never loaded: the tests pass a fitted KnownGenerator to run_sweep
    return Scenario("test sweep", seed, CohortRef(builtin="als-natural-history"), design,
                    PowerSettings(tuple(n_total), replicates, 0.05))


def problems(text, kind="longitudinal"):
    with pytest.raises(InvalidScenarioError) as err:
        parse_grid_text(text, scenario(kind))
    return err.value.problems


@pytest.mark.parametrize("text,expected", [
    ("[grid]\nefect = [0.1]", "grid.efect: unknown key (did you mean 'effect'?); allowed: effect, n_total, "
                              "dropout_per_month, analysis"),
    ("[grd]\nn_total = [60]", "grd: unknown key (did you mean 'grid'?); a grid file has one [grid] table"),
    ("title = 'x'", "[grid]: missing table; e.g. [grid] with n_total = [120, 240]"),
    ("grid = 3", "grid: must be a table ([grid]), got int"),
    ("[grid]\nn_total = 120", "grid.n_total: must be a list, e.g. n_total = [120, 240]; got 120"),
    ("[grid]\nn_total = []", "grid.n_total: an empty list; give at least one value, or omit the key to keep the "
                             "scenario's value (30, 60)"),
    ("[grid]\nn_total = [120, 60.5]", "grid.n_total[1]: must be an integer total sample size, got 60.5"),
    ("[grid]\nn_total = [2]", "grid.n_total[0]: must be at least 4, got 2"),
    ("[grid]\nn_total = [60, 90, 60]", "grid.n_total: 60 is listed twice; give each value once"),
    ("[grid]\neffect = ['big']", "grid.effect[0]: must be a number (a slope_reduction, the scenario's effect "
                                 "kind), got 'big'"),
    ("[grid]\neffect = [true]", "grid.effect[0]: must be a number (a slope_reduction, the scenario's effect "
                                "kind), got True"),
    ("[grid]\neffect = [0.2, 1.5]", "grid.effect[1]: slope_reduction is a fraction of the decline removed, "
                                    "between -1 and 1 (0.25 = 25 % slowing), got 1.5"),
    ("[grid]\neffect = [{ slope_reduction = 0.2 }]", "grid.effect[0]: must be a number (a slope_reduction"),
    ("[grid]\ndropout_per_month = [0.01, 1.0]", "grid.dropout_per_month[1]: must be a number in [0, 1) "
                                                "(share of patients lost per month), got 1.0"),
    ("[grid]\nanalysis = ['slop']", f"grid.analysis[0]: unknown analysis 'slop' (did you mean 'slope'?); allowed "
                                    f"for longitudinal outcomes: {LONG_ANALYSES}"),
    ("[grid]\nanalysis = ['logrank']", "grid.analysis[0]: 'logrank' analyses tte outcomes, but the scenario's "
                                       f"endpoint is longitudinal; allowed: {LONG_ANALYSES}"),
    ("[grid]\nanalysis = [3]", "grid.analysis[0]: must be an analysis name (a string), got 3"),
    ("[grid\n", "not valid TOML"),
])
def test_each_grid_problem_has_its_message(text, expected):
    found = problems(text)
    assert any(expected in p for p in found), found


def test_grid_messages_that_depend_on_the_outcome_and_size():
    assert problems("[grid]\ndropout_per_month = [0.02]", "continuous") == [
        "grid.dropout_per_month[0]: must be 0: the scenario's continuous outcome is a single measurement without "
        "follow-up time, so dropout does not apply; omit dropout_per_month"]
    assert problems("[grid]\nanalysis = ['slope']", "continuous")[0].startswith(
        "grid.analysis[0]: 'slope' analyses longitudinal outcomes, but the scenario's endpoint is continuous; "
        "allowed: ttest")
    effects = ", ".join(f"{i / 100 - 0.5:.2f}" for i in range(101))
    sizes = ", ".join(str(n) for n in range(4, 104))
    assert problems(f"[grid]\neffect = [{effects}]\nn_total = [{sizes}]") == [
        f"grid: 10,100 cells (101 effect x 100 n_total x 1 dropout_per_month x 1 analysis) is more than "
        f"{MAX_CELLS:,}; shorten the lists or split the sweep into several grid files"]
    # every problem at once
    assert len(problems("[grid]\nefect = [0.1]\nn_total = []\nanalysis = ['cox']")) == 3


def test_grid_file_errors_name_the_file(tmp_path):
    f = tmp_path / "g.toml"
    f.write_text("[grid]\nn_total = [1]\n")
    with pytest.raises(InvalidScenarioError, match=r"invalid scenario in .*g\.toml: grid\.n_total\[0\]: must be at"):
        load_grid(f, scenario())
    with pytest.raises(InvalidScenarioError, match="grid file not found"):
        load_grid(tmp_path / "missing.toml", scenario())


def test_omitted_keys_keep_the_scenario_and_order_is_canonical():
    s = scenario(n_total=(60, 30))
    g = parse_grid({"grid": {}}, s)
    assert (g.effect, g.n_total, g.dropout_per_month, g.analysis) == ((0.3,), (30, 60), (0.02,), ("slope",))
    a = parse_grid_text("[grid]\neffect = [0.4, 0, 0.2]\nanalysis = ['slope', 'ancova']", s)
    b = parse_grid_text("[grid]\nanalysis = ['ancova', 'slope']\neffect = [0.0, 0.2, 0.4]", s)
    assert a == b and a.effect == (0.0, 0.2, 0.4) and a.n_cells == 12
    cells = a.cells()
    assert [c.index for c in cells] == list(range(12))
    # the last axis (analysis) varies fastest, the first (effect) slowest
    assert [(c.effect, c.n_total, c.analysis) for c in cells[:3]] == [(0.0, 30, "ancova"), (0.0, 30, "slope"),
                                                                      (0.0, 60, "ancova")]
    d = cells[4].design(s.design)  # (0.2, 30, "ancova")
    assert (d.effect.value, d.endpoint.analysis, d.endpoint.visits_months, d.dropout.per_month) == (
        0.2, "ancova", (0.0, 3.0, 6.0), 0.02)
    assert set(a.to_json_dict()) == {"effect_kind", *GRID_AXES}


def test_cell_stream_is_a_documented_spawn_child_apart_from_the_workflow_streams():
    seed = 123
    for i in (0, 1, 7):
        assert np.array_equal(cell_stream(seed, i).random(4),
                              np.random.default_rng(seed).spawn(8)[7].spawn(i + 1)[i].random(4))
    fit_rng, sim_rng = seed_streams(seed)
    first = {tuple(g.random(4)) for g in (fit_rng, sim_rng, evaluation_stream(seed), cell_stream(seed, 0),
                                          cell_stream(seed, 1), cell_stream(seed + 1, 0))}
    assert len(first) == 6


GRID = "[grid]\neffect = [0.0, 0.4]\nn_total = [30, 60]\nanalysis = ['slope', 'ancova']"


def numbers(result: SweepResult) -> pd.DataFrame:
    return result.table.drop(columns="seconds")


@pytest.fixture(scope="module")
def in_process():
    s = scenario()
    seen = []
    res = run_sweep(s, parse_grid_text(GRID, s), generator=KnownGenerator("longitudinal"),
                    progress=lambda f, m: seen.append((f, m)))
    return res, seen


def test_in_process_table_shape_progress_and_summary(in_process):
    res, seen = in_process
    t = res.table
    assert list(t.columns) == list(SWEEP_COLUMNS) and len(t) == 8
    assert t["cell"].tolist() == list(range(8)) and (t["replicates"] == 60).all()
    assert [f for f, _ in seen] == pytest.approx([(i + 1) / 8 for i in range(8)])
    assert seen[0][1] == "cell 1/8: effect 0, N 30, dropout 0.02/month, ancova"
    assert ((t.power_ci_low <= t.power) & (t.power <= t.power_ci_high)).all()
    assert ((t.type1_ci_low <= t.type1_error) & (t.type1_error <= t.type1_ci_high)).all()
    s = res.summary
    assert (s["seed"], s["title"], s["replicates"], s["n_cells"]) == (5, "test sweep", 60, 8)
    assert s["grid"] == {"effect_kind": "slope_reduction", "effect": [0.0, 0.4], "n_total": [30, 60],
                         "dropout_per_month": [0.02], "analysis": ["ancova", "slope"]}
    assert s["versions"]["numpy"] == np.__version__ and s["versions"]["dask"]
    assert (s["scheduler"], s["n_workers"]) == ("in-process", 1)
    out = res.to_json_dict()
    assert len(out["cells"]) == 8 and json.loads(json.dumps(out, allow_nan=False)) == out


def test_each_cell_equals_rates_computed_directly_from_its_stream(in_process):
    res, _ = in_process
    s = scenario()
    gen = KnownGenerator("longitudinal")
    for cell, row in zip(res.grid.cells(), res.table.itertuples()):
        design = TrialDesign((Arm("placebo"), Arm("treated", 1, Effect("slope_reduction", cell.effect))),
                             Endpoint(cell.analysis, (0, 3, 6)), Dropout(cell.dropout_per_month))
        r_eff, r_null = cell_stream(s.seed, cell.index).spawn(2)
        p, est = simulate_rejections(gen, design, cell.n_total, 60, 0.05, rng=r_eff)
        p0, _ = simulate_rejections(gen, design.null(), cell.n_total, 60, 0.05, rng=r_null)
        k, k0 = int((p < 0.05).sum()), int((p0 < 0.05).sum())
        lo, hi = proportion_confint(k, 60, alpha=0.05, method="beta")
        # exact: the same stream and the same arithmetic
        assert (row.power, row.type1_error, row.mean_estimate) == (k / 60, k0 / 60, np.nanmean(est))
        assert (row.power_ci_low, row.power_ci_high) == (lo, hi)
        assert row.type1_ci_low == proportion_confint(k0, 60, alpha=0.05, method="beta")[0]


def test_same_numbers_in_process_and_on_in_process_dask_clusters_of_1_and_2_workers(in_process):
    from distributed import Client, LocalCluster
    res, _ = in_process
    s = scenario()
    # the grid's values in another order give the same cells
    grid = parse_grid_text("[grid]\nanalysis = ['ancova', 'slope']\nn_total = [60, 30]\neffect = [0.4, 0.0]", s)
    for n_workers in (1, 2):
        with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=False, dashboard_address=":0",
                          silence_logs=logging.CRITICAL) as cluster, Client(cluster) as client:
            seen = []
            got = run_sweep(s, grid, client=client, generator=KnownGenerator("longitudinal"),
                            progress=lambda f, m: seen.append(f))
        pd.testing.assert_frame_equal(numbers(got), numbers(res), check_exact=True)
        assert got.summary["workers_available"] == n_workers and 1 <= got.summary["n_workers"] <= n_workers
        assert got.summary["scheduler"].startswith("inproc://")
        assert sorted(seen) == seen and seen[-1] == 1.0 and len(seen) == 8


def test_same_numbers_on_two_worker_processes(in_process):
    from distributed import Client, LocalCluster
    res, _ = in_process
    s = scenario()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                      silence_logs=logging.CRITICAL) as cluster, Client(cluster) as client:
        got = run_sweep(s, parse_grid_text(GRID, s), client=client, generator=KnownGenerator("longitudinal"))
    pd.testing.assert_frame_equal(numbers(got), numbers(res), check_exact=True)
    assert got.summary["scheduler"].startswith("tcp://") and got.summary["workers_available"] == 2


def test_power_and_type1_error_match_closed_forms_within_binomial_error():
    R = 400
    s = scenario("continuous", replicates=R, n_total=(40, 80), seed=17)
    res = run_sweep(s, parse_grid_text("[grid]\neffect = [0.0, 0.5]", s), generator=KnownGenerator("continuous"))
    t = res.table
    for row in t.itertuples():
        expected = 0.05 if row.effect == 0 else TTestIndPower().power(effect_size=row.effect, nobs1=row.n_total / 2,
                                                                        alpha=0.05)
        # Welch's df differ from Student's by < 1 here: allow 0.005 beyond the binomial band
        assert abs(row.power - expected) <= band(expected, R) + 0.005, (row, expected)
        assert abs(row.type1_error - 0.05) <= band(0.05, R), row
        # the mean estimate of a mean difference with SD 1: within 4 standard errors of the truth
        assert abs(row.mean_estimate - row.effect) <= Z * np.sqrt(4 / row.n_total / R)


def test_design_that_does_not_fit_the_generator_is_refused_before_any_cell_runs():
    s = scenario()
    with pytest.raises(InvalidScenarioError, match="endpoint.analysis: 'slope' analyses a longitudinal outcome"):
        run_sweep(s, parse_grid({"grid": {}}, s), generator=KnownGenerator("tte"))


def test_undefined_estimates_become_null_in_json(in_process):
    res, _ = in_process
    table = res.table.copy()
    table.loc[0, "mean_estimate"] = np.nan
    out = SweepResult(table, res.summary, res.grid).to_json_dict()
    assert out["cells"][0]["mean_estimate"] is None and out["cells"][1]["mean_estimate"] is not None
