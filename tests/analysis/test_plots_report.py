"""Figure builders, the HTML report, and the rule that the library never imports streamlit.

Inputs are small synthetic frames and a hand-made PowerResult, so these tests depend on no generator family.
"""

from __future__ import annotations

import ast
import re
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from statsmodels.duration.survfunc import SurvfuncRight
from statsmodels.stats.proportion import proportion_confint

from analysis import plots, report
from analysis.plots import (km_figure, marginals_figure, power_curve_figure, trajectory_figure,
                            validation_figures)
from analysis.power_result import PowerResult
from analysis.report import build_html_report, package_versions
from cohorts import provenance
from cohorts.cohort import Cohort
from cohorts.schema import CohortSchema
from trials.design import Arm, Dropout, Effect, Endpoint, PowerSettings, TrialDesign

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------------------- fixtures
def _long_frame(n=40, visits=6, shift=0.0, seed=0):
    rng = np.random.default_rng(seed)
    ids = np.repeat([f"P{i:03d}" for i in range(n)], visits)
    month = np.tile(np.arange(visits, dtype=float), n)
    y = np.repeat(rng.normal(37 + shift, 5, n), visits) - month * np.repeat(rng.gamma(4, 0.25, n), visits)
    return pd.DataFrame({"patient_id": ids, "age": np.repeat(rng.normal(57, 11, n), visits),
                         "sex": np.repeat(rng.choice(["F", "M"], n), visits),
                         "month": month, "alsfrs_r": np.clip(np.rint(y + rng.normal(0, 1.5, n * visits)), 0, 48)})


LONG_SCHEMA = CohortSchema.from_dict({
    "id": "patient_id", "baseline": {"numeric": ["age"], "categorical": ["sex"]},
    "outcome": {"type": "longitudinal", "value": "alsfrs_r", "visit": "month", "time_unit": "months"}})
TTE_SCHEMA = CohortSchema.from_dict({
    "id": "patient_id", "baseline": {"numeric": ["age"], "categorical": ["sex"]},
    "outcome": {"type": "tte", "time": "time_days", "event": "death"}})


def _tte_frame(n=80, seed=1):
    rng = np.random.default_rng(seed)
    t = rng.exponential(300, n)
    c = rng.uniform(100, 600, n)
    return pd.DataFrame({"patient_id": np.arange(n), "age": rng.normal(60, 9, n),
                         "sex": rng.choice(["F", "M"], n),
                         "time_days": np.minimum(t, c).round(), "death": (t <= c).astype(int)})


@pytest.fixture(scope="module")
def long_cohort():
    return Cohort(name="toy-als", schema=LONG_SCHEMA, data=_long_frame(), source="builtin:toy-als",
                  citation="Doe J. Journal of Toys 2024;1:1.", description="Simulated toy cohort, NOT patient data")


def _design():
    return TrialDesign(arms=(Arm("placebo"), Arm("drug", 2.0, Effect("slope_reduction", 0.25))),
                       endpoint=Endpoint("slope", visits_months=(0, 1, 2, 3, 4, 5, 6)),
                       dropout=Dropout(0.02))


@pytest.fixture(scope="module")
def result():
    settings = PowerSettings((60, 120), replicates=200, alpha=0.05)
    rng = np.random.default_rng(3)
    p = rng.uniform(size=(2, 200)) ** np.array([[4.0], [9.0]])
    p0 = rng.uniform(size=(2, 200))
    rej, rej0 = (p < 0.05).sum(1), (p0 < 0.05).sum(1)
    lo, hi = proportion_confint(rej, 200, method="beta")
    tlo, thi = proportion_confint(rej0.sum(), 400, method="beta")
    return PowerResult(design=_design(), settings=settings, analysis="slope", power=rej / 200,
                       power_ci_low=lo, power_ci_high=hi, type1_by_n=rej0 / 200, type1_error=rej0.sum() / 400,
                       type1_ci_low=float(tlo), type1_ci_high=float(thi), p_values=p, p_values_null=p0,
                       estimates=rng.normal(0.2, 0.1, (2, 200)), estimates_null=rng.normal(0, 0.1, (2, 200)),
                       seed=424242, elapsed_s=1.5)


class _EchoGenerator:
    """Stands in for a fitted generator: samples the cohort itself with shifted values."""

    name = "echo"
    description = "test double"
    is_fitted = True
    n_train_ = 40

    def __init__(self, data):
        self.data, self.scale = data, 1.0

    def get_params(self):
        return {"scale": self.scale}

    def sample(self, n, *, rng):
        d = self.data.copy()
        d["alsfrs_r"] = d["alsfrs_r"] + rng.normal(0, 1, len(d))
        return d


