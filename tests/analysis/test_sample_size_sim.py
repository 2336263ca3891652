"""Sample size by simulation from a generator: the answer brackets the closed form, with its type I error."""

import json
from pathlib import Path

import numpy as np
import pytest
from statsmodels.stats.power import TTestIndPower
from support import KnownGenerator

from analysis.sample_size_sim import allocation_step, simulated_sample_size
from cli import main
from cohorts.errors import InvalidScenarioError
from trials.design import Arm, Effect, Endpoint, TrialDesign

ROOT = Path(__file__).resolve().parents[2]


def design(effect, ratio=1.0, analysis="ttest"):
    return TrialDesign((Arm("control"), Arm("treated", ratio, effect)), Endpoint(analysis))


def test_continuous_answer_brackets_ttestindpower():
    """y ~ N(0, 1), mean difference 0.5, 1:1, Welch t-test: TTestIndPower gives 63.8 per arm, i.e. N = 128.
    The reported Monte Carlo range must contain it (the grid step is 2; Welch vs Student df differ by < 1)."""
    truth = 2 * int(np.ceil(TTestIndPower().solve_power(effect_size=0.5, power=0.8, alpha=0.05)))
    res = simulated_sample_size(KnownGenerator("continuous", sd=1.0), design(Effect("mean_difference", 0.5)), 0.8,
                                replicates=2000, alpha=0.05, rng=np.random.default_rng(5), n_min=20, n_max=600)
    s = res.search
    assert s.status == "found" and s.n_recommended % 2 == 0
    assert s.n_ci_low - 2 <= truth <= s.n_ci_high + 2, (truth, s.n_ci_low, s.n_ci_high)
    # the analytic start (Student t with the large trial's mean difference and SD) lands near the answer
    assert res.pilot["method"] == "analytic"
    assert abs(res.n_start - truth) <= 0.25 * truth
    # type I error of the null design at the recommended N: within 4 binomial SD of alpha
    assert abs(res.type1_error - 0.05) <= 4 * np.sqrt(0.05 * 0.95 / 2000)
    again = simulated_sample_size(KnownGenerator("continuous", sd=1.0), design(Effect("mean_difference", 0.5)),
                                  0.8, replicates=2000, alpha=0.05, rng=np.random.default_rng(5), n_min=20, n_max=600)
    assert again.to_json_dict() == res.to_json_dict()


def test_analyses_without_a_closed_form_start_from_a_pilot_simulation():
    d = TrialDesign((Arm("control"), Arm("treated", 1, Effect("slope_reduction", 0.5))),
                    Endpoint("mmrm", visits_months=(0, 3, 6)))
    res = simulated_sample_size(KnownGenerator("longitudinal"), d, 0.8, replicates=100, alpha=0.05,
                                rng=np.random.default_rng(3), n_min=10, n_max=400)
    assert "method" not in res.pilot and res.pilot["scale"] == "identity" and res.pilot["effect"] != 0
    assert res.n_start % 2 == 0 and 10 <= res.n_start <= 400


def test_allocation_step_and_refusals():
    assert allocation_step(design(Effect("mean_difference", 0.5))) == 2
    assert allocation_step(design(Effect("mean_difference", 0.5), ratio=2.0)) == 3
    assert allocation_step(design(Effect("mean_difference", 0.5), ratio=1.5)) == 2
    with pytest.raises(InvalidScenarioError, match="no treatment effect"):
        simulated_sample_size(KnownGenerator("continuous"), design(Effect("mean_difference", 0.0)), 0.8,
                              replicates=50, alpha=0.05, rng=np.random.default_rng(1), n_min=10, n_max=100)


def test_cli_sample_size_json(capsys):
    rc = main(["sample-size", str(ROOT / "examples" / "va_lung_tte.toml"), "--replicates", "200", "--json",
               "--quiet", "--target", "0.7"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["target_power"] == 0.7 and out["analysis"] == "logrank" and out["seed"] == 20261122
    assert out["status"] == "found" and out["n_ci_low"] <= out["n_recommended"] <= out["n_ci_high"]
    # log-rank has a closed form (Schoenfeld): the search starts from it, with the estimand's hazard ratio
    assert out["pilot"]["method"] == "analytic" and 0 < out["pilot"]["estimand"] < 1
    assert out["n_start"] == out["pilot"]["n_total"]
    assert 0 <= out["type1_error"] <= 1 and out["type1_replicates"] == 200
