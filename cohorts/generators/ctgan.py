"""CTGAN baseline model (:class:`CTGANBaseline`) and the ``ctgan`` generator family (:class:`CTGANGenerator`).

Method: CTGAN (Xu, Skoularidou, Cuesta-Infante & Veeramachaneni, NeurIPS 2019), as in the reference
implementation (sdv-dev/CTGAN), on the matrix of :class:`~cohorts.generators.tabular_nn.TabularTransformer`.

* Conditional vector and training-by-sampling: each step picks, per row, a discrete column uniformly and one of
  its levels with probability proportional to ``log(1 + count)``; the conditional vector is that level's
  one-hot over all discrete columns (categoricals and few-level numerics). Real rows are drawn uniformly among
  the rows having the chosen level, so rare levels are seen often. The generator gets ``[z, cond]`` and a
  cross-entropy penalty making its output carry the chosen level.
* Generator: ``z ~ N(0, I_embedding_dim)`` and the conditional vector through residual blocks
  (Linear, BatchNorm, ReLU, output concatenated with the input; widths ``generator_dims``), then a linear layer
  to the matrix width; alpha spans get tanh, softmax spans Gumbel-softmax (temperature 0.2).
* Discriminator: PacGAN with ``pac`` (10) rows per input, Linear + LeakyReLU(0.2) + dropout(0.5) layers
  (``discriminator_dims``), one linear output; Wasserstein loss with gradient penalty (WGAN-GP, lambda 10, on
  per-pack random interpolates). Adam (2e-4, betas 0.5 / 0.9, weight decay 1e-6) for both;
  ``max(n // batch_size_, 1)`` steps per epoch, ``discriminator_steps`` (1) critic updates per generator update.

Deterministic by construction: every torch draw (initialisation, ``z``, Gumbel noise, dropout masks drawn as
explicit tensors, interpolation weights) uses a ``torch.Generator`` seeded from the numpy ``rng``, which also
draws the conditional vectors and real rows; torch runs on one thread (see ``torch_single_thread``).
Sampling (numpy, float32 trained weights, BatchNorm with its running statistics): ``z`` and a conditional
vector (a discrete column uniformly, its level with the empirical frequency) from the numpy ``rng``, then each
softmax span drawn from the generator's softmax (Gumbel-max = the argmax of a Gumbel-softmax sample).

Differential privacy (``dp_epsilon``, :mod:`cohorts.generators.dp`): only the discriminator touches real rows,
so its updates use DP-SGD; the generator's are post-processing. Two changes make the per-patient accounting
valid: ``pac`` is 1 (a pack's gradient is not one patient's), and training-by-sampling is replaced by Poisson
sampling of patients (rate ``batch_size / n``), each real row's conditional vector naming its own level of a
discrete column it has, the generator's conditional vectors following the empirical level frequencies.
Per-patient gradients of the WGAN-GP loss (which has second derivatives) come from
``torch.func.vmap(grad(...))``.

Training length (:func:`ctgan_schedule`; ``batch_size_`` and ``epochs_`` record it):
by default the reference batch of 500 rows (at most ``n``, a multiple of ``pac``), 1 critic update per generator
update and about 3,000 updates (at least 300 epochs, at most 3,000); under DP a batch of ``n / 5`` rows within
[50, 500]. A GAN needs thousands of updates, so small tables train many epochs; on trial-sized tables ``copula``
or ``cart`` are usually better (Akiya et al. 2024; ``docs/generators.md``). Five critic updates per generator update
(WGAN-GP's ``n_critic``) for 1,000 updates scored better on GBSG-2 and VA lung (detection AUC 0.63 and 0.57 against
0.67 and 0.64) but lost up to 0.69 of a Spearman correlation on ``bench/bench_tvae.py``'s 5,000-row table, where
this schedule loses 0.34; ``discriminator_steps=5`` is one keyword away.

Marginal calibration (``calibrate_marginals=True``, not under DP): after training, each continuous numeric column
is mapped onto the training marginal by empirical quantile mapping
(:class:`~cohorts.generators.marginal_calibration.MarginalCalibration`), keeping the network's joint ranks;
tumour sizes heaped at multiples of 5 mm, which the network smooths into a detectable bump, come back.

Cost (``bench/bench_tvae.py``, 5,000 rows x 20 mixed columns, 2 shared CPU cores): measured for the former
schedule, 300 epochs (3,000 steps) in about 220 s, about 70 ms a step, mostly the residual generator's matrix
products; 100,000 rows sample in 2.3-2.7 s.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cohorts.errors import NotFittedError
from cohorts.generators import dp as _dp
from cohorts.generators.base import register
from cohorts.generators.marginal_calibration import calibrate, calibrated_sample
from cohorts.generators.sequential import SequentialGenerator
from cohorts.generators.tabular_nn import (TabularTransformer, auto_schedule, gumbel_logits, init_linear, numpy_params,
                                           span_activate, span_lse, torch_layout, torch_single_thread)

__all__ = ["CTGANBaseline", "CTGANGenerator", "ctgan_schedule"]


def ctgan_schedule(n: int, *, batch_size: int | None, epochs: int | None, multiple: int,
                   dp: bool) -> tuple[int, int]:
    """``(batch size, epochs)`` for ``n`` training rows; explicit values win.

    Without DP: the reference batch of 500 rows (at most ``n``, a multiple of the pack size ``multiple``) and
    :func:`~cohorts.generators.tabular_nn.auto_schedule`'s epochs (about 3,000 updates, 300 to 3,000 epochs): the
    reference schedule from 5,000 rows. On a trial-sized table a batch of ``n / 5`` rows held a handful of PacGAN
    packs (9 on GBSG-2's 480 training rows) where the whole table holds 48. With DP every critic update spends
    privacy on a Poisson batch, so the batch stays ``n / 5`` rows (``auto_schedule``'s default).
    """
    default_batch = None if dp else 500
    return auto_schedule(n, batch_size=default_batch if batch_size is None else batch_size, epochs=epochs,
                         multiple=multiple)


class _CondSampler:
    """Conditional vectors and real-row draws over the discrete columns (numpy, from the fit ``rng``)."""

    def __init__(self, codes: np.ndarray, widths: np.ndarray):
        self.codes, self.widths = codes, widths.astype(np.int64)
        self.offsets = np.r_[0, np.cumsum(self.widths)[:-1]].astype(np.int64)
        self.dim = int(self.widths.sum())
        self.count = [np.bincount(c[c >= 0], minlength=w) for c, w in zip(codes.T, self.widths)]
        self.order = [np.argsort(np.where(c >= 0, c, w), kind="stable") for c, w in zip(codes.T, self.widths)]
        self.start = [np.r_[0, np.cumsum(k)[:-1]] for k in self.count]

    def cum(self, d: int, log: bool) -> np.ndarray:
        p = np.log1p(self.count[d]) if log else self.count[d].astype(float)
        return np.cumsum(p) / p.sum()

    def condvec(self, b: int, rng: np.random.Generator, *, log: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(cond (b, dim) float32, column (b,), level (b,))``."""
        col = rng.integers(len(self.widths), size=b)
        u = rng.random(b)
        level = np.zeros(b, dtype=np.int64)
        for d in range(len(self.widths)):
            m = col == d
            level[m] = np.minimum(np.searchsorted(self.cum(d, log), u[m], side="right"), self.widths[d] - 1)
        return self.onehot(col, level), col, level

    def onehot(self, col: np.ndarray, level: np.ndarray) -> np.ndarray:
        c = np.zeros((len(col), self.dim), dtype=np.float32)
        ok = level >= 0
        c[np.flatnonzero(ok), self.offsets[col[ok]] + level[ok]] = 1.0
        return c

    def rows(self, col: np.ndarray, level: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One training row per request, uniform among the rows having ``level`` in column ``col``."""
        u, out = rng.random(len(col)), np.zeros(len(col), dtype=np.int64)
        for d in range(len(self.widths)):
            m = col == d
            k = level[m]
            out[m] = self.order[d][self.start[d][k] + np.floor(u[m] * self.count[d][k]).astype(np.int64)]
        return out

    def release(self) -> None:
        """Forget the per-row codes and row orders (training only): a fitted model keeps no patient rows."""
        self.codes = self.order = self.start = None

    def own(self, idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Conditional vectors of real rows ``idx``: their own level of a uniformly chosen observed column."""
        codes = self.codes[idx]
        score = np.where(codes >= 0, rng.random(codes.shape), -1.0)
        col = np.argmax(score, axis=1)
        return self.onehot(col, codes[np.arange(len(idx)), col])


def _build_generator(n_in: int, dims: tuple, n_out: int, g):
    import torch
    from torch import nn

    class Residual(nn.Module):
        def __init__(self, i, o):
            super().__init__()
            self.fc, self.bn = init_linear(i, o, g), nn.BatchNorm1d(o)

        def forward(self, x):
            return torch.cat([torch.relu(self.bn(self.fc(x))), x], dim=1)

    blocks, d = [], n_in
    for h in dims:
        blocks.append(Residual(d, h))
        d += h
    return nn.Sequential(*blocks, init_linear(d, n_out, g))


def _disc(params, x, masks, pac: int):
    """Functional PacGAN discriminator: ``masks`` are the dropout masks (scaled 0 / 2), one per hidden layer."""
    import torch.nn.functional as F
    h = x.reshape(-1, pac * x.shape[-1])
    for k in range(0, len(params) - 2, 2):
        h = F.leaky_relu(F.linear(h, params[k], params[k + 1]), 0.2) * masks[k // 2]
    return F.linear(h, params[-2], params[-1])


class CTGANBaseline:
    """CTGAN for a baseline table: ``fit(frame, numeric, categorical, *, rng, progress=None)`` and
    ``sample(n, *, rng)`` in the training dtypes (see the module docstring)."""

    def __init__(self, *, epochs: int | None = None, batch_size: int | None = None, embedding_dim: int = 128,
                 generator_dims: tuple = (256, 256), discriminator_dims: tuple = (256, 256), pac: int = 10,
                 learning_rate: float = 2e-4, weight_decay: float = 1e-6, discriminator_steps: int = 1,
                 gp_lambda: float = 10.0, max_discrete_levels: int = 15, dp_epsilon: float | None = None,
                 dp_delta: float | None = None, dp_max_grad_norm: float = 1.0, calibrate_marginals: bool = True):
        self.epochs, self.batch_size, self.embedding_dim = epochs, batch_size, embedding_dim
        self.generator_dims, self.discriminator_dims = tuple(generator_dims), tuple(discriminator_dims)
        self.pac, self.learning_rate, self.weight_decay = pac, learning_rate, weight_decay
        self.discriminator_steps, self.gp_lambda = discriminator_steps, gp_lambda
        self.max_discrete_levels, self.calibrate_marginals = max_discrete_levels, calibrate_marginals
        self.dp_epsilon, self.dp_delta, self.dp_max_grad_norm = dp_epsilon, dp_delta, dp_max_grad_norm

    def fit(self, frame: pd.DataFrame, numeric, categorical, *, rng: np.random.Generator,
            progress=None) -> "CTGANBaseline":
        dp = self.dp_epsilon is not None
        if dp:
            _dp.check_epsilon(self.dp_epsilon)
        self.pac_ = 1 if dp else int(self.pac)
        if self.batch_size is not None and self.batch_size % self.pac_:
            raise ValueError(f"batch_size ({self.batch_size}) must be a multiple of pac ({self.pac_})")
        if progress is not None:
            progress(0.0, "fitting the data transformer")
        tr = TabularTransformer(max_discrete_levels=self.max_discrete_levels).fit(frame, numeric, categorical,
                                                                                   rng=rng)
        self.transformer_, self.privacy_, self.loss_history_, self.calibration_ = tr, None, [], None
        self.batch_size_, self.epochs_ = ctgan_schedule(len(frame), batch_size=self.batch_size, epochs=self.epochs,
                                                        multiple=self.pac_, dp=dp)
        matrix = tr.transform(frame)
        self.sampler_ = _CondSampler(tr.category_codes(matrix), tr.layout_.widths[tr.layout_.conditional])
        seed = _dp.seed_from(rng)
        if tr.dim_ == 0:
            self.generator_ = []
            self.sampler_.release()
            return self
        with torch_single_thread():
            self._train(matrix, seed, rng, progress)
        self.sampler_.release()
        self.calibration_ = calibrate(self, frame, enabled=self.calibrate_marginals, rng=rng)
        return self

    # ------------------------------------------------------------------ training
    def _train(self, matrix: np.ndarray, seed: int, rng: np.random.Generator, progress) -> None:
        import torch
        tr, cs, pac, dp = self.transformer_, self.sampler_, self.pac_, self.dp_epsilon is not None
        g = torch.Generator().manual_seed(seed)
        tl = torch_layout(tr.layout_)
        x_all = torch.from_numpy(matrix.astype(np.float32))
        n, d_in = len(matrix), tr.dim_ + cs.dim
        bs = self.batch_size_
        gen = _build_generator(self.embedding_dim + cs.dim, self.generator_dims, tr.dim_, g)
        layers, w = [], d_in * pac
        for h in (*self.discriminator_dims, 1):
            layers.append(init_linear(w, h, g))
            w = h
        disc = torch.nn.ModuleList(layers)
        params = [p for layer in disc for p in (layer.weight, layer.bias)]
        adam = dict(lr=self.learning_rate, betas=(0.5, 0.9), weight_decay=self.weight_decay, foreach=True)
        opt_g, opt_d = torch.optim.Adam(gen.parameters(), **adam), torch.optim.Adam(params, **adam)
        steps_per_epoch, epochs = max(n // bs, 1), self.epochs_
        cond_spans = np.flatnonzero(tr.layout_.conditional)
        if dp:
            delta = _dp.resolve_delta(self.dp_delta, n)
            rate = min(1.0, bs / n)
            priv = _dp.FunctionalDPSGD(epsilon=self.dp_epsilon, delta=delta, max_grad_norm=self.dp_max_grad_norm,
                                       sample_rate=rate, steps=epochs * steps_per_epoch * self.discriminator_steps,
                                       generator=g)

        def masks(b):
            return [(torch.rand(b, h, generator=g) >= 0.5).float() * 2.0 for h in self.discriminator_dims]

        def fake_batch(b, log, grad=True):
            if cs.dim:
                c, col, level = cs.condvec(b, rng, log=log)
                c = torch.from_numpy(c)
            else:
                c, col, level = torch.zeros(b, 0), None, None
            with torch.set_grad_enabled(grad):
                raw = gen(torch.cat([torch.randn(b, self.embedding_dim, generator=g), c], dim=1))
                return raw, self._activate(raw, tl, g), c, col, level

        for epoch in range(1, epochs + 1):
            for _ in range(steps_per_epoch):
                for _ in range(self.discriminator_steps):
                    if dp:
                        loss_d = self._dp_critic_step(x_all, rate, n, fake_batch, masks, params, opt_d, priv, rng, g)
                    else:
                        loss_d = self._critic_step(x_all, bs, fake_batch, masks, params, opt_d, rng, g)
                raw, fake, c, col, level = fake_batch(bs, log=not dp)
                y = _disc([p.detach() for p in params], torch.cat([fake, c], 1), masks(bs // pac), pac)
                loss_g = -y.mean()
                if cs.dim:  # cross-entropy of the conditioned span against the requested level
                    span = cond_spans[col]
                    target = torch.from_numpy(tr.layout_.soft[span, level])[:, None]
                    lse = span_lse(raw, tl).gather(1, torch.from_numpy(span)[:, None])
                    loss_g = loss_g + (lse - raw.gather(1, target)).mean()
                opt_g.zero_grad()
                loss_g.backward()
                opt_g.step()
            self.loss_history_.append((float(loss_d), loss_g.item()))
            if progress is not None:
                progress(epoch / epochs, f"epoch {epoch}/{epochs}, loss G {loss_g.item():.3f}, D {float(loss_d):.3f}")
        gen.eval()
        self.generator_ = [numpy_params(block) for block in gen]
        if dp:
            self.privacy_ = priv.report(delta_given=self.dp_delta is not None,
                                        part="discriminator (the only network that sees real rows)")

    @staticmethod
    def _activate(raw, tl: dict, g, tau: float = 0.2):
        """tanh on alpha columns, Gumbel-softmax (noise from ``g``) on every softmax span."""
        import torch
        gumbel = -torch.empty(raw.shape).exponential_(generator=g).log()
        return span_activate(raw, tl, noise=torch.where(tl["is_soft"], gumbel, 0.0), tau=tau)

    def _critic_step(self, x_all, bs, fake_batch, masks, params, opt, rng, g):
        import torch
        pac, cs = self.pac_, self.sampler_
        _, fake, c1, col, level = fake_batch(bs, log=True, grad=False)
        if cs.dim:
            perm = rng.permutation(bs)
            real = torch.cat([x_all[torch.from_numpy(cs.rows(col[perm], level[perm], rng))], c1[perm]], 1)
        else:
            real = x_all[torch.from_numpy(rng.integers(len(x_all), size=bs))]
        fake = torch.cat([fake.detach(), c1], 1)
        a = torch.rand(bs // pac, 1, 1, generator=g).expand(-1, pac, real.shape[1]).reshape(bs, -1)
        inter = (a * real + (1 - a) * fake).requires_grad_(True)
        grad = torch.autograd.grad(_disc(params, inter, masks(bs // pac), pac).sum(), inter, create_graph=True)[0]
        pen = ((grad.reshape(bs // pac, -1).norm(dim=1) - 1) ** 2).mean() * self.gp_lambda
        loss = _disc(params, fake, masks(bs // pac), pac).mean() - _disc(params, real, masks(bs // pac), pac).mean()
        opt.zero_grad()
        (loss + pen).backward()
        opt.step()
        return loss.detach()

    def _dp_critic_step(self, x_all, rate, n, fake_batch, masks, params, opt, priv, rng, g):
        """One DP-SGD critic update: Poisson batch, per-patient WGAN-GP gradients, clip, noise."""
        import torch
        from torch.func import grad, vmap
        cs, lam = self.sampler_, self.gp_lambda
        idx = torch.nonzero(torch.rand(n, generator=g) < rate).flatten()
        b = len(idx)
        c_real = torch.from_numpy(cs.own(idx.numpy(), rng)) if cs.dim else torch.zeros(b, 0)
        real = torch.cat([x_all[idx], c_real], 1)
        _, fake, c, _, _ = fake_batch(max(b, 2), log=False, grad=False)  # BatchNorm needs 2 rows
        fake = torch.cat([fake, c], 1)[:b].detach()
        a = torch.rand(b, 1, generator=g)
        mr, mf, mi = masks(b), masks(b), masks(b)

        def unit_loss(p, r, f, a1, mr1, mf1, mi1):
            def crit(x, m):
                return _disc(p, x.unsqueeze(0), [t.unsqueeze(0) for t in m], 1).sum()
            gx = grad(crit)(a1 * r + (1 - a1) * f, mi1)
            pen = lam * (torch.sqrt((gx ** 2).sum() + 1e-12) - 1) ** 2
            return crit(f, mf1) - crit(r, mr1) + pen

        detached = [p.detach() for p in params]
        if b:
            per = vmap(grad(unit_loss), in_dims=(None, 0, 0, 0, 0, 0, 0))(detached, real, fake, a, mr, mf, mi)
        else:
            per = [p.new_zeros((0, *p.shape)) for p in params]
        for p, gr in zip(params, priv.privatize(list(per), expected_batch_size=rate * n)):
            p.grad = gr
        opt.step()
        with torch.no_grad():
            return (_disc(detached, fake, mf, 1).mean() - _disc(detached, real, mr, 1).mean()) if b else torch.zeros(())

    # ------------------------------------------------------------------ sampling
    def forward(self, inputs: np.ndarray, chunk: int = 8192) -> np.ndarray:
        """Generator output for ``[z, cond]`` rows, numpy float32: BatchNorm (running statistics) folded into each
        block's linear layer, residual concatenations written into one buffer, ``chunk`` rows at a time."""
        x = np.asarray(inputs, dtype=np.float32)
        blocks = []
        for w, b, gamma, beta, mean, var in self.generator_[:-1]:
            scale = gamma / np.sqrt(var + 1e-5)
            blocks.append((np.ascontiguousarray((w * scale[:, None]).T), (b - mean) * scale + beta))
        w_out, b_out = self.generator_[-1]
        width = x.shape[1] + sum(len(b) for _, b in blocks)
        out = np.empty((len(x), len(b_out)), dtype=np.float32)
        for lo in range(0, len(x), chunk):
            rows = x[lo:lo + chunk]
            buf = np.empty((len(rows), width), dtype=np.float32)
            at = width - x.shape[1]
            buf[:, at:] = rows  # [h_k, ..., h_1, input]: the order torch.cat([new, old]) builds
            for wt, bias in blocks:
                h = buf[:, at:] @ wt
                h += bias
                np.maximum(h, 0, out=h)
                buf[:, at - len(bias):at] = h
                at -= len(bias)
            out[lo:lo + chunk] = buf @ w_out.T + b_out
        return out

    def sample(self, n: int, *, rng: np.random.Generator) -> pd.DataFrame:
        """``n`` synthetic rows in the training columns and dtypes."""
        if not hasattr(self, "transformer_"):
            raise NotFittedError("CTGANBaseline is not fitted: call fit(frame, numeric, categorical, rng=...)")
        return calibrated_sample(self, n, rng=rng)

    def _sample_model(self, n: int, *, rng: np.random.Generator, raw_continuous: bool = False) -> pd.DataFrame:
        """``n`` rows from the generator network, before marginal calibration."""
        n, tr, cs = int(n), self.transformer_, self.sampler_
        if tr.dim_ == 0:
            return tr.inverse_transform(np.zeros((n, 0)))
        z = rng.standard_normal((n, self.embedding_dim), dtype=np.float32)
        cond = cs.condvec(n, rng, log=False)[0] if cs.dim else np.zeros((n, 0), dtype=np.float32)
        out = self.forward(np.concatenate([z, cond], axis=1))
        a = tr.layout_.alpha
        out[:, a] = np.tanh(out[:, a])
        return tr.inverse_transform(gumbel_logits(out, tr.layout_, rng=rng), raw_continuous=raw_continuous)


@register
class CTGANGenerator(SequentialGenerator):
    """CTGAN for the baseline covariates, then the shared explicit outcome models."""

    name = "ctgan"
    description = ("CTGAN (conditional WGAN-GP with training-by-sampling, Xu et al. 2019; optional DP-SGD on the "
                   "discriminator) for baseline covariates; Weibull PH / mixed model / linear / logistic outcome model")

    def __init__(self, *, epochs: int | None = None, batch_size: int | None = None, embedding_dim: int = 128,
                 generator_dims: tuple = (256, 256), discriminator_dims: tuple = (256, 256), pac: int = 10,
                 learning_rate: float = 2e-4, discriminator_steps: int = 1, max_discrete_levels: int = 15,
                 dp_epsilon: float | None = None, dp_delta: float | None = None, dp_max_grad_norm: float = 1.0,
                 calibrate_marginals: bool = True, min_visit_fraction: float = 0.05, covariate_by_time: bool = True):
        self.epochs, self.batch_size, self.embedding_dim = epochs, batch_size, embedding_dim
        self.generator_dims, self.discriminator_dims = tuple(generator_dims), tuple(discriminator_dims)
        self.pac, self.learning_rate, self.discriminator_steps = pac, learning_rate, discriminator_steps
        self.max_discrete_levels, self.calibrate_marginals = max_discrete_levels, calibrate_marginals
        self.dp_epsilon, self.dp_delta, self.dp_max_grad_norm = dp_epsilon, dp_delta, dp_max_grad_norm
        self.min_visit_fraction, self.covariate_by_time = min_visit_fraction, covariate_by_time

    def _baseline_model(self) -> CTGANBaseline:
        return CTGANBaseline(**{k: v for k, v in self.get_params().items()
                                if k not in ("min_visit_fraction", "covariate_by_time")})

    @property
    def privacy_(self) -> dict | None:
        """DP report of the discriminator (epsilon spent, delta, mechanism ...), or None without DP."""
        return self.baseline_model_.privacy_
