"""Data transformer shared by the neural families (``tvae``, ``ctgan``): :class:`TabularTransformer`.

Method (Xu, Skoularidou, Cuesta-Infante & Veeramachaneni, "Modeling tabular data using conditional GAN",
NeurIPS 2019, section 4.2). Each baseline column becomes a block of *spans* of one row vector:

* continuous numeric column (more than ``max_discrete_levels`` distinct values): *mode-specific
  normalization*. A variational Bayesian Gaussian mixture (sklearn ``BayesianGaussianMixture``, Dirichlet
  process prior 0.001, at most ``max_modes`` components, ``random_state`` drawn from the ``rng``) is fitted to
  the observed values; components of weight below ``weight_threshold`` are dropped. A value ``x`` goes to its
  most probable kept mode ``k`` (``argmax_k w_k N(x; mu_k, sigma_k)``, deterministic) and becomes an ``alpha``
  span ``(x - mu_k) / (4 sigma_k)`` clipped to ``[-1, 1]`` (activation tanh) plus a one-hot ``mode`` span;
* numeric column with few distinct values, and every categorical column: a one-hot ``level`` span over the
  observed levels (the copula's ``max_discrete_levels`` rule; categories in pandas order, else sorted);
* a column with any missing value: a 2-wide ``missing`` span (observed, missing); a missing row gets alpha 0
  and the most frequent mode / level in the value spans (the decoder learns that they are blanked).

:meth:`TabularTransformer.inverse_transform` maps a matrix back to a frame: ``alpha * 4 sigma_k + mu_k`` with
``k`` the argmax of the mode span, level = argmax of the level span, blanked where the missing span's argmax says
missing; values are clipped to the observed ``[min, max]``, rounded for integer-valued columns, and returned in
the training dtypes (only observed categories). The argmax is deterministic: the models put their randomness
in the matrix first (Gumbel noise on the logits, :func:`gumbel_logits`, makes the argmax a draw from the span's
softmax). :class:`SpanLayout` holds index arrays the losses and activations use to treat all softmax spans at
once (padded to the widest span).

Privacy: the transformer is fitted on the raw data without any privacy mechanism (mixture modes, observed
levels, min/max, missing rates). A differentially private network trained on its output does not make these
private; see :mod:`cohorts.generators.dp`.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from cohorts.errors import InvalidDataError, NotFittedError
from cohorts.generators.sampled_columns import restore_dtype
from cohorts.generators.regression import category_levels, is_integer_valued

__all__ = ["TabularTransformer", "Span", "SpanLayout", "gumbel_logits", "torch_single_thread", "auto_schedule", "TARGET_STEPS"]


@dataclass(frozen=True)
class Span:
    """Columns ``[start, stop)`` of the transformed matrix: ``kind`` is alpha, mode, level or missing."""

    column: str
    kind: str
    start: int
    stop: int

    @property
    def activation(self) -> str:
        return "tanh" if self.kind == "alpha" else "softmax"


@dataclass
class _Column:
    name: str
    kind: str                      # "continuous" | "discrete" | "empty" (never observed)
    dtype: object
    missing: bool
    levels: np.ndarray | None = None
    weights: np.ndarray | None = None
    means: np.ndarray | None = None
    stds: np.ndarray | None = None
    integer: bool = False
    lo: float = -np.inf
    hi: float = np.inf
    default: int = 0               # mode / level given to missing rows


@dataclass
class SpanLayout:
    """Index arrays over a transformed matrix of width ``dim``: alpha positions, softmax spans padded to the
    widest (pad index ``dim``), and which softmax spans are discrete-column levels (``conditional``: CTGAN's
    conditional vector)."""

    dim: int
    alpha: np.ndarray
    soft: np.ndarray
    mask: np.ndarray
    conditional: np.ndarray

    @property
    def widths(self) -> np.ndarray:
        return self.mask.sum(axis=1)


def gumbel_logits(logits: np.ndarray, layout: SpanLayout, *, rng: np.random.Generator) -> np.ndarray:
    """``logits`` (float32) plus standard Gumbel noise on every softmax column (alpha untouched): the argmax of
    each span is then a draw from that span's softmax (the Gumbel-max trick)."""
    g = rng.random(logits.shape, dtype=np.float32)
    with np.errstate(divide="ignore"):  # u = 0 gives -inf: that entry is never the argmax
        np.log(g, out=g)
        np.negative(g, out=g)
        np.log(g, out=g)  # log(-log u) = -Gumbel
    g[:, layout.alpha] = 0.0
    return np.subtract(logits, g, dtype=np.float32)


