"""Figures of the generator evaluation report: the numbers drawn are the report's, and builders are pure."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from analysis.evaluation_plots import fidelity_figures, km_comparison_figure, slope_figure
from analysis.plots import COLORS
from cohorts.evaluate import evaluate_generator, split_train_holdout
from cohorts.schema import CohortSchema

DATA = Path(__file__).resolve().parents[1] / "data"
TTE = CohortSchema.from_dict({"id": "id", "baseline": {"numeric": ["x"], "categorical": ["g"]},
                              "outcome": {"type": "tte", "time": "t", "event": "e"}})
CONT = CohortSchema.from_dict({"id": "id", "baseline": {"numeric": ["x"], "categorical": ["g"]},
                               "outcome": {"type": "continuous", "value": "y"}})
AIDS = CohortSchema.from_dict({"id": "pid", "baseline": {"categorical": ["fac_drug", "fac_prevOI"]},
                               "outcome": {"type": "longitudinal", "visit": "time", "value": "num_CD4"}})


def _population(n, rng, prefix="P"):
    x = rng.normal(size=n)
    t = rng.exponential(10 * np.exp(-0.5 * x))
    c = rng.uniform(0, 20, n)
    return pd.DataFrame({"id": [f"{prefix}{i}" for i in range(n)], "x": x,
                         "g": pd.Series(rng.choice(["u", "v"], n), dtype="string"), "t": np.minimum(t, c),
                         "e": (t <= c).astype(int), "y": x + rng.normal(size=n)})


class _Fresh:
    def __init__(self, schema):
        self.schema_ = schema

    def sample(self, n, *, rng):
        return _population(n, rng, "S")[list(self.schema_.columns)]


class _Bootstrap:
    """Resamples whole training patients (long format) under new ids."""

    def __init__(self, train, schema):
        self.train, self.schema_ = train, schema

    def sample(self, n, *, rng):
        ids = pd.unique(self.train[self.schema_.id])
        pick = rng.choice(ids, n)
        parts = [self.train[self.train[self.schema_.id] == p].assign(**{self.schema_.id: f"S{i}"})
                 for i, p in enumerate(pick)]
        return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def reports():
    out = {}
    for name, schema in (("tte", TTE), ("continuous", CONT)):
        rng = np.random.default_rng(1)
        tr, ho = split_train_holdout(_population(200, rng)[list(schema.columns)], schema, rng=rng)
        out[name] = evaluate_generator(_Fresh(schema), tr, ho, schema, rng=rng)
    data = pd.read_csv(DATA / "aids_ddi_ddc_long.csv")
    data = data[data["pid"] <= 200][list(AIDS.columns)]
    rng = np.random.default_rng(2)
    tr, ho = split_train_holdout(data, AIDS, rng=rng)
    out["longitudinal"] = evaluate_generator(_Bootstrap(tr, AIDS), tr, ho, AIDS, rng=rng)
    return out


def test_figure_set_per_outcome_type(reports):
    common = {"marginals", "associations", "dcr", "utility"}
    assert set(fidelity_figures(reports["tte"])) == common | {"km"}
    assert set(fidelity_figures(reports["longitudinal"])) == common | {"trajectory", "slopes"}
    assert set(fidelity_figures(reports["continuous"])) == common
    with pytest.raises(ValueError, match="longitudinal"):
        km_comparison_figure(reports["longitudinal"])
    with pytest.raises(ValueError, match="tte"):
        slope_figure(reports["tte"])


def test_builders_are_pure_and_serialisable(reports):
    for r in reports.values():
        before = json.dumps(r.to_dict(), sort_keys=True)
        first = fidelity_figures(r)
        second = fidelity_figures(r)
        assert json.dumps(r.to_dict(), sort_keys=True) == before
        for key, fig in first.items():
            assert isinstance(fig, go.Figure) and fig.layout.title.text
            assert fig.to_json() == second[key].to_json()


def test_marginal_and_association_figures_draw_the_report_numbers(reports):
    r = reports["tte"]
    figs = fidelity_figures(r)
    m = r.fidelity.marginals
    bars = {t.name: t for t in figs["marginals"].data}
    ks = bars["KS statistic (numeric)"]
    assert list(ks.x) == list(m.loc[m["metric"] == "KS", "column"])
    np.testing.assert_allclose(ks.y, m.loc[m["metric"] == "KS", "statistic"])
    np.testing.assert_allclose(bars["KS 5% noise level"].y, m.loc[m["metric"] == "KS", "noise_5pct"])
    np.testing.assert_allclose(bars["total-variation distance (categorical)"].y,
                               m.loc[m["metric"] == "TV", "statistic"])
    assert any(s.y0 == 0.1 for s in figs["marginals"].layout.shapes)
    heat = figs["associations"].data[0]
    np.testing.assert_allclose(np.asarray(heat.z), r.fidelity.association_difference.to_numpy())
    assert list(heat.x) == list(r.fidelity.association_difference.columns)


def test_km_trajectory_and_slope_figures(reports):
    km = reports["tte"].fidelity.km
    fig = fidelity_figures(reports["tte"])["km"]
    real, synth = fig.data
    np.testing.assert_allclose(real.x, km.time_real) and np.testing.assert_allclose(real.y, km.surv_real)
    np.testing.assert_allclose(synth.y, km.surv_synthetic)
    assert real.line.color == COLORS["real"] and synth.line.color == COLORS["synthetic"]
    assert fig.layout.shapes[0].x0 == km.followup

    r = reports["longitudinal"]
    tr = r.fidelity.trajectory
    figs = fidelity_figures(r)
    means = {t.name: t for t in figs["trajectory"].data}
    np.testing.assert_allclose(means["real mean"].y, tr.per_visit["mean_real"])
    upper = [t for t in figs["trajectory"].data if t.name == "synthetic ±1 SD upper"][0]
    np.testing.assert_allclose(upper.y, tr.per_visit["mean_synthetic"] + tr.per_visit["sd_synthetic"])
    bars = figs["slopes"].data
    edges = np.histogram_bin_edges(np.r_[tr.slopes_real, tr.slopes_synthetic], bins=30)
    np.testing.assert_allclose(bars[0].y, np.histogram(tr.slopes_real, edges)[0] / tr.slopes_real.size)
    assert sum(bars[1].y) == pytest.approx(1.0)


def test_dcr_and_utility_figures(reports):
    r = reports["continuous"]
    figs = fidelity_figures(r)
    p = r.privacy
    hold, synth = figs["dcr"].data
    edges = np.histogram_bin_edges(np.r_[p.dcr_holdout, p.dcr_synthetic], bins=30)
    np.testing.assert_allclose(hold.y, np.histogram(p.dcr_holdout, edges)[0] / p.dcr_holdout.size)
    np.testing.assert_allclose(synth.y, np.histogram(p.dcr_synthetic, edges)[0] / p.dcr_synthetic.size)
    assert figs["dcr"].layout.shapes[0].x0 == p.dcr_holdout_p5
    np.testing.assert_allclose(figs["utility"].data[0].y, [r.utility.real, r.utility.synthetic])
