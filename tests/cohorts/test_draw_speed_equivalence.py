"""The fast drawing paths give the same bits as the straightforward code they replaced.

Reference: small, plain re-implementations kept here of the code before the speed-up (Gaussian copula sampling
with ``np.interp`` quantiles, ``searchsorted`` levels and object arrays; the baseline design matrix built column by
column with one ``values == level`` mask per level, ``column_stack`` and ``[:, keep]``; the piecewise-exponential
``H0^{-1}`` with ``searchsorted``; one matrix product for the latent scores). Data: GBSG-2 (3-level tumour grade,
two binary factors, five integer-valued numeric columns) and the VA lung trial with missing values put in on a
fixed pattern (4-level cell type with ~14 % missing, prior therapy with ~8 % missing, age with ~9 % missing), plus
the VA lung columns recast as a pandas Categorical with an unused category, a bool column and an object column
mixing an int and a string (the comparison-by-value fallback).

Tolerance: none. Every check is bit equality (``tobytes``) of float arrays and exact equality (dtype included) of
frames; the draws are 200,000 patients per case, and the step tables and the interpolation are also checked on
adversarial inputs (values at and one ulp beside every knot and bucket edge, +-inf, NaN).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import ndtr

from cohorts.generators import get_generator
from cohorts.generators.copula import GaussianCopula, _interp_order_statistics, _Marginal, _StepTable
from cohorts.generators.regression import BaselineDesign, _blas_rows, _level_codes, design_matvec
from cohorts.generators.survival_flexible import PiecewiseInverseCumhaz
from cohorts.schema import CohortSchema

DATA = Path(__file__).resolve().parents[1] / "data"
N = 200_000


# ---------------------------------------------------------------- reference implementations (the old code)
def ref_mask(values: np.ndarray, level) -> np.ndarray:
    out = np.zeros(len(values), dtype=bool)
    present = ~pd.isna(values)
    out[present] = values[present] == level
    return out


def ref_restore(values: np.ndarray, dtype) -> pd.Series:
    if isinstance(dtype, pd.CategoricalDtype):
        return pd.Series(pd.Categorical(values, dtype=dtype))
    if values.dtype != object and isinstance(dtype, np.dtype) and dtype.kind in "iu" and np.isnan(values).any():
        return pd.Series(values)
    return pd.Series(values).astype(dtype)


def ref_quantile(m, u: np.ndarray) -> np.ndarray:
    if m.kind == "continuous":
        x = np.interp(u, m.p, m.x)
        return np.rint(x) if m.integer else x
    return m.levels[np.minimum(np.searchsorted(m.cum, u, side="right"), len(m.levels) - 1)]


def ref_sample(cop: GaussianCopula, n: int, rng: np.random.Generator) -> pd.DataFrame:
    U = ndtr(rng.standard_normal((n, len(cop.latent_names_))) @ cop.cholesky_.T)
    pos = {name: j for j, name in enumerate(cop.latent_names_)}
    out = {}
    for c in cop.columns_:
        marg, dtype = cop.marginals_[c], cop.dtypes_[c]
        numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
        values = np.full(n, np.nan, dtype=float if numeric else object)
        if marg is not None:
            values = ref_quantile(marg, U[:, pos[c]]).astype(float if numeric else object)
        rate = cop.missing_rate_[c]
        if rate > 0:
            values[U[:, pos[f"{c}:missing"]] > 1.0 - rate] = np.nan
        out[c] = ref_restore(values, dtype)
    return pd.DataFrame(out, index=pd.RangeIndex(n), columns=cop.columns_)


def ref_transform(d: BaselineDesign, frame: pd.DataFrame) -> np.ndarray:
    cols = []
    for c in d.numeric_:
        v = pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=float)
        v = np.where(np.isfinite(v), v, d.median_[c])
        sd = d.sd_[c] if d.sd_[c] > 0 else 1.0
        cols.append((v - d.center_[c]) / sd)
    for c in d.categorical_:
        values = frame[c].to_numpy(dtype=object)
        _, levels, has_na = d.levels_[c]
        cols += [ref_mask(values, lv).astype(float) for lv in levels]
        if has_na:
            cols.append(pd.isna(values).astype(float))
    X = np.column_stack(cols) if cols else np.zeros((len(frame), 0))
    return X[:, d.keep_]


def ref_inverse_cumhaz(f: PiecewiseInverseCumhaz, h) -> np.ndarray:
    h = np.asarray(h, dtype=float)
    j = np.clip(np.searchsorted(f.cumhaz_at_start, h, side="right") - 1, 0, len(f.rates) - 1)
    return f.starts[j] + (h - f.cumhaz_at_start[j]) / f.rates[j]


# ---------------------------------------------------------------- data
def gbsg2():
    return pd.read_csv(DATA / "gbsg2.csv"), ["age", "estrec", "pnodes", "progrec", "tsize"], \
        ["horTh", "menostat", "tgrade"], ("rfs_days", "event")


def va_missing():
    d = pd.read_csv(DATA / "va_lung.csv")
    d.loc[d.index % 7 == 3, "Celltype"] = np.nan
    d.loc[d.index % 11 == 5, "Age_in_years"] = np.nan
    d.loc[d.index % 13 == 2, "Prior_therapy"] = np.nan
    return d, ["Age_in_years", "Karnofsky_score", "Months_from_Diagnosis"], \
        ["Celltype", "Prior_therapy", "Treatment"], ("time_days", "death")


def va_dtypes():
    d, num, cat, out = va_missing()
    d["Celltype"] = pd.Categorical(d["Celltype"], categories=["adeno", "large", "smallcell", "squamous", "other"])
    d["Prior_therapy"] = (d["Prior_therapy"] == "yes").astype(bool)
    d["Treatment"] = pd.Series([1 if t == "standard" else "test" for t in d["Treatment"]], dtype=object)
    return d, num, cat, out


CASES = {"gbsg2": gbsg2, "va_missing": va_missing, "va_dtypes": va_dtypes}


def assert_same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    for c in a.columns:
        if a[c].dtype.kind == "f":
            assert a[c].to_numpy().tobytes() == b[c].to_numpy().tobytes(), c


@pytest.fixture(scope="module", params=list(CASES))
def case(request):
    data, num, cat, outcome = CASES[request.param]()
    cop = GaussianCopula().fit(data[num + cat], num, cat, rng=np.random.default_rng(0))
    design = BaselineDesign().fit(data[num + cat], num, cat)
    return request.param, data, num, cat, outcome, cop, design


# ---------------------------------------------------------------- tests
def test_copula_sample_equals_reference(case):
    name, *_, cop, _ = case
    before = pickle.dumps(cop)
    got = cop.sample(N, rng=np.random.default_rng(5))
    assert_same(got, ref_sample(cop, N, np.random.default_rng(5)))
    assert_same(cop.sample(300, rng=np.random.default_rng(6)), ref_sample(cop, 300, np.random.default_rng(6)))
    assert pickle.dumps(cop) == before  # the step tables are a cache, not part of the model
    if name == "va_missing":  # the missingness paths are exercised
        assert (got[["Celltype", "Prior_therapy", "Age_in_years"]].isna().mean() > 0.05).all()


def test_design_transform_equals_reference(case, monkeypatch):
    name, data, num, cat, _, cop, design = case
    sampled = cop.sample(N, rng=np.random.default_rng(7))
    for frame in (data, sampled, sampled.iloc[::-1].reset_index(drop=True)):
        X, ref = design.transform(frame), ref_transform(design, frame)
        assert X.shape == ref.shape and X.flags["F_CONTIGUOUS"] == ref.flags["F_CONTIGUOUS"]
        assert X.tobytes(order="A") == ref.tobytes(order="A")
        coef = np.linspace(-1.0, 1.3, X.shape[1])
        assert (X @ coef).tobytes() == (ref @ coef).tobytes()
    if name != "va_dtypes":
        # the copula's string columns carry their codes: no factorization on the hot path
        def boom(*a, **k):
            raise AssertionError("factorized although the codes were known")
        monkeypatch.setattr(pd, "factorize", boom)
        assert design.transform(sampled).tobytes(order="A") == ref_transform(design, sampled).tobytes(order="A")


def test_design_of_sampled_columns_equals_the_design_of_their_frame(case, monkeypatch):
    """The copula's columns reach the design matrix as level codes; the frame is only built when asked for."""
    name, data, num, cat, _, cop, design = case
    cols = cop.sample_columns(N, rng=np.random.default_rng(7))
    if name != "va_dtypes":
        def boom(*a, **k):
            raise AssertionError("factorized although the codes were known")
        monkeypatch.setattr(pd, "factorize", boom)
    X = design.transform(cols)
    assert cols._frame is None                                    # no frame was built for the design
    monkeypatch.undo()
    frame = cols.frame()
    assert_same(frame, cop.sample(N, rng=np.random.default_rng(7)))
    assert X.tobytes(order="A") == ref_transform(design, frame).tobytes(order="A")
    assert cols.frame() is frame and len(cols) == N