class TabularTransformer:
    """Mode-specific normalization + one-hot spans (see the module docstring)."""

    def __init__(self, *, max_modes: int = 10, weight_threshold: float = 0.005, max_discrete_levels: int = 15):
        self.max_modes = max_modes
        self.weight_threshold = weight_threshold
        self.max_discrete_levels = max_discrete_levels

    # ------------------------------------------------------------------ fit
    def fit(self, frame: pd.DataFrame, numeric, categorical, *, rng: np.random.Generator) -> "TabularTransformer":
        numeric, categorical = list(numeric), list(categorical)
        absent = [c for c in numeric + categorical if c not in frame.columns]
        if absent:
            raise InvalidDataError(f"baseline column(s) {absent} not in the data; columns are {list(frame.columns)}")
        if len(frame) < 2:
            raise InvalidDataError(f"the neural generators need at least 2 patients, got {len(frame)}")
        self.columns_, self.numeric_ = numeric + categorical, set(numeric)
        self.info_: list[_Column] = []
        spans: list[Span] = []
        for c in self.columns_:
            s = pd.to_numeric(frame[c], errors="coerce") if c in self.numeric_ else frame[c]
            observed = s.notna().to_numpy()
            col = _Column(c, "empty", frame[c].dtype, missing=not observed.all())
            if observed.any() and c in self.numeric_:
                v = s[observed].to_numpy(dtype=float)
                col.lo, col.hi, col.integer = float(v.min()), float(v.max()), is_integer_valued(v)
                uniq = np.unique(v)
                if len(uniq) <= self.max_discrete_levels:
                    col.kind, col.levels = "discrete", uniq
                else:
                    self._fit_modes(col, v, len(uniq), rng)
            elif observed.any():
                col.kind, col.levels = "discrete", np.asarray(category_levels(s), dtype=object)
            if col.kind == "discrete":
                codes = self._codes(col, s)
                col.default = int(np.bincount(codes[codes >= 0], minlength=len(col.levels)).argmax())
            self.info_.append(col)
            spans += self._spans(col, spans[-1].stop if spans else 0)
        self.spans_ = spans
        self.dim_ = spans[-1].stop if spans else 0
        soft = [sp for sp in spans if sp.kind != "alpha"]
        width = max((sp.stop - sp.start for sp in soft), default=1)
        pad = np.full((len(soft), width), self.dim_, dtype=np.int64)
        for i, sp in enumerate(soft):
            pad[i, : sp.stop - sp.start] = np.arange(sp.start, sp.stop)
        self.layout_ = SpanLayout(self.dim_, np.array([sp.start for sp in spans if sp.kind == "alpha"], dtype=np.int64),
                                  pad, pad < self.dim_, np.array([sp.kind == "level" for sp in soft], dtype=bool))
        return self

    def _fit_modes(self, col: _Column, v: np.ndarray, n_unique: int, rng: np.random.Generator) -> None:
        from sklearn.exceptions import ConvergenceWarning  # lazy: keeps `insilico` start-up fast
        from sklearn.mixture import BayesianGaussianMixture

        gmm = BayesianGaussianMixture(n_components=min(self.max_modes, n_unique), weight_concentration_prior=1e-3,
                                      weight_concentration_prior_type="dirichlet_process", max_iter=100, n_init=1,
                                      covariance_type="diag",
                                      random_state=int(rng.integers(2**31 - 1)))
        with warnings.catch_warnings(), threadpool_limits(1):  # one BLAS / OpenMP thread: see torch_single_thread
            warnings.simplefilter("ignore", ConvergenceWarning)
            gmm.fit(v[:, None])
        keep = gmm.weights_ > self.weight_threshold
        if not keep.any():
            keep = gmm.weights_ == gmm.weights_.max()
        col.kind = "continuous"
        col.weights = gmm.weights_[keep] / gmm.weights_[keep].sum()
        col.means = gmm.means_[keep, 0].astype(float)
        col.stds = np.maximum(np.sqrt(gmm.covariances_[keep, 0]), 1e-6 * (col.hi - col.lo + 1))
        col.default = int(col.weights.argmax())

    @staticmethod
    def _spans(col: _Column, at: int) -> list[Span]:
        out = []
        if col.kind == "continuous":
            out += [Span(col.name, "alpha", at, at + 1), Span(col.name, "mode", at + 1, at + 1 + len(col.means))]
        elif col.kind == "discrete":
            out.append(Span(col.name, "level", at, at + len(col.levels)))
        if col.missing:
            start = out[-1].stop if out else at
            out.append(Span(col.name, "missing", start, start + 2))
        return out

    def _codes(self, col: _Column, s: pd.Series) -> np.ndarray:
        """Level index of each value (-1 when missing)."""
        if col.name in self.numeric_:
            v = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)
            k = np.clip(np.searchsorted(col.levels, v), 0, len(col.levels) - 1)
            ok = ~np.isnan(v) & (col.levels[k] == v)
            return np.where(ok, k, -1)
        values = np.asarray(s.astype(object).to_numpy(), dtype=object)
        codes = pd.Index(col.levels, dtype=object).get_indexer(values)
        return np.where(pd.isna(values), -1, codes).astype(np.int64)

    def _mode_of(self, col: _Column, v: np.ndarray) -> np.ndarray:
        z = (v[:, None] - col.means) / col.stds
        return np.argmax(np.log(col.weights) - np.log(col.stds) - 0.5 * z * z, axis=1)

    # ------------------------------------------------------------------ transform
    def _check(self) -> None:
        if not hasattr(self, "spans_"):
            raise NotFittedError("TabularTransformer is not fitted: call fit(frame, numeric, categorical, rng=...)")

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """The ``(n, dim_)`` float64 matrix of a frame with the fitted columns (values outside the fitted levels
        count as missing)."""
        self._check()
        n = len(frame)
        out = np.zeros((n, self.dim_))
        spans = {(sp.column, sp.kind): sp for sp in self.spans_}
        rows = np.arange(n)
        for col in self.info_:
            s = frame[col.name]
            if col.kind == "continuous":
                v = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)
                present = ~np.isnan(v)
                k = np.full(n, col.default)
                k[present] = self._mode_of(col, v[present])
                alpha = np.zeros(n)
                alpha[present] = (v[present] - col.means[k[present]]) / (4 * col.stds[k[present]])
                out[:, spans[col.name, "alpha"].start] = np.clip(alpha, -1.0, 1.0)
                out[rows, spans[col.name, "mode"].start + k] = 1.0
            elif col.kind == "discrete":
                codes = self._codes(col, s)
                present = codes >= 0
                out[rows, spans[col.name, "level"].start + np.where(present, codes, col.default)] = 1.0
            else:
                present = np.zeros(n, dtype=bool)
            if col.missing:
                out[rows, spans[col.name, "missing"].start + (~present).astype(int)] = 1.0
        return out

    def category_codes(self, matrix: np.ndarray) -> np.ndarray:
        """``(n, n_level_spans)`` level index of each discrete column (-1 where the missing span says missing),
        in the order of the ``conditional`` softmax spans."""
        self._check()
        missing = {sp.column: sp for sp in self.spans_ if sp.kind == "missing"}
        cols = []
        for sp in self.spans_:
            if sp.kind == "level":
                k = np.argmax(matrix[:, sp.start:sp.stop], axis=1)
                if sp.column in missing:
                    m = missing[sp.column]
                    k = np.where(np.argmax(matrix[:, m.start:m.stop], axis=1) == 1, -1, k)
                cols.append(k)
        return np.column_stack(cols) if cols else np.zeros((len(matrix), 0), dtype=np.int64)

    def inverse_transform(self, matrix: np.ndarray, *, raw_continuous: bool = False) -> pd.DataFrame:
        """A frame in the training columns and dtypes (argmax of each softmax span; see the module docstring).

        ``raw_continuous``: continuous columns as the network's floats, neither rounded nor clipped to the training
        range (for :mod:`~cohorts.generators.marginal_calibration`, which needs them untied)."""
        self._check()
        matrix = np.asarray(matrix)
        n = len(matrix)
        spans = {(sp.column, sp.kind): sp for sp in self.spans_}
        out = {}
        for col in self.info_:
            numeric = pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype)
            values = np.full(n, np.nan, dtype=float if numeric else object)
            if col.kind == "continuous":
                a, m = spans[col.name, "alpha"], spans[col.name, "mode"]
                k = np.argmax(matrix[:, m.start:m.stop], axis=1)
                x = np.clip(matrix[:, a.start].astype(float), -1.0, 1.0) * 4 * col.stds[k] + col.means[k]
                values = x if raw_continuous else np.clip(np.rint(x) if col.integer else x, col.lo, col.hi)
            elif col.kind == "discrete":
                sp = spans[col.name, "level"]
                values = col.levels[np.argmax(matrix[:, sp.start:sp.stop], axis=1)]
                values = values.astype(float if numeric else object)
            if col.missing:
                sp = spans[col.name, "missing"]
                values[np.argmax(matrix[:, sp.start:sp.stop], axis=1) == 1] = np.nan
            raw = raw_continuous and col.kind == "continuous"
            out[col.name] = pd.Series(values, dtype=float) if raw else restore_dtype(values, col.dtype)
        return pd.DataFrame(out, index=pd.RangeIndex(n), columns=self.columns_)


