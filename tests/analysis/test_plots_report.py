"""Figure builders, the HTML report, and the rule that the library never imports streamlit.

Inputs are small synthetic frames and a hand-made PowerResult, so these tests depend on no generator family.
"""

from __future__ import annotations

import ast
import dataclasses
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
from analysis.report import build_html_report, package_versions, render_html
from analysis.report_inputs import ReportInputs
from analysis.report_text import ANALYSIS_DESCRIPTIONS, SECTIONS, SWEEP_COMMAND
from cohorts import provenance
from cohorts.cohort import Cohort
from cohorts.schema import CohortSchema
from trials.conduct import Eligibility
from trials.design import ANALYSIS_OUTCOME, Arm, Dropout, Effect, Endpoint, PowerSettings, TrialDesign

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
    # no external resource of any kind: no link, source, stylesheet import, CSS url or web font outside the page
    assert re.findall(r'(?:src|href)\s*=\s*"(?!#)[^"]*"', body) == []
    assert re.findall(r"https?://", body) == []
    assert "@import" not in body and "url(" not in body and "@font-face" not in body


def _section(html: str, sid: str) -> str:
    """The markup of the top-level section ``sid`` (up to the next top-level section)."""
    ids = [s for s, _ in SECTIONS]
    start = html.index(f'<section id="{sid}">')
    nxt = ids.index(sid) + 1
    end = html.index(f'<section id="{ids[nxt]}">') if nxt < len(ids) else html.index("</main>")
    return html[start:end]


def test_report_has_every_section_in_order_with_a_contents_link(html):
    body = _without_bundle(html)
    positions = [body.index(f'<section id="{sid}">') for sid, _ in SECTIONS]
    assert positions == sorted(positions)
    for sid, heading in SECTIONS:
        assert f'<a href="#{sid}">{heading}</a>' in body
    assert [s for s, _ in SECTIONS] == ["executive-summary", "provenance", "generator", "design", "operating",
                                        "sensitivity", "example-trial", "limitations", "reproducibility"]  # stable
    for nested, parent in (("assumptions", "design"), ("results", "operating"), ("validation", "generator")):
        assert f'<section id="{nested}">' in _section(body, parent)


def _inputs(cohort, result, **changes) -> ReportInputs:
    """Report inputs without a generator (no example trial, no validation figures: fast)."""
    return ReportInputs(**{"title": "t", "cohort": cohort, "generator": None, "design": result.design,
                           "result": result, **changes})


def test_user_text_is_escaped_title_author_and_criteria(long_cohort, result):
    design = dataclasses.replace(result.design, eligibility=Eligibility("age < 60"))
    out = render_html(_inputs(long_cohort, result, title="A <b>bold</b> & co", design=design,
                              author="<script>alert(1)</script>"))
    body = _without_bundle(out)
    assert "A &lt;b&gt;bold&lt;/b&gt; &amp; co" in body and "<b>bold</b>" not in body
    assert 'id="author">&lt;script&gt;alert(1)&lt;/script&gt;<' in body and "<script>alert" not in body
    assert "age &lt; 60" in _section(body, "provenance")
    assert "not given" in render_html(_inputs(long_cohort, result)).split('id="author">')[1][:20]


@pytest.mark.parametrize("target", [0.3, 0.6, 0.99])
def test_recommended_n_is_the_smallest_simulated_n_reaching_the_target(long_cohort, result, target):
    ordered = sorted(zip(result.n_total, result.power))
    expected = next((n for n, p in ordered if p >= target), None)
    # the three targets cover a first-size answer, a later-size answer and no answer
    assert {next((n for n, p in ordered if p >= t), None) for t in (0.3, 0.6, 0.99)} == {60, 120, None}
    summary = _section(_without_bundle(render_html(_inputs(long_cohort, result, target_power=target))),
                       "executive-summary")
    shown = re.search(r'id="recommended-n">([^<]+)<', summary).group(1)
    assert shown == ("none" if expected is None else str(expected))
    if expected is None:
        assert f"no simulated N reached {100 * target:.0f} % power" in summary
    else:
        i = list(result.n_total).index(expected)
        assert f"power {result.power[i]:.3f} (95 % MC interval {result.power_ci_low[i]:.3f}" in summary


def test_recommended_n_of_a_sample_size_search_wins(long_cohort, result):
    search = {"target_power": 0.9, "n_recommended": 150, "status": "found", "power": 0.912, "power_ci_low": 0.89,
              "power_ci_high": 0.93, "type1_error": 0.051, "type1_error_ci_low": 0.04, "type1_error_ci_high": 0.06}
    summary = _section(render_html(_inputs(long_cohort, result, sample_size=search)), "executive-summary")
    assert 'id="recommended-n">150<' in summary and "sample-size search for 90 % power" in summary
    assert "power 0.912" in summary and "at N = 150: 0.0510" in summary


def test_type1_inflation_is_flagged_in_summary_and_limitations(long_cohort, result):
    alpha = result.settings.alpha
    assert result.type1_ci_low <= alpha  # the fixture keeps its level
    plain = _without_bundle(render_html(_inputs(long_cohort, result)))
    assert 'id="type1-ok"' in plain and 'id="type1-flag"' not in plain
    assert "Type I error inflated" not in _section(plain, "limitations")
    bad = dataclasses.replace(result, type1_error=0.1, type1_ci_low=0.072, type1_ci_high=0.133)
    out = _without_bundle(render_html(_inputs(long_cohort, bad)))
    assert 'id="type1-flag"' in _section(out, "executive-summary") and 'id="type1-ok"' not in out
    assert "Type I error inflated" in _section(out, "limitations") and "0.0720" in out
    assert "arXiv 2312.07837" in _section(out, "limitations")


