"""`insilico scenario`: the JSON schema on stdout, the design summary of every example (look boundaries against
rpact 3.3's stored numbers and against analysis.gs_boundaries), the normalized TOML round trip, every problem
with exit status 2; and every example scenario simulated end to end (called through `add_scenario_command`, as
`cli.main` does once it is wired in)."""

import argparse
import contextlib
import dataclasses
import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from analysis.gs_boundaries import GroupSequentialDesign, boundaries
from analysis.workflow import run_scenario
from cli_scenario import add_scenario_command
from cohorts.errors import WorkbenchError
from trials.scenario import load_scenario, parse_scenario_text
from trials.scenario_schema import scenario_json_schema

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples"
NEW = ["als_group_sequential", "tte_event_driven", "als_multiarm", "als_hybrid", "als_enrichment"]
SCENARIOS = sorted(p.stem for p in EX.glob("*.toml") if p.stem not in ("sweep_grid", "va_lung_schema"))
RPACT = json.loads((ROOT / "tests/analysis/results/gs_rpact_reference.json").read_text())["designs"]
PRINTED = 5e-5          # numbers are printed with 4 decimals


def run(argv):
    """(exit status, stdout, stderr) of `insilico ARGV`, as `cli.main` runs it: user errors print, exit 2."""
    parser = argparse.ArgumentParser(prog="insilico")
    add_scenario_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = args.func(args)
        except WorkbenchError as exc:
            print(f"insilico: error: {exc}", file=sys.stderr)
            rc = 2
    return rc, out.getvalue(), err.getvalue()


def boundary_table(text):
    """The printed boundaries as {column: [values per look]}."""
    lines = text.splitlines()
    start = next(i for i, l in enumerate(lines) if l.split()[:2] == ["look", "information_fraction"])
    header = lines[start].split()
    rows = []
    for line in lines[start + 1:]:
        parts = line.split()
        if not parts or not parts[0].isdigit():
            break
        rows.append([float(x) for x in parts])
    return {h: np.array([r[i] for r in rows]) for i, h in enumerate(header)}


def test_schema_prints_the_json_schema():
    rc, out, err = run(["scenario", "--schema"])
    assert rc == 0 and err == ""
    assert json.loads(out) == scenario_json_schema()
    assert out.startswith('{\n  "$schema"')          # indent=2


@pytest.mark.parametrize("argv, message", [
    (["scenario"], "give a scenario FILE"),
    (["scenario", str(EX / "als_slope.toml"), "--schema"], "prints the JSON schema alone"),
    (["scenario", "no_such_file.toml"], "scenario file not found: no_such_file.toml"),
])
def test_usage_errors_exit_2(argv, message):
    rc, out, err = run(argv)
    assert (rc, out) == (2, "") and message in err


EXPECTED = {
    "als_group_sequential": ["Accrual: accrual over 12 months (evenly spaced)",
                             "Interim looks: 3 looks at information 0.4, 0.7, 1; O'Brien-Fleming-type alpha spending",
                             "N = 120: patients with the endpoint assessed at each look: 48, 84, 120"],
    "tte_event_driven": ["follow-up up to 730 days from entry", "hazard ratio 0.6 after a delay of 30 days (1 before)",
                         "Event-driven analysis: when 150 events have been observed",
                         "Accrual: accrual at 4/month from month 0, 12/month from month 3 (Poisson arrivals)"],
    "als_multiarm": ["Arms: 3 (allocation 1:1:2)", "  low dose   1  20% slowing of each patient's decline",
                     "  high dose  2  35% slowing of each patient's decline", "holm adjustment",
                     "Randomization: permuted blocks of 8, stratified by site_of_onset, age >= 60"],
    "als_hybrid": ["Arms: 2 (allocation 1:2)", "Hybrid control: 40 synthetic controls per trial",
                   "(drift slope_reduction -0.1)"],
    "als_enrichment": ["Eligibility: eligible if 18 <= age <= 75 and fvc_percent >= 60; 2x enrolment weight for "
                       "site_of_onset == 'Bulbar'", "Visit windows: +-0.5 months",
                       "Dropout by arm: treatment 3.0%/month",
                       "Informative dropout: hazard x 0.9"],
}