#: optimizer steps the default schedule aims for (the reference 300 epochs of 10 batches, as on 5,000 rows)
TARGET_STEPS = 3000


def auto_schedule(n: int, *, batch_size: int | None, epochs: int | None, multiple: int = 1,
                  target_steps: int = TARGET_STEPS) -> tuple[int, int]:
    """``(batch size, epochs)`` for ``n`` training rows; explicit values win.

    What a network learns depends on its number of optimizer steps, not of passes: 300 epochs of one batch
    (a 480-row table at batch 500) is 300 steps and leaves it untrained. The default batch is ``n / 5`` within
    [50, 500] (a multiple of ``multiple``, the PacGAN pack size), and the default epochs give about
    ``target_steps`` steps, at least 300 epochs (the reference implementations') and at most 3,000. On 5,000 rows
    this is the reference schedule (batch 500, 300 epochs); on 480 rows batch 96 and 600 epochs.
    """
    if batch_size is None:
        batch_size = min(500, max(50, n // 5))
    bs = max(multiple, int(min(batch_size, max(multiple, n))) // multiple * multiple)
    if epochs is None:
        steps_per_epoch = max(n // bs, 1)
        epochs = int(min(3000, max(300, -(-target_steps // steps_per_epoch))))
    return bs, int(epochs)


# ---------------------------------------------------------------------- torch helpers (torch imported lazily)
@contextmanager
def torch_single_thread():
    """Run torch on one intra-op thread, restoring the previous setting after. The networks are small: one
    thread is as fast, avoids OpenMP spin-waiting on a shared machine (100x slower steps seen on 2 busy
    cores), and makes results independent of the machine's core count."""
    import torch
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield torch
    finally:
        torch.set_num_threads(old)


def torch_layout(layout: SpanLayout) -> dict:
    """The layout as torch tensors: ``soft``/``mask`` (padded spans), ``alpha`` positions, ``is_soft`` and
    ``span_of`` per matrix column (0 for alpha columns), ``member`` (``(dim, S)``: column in span) and the
    ``conditional`` span ids."""
    import torch
    S = len(layout.soft)
    span_of = np.zeros(layout.dim, dtype=np.int64)
    member = np.zeros((layout.dim, S), dtype=np.float32)
    for s_id, (row, ok) in enumerate(zip(layout.soft, layout.mask)):
        span_of[row[ok]] = s_id
        member[row[ok], s_id] = 1.0
    is_soft = np.ones(layout.dim, dtype=bool)
    is_soft[layout.alpha] = False
    return {"alpha": torch.from_numpy(layout.alpha), "soft": torch.from_numpy(layout.soft),
            "mask": torch.from_numpy(layout.mask), "is_soft": torch.from_numpy(is_soft),
            "span_of": torch.from_numpy(span_of), "member": torch.from_numpy(member),
            "conditional": torch.from_numpy(np.flatnonzero(layout.conditional))}


def span_lse(logits, tl: dict):
    """``(n, S)`` log-sum-exp of every softmax span: exp of the logits shifted by their span's (detached) max,
    summed per span by one product with the membership matrix (faster than a padded log_softmax)."""
    import torch
    with torch.no_grad():
        ext = torch.cat([logits, logits.new_full((len(logits), 1), float("-inf"))], dim=1)
        top = ext[:, tl["soft"]].amax(dim=-1)
    shifted = torch.where(tl["is_soft"], logits - top[:, tl["span_of"]], 0.0)
    return torch.log(torch.exp(shifted) @ tl["member"].to(logits.dtype)) + top


def span_cross_entropy(logits, target_cols, tl: dict):
    """Sum over rows and softmax spans of ``-log softmax(span)[target]``; ``target_cols`` ``(n, S)`` holds the
    matrix column of each span's target."""
    return span_lse(logits, tl).sum() - logits.gather(1, target_cols).sum()


def span_activate(raw, tl: dict, *, noise=None, tau: float = 1.0):
    """tanh on alpha columns, softmax of ``(raw + noise) / tau`` within every softmax span (Gumbel-softmax when
    ``noise`` is standard Gumbel)."""
    import torch
    y = raw if noise is None else raw + noise
    y = y / tau if tau != 1.0 else y
    lse = span_lse(y, tl)
    soft = torch.exp(torch.where(tl["is_soft"], y - lse[:, tl["span_of"]], 0.0))
    return torch.where(tl["is_soft"], soft, torch.tanh(raw))


def span_targets(matrix: np.ndarray, layout: SpanLayout) -> np.ndarray:
    """``(n, S)`` matrix column of the argmax of every softmax span of a transformed (one-hot) matrix."""
    ext = np.concatenate([matrix, np.full((len(matrix), 1), -np.inf)], axis=1)[:, layout.soft]
    k = np.argmax(ext, axis=-1)
    return np.take_along_axis(np.broadcast_to(layout.soft, ext.shape), k[..., None], axis=-1)[..., 0].astype(np.int64)


def init_linear(n_in: int, n_out: int, generator):
    """``nn.Linear`` built without touching torch's global RNG, initialised like torch's default
    (uniform on +-1/sqrt(n_in)) from ``generator``."""
    import torch
    layer = torch.nn.utils.skip_init(torch.nn.Linear, n_in, n_out)
    bound = 1.0 / np.sqrt(max(n_in, 1))
    with torch.no_grad():
        layer.weight.uniform_(-bound, bound, generator=generator)
        layer.bias.uniform_(-bound, bound, generator=generator)
    return layer


def numpy_params(module) -> list[np.ndarray]:
    """A module's parameters and buffers (state_dict order) as float32 numpy copies."""
    return [t.detach().cpu().numpy().astype(np.float32, copy=True) for t in module.state_dict().values()
            if t.dtype.is_floating_point]