def _sweep_table(alpha: float) -> pd.DataFrame:
    from analysis.sweep import SWEEP_COLUMNS
    cells = [(0.2, 60), (0.2, 120), (0.3, 60), (0.3, 120)]
    t = pd.DataFrame({"cell": range(4), "effect": [e for e, _ in cells], "n_total": [n for _, n in cells],
                      "dropout_per_month": 0.02, "analysis": "slope", "power": [0.31, 0.52, 0.55, 0.83],
                      "type1_error": [0.05, 0.04, 0.06, 0.11], "mean_estimate": 0.2, "replicates": 200, "seconds": 1.0})
    for col in ("power", "type1_error"):
        ci = "type1" if col == "type1_error" else col
        t[f"{ci}_ci_low"], t[f"{ci}_ci_high"] = proportion_confint(np.rint(t[col] * 200), 200, method="beta")
    assert (t["type1_ci_low"] > alpha).sum() == 1  # exactly one cell is inflated
    return t[list(SWEEP_COLUMNS)]


def test_sensitivity_section_with_and_without_a_sweep(long_cohort, result):
    none = _without_bundle(render_html(_inputs(long_cohort, result)))
    section = _section(none, "sensitivity")
    assert 'id="no-sweep"' in section and SWEEP_COMMAND in section and "fig-sweep" not in section
    assert "No sensitivity grid" in _section(none, "limitations")
    table = _sweep_table(result.settings.alpha)
    out = _without_bundle(render_html(_inputs(long_cohort, result, sweep=table, sweep_summary={"seed": 5})))
    section = _section(out, "sensitivity")
    assert 'id="no-sweep"' not in section and 'id="sweep-table"' in section
    for row in table.itertuples():
        assert f"{row.power:.3g} ({row.power_ci_low:.3g} - {row.power_ci_high:.3g})" in section
    assert "1 cell(s) have a type I error above alpha" in section and section.count("<td>yes</td>") == 1
    assert 'id="fig-sweep-1"' in section and 'id="fig-sweep-2"' in section
    assert len(re.findall(r'class="plotly-graph-div"', section)) == 2
    assert "No sensitivity grid" not in _section(out, "limitations")


def test_every_registered_analysis_has_a_description(long_cohort, result):
    from analysis.estimators import BATCHED
    assert set(BATCHED) | set(ANALYSIS_OUTCOME) <= set(ANALYSIS_DESCRIPTIONS)
    assert all(len(ANALYSIS_DESCRIPTIONS[a]) > 20 for a in BATCHED)
    design = _section(render_html(_inputs(long_cohort, result)), "design")
    assert ANALYSIS_DESCRIPTIONS["slope"] in design


def test_generator_evaluation_model_card_and_manifest(long_cohort, result):
    evaluation = pd.DataFrame({
        "section": ["fidelity", "fidelity", "utility", "privacy"],
        "name": ["marginal KS: age", "detection AUC (holdout vs synthetic)", "TSTR / TRTR", "exact-copy rate"],
        "value": [0.03, 0.71, 0.95, 0.0], "better": ["lower", "lower", "higher", "lower"],
        "target": [0.1, 0.6, 0.9, np.nan], "meets_target": [True, False, True, None]})
    card = {"seed": 99, "training_data_sha256": "c" * 64, "n_train_patients": 40, "training_seconds": 1.25,
            "model_sha256": "d" * 64, "privacy": {"epsilon": 1.5, "delta": 1e-5, "mechanism": "DP-SGD"}}
    manifest = {"command": "insilico reproduce runs/abc", "started": "2026-03-01T10:00:00+00:00",
                "finished": "2026-03-01T10:05:00+00:00", "seed": 424242, "cohort": {"sha256": long_cohort.sha256},
                "generator": {"fingerprint_sha256": "e" * 64, "model_sha256": "d" * 64},
                "versions": {"python": "3.11.0", "numpy": "9.9.9"}, "platform": "TestOS 1.0"}
    out = _without_bundle(render_html(_inputs(long_cohort, result, evaluation=evaluation, model_card=card,
                                              manifest=manifest, evaluation_split={"n_train": 28, "n_holdout": 12})))
    gen = _section(out, "generator")
    assert "Fidelity (1 target(s) met, 1 missed)" in gen and "Privacy (0 target(s) met, 0 missed)" in gen
    assert gen.count('class="mark-misses">misses<') == 1 and gen.count('class="mark-meets">meets<') == 2
    assert "&lt;= 0.6" in gen and "&gt;= 0.9" in gen and "c" * 64 in gen and "epsilon = 1.5" in gen
    assert "28 patients" in gen and "12 held-out patients" in gen
    assert "detection AUC (holdout vs synthetic) = 0.71" in _section(out, "limitations")
    repro = _section(out, "reproducibility")
    for text in ("insilico reproduce runs/abc", "2026-03-01T10:00:00+00:00", "2026-03-01T10:05:00+00:00",
                 "TestOS 1.0", "9.9.9", "e" * 64, "d" * 64, long_cohort.sha256, "Software versions of the run"):
        assert text in repro, text


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