@pytest.mark.parametrize("name", SCENARIOS)
def test_summary_of_each_example(name):
    rc, out, err = run(["scenario", str(EX / f"{name}.toml")])
    assert rc == 0, err
    s = load_scenario(EX / f"{name}.toml")
    assert out.splitlines()[:2] == [f"{EX / name}.toml: valid scenario", s.title]
    unit = "days" if s.cohort.builtin == "va-lung" else "months"
    for arm in s.design.treatments:
        assert f"  {arm.name}" in out and arm.effect.describe(unit) in out
    assert f"Power: N = {', '.join(map(str, s.power.n_total))}; {s.power.replicates} replicates" in out
    for line in EXPECTED.get(name, []):
        assert line in out, line


def test_printed_boundaries_are_gs_boundaries_at_half_alpha_one_sided():
    _, out, _ = run(["scenario", str(EX / "als_group_sequential.toml")])
    printed = boundary_table(out)
    ref = boundaries(GroupSequentialDesign((0.4, 0.7, 1.0), alpha=0.025, spending="obf", futility="obf", beta=0.2,
                                           sided=1)).summary()
    assert list(printed) == list(ref.columns)
    for col in printed:
        np.testing.assert_allclose(printed[col], ref[col], rtol=0, atol=PRINTED, err_msg=col)


def test_printed_boundaries_match_rpact(tmp_path):
    """rpact 3.3 getDesignGroupSequential(asP, bsP, informationRates 0.3/0.6/1, alpha 0.025, beta 0.2) (stored)."""
    ref = RPACT["pocock_3_bsp"]
    text = (EX / "als_group_sequential.toml").read_text()
    text = text.replace("[0.4, 0.7, 1.0]", "[0.3, 0.6, 1.0]").replace('"obf"', '"pocock"')
    f = tmp_path / "pocock.toml"
    f.write_text(text)
    rc, out, err = run(["scenario", str(f)])
    assert rc == 0, err
    t = boundary_table(out)
    tol = PRINTED + 1e-7                      # print rounding + the integration's accuracy
    np.testing.assert_allclose(t["information_fraction"], ref["informationRates"], atol=tol)
    np.testing.assert_allclose(t["efficacy_z"], ref["criticalValues"], atol=tol)
    np.testing.assert_allclose(t["futility_z"][:-1], ref["futilityBounds"], atol=tol)
    np.testing.assert_allclose(t["alpha_spent"], ref["alphaSpent"], atol=tol)
    np.testing.assert_allclose(t["beta_spent"], ref["betaSpent"], atol=tol)
    np.testing.assert_allclose(t["nominal_p"], ref["stageLevels"], atol=tol)
    inflation = float(out.split("maximum information ")[1].split(" x ")[0])
    assert abs(inflation - ref["inflationFactor"]) <= 5e-4 + 1e-6     # printed with 3 decimals


@pytest.mark.parametrize("name", SCENARIOS)
def test_toml_round_trips(name):
    rc, out, err = run(["scenario", str(EX / f"{name}.toml"), "--toml"])
    assert rc == 0, err
    a, b = load_scenario(EX / f"{name}.toml"), parse_scenario_text(out, base_dir=EX)
    assert (b.title, b.seed, b.cohort, b.design, b.power) == (a.title, a.seed, a.cohort, a.design, a.power)
    assert "#" not in out                   # normalized: no comments


BAD = """title = "bad"
seed = 1
multiplicity = "sidak"
[cohort]
builtin = "als-natural-history"
[endpoint]
analysis = "slope"
visits_months = [0, 3, 6]
events = 40
[[arms]]
name = "placebo"
[[arms]]
name = "drug"
effect = { slope_reduction = 0.3, delay = 2 }
[randomization]
method = "simple"
block_size = 4
[power]
n_total = [60]
"""