# --------------------------------------------------------------------------------------------- figures
def test_power_curve_traces_and_reference_lines(result):
    fig = power_curve_figure(result)
    assert isinstance(fig, go.Figure)
    names = [t.name for t in fig.data]
    assert any(n.startswith("power (") for n in names)
    assert "type I error (no effect)" in names
    assert "power 95% MC interval" in names and "type I error 95% MC interval" in names
    power_line = next(t for t in fig.data if t.name.startswith("power ("))
    np.testing.assert_allclose(power_line.y, result.power)
    np.testing.assert_array_equal(power_line.x, [60, 120])
    hlines = sorted(s.y0 for s in fig.layout.shapes)
    assert hlines == pytest.approx([0.05, 0.8, 0.9])
    assert any(s.line.dash == "dash" and s.y0 == pytest.approx(0.05) for s in fig.layout.shapes)
    assert "N" in fig.layout.xaxis.title.text


def test_type1_band_is_the_exact_binomial_interval_of_each_n(result):
    fig = power_curve_figure(result)
    lower = next(t for t in fig.data if t.name == "type I error 95% MC interval")
    upper = next(t for t in fig.data if t.name == "type I error 95% MC interval upper")
    k = np.rint(np.asarray(result.type1_by_n) * result.settings.replicates)
    slo, shi = proportion_confint(k, result.settings.replicates, method="beta")
    np.testing.assert_allclose(lower.y, np.nan_to_num(slo), atol=1e-10)
    np.testing.assert_allclose(upper.y, np.nan_to_num(shi, nan=1.0), atol=1e-10)


def test_marginals_one_panel_per_covariate(long_cohort):
    synth = _long_frame(seed=9, shift=1.0)
    fig = marginals_figure(long_cohort.data, synth, LONG_SCHEMA)
    assert [a.text for a in fig.layout.annotations] == ["age", "sex"]
    assert len(fig.data) == 4  # real and synthetic per column
    assert {t.name for t in fig.data} == {"real", "synthetic"}
    sex_real = next(t for t in fig.data if t.name == "real" and list(t.x) == ["F", "M"])
    assert sum(sex_real.y) == pytest.approx(1.0)  # shares of one row per patient
    assert fig.data[0].marker.color != fig.data[1].marker.color


def test_trajectory_mean_band_and_spaghetti(long_cohort):
    synth = _long_frame(seed=5)
    fig = trajectory_figure(long_cohort.data, synth, LONG_SCHEMA, spaghetti=3)
    names = [t.name for t in fig.data]
    assert names.count("real mean") == 1 and names.count("synthetic mean") == 1
    assert "real ±1 SD" in names and "synthetic ±1 SD" in names
    assert names.count("real patients") == 3
    mean = next(t for t in fig.data if t.name == "real mean")
    expected = long_cohort.data.groupby("month")["alsfrs_r"].mean()
    np.testing.assert_allclose(mean.y, expected.to_numpy())
    assert "months" in fig.layout.xaxis.title.text
    with pytest.raises(ValueError):
        trajectory_figure(_tte_frame(), _tte_frame(), TTE_SCHEMA)


def test_km_steps_match_statsmodels():
    real, synth = _tte_frame(), _tte_frame(seed=2)
    fig = km_figure(real, synth, TTE_SCHEMA)
    names = [t.name for t in fig.data]
    assert "real 95% pointwise CI" in names
    real_line = next(t for t in fig.data if t.name.startswith("real (n = 80"))
    assert real_line.line.shape == "hv" and real_line.y[0] == 1.0
    sf = SurvfuncRight(real["time_days"], real["death"])
    np.testing.assert_allclose(real_line.y[1:len(sf.surv_prob) + 1], sf.surv_prob)
    band = [t for t in fig.data if t.name == "real 95% pointwise CI"][0]
    assert np.all(np.asarray(band.y) <= np.asarray(real_line.y) + 1e-12)
    assert any(t.name.startswith("synthetic") for t in fig.data)
    assert "days" in fig.layout.xaxis.title.text
    with pytest.raises(ValueError):
        km_figure(_long_frame(), _long_frame(), LONG_SCHEMA)


def test_validation_figures_longitudinal(long_cohort):
    figs = validation_figures(long_cohort, _EchoGenerator(long_cohort.data), seed=1)
    assert set(figs) == {"marginals", "trajectory"}


# ---------------------------------------------------------------------------------------------- report
@pytest.fixture(scope="module")
def html(long_cohort, result):
    figs = {"power_curve": power_curve_figure(result),
            **validation_figures(long_cohort, _EchoGenerator(long_cohort.data), seed=1)}
    return build_html_report(title="ALS <phase 2> study", cohort=long_cohort,
                             generator=_EchoGenerator(long_cohort.data), scenario_or_design=result.design,
                             result=result, figures=figs, created=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc))


