"""The neural families: the data transformer, TVAE, CTGAN, their DP-SGD mode, and their generator wrappers.

Training runs are kept short (few epochs, small networks where only the mechanics are tested); the learning
checks use a 2-column correlated table with stated tolerances.
"""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from cohorts.generators import get_generator  # noqa: E402
from cohorts.generators.ctgan import CTGANBaseline, _build_generator, ctgan_schedule  # noqa: E402
from cohorts.generators.dp import MECHANISM, default_delta  # noqa: E402
from cohorts.generators.tabular_nn import (TabularTransformer, auto_schedule, span_activate,  # noqa: E402
                                           span_cross_entropy, span_targets, torch_layout)
from cohorts.generators.tvae import TVAEBaseline  # noqa: E402
from cohorts.schema import CohortSchema  # noqa: E402

NUMERIC = ["age", "crp", "n_relapses", "platelets"]
CATEGORICAL = ["sex", "stage", "site", "grade"]


def mixed_frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    f = rng.standard_normal(n)
    df = pd.DataFrame({
        "age": np.where(rng.random(n) < 0.4, 45, 70) + 5 * rng.standard_normal(n) + 3 * f,
        "crp": np.exp(1 + 0.7 * f + 0.4 * rng.standard_normal(n)),
        "n_relapses": rng.poisson(2, n),
        "platelets": np.rint(250 + 60 * rng.standard_normal(n)).astype(np.int64),
        "sex": pd.Series(rng.choice(["female", "male"], n), dtype="str"),
        "stage": pd.Categorical(np.where(f > 0.3, "III", np.where(f > -0.5, "II", "I")),
                                categories=["I", "II", "III", "IV"], ordered=True),
        "site": rng.choice(["bulbar", "limb", "rare"], n, p=[0.3, 0.66, 0.04]),
        "grade": rng.choice([1, 2, 3], n),
    })
    df.loc[rng.random(n) < 0.1, "age"] = np.nan
    df.loc[rng.random(n) < 0.08, "sex"] = np.nan
    return df