def test_level_codes_follow_an_edited_column(case):
    name, data, num, cat, _, cop, design = case
    sampled = cop.sample(5000, rng=np.random.default_rng(8))
    c = cat[0]
    levels = design.levels_[c][1]
    sampled.loc[0:99, c] = design.levels_[c][0]  # the reference level: a new column, not the remembered one
    codes = _level_codes(sampled[c], levels)
    values = sampled[c].to_numpy(dtype=object)
    expect = np.full(len(values), len(levels))
    for k in range(len(levels) - 1, -1, -1):
        expect[ref_mask(values, levels[k])] = k
    expect[pd.isna(values)] = -1
    np.testing.assert_array_equal(codes, expect)
    assert design.transform(sampled).tobytes(order="A") == ref_transform(design, sampled).tobytes(order="A")


def _nasty_u(p: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(3)
    return np.r_[rng.random(100_000), ndtr(rng.standard_normal(100_000)), p, np.nextafter(p, 0), np.nextafter(p, 1),
                 0.0, 1.0, 5e-324, 1 - 2 ** -53, -0.0, -0.25, 1.25]


def test_interp_equals_np_interp(case):
    *_, cop, _ = case
    cont = [m for m in cop.marginals_.values() if m is not None and m.kind == "continuous"]
    assert cont
    for m in cont:
        u = _nasty_u(m.p)
        assert _interp_order_statistics(u, m.x, m._slopes()).tobytes() == np.interp(u, m.p, m.x).tobytes()


def test_interp_equals_np_interp_on_every_grid_and_edge_case():
    # every grid size up to 800 with non-integer values, at and beside every knot: the guessed knot is one off
    # (either way) for many of these u, and only the correction steps make every bit match
    rng = np.random.default_rng(12)
    for n in range(2, 800):
        x = np.sort(rng.standard_normal(n) * 3.7)
        p = (np.arange(1, n + 1) - 0.5) / n
        u = np.r_[p, np.nextafter(p, 0), np.nextafter(p, 1)]
        assert _interp_order_statistics(u, x, np.diff(x) / np.diff(p)).tobytes() == np.interp(u, p, x).tobytes(), n
    # ties, NaN, a -0.0 value (which sends the marginal to np.interp itself) and a single value
    for values, fast in (([1.0, 7.0, 1.0, 2.5, 1.0, 0.0], True), ([1.0, 7.0, 1.0, 2.5, 1.0, -0.0], False),
                         ([3.0], False)):
        m = _Marginal(np.array(values), kind="continuous")
        assert (m._slopes() is not None) == fast
        u = np.r_[_nasty_u(m.p), np.nan]
        assert m.quantile(u).tobytes() == ref_quantile(m, u).tobytes()


def test_level_index_equals_searchsorted(case):
    *_, cop, _ = case
    levels = [m for m in cop.marginals_.values() if m is not None and m.kind == "levels"]
    assert levels
    for m in levels:
        u = np.r_[_nasty_u(m.cum), np.nan, np.inf, -np.inf]
        assert m.level_index(u).tobytes() == np.minimum(np.searchsorted(m.cum, u, side="right"),
                                                        len(m.levels) - 1).astype(np.intp).tobytes()


def _steps_in_z(g, z_sorted: np.ndarray) -> np.ndarray:
    """The doubles on both sides of every step of ``g(ndtr(z))`` between neighbours of ``z_sorted`` (bisection to
    adjacent doubles), and their outer neighbours: where a table could go wrong if anything were off."""
    v = g(ndtr(z_sorted))
    i = np.flatnonzero(v[1:] != v[:-1])
    lo, hi = z_sorted[i], z_sorted[i + 1]
    for _ in range(80):
        mid = lo + (hi - lo) / 2
        same = g(ndtr(mid)) == g(ndtr(lo))
        lo, hi = np.where(same, mid, lo), np.where(same, hi, mid)
    return np.r_[lo, hi, np.nextafter(lo, -np.inf), np.nextafter(hi, np.inf)]


def test_step_tables_equal_direct_evaluation(case):
    *_, cop, _ = case
    edges = np.arange(-8.0, 8.0 + 2 ** -12, 2 ** -12)
    rng = np.random.default_rng(4)
    z = np.r_[rng.standard_normal(400_000) * 1.3, edges, np.nextafter(edges, -9), np.nextafter(edges, 9),
              -40.0, 40.0, -np.inf, np.inf]
    checked = 0
    steps = [(c, m.step_map()) for c, m in cop.marginals_.items() if m is not None and m.step_map() is not None]
    steps += [(c, (lambda u, cut=1.0 - r: (u > cut).astype(np.int8), -1)) for c, r in cop.missing_rate_.items() if r > 0]
    for c, (g, sentinel) in steps:
        table = _StepTable(g, sentinel)
        zz = np.r_[z, _steps_in_z(g, np.sort(z[np.isfinite(z)]))]
        got, want = table(zz), np.asarray(g(ndtr(zz))).astype(table.table.dtype)
        assert got.tobytes() == want.tobytes(), c
        with_nan = np.r_[zz[:100], np.nan]
        assert np.array_equal(np.asarray(table(with_nan), float), np.asarray(g(ndtr(with_nan)), float),
                              equal_nan=True)
        checked += 1
    assert checked >= 3


def test_piecewise_inverse_cumhaz_equals_searchsorted():
    rng = np.random.default_rng(9)
    for pieces in range(1, 10):  # 1 to 9 pieces; many random cut points and rates each
        for _ in range(20):
            f = PiecewiseInverseCumhaz(np.sort(rng.uniform(1, 2000, pieces - 1)), rng.uniform(1e-4, 3e-3, pieces))
            c = f.cumhaz_at_start
            h = np.r_[rng.exponential(size=2000), c, np.nextafter(c, -1), np.nextafter(c, 1), -1.0, -0.0, np.inf,
                      np.nan]
            assert f(h).tobytes() == ref_inverse_cumhaz(f, h).tobytes()


def test_blas_row_blocks_equal_one_product(case):
    *_, cop, _ = case
    A = np.random.default_rng(2).standard_normal((N, len(cop.latent_names_)))
    assert _blas_rows(A, cop.cholesky_.T).tobytes() == (A @ cop.cholesky_.T).tobytes()
    assert cop.sample_normal_scores(N, rng=np.random.default_rng(1)).tobytes() == \
        (np.random.default_rng(1).standard_normal(A.shape) @ cop.cholesky_.T).tobytes()
    # the sampler's blocked draws (normals drawn block by block, each block multiplied and transposed) are the
    # same numbers as one draw of all the normals; N spans many blocks and ends in a partial one
    assert N > 3 * max(64, 262144 // len(cop.latent_names_) ** 2) and N % max(64, 262144 // len(cop.latent_names_) ** 2)
    assert np.ascontiguousarray(cop.sample_normal_scores(N, rng=np.random.default_rng(1)).T).tobytes() == \
        cop._scores_by_row(N, rng=np.random.default_rng(1)).tobytes()


def test_design_matvec_is_the_product_whatever_the_blas_threads():
    """The outcome models' linear predictor: ``X @ coef`` to rounding, and the same bits with 1 or more BLAS
    threads (OpenBLAS's own product is not: it splits rows by thread count)."""
    from threadpoolctl import threadpool_limits
    rng = np.random.default_rng(12)
    for n, p, order in ((100_003, 7, "F"), (380_000, 9, "F"), (5_000, 3, "C"), (10, 0, "F")):
        X = np.asarray(rng.standard_normal((n, p)), order=order)
        c = rng.standard_normal(p)
        got = design_matvec(X, c)
        expect = np.array([sum(X[i, j] * c[j] for j in range(p)) for i in range(0, n, 997)]) if p else 0.0
        np.testing.assert_allclose(got[::997], expect, rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(got, X @ c, rtol=1e-12, atol=1e-12)
        with threadpool_limits(1, user_api="blas"):
            assert design_matvec(X, c).tobytes() == got.tobytes()


def test_default_generator_draw_equals_reference(case):
    name, data, num, cat, (time, event), *_ = case
    schema = CohortSchema.from_dict({"id": "pid", "baseline": {"numeric": num, "categorical": cat},
                                     "outcome": {"type": "tte", "time": time, "event": event}})
    g = get_generator("default").fit(data.assign(pid=np.arange(len(data))), schema, rng=np.random.default_rng(0))
    draw = g.draw(N, rng=np.random.default_rng(11))
    rng = np.random.default_rng(11)
    baseline = ref_sample(g.baseline_model_, N, rng)
    assert_same(draw.baseline, baseline)
    model = g.outcome_model_
    lp = design_matvec(ref_transform(model.design_, baseline), model.ph_.coef_)
    assert draw.outcome.lp.tobytes() == lp.tobytes()
    assert draw.outcome.cumhaz_draw.tobytes() == rng.exponential(size=N).tobytes()
    inv = model.ph_.inverse_cumhaz
    ref = ref_inverse_cumhaz(inv, draw.outcome.cumhaz_draw * np.exp(-(lp + np.log(0.7)))) \
        if isinstance(inv, PiecewiseInverseCumhaz) else inv(draw.outcome.cumhaz_draw * np.exp(-(lp + np.log(0.7))))
    assert draw.outcome.event_time(np.log(0.7)).tobytes() == ref.tobytes()
