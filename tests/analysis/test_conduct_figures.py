"""Conduct figures carry exactly the input numbers: boundaries (from Boundaries and from a look table, one- and
two-sided, with futility and with an infinite bound), stopping probabilities (a hand-made table and a simulated one
from :func:`analysis.power.power_curve`), and sweep heatmaps (cells placed by axis values, CI hover data, bad
requests refused with a message naming the axis). Every comparison is exact (tolerance 0: the figure copies the
numbers) unless stated."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from support import KnownGenerator

from analysis.conduct_figures import boundaries_figure, stopping_figure, sweep_heatmap
from analysis.gs_boundaries import GroupSequentialDesign, boundaries
from analysis.power import power_curve
from analysis.sweep import SWEEP_COLUMNS
from cohorts.errors import InvalidDataError
from trials.conduct import Looks
from trials.design import Arm, Effect, Endpoint, PowerSettings, TrialDesign


def _trace(fig, name_start: str):
    return next(t for t in fig.data if t.name.startswith(name_start))


@pytest.fixture(scope="module")
def one_sided():
    return boundaries(GroupSequentialDesign((0.3, 0.6, 1.0), alpha=0.025, futility="obf", beta=0.2, sided=1))


def test_boundaries_from_boundaries_and_from_its_table(one_sided):
    b = one_sided
    for source in (b, b.summary()):
        fig = boundaries_figure(source)
        assert [t.name for t in fig.data] == ["efficacy: reject H0", "futility: stop (non-binding)"]  # one-sided
        eff, fut = fig.data
        assert list(eff.x) == [0.3, 0.6, 1.0] and list(fut.x) == [0.3, 0.6, 1.0]
        assert list(eff.y) == b.efficacy.tolist()
        assert list(fut.y) == b.futility.tolist()
        np.testing.assert_array_equal(np.asarray(eff.customdata)[:, 0], b.nominal_p)
        np.testing.assert_array_equal(np.asarray(eff.customdata)[:, 1], b.alpha_spent)


def test_two_sided_boundaries_are_mirrored_and_told_from_the_table():
    b = boundaries(GroupSequentialDesign((0.5, 1.0), alpha=0.05, spending="pocock", sided=2))
    fig = boundaries_figure(b.summary())                 # sided told from nominal_p = 2 (1 - Phi(c))
    upper, lower = _trace(fig, "efficacy: reject"), _trace(fig, "efficacy (lower side)")
    assert list(upper.y) == b.efficacy.tolist() and list(lower.y) == (-b.efficacy).tolist()
    assert not any(t.name.startswith("futility") for t in fig.data)
    assert "2-sided" in fig.layout.title.text
    # a table without nominal p-values is drawn one-sided unless told
    bare = b.summary()[["information_fraction", "efficacy_z"]]
    assert len(boundaries_figure(bare).data) == 1 and len(boundaries_figure(bare, sided=2).data) == 2


def test_an_infinite_bound_is_left_out_of_the_line():
    table = pd.DataFrame({"information_fraction": [0.01, 1.0], "efficacy_z": [math.inf, 1.96]})
    assert list(boundaries_figure(table).data[0].y) == [None, 1.96]


@pytest.mark.parametrize("bad, msg", [
    (pd.DataFrame({"information_fraction": [1.0]}), "missing column(s) efficacy_z"),
    (pd.DataFrame({"information_fraction": [], "efficacy_z": []}), "has no rows"),
    ([1.96], "expected a Boundaries object or a look table"),
])
def test_boundaries_figure_refuses_bad_input(bad, msg):
    with pytest.raises(InvalidDataError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        boundaries_figure(bad)


LOOKS = pd.DataFrame({
    "look": [1, 2, 3], "information_fraction": [0.3, 0.6, 1.0], "efficacy_z": [3.9, 2.7, 2.0],
    "futility_z": [-0.5, 0.9, 2.0], "nominal_p": [5e-5, 3.5e-3, 0.023],
    "p_efficacy": [0.05, 0.30, 0.35], "p_futility": [0.10, 0.08, 0.0],
    "cumulative_efficacy": [0.05, 0.35, 0.70],
    "p_efficacy_null": [0.0, 0.004, 0.02], "p_futility_null": [0.31, 0.40, 0.0],
    "cumulative_efficacy_null": [0.0, 0.004, 0.024]})


def test_stopping_figure_bars_and_cumulative_lines():
    fig = stopping_figure(LOOKS)
    expect = {"efficacy, assumed effect": "p_efficacy", "efficacy, no effect": "p_efficacy_null",
              "futility, assumed effect": "p_futility", "futility, no effect": "p_futility_null",
              "cumulative efficacy, assumed effect": "cumulative_efficacy",
              "cumulative efficacy, no effect": "cumulative_efficacy_null"}
    assert [t.name for t in fig.data] == list(expect)
    for t in fig.data:
        assert list(t.y) == LOOKS[expect[t.name]].tolist(), t.name
        assert list(t.x) == ["look 1 (t = 0.3)", "look 2 (t = 0.6)", "look 3 (t = 1)"]
    no_futility = LOOKS.assign(futility_z=np.nan, p_futility=0.0, p_futility_null=0.0)
    assert not any(t.name.startswith("futility") for t in stopping_figure(no_futility).data)
    with pytest.raises(InvalidDataError, match="p_efficacy"):
        stopping_figure(LOOKS.drop(columns=["p_efficacy"]))


def test_stopping_figure_of_a_simulated_look_table():
    """The look table power_curve produces is drawn as is; its last cumulative efficacy is the power."""
    design = TrialDesign((Arm("c"), Arm("t", 1.0, Effect("mean_difference", 0.5))), Endpoint("ttest"),
                         looks=Looks((0.5, 1.0), futility="pocock", beta=0.2, sided=1))
    res = power_curve(KnownGenerator("continuous"), design, PowerSettings((80,), 200, 0.05),
                      rng=np.random.default_rng(3))
    table = res.looks[0]
    fig = stopping_figure(table)
    assert list(_trace(fig, "efficacy, assumed").y) == table["p_efficacy"].tolist()
    assert list(_trace(fig, "futility, no effect").y) == table["p_futility_null"].tolist()
    assert _trace(fig, "cumulative efficacy, assumed").y[-1] == pytest.approx(res.power[0], abs=1e-12)
    assert list(boundaries_figure(table).data[0].y) == table["efficacy_z"].tolist()
    assert len(boundaries_figure(table).data) == 2          # one-sided with futility: no mirrored bound


def _sweep() -> pd.DataFrame:
    """A sweep table with SWEEP_COLUMNS: 2 effects x 3 N x 2 analyses, power = effect + N / 1000 (+0.01 ancova)."""
    rows = []
    for e in (0.15, 0.35):
        for n in (60, 120, 240):
            for a in ("ancova", "slope"):
                p = e + n / 1000 + (0.01 if a == "ancova" else 0.0)
                rows.append({"cell": len(rows), "effect": e, "n_total": n, "dropout_per_month": 0.02, "analysis": a,
                             "power": p, "power_ci_low": p - 0.05, "power_ci_high": p + 0.05, "type1_error": n / 4000,
                             "type1_ci_low": 0.0, "type1_ci_high": 0.1, "mean_estimate": e, "replicates": 100,
                             "seconds": 0.1})
    return pd.DataFrame(rows, columns=list(SWEEP_COLUMNS))


def test_sweep_heatmap_places_every_cell():
    t = _sweep()
    fig = sweep_heatmap(t, "power", x="n_total", y="effect", where={"analysis": "slope"})
    h = fig.data[0]
    assert list(h.x) == ["60", "120", "240"] and list(h.y) == ["0.15", "0.35"]
    want = [[e + n / 1000 for n in (60, 120, 240)] for e in (0.15, 0.35)]
    assert [list(r) for r in h.z] == want
    assert np.asarray(h.customdata).tolist() == [[[w - 0.05, w + 0.05] for w in r] for r in want]
    assert (h.zmin, h.zmax) == (0.0, 1.0)
    # axes swapped, another value, another fixed analysis
    g = sweep_heatmap(t, "type1_error", x="effect", y="n_total", where={"analysis": "ancova"}).data[0]
    assert [list(r) for r in g.z] == [[n / 4000] * 2 for n in (60, 120, 240)]
    assert "ancova" in sweep_heatmap(t, where={"analysis": "ancova"}).layout.title.text


def test_sweep_heatmap_defaults_and_missing_cells():
    t = _sweep()
    one = t[(t["analysis"] == "slope") & (t["effect"] == 0.35)]
    h = sweep_heatmap(one).data[0]                          # one varying axis: N across, one row
    assert list(h.x) == ["60", "120", "240"] and [list(r) for r in h.z] == [[0.35 + n / 1000 for n in (60, 120, 240)]]
    gap = t[(t["analysis"] == "slope") & ~((t["effect"] == 0.15) & (t["n_total"] == 120))]
    z = sweep_heatmap(gap, x="n_total", y="effect").data[0].z
    assert z[0][1] is None and z[1][1] == 0.35 + 120 / 1000


@pytest.mark.parametrize("kwargs, msg", [
    ({}, "also varies analysis"),
    ({"x": "seed", "where": {"analysis": "slope"}}, "'seed' is not a sweep axis"),
    ({"x": "effect", "y": "effect"}, "x and y are both 'effect'"),
    ({"where": {"analysis": "mmrm"}}, "no cell of the sweep matches"),
    ({"where": {"dose": 1}}, "where\\['dose'\\] is not a sweep axis"),
])
def test_sweep_heatmap_refuses_ambiguous_requests(kwargs, msg):
    with pytest.raises(InvalidDataError, match=msg):
        sweep_heatmap(_sweep(), "power", **kwargs)
    with pytest.raises(InvalidDataError, match="missing column"):
        sweep_heatmap(_sweep().drop(columns=["analysis"]))