def correlated_frame(n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    y = 0.8 * x + 0.6 * rng.standard_normal(n)
    return pd.DataFrame({"x": 50 + 10 * x, "y": np.exp(0.5 * y)})


def check_domains(out: pd.DataFrame, data: pd.DataFrame) -> None:
    assert list(out.columns) == list(data.columns)
    for c in data.columns:
        assert out[c].dtype == data[c].dtype, c
        v, ref = out[c].dropna(), data[c].dropna()
        if c in NUMERIC:
            assert v.min() >= ref.min() and v.max() <= ref.max(), c
            if np.all(ref == np.round(ref)):
                assert np.all(v == np.round(v)), c
        else:
            assert set(v) <= set(ref), c
        assert out[c].isna().any() == data[c].isna().any(), c


# ---------------------------------------------------------------------- transformer
def test_transformer_round_trip_and_spans():
    data = mixed_frame(400)
    tr = TabularTransformer().fit(data, NUMERIC, CATEGORICAL, rng=np.random.default_rng(0))
    m = tr.transform(data)
    assert m.shape == (400, tr.dim_)
    assert [sp.start for sp in tr.spans_] == [0] + [sp.stop for sp in tr.spans_[:-1]] and tr.spans_[-1].stop == tr.dim_
    kinds = {(sp.column, sp.kind) for sp in tr.spans_}
    assert {("age", "alpha"), ("age", "mode"), ("age", "missing"), ("platelets", "alpha"), ("n_relapses", "level"),
            ("sex", "missing"), ("stage", "level")} <= kinds and ("crp", "missing") not in kinds
    for sp in tr.spans_:
        block = m[:, sp.start:sp.stop]
        if sp.kind == "alpha":
            assert np.all(np.abs(block) <= 1)
        else:
            assert np.all(block.sum(axis=1) == 1) and set(np.unique(block)) <= {0.0, 1.0}
    back = tr.inverse_transform(m)
    for c in CATEGORICAL + ["n_relapses", "platelets"]:
        pd.testing.assert_series_equal(back[c], data[c], check_exact=True)
    for c in ("age", "crp"):
        assert back[c].dtype == data[c].dtype
        assert (back[c].isna() == data[c].isna()).all()
        np.testing.assert_allclose(back[c].dropna(), data[c].dropna(), rtol=0, atol=1e-6)
    assert (tr.category_codes(m)[data["sex"].isna().to_numpy()] == -1).any()


def test_inverse_of_any_matrix_stays_in_the_domain():
    data = mixed_frame(300)
    tr = TabularTransformer().fit(data, NUMERIC, CATEGORICAL, rng=np.random.default_rng(0))
    noise = np.random.default_rng(1).normal(0, 3, (2000, tr.dim_))
    out = tr.inverse_transform(noise)
    check_domains(out, data)
    assert "IV" not in set(out["stage"].dropna())


def test_fast_span_operations_match_torch_reference():
    data = mixed_frame(200)
    tr = TabularTransformer().fit(data, NUMERIC, CATEGORICAL, rng=np.random.default_rng(0))
    tl, m = torch_layout(tr.layout_), tr.transform(data)
    logits = torch.randn(200, tr.dim_, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 5
    targets = torch.from_numpy(span_targets(m, tr.layout_))
    ref, act = 0.0, span_activate(logits, tl)
    for sp in tr.spans_:
        if sp.kind == "alpha":
            torch.testing.assert_close(act[:, sp.start], torch.tanh(logits[:, sp.start]))
            continue
        block = logits[:, sp.start:sp.stop]
        ref += torch.nn.functional.cross_entropy(block, torch.from_numpy(m[:, sp.start:sp.stop].argmax(1)),
                                                 reduction="sum")
        torch.testing.assert_close(act[:, sp.start:sp.stop], block.softmax(dim=1))
    torch.testing.assert_close(span_cross_entropy(logits, targets, tl), ref)


def test_auto_schedule_targets_optimizer_steps():
    # the reference schedule from 5,000 rows: batch 500, 300 epochs = 3,000 steps
    assert auto_schedule(5000, batch_size=None, epochs=None) == (500, 300)
    assert auto_schedule(10**6, batch_size=None, epochs=None) == (500, 300)
    # small tables: smaller batches and more passes, so that training still takes about 3,000 steps
    assert auto_schedule(480, batch_size=None, epochs=None) == (96, 600)
    assert auto_schedule(96, batch_size=None, epochs=None) == (50, 3000)
    # PacGAN: the batch is a multiple of the pack; explicit values win (the batch never exceeds the data)
    assert auto_schedule(480, batch_size=None, epochs=None, multiple=10) == (90, 600)
    assert auto_schedule(480, batch_size=500, epochs=7, multiple=10) == (480, 7)


def test_ctgan_schedule_sees_the_table_in_each_critic_update():
    # the reference batch of 500 rows (at most the table) and about 3,000 updates
    assert ctgan_schedule(5000, batch_size=None, epochs=None, multiple=10, dp=False) == \
        (500, 300)
    assert ctgan_schedule(480, batch_size=None, epochs=None, multiple=10, dp=False) == \
        (480, 3000)
    assert ctgan_schedule(95, batch_size=None, epochs=None, multiple=10, dp=False) == \
        (90, 3000)                       # a multiple of the pack, never more rows than the table
    # explicit values win; under DP the batch stays n / 5 rows
    assert ctgan_schedule(480, batch_size=200, epochs=7, multiple=10, dp=False) == (200, 7)
    assert ctgan_schedule(480, batch_size=None, epochs=None, multiple=1, dp=True) == \
        (96, 600)


# ---------------------------------------------------------------------- fitted models (small, fast)
SMALL = {"tvae": lambda **kw: TVAEBaseline(epochs=20, **kw),
         "ctgan": lambda **kw: CTGANBaseline(epochs=8, batch_size=100, generator_dims=(64, 64),
                                             discriminator_dims=(64, 64), **kw)}
_FITTED: dict = {}


def fitted(family: str, seed: int = 0):
    if (family, seed) not in _FITTED:
        _FITTED[family, seed] = SMALL[family]().fit(mixed_frame(300), NUMERIC, CATEGORICAL,
                                                    rng=np.random.default_rng(seed))
    return _FITTED[family, seed]


@pytest.mark.parametrize("family", ["tvae", "ctgan"])
def test_reproducible_pickles_and_does_not_touch_global_state(family):
    data = mixed_frame(300)
    np_state, torch_state = np.random.get_state()[1].copy(), torch.random.get_rng_state()
    threads = torch.get_num_threads()
    model = fitted(family)
    again = SMALL[family]().fit(data, NUMERIC, CATEGORICAL, rng=np.random.default_rng(0))
    assert np.array_equal(np.random.get_state()[1], np_state) and torch.equal(torch.random.get_rng_state(), torch_state)
    assert torch.get_num_threads() == threads
    a = model.sample(500, rng=np.random.default_rng(5))
    pd.testing.assert_frame_equal(a, again.sample(500, rng=np.random.default_rng(5)))  # same seed, same fit
    pd.testing.assert_frame_equal(a, model.sample(500, rng=np.random.default_rng(5)))
    assert not a.equals(model.sample(500, rng=np.random.default_rng(6)))
    before = pickle.dumps(model)
    model.sample(300, rng=np.random.default_rng(7))
    assert pickle.dumps(model) == before
    pd.testing.assert_frame_equal(pickle.loads(before).sample(500, rng=np.random.default_rng(5)), a)
    check_domains(model.sample(3000, rng=np.random.default_rng(8)), data)
    if family == "ctgan":
        assert model.sampler_.codes is None  # the fitted model keeps no per-patient rows


def test_numpy_sampling_networks_match_torch():
    tvae, ctgan = fitted("tvae"), fitted("ctgan")
    z = np.random.default_rng(0).standard_normal((64, tvae.embedding_dim)).astype(np.float32)
    layers = []
    for k, (w, b) in enumerate(zip(tvae.decoder_[0::2], tvae.decoder_[1::2])):
        lin = torch.nn.Linear(w.shape[1], w.shape[0])
        lin.load_state_dict({"weight": torch.from_numpy(w), "bias": torch.from_numpy(b)})
        layers += [lin, torch.nn.ReLU()] if k < len(tvae.decoder_) // 2 - 1 else [lin]
    with torch.no_grad():
        np.testing.assert_allclose(tvae.decode(z), torch.nn.Sequential(*layers)(torch.from_numpy(z)).numpy(),
                                   rtol=1e-4, atol=1e-4)
    n_in = ctgan.embedding_dim + ctgan.sampler_.dim
    gen = _build_generator(n_in, ctgan.generator_dims, ctgan.transformer_.dim_, torch.Generator().manual_seed(0))
    state = gen.state_dict()
    flat = [a for block in ctgan.generator_ for a in block]
    floating = [k for k, v in state.items() if v.dtype.is_floating_point]
    gen.load_state_dict({**state, **{k: torch.from_numpy(a) for k, a in zip(floating, flat)}})
    x = np.random.default_rng(1).standard_normal((64, n_in)).astype(np.float32)
    with torch.no_grad():
        np.testing.assert_allclose(ctgan.forward(x), gen.eval()(torch.from_numpy(x)).numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("family", ["tvae", "ctgan"])
def test_progress_is_reported_per_epoch(family):
    calls = []
    SMALL[family]().fit(mixed_frame(120), NUMERIC, CATEGORICAL, rng=np.random.default_rng(0),
                        progress=lambda f, msg: calls.append((f, msg)))
    epochs = [c for c in calls if c[1].startswith("epoch")]
    assert calls[0][0] == 0.0 and epochs[-1][0] == 1.0 and "loss" in epochs[-1][1]
    assert [f for f, _ in epochs] == sorted(f for f, _ in epochs)


# ---------------------------------------------------------------------- learning (enough epochs)
def test_tvae_learns_marginals_and_correlation():
    data = correlated_frame(1500)
    model = TVAEBaseline(epochs=120, batch_size=100).fit(data, ["x", "y"], [], rng=np.random.default_rng(0))
    out = model.sample(5000, rng=np.random.default_rng(1))
    _close_enough(out, data, spearman_tol=0.15, mean_tol=0.15, sd_tol=0.25)


def test_ctgan_learns_marginals_and_correlation():
    data = correlated_frame(1000)
    model = CTGANBaseline(epochs=200, batch_size=200, generator_dims=(128, 128), discriminator_dims=(128, 128),
                          learning_rate=1e-3).fit(data, ["x", "y"], [], rng=np.random.default_rng(0))
    out = model.sample(5000, rng=np.random.default_rng(1))
    _close_enough(out, data, spearman_tol=0.2, mean_tol=0.35, sd_tol=0.35)  # a short GAN run: looser


def _close_enough(out, data, *, spearman_tol, mean_tol, sd_tol):
    """Spearman within ``spearman_tol``; each mean within ``mean_tol`` real SDs; SD ratio within ``sd_tol``."""
    rho_real, rho_syn = data.corr("spearman").iloc[0, 1], out.corr("spearman").iloc[0, 1]
    assert abs(rho_syn - rho_real) < spearman_tol, (rho_real, rho_syn)
    for c in data.columns:
        sd = data[c].std()
        assert abs(out[c].mean() - data[c].mean()) < mean_tol * sd, c
        assert abs(out[c].std() / sd - 1) < sd_tol, c


# ---------------------------------------------------------------------- differential privacy
@pytest.mark.parametrize("family", ["tvae", "ctgan"])
def test_dp_reports_budget_and_is_reproducible(family):
    data = mixed_frame(400)
    kw = {"tvae": dict(epochs=4, batch_size=100), "ctgan": dict(epochs=4, batch_size=100, generator_dims=(32,),
                                                                 discriminator_dims=(32,))}[family]
    cls = {"tvae": TVAEBaseline, "ctgan": CTGANBaseline}[family]
    torch_state = torch.random.get_rng_state()
    a = cls(dp_epsilon=2.0, **kw).fit(data, NUMERIC, CATEGORICAL, rng=np.random.default_rng(3))
    assert torch.equal(torch.random.get_rng_state(), torch_state)  # opacus sampling and noise use our generator
    p = a.privacy_
    assert p["mechanism"] == MECHANISM and p["delta_rule"] == "1/n^1.1"
    assert p["delta"] == pytest.approx(default_delta(400)) == pytest.approx(400 ** -1.1)
    assert 0 < p["epsilon"] <= 2.0 + 1e-9 and p["epsilon"] > 1.5  # the calibration spends (almost) the budget
    assert p["steps"] == 16 and p["sample_rate"] == pytest.approx(0.25) and p["noise_multiplier"] > 0.5
    b = cls(dp_epsilon=2.0, **kw).fit(data, NUMERIC, CATEGORICAL, rng=np.random.default_rng(3))
    pd.testing.assert_frame_equal(a.sample(300, rng=np.random.default_rng(1)),
                                  b.sample(300, rng=np.random.default_rng(1)))
    check_domains(a.sample(2000, rng=np.random.default_rng(2)), data)
    if family == "ctgan":
        assert a.pac_ == 1
    with pytest.raises(ValueError, match="dp_epsilon"):
        cls(dp_epsilon=-1.0, **kw).fit(data, NUMERIC, CATEGORICAL, rng=np.random.default_rng(3))


# ---------------------------------------------------------------------- generator families
def test_generator_families_wrap_the_baseline_models_and_expose_privacy():
    data = mixed_frame(200).assign(pid=np.arange(200), score=np.random.default_rng(0).normal(30, 5, 200))
    schema = CohortSchema.from_dict({"id": "pid", "baseline": {"numeric": NUMERIC, "categorical": CATEGORICAL},
                                     "outcome": {"type": "continuous", "value": "score"}})
    g = get_generator("tvae", epochs=5, dp_epsilon=3.0, dp_delta=1e-4)
    assert g.get_params()["dp_epsilon"] == 3.0 and g.description
    g.fit(data, schema, rng=np.random.default_rng(0))
    assert g.privacy_["delta"] == 1e-4 and g.privacy_["delta_rule"] == "given" and g.privacy_["epsilon"] <= 3.0
    assert g.baseline_model_.epochs_ == 5
    c = get_generator("ctgan", epochs=2).fit(data, schema, rng=np.random.default_rng(0))
    assert c.privacy_ is None and c.baseline_model_.epochs_ == 2
    out = c.sample(100, rng=np.random.default_rng(1))
    assert list(out.columns) == list(schema.columns) and len(out) == 100
    with pytest.raises(ValueError, match="multiple of pac"):
        CTGANBaseline(batch_size=55).fit(data, NUMERIC, CATEGORICAL, rng=np.random.default_rng(0))