def _without_bundle(html: str) -> str:
    """The report minus the inlined plotly.js (whose source contains arbitrary strings)."""
    start = html.index("plotly.js v")
    return html[:start] + html[html.index("</script>", start):]


def test_report_sections_and_numbers(html, long_cohort, result):
    html = _without_bundle(html)
    for section in ("design", "assumptions", "provenance", "results", "validation", "reproducibility"):
        assert f'<section id="{section}">' in html
    assert "424242" in html
    assert long_cohort.sha256 in html
    for i in range(2):
        assert f"{result.power[i]:.3f}" in html
        assert f"{result.power_ci_low[i]:.3f}" in html and f"{result.power_ci_high[i]:.3f}" in html
    assert f"{result.type1_error:.4f}" in html and "400 null replicates" in html
    assert "ALS &lt;phase 2&gt; study" in html  # autoescaped
    assert "not patient data" in html and "Doe J. Journal of Toys" in html
    assert "2026-01-02T03:04:05+00:00" in html
    assert "placebo" in html and "25% slowing" in html and "2:1" not in html and "1:2" in html
    assert "months 0, 1, 2, 3, 4, 5, 6" in html and "2.0 %" in html


def test_report_inlines_plotly_once_and_works_offline(html):
    assert html.count("plotly.js v") == 1
    assert html.count("Copyright 2012") == 1
    assert html.index("plotly.js v") < html.index("</head>")
    body = _without_bundle(html)
    assert "cdn.plot.ly" not in body and "<script src=" not in body
    assert len(re.findall(r'class="plotly-graph-div"', html)) == 3


def test_report_with_scenario_text_and_default_figures(long_cohort, result):
    class _Scenario:
        title, seed, cohort, design = "t", 424242, object(), result.design
        text = '# my scenario\ntitle = "t"\nseed = 424242\n'

    out = build_html_report(title="t", cohort=long_cohort, generator=_EchoGenerator(long_cohort.data),
                            scenario_or_design=_Scenario(), result=result)
    assert "# my scenario" in out and 'title = &#34;t&#34;' in out
    assert out.count("plotly.js v") == 1
    assert 'id="fig-power_curve"' in out and 'id="fig-trajectory"' in out and 'id="fig-marginals"' in out


def test_package_versions_survive_missing_torch(monkeypatch):
    real = provenance.metadata.version

    def fake(name):
        if name == "torch":
            raise provenance.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(provenance.metadata, "version", fake)
    v = package_versions()
    assert v["torch"] == "not installed"
    for k in ("python", "numpy", "pandas", "scipy", "statsmodels", "scikit-learn", "plotly", "streamlit"):
        assert k in v and v[k]


# ---------------------------------------------------------------------------------------- boundaries
def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_library_never_imports_streamlit():
    files = [p for pkg in ("cohorts", "trials", "analysis") for p in (ROOT / pkg).rglob("*.py")]
    assert any(p.name == "plots.py" for p in files)
    offenders = [str(p.relative_to(ROOT)) for p in files if "streamlit" in _imported_modules(p)]
    assert offenders == []


def test_plots_module_is_pure():
    assert "streamlit" not in _imported_modules(Path(plots.__file__))
    assert "streamlit" not in _imported_modules(Path(report.__file__))


def test_report_example_trial_is_the_seeded_virtual_trial(long_cohort, result):
    """Section 5: one virtual trial from the simulation stream of the report's seed; its primary analysis equals
    the batched estimator on the same simulated trial (simulate_trials called directly)."""
    from analysis.estimators import slope_batched
    from analysis.workflow import seed_streams
    from support import KnownGenerator
    from trials.simulate import simulate_trials

    gen = KnownGenerator("longitudinal")
    html = _without_bundle(build_html_report(title="t", cohort=long_cohort, generator=gen, figures={},
                                             scenario_or_design=result.design, result=result))
    assert '<section id="example-trial">' in html and "Baseline characteristics by arm" in html
    batch = simulate_trials(gen, result.design, max(result.n_total), 1, rng=seed_streams(result.seed)[1])
    est = slope_batched(batch.y, batch.visit_times, batch.treated).estimate[0]
    assert f"{est:.3g}" in html
    other = simulate_trials(gen, result.design, max(result.n_total), 1, rng=seed_streams(result.seed + 1)[1])
    assert f"{slope_batched(other.y, other.visit_times, other.treated).estimate[0]:.3g}" not in html