def test_every_problem_is_printed_with_exit_2(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text(BAD)
    rc, out, err = run(["scenario", str(f)])
    assert (rc, out) == (2, "")
    assert f"4 problems in {f}" in err
    for path in ("endpoint.events:", "arms[1].effect.delay:", "randomization.block_size:", "multiplicity:"):
        assert f"  - {path}" in err, path


def test_expressions_are_checked_against_the_cohort(tmp_path):
    text = (EX / "als_multiarm.toml").read_text().replace(
        'strata = ["site_of_onset", "age >= 60"]', 'strata = ["site", "agee >= 60", "sex > 2"]')
    text += '\n[eligibility]\ncriteria = "age >= 18 and site_of_onset > 2"\nenrich = { "fvc > 60" = 2 }\n'
    f = tmp_path / "cols.toml"
    f.write_text(text)
    rc, out, err = run(["scenario", str(f)])
    assert (rc, out) == (2, "")
    assert "5 problems" in err
    assert "randomization.strata: 'site' is not a baseline covariate of the cohort" in err
    assert "randomization.strata['agee >= 60']: unknown column `agee`; did you mean `age`?" in err
    assert "randomization.strata['sex > 2']: cannot compare `sex` (text) with `2` (a number)" in err
    assert "eligibility.criteria: cannot compare `site_of_onset` (text)" in err
    assert "eligibility.enrich['fvc > 60']: unknown column `fvc`" in err


def test_analysis_must_suit_the_cohort(tmp_path):
    f = tmp_path / "mismatch.toml"
    f.write_text((EX / "als_slope.toml").read_text().replace('"als-natural-history"', '"va-lung"'))
    rc, _, err = run(["scenario", str(f)])
    assert rc == 2
    assert "endpoint.analysis: 'slope' analyses a longitudinal outcome, but the cohort's outcome is tte" in err


def test_data_file_cohort_checked_by_its_schema_file(tmp_path):
    """A data file's cohort: the schema file alone is read (va_lung_schema.toml leaves out the arm column)."""
    text = (EX / "va_lung_tte.toml").read_text().replace(
        'builtin = "va-lung"', f'data = "{ROOT / "tests/data/va_lung.csv"}"\nschema = "{EX / "va_lung_schema.toml"}"')
    good = tmp_path / "data.toml"
    good.write_text(text + '\n[randomization]\nmethod = "permuted_block"\nblock_size = 4\nstrata = ["Celltype"]\n')
    rc, out, err = run(["scenario", str(good)])
    assert rc == 0, err
    assert "follow-up up to 365 days from entry" in out and "stratified by Celltype" in out
    bad = tmp_path / "arm_column.toml"
    bad.write_text(good.read_text().replace('["Celltype"]', '["Treatment"]'))
    rc, _, err = run(["scenario", str(bad)])
    assert rc == 2 and "randomization.strata: 'Treatment' is not a baseline covariate" in err


def test_wired_into_cli_main(capsys):
    from cli import build_parser, main
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    if "scenario" not in sub.choices:
        pytest.skip("cli.build_parser does not call add_scenario_command yet")
    assert main(["scenario", "--schema"]) == 0
    assert json.loads(capsys.readouterr().out) == scenario_json_schema()


# ------------------------------------------------------------------ every example, simulated end to end
REPLICATES = 40


@pytest.fixture(scope="module")
def results():
    """Each example at its first N with 40 replicates (a few seconds each)."""
    out = {}
    for name in SCENARIOS:
        s = load_scenario(EX / f"{name}.toml")
        s = dataclasses.replace(s, power=dataclasses.replace(s.power, n_total=s.power.n_total[:1],
                                                             replicates=REPLICATES))
        out[name] = run_scenario(s).result
    return out


@pytest.mark.parametrize("name", SCENARIOS)
def test_example_runs_to_finite_numbers(results, name):
    r = results[name]
    assert r.power.shape == (1,) and np.isfinite(r.power).all() and 0 <= r.power[0] <= 1
    assert np.isfinite(r.type1_error) and 0 <= r.type1_error <= 1
    assert r.estimates.shape[-1] == REPLICATES
    assert np.isfinite(r.estimates).mean() >= 0.9          # at most 4 of 40 replicates undefined
    assert np.isfinite(r.table()["mean_estimate"]).all()


def test_group_sequential_example_has_power(results):
    """Design power 0.8 (beta = 0.2) at full information; at N = 120 the simulated power was 0.81 (100 replicates,
    when checked). Bound 0.3: 40 replicates at p = 0.8 fall below it with probability < 1e-9 (a Z oriented the wrong
    way gives power 0)."""
    assert results["als_group_sequential"].power[0] > 0.3
