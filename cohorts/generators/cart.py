"""Sequential CART synthesis of a baseline table (synthpop-style): :class:`SequentialCART`, and the ``cart``
generator family :class:`CARTGenerator` (that baseline model, then the shared outcome models).

Method (Reiter, Surv Methodol 2005; Drechsler & Reiter, CSDA 2011; Nowok, Raab & Dibben, synthpop, J Stat
Softw 2016). Columns are visited in a fixed order (``visit_order``, default the schema order: numeric then
categorical; columns it does not name follow in that order). Each column is one or two *steps*:

* a column with any missing value first gets a missingness indicator (1 = missing), synthesized from a
  ``DecisionTreeClassifier`` on the previously synthesized columns;
* its value is then synthesized from a tree fitted on the training rows where it is observed: a
  ``DecisionTreeClassifier`` for a categorical column or a numeric one with at most ``max_discrete_levels``
  distinct values, else a ``DecisionTreeRegressor``; synthetic rows whose indicator says missing stay missing.

Both trees use ``min_samples_leaf`` and ``max_depth`` and sklearn's default criteria (Gini, squared error);
a step with no predictor yet, or a constant target, is a single leaf holding every training row, so the first
column is drawn from its empirical marginal. A synthetic value is drawn by sending the synthetic row down the
tree (``apply``) and taking the value of one TRAINING member of that leaf, chosen uniformly: values are real
observed values, so integer, bounded and rare categories are preserved and nothing leaves the observed domain.

Predictor coding for the trees: a numeric column is its value, a missing value coded by a sentinel below the
observed minimum (so a split can isolate missingness); a categorical column is one-hot over its observed levels
(missing = all zeros); each synthesized missingness indicator is a predictor of the later columns too.

``smoothing="density"`` (synthpop's option, off by default) applies to regression-tree columns only: the drawn
value gets Gaussian kernel noise with the leaf's bandwidth, Silverman's rule ``0.9 min(sd, IQR/1.34) m^(-1/5)``
on the ``m`` training members of the leaf (``sd`` when the IQR is 0; none when the leaf is constant), then is
clipped to the column's observed range (and rounded for an integer-valued column).

Samples keep each input column's dtype (pandas 3 ``str``, ``category``, nullable ``Int64``, ``int64``, float).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cohorts.errors import InvalidDataError, InvalidScenarioError, NotFittedError
from cohorts.generators.base import register
from cohorts.generators.regression import category_levels, is_integer_valued
from cohorts.generators.sequential import SequentialGenerator

__all__ = ["SequentialCART", "CARTGenerator", "SMOOTHING"]

#: accepted values of ``smoothing`` (None and "none" both mean off)
SMOOTHING = (None, "none", "density")


class _Leaves:
    """Training members grouped by the leaf of a fitted tree (or one leaf when ``tree`` is None)."""

    def __init__(self, tree, X: np.ndarray | None, m: int):
        self.tree = tree
        leaf = tree.apply(X.astype(np.float32)) if tree is not None else np.zeros(m, dtype=np.int64)
        self.members = np.argsort(leaf, kind="stable")
        nodes, self.start, self.count = np.unique(leaf[self.members], return_index=True, return_counts=True)
        size = tree.tree_.node_count if tree is not None else 1
        self.slot = np.full(size, -1, dtype=np.int64)
        self.slot[nodes] = np.arange(len(nodes))

    def draw(self, X: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(leaf slot, training member position) for ``n`` synthetic rows, a member uniform within its leaf."""
        if n == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        k = self.slot[self.tree.apply(X.astype(np.float32))] if self.tree is not None else np.zeros(n, np.int64)
        offset = np.minimum((rng.random(n) * self.count[k]).astype(np.int64), self.count[k] - 1)
        return k, self.members[self.start[k] + offset]

    def bandwidths(self, y: np.ndarray) -> np.ndarray:
        """Silverman's rule-of-thumb bandwidth of each leaf's member values (0 for a constant leaf)."""
        out = np.zeros(len(self.start))
        for j, (s, c) in enumerate(zip(self.start, self.count)):
            v = y[self.members[s:s + c]]
            sd = float(np.std(v, ddof=1)) if c > 1 else 0.0
            iqr = float(np.subtract(*np.percentile(v, [75, 25]))) / 1.34
            spread = min(sd, iqr) if iqr > 0 else sd
            out[j] = 0.9 * spread * c ** -0.2
        return out


class _Column:
    """What one column needs: training values, predictor coding, its missingness and value steps."""

    def __init__(self, name: str, s: pd.Series, *, numeric: bool, max_discrete_levels: int):
        self.name, self.numeric = name, numeric
        x = pd.to_numeric(s, errors="coerce") if numeric else s
        self.observed = x.notna().to_numpy()
        self.values = s[self.observed].reset_index(drop=True)  # the training values, in the input dtype
        obs = x[self.observed]
        if numeric:
            self.x = obs.to_numpy(dtype=float)
            self.levels = np.unique(self.x)
            self.classify = len(self.levels) <= max_discrete_levels
            self.code = np.searchsorted(self.levels, self.x)
            lo, hi = (float(self.x.min()), float(self.x.max())) if len(self.x) else (0.0, 0.0)
            self.range, self.sentinel = (lo, hi), lo - max(1.0, hi - lo)
            self.integer = is_integer_valued(self.x)
        else:
            self.levels = np.asarray(category_levels(s), dtype=object)
            self.classify = True
            pos = {lv: j for j, lv in enumerate(self.levels)}
            self.code = np.array([pos[v] for v in obs.to_numpy(dtype=object)], dtype=np.int64)
        self.missing_step: _Leaves | None = None
        self.value_step: _Leaves | None = None
        self.bandwidth: np.ndarray | None = None

    def encode(self, present: np.ndarray, member: np.ndarray, x: np.ndarray | None = None) -> np.ndarray:
        """Tree predictors for rows whose value is training member ``member`` (rows not ``present``: missing);
        ``x`` overrides numeric values (smoothed draws)."""
        n = len(present)
        if self.numeric:
            v = np.full(n, self.sentinel)
            v[present] = self.x[member[present]] if x is None else x[present]
            return v[:, None]
        out = np.zeros((n, len(self.levels)))
        out[np.flatnonzero(present), self.code[member[present]]] = 1.0
        return out


class SequentialCART:
    """Sequential CART with leaf-member sampling and modelled missingness (see the module docstring)."""

    def __init__(self, *, min_samples_leaf: int = 5, max_depth: int | None = None, smoothing: str | None = None,
                 visit_order=None, max_discrete_levels: int = 15):
        self.min_samples_leaf = min_samples_leaf
        self.max_depth = max_depth
        self.smoothing = smoothing
        self.visit_order = visit_order
        self.max_discrete_levels = max_discrete_levels

    # ------------------------------------------------------------------ fit
    def _check(self, columns: list[str]) -> list[str]:
        if self.smoothing not in SMOOTHING:
            raise InvalidScenarioError(f"cart hyperparameter smoothing={self.smoothing!r} is not known; "
                                       "use None (or 'none') for leaf values as observed, or 'density'")
        if not (isinstance(self.min_samples_leaf, (int, np.integer)) and self.min_samples_leaf >= 1):
            raise InvalidScenarioError(f"cart hyperparameter min_samples_leaf={self.min_samples_leaf!r} must be an "
                                       "integer >= 1 (synthpop's default is 5)")
        if self.max_depth is not None and not (isinstance(self.max_depth, (int, np.integer)) and self.max_depth >= 1):
            raise InvalidScenarioError(f"cart hyperparameter max_depth={self.max_depth!r} must be None or an "
                                       "integer >= 1")
        order = list(self.visit_order or [])
        unknown = [c for c in order if c not in columns]
        if unknown:
            raise InvalidDataError(f"cart visit_order names {unknown}, which are not baseline columns; "
                                   f"choose among {columns}")
        if len(set(order)) != len(order):
            raise InvalidDataError(f"cart visit_order {order} lists a column twice; list each at most once")
        return order + [c for c in columns if c not in order]

    def _tree(self, classify: bool, rng: np.random.Generator):
        from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor  # lazy: keeps `insilico` start-up fast
        kind = DecisionTreeClassifier if classify else DecisionTreeRegressor
        return kind(min_samples_leaf=int(self.min_samples_leaf), max_depth=self.max_depth,
                    random_state=int(rng.integers(2**31)))

    def _step(self, X: np.ndarray, y: np.ndarray, classify: bool, rng: np.random.Generator) -> _Leaves:
        tree = self._tree(classify, rng)  # one rng draw per step, whether or not a tree is grown
        if X.shape[1] == 0 or len(np.unique(y)) < 2:
            return _Leaves(None, None, len(y))
        return _Leaves(tree.fit(X.astype(np.float32), y), X, len(y))

    def fit(self, frame: pd.DataFrame, numeric, categorical, *, rng: np.random.Generator,
            progress=None) -> "SequentialCART":
        numeric, categorical = list(numeric), list(categorical)
        self.columns_ = numeric + categorical
        absent = [c for c in self.columns_ if c not in frame.columns]
        if absent:
            raise InvalidDataError(f"baseline column(s) {absent} not in the data; columns are {list(frame.columns)}")
        if len(frame) < 2:
            raise InvalidDataError(f"sequential CART needs at least 2 patients, got {len(frame)}")
        self.order_ = self._check(self.columns_)
        self.dtypes_ = {c: frame[c].dtype for c in self.columns_}
        self.fit_notes_: list[str] = []
        self.steps_: dict[str, _Column] = {}
        blocks: list[np.ndarray] = []
        for i, c in enumerate(self.order_):
            col = _Column(c, frame[c], numeric=c in numeric, max_discrete_levels=self.max_discrete_levels)
            X = np.hstack(blocks) if blocks else np.zeros((len(frame), 0))
            missing = ~col.observed
            if missing.any():
                col.missing_step = self._step(X, missing.astype(np.int64), True, rng)
                blocks.append(missing.astype(float)[:, None])
                X = np.hstack(blocks)
            if col.observed.any():
                y = col.code if col.classify else col.x
                col.value_step = self._step(X[col.observed], y, col.classify, rng)
                if self.smoothing == "density" and not col.classify:
                    col.bandwidth = col.value_step.bandwidths(col.x)
            else:
                self.fit_notes_.append(f"cart: baseline column {c!r} is entirely missing; it is synthesized missing")
            member = np.zeros(len(frame), dtype=np.int64)
            member[col.observed] = np.arange(col.observed.sum())
            blocks.append(col.encode(col.observed, member))
            self.steps_[c] = col
            if progress is not None:
                progress((i + 1) / len(self.order_), f"cart: column {c}")
        self.n_train_ = len(frame)
        return self

    # ------------------------------------------------------------------ sampling
    def sample(self, n: int, *, rng: np.random.Generator) -> pd.DataFrame:
        """``n`` synthetic rows with the fitted columns and dtypes."""
        if not hasattr(self, "steps_"):
            raise NotFittedError("SequentialCART is not fitted: call fit(frame, numeric, categorical, rng=...)")
        n = int(n)
        blocks: list[np.ndarray] = []
        out: dict[str, pd.Series] = {}
        for c in self.order_:
            col = self.steps_[c]
            X = np.hstack(blocks) if blocks else np.zeros((n, 0))
            present = np.full(n, col.value_step is not None)
            if col.missing_step is not None:
                _, who = col.missing_step.draw(X, n, rng)
                present &= col.observed[who]
                blocks.append((~col.observed[who]).astype(float)[:, None])
                X = np.hstack(blocks)
            member = np.zeros(n, dtype=np.int64)
            x = None
            if col.value_step is not None:
                rows = np.flatnonzero(present)
                k, member[rows] = col.value_step.draw(X[rows], len(rows), rng)
                if col.bandwidth is not None:
                    x = np.zeros(n)
                    x[rows] = self._smooth(col, col.x[member[rows]], col.bandwidth[k], rng)
            blocks.append(col.encode(present, member, x))
            out[c] = self._restore(col, member, present, x, n)
        return pd.DataFrame(out, index=pd.RangeIndex(n), columns=self.columns_)

    @staticmethod
    def _smooth(col: _Column, x: np.ndarray, bandwidth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        y = np.clip(x + bandwidth * rng.standard_normal(len(x)), *col.range)
        return np.rint(y) if col.integer else y

    def _restore(self, col: _Column, member: np.ndarray, present: np.ndarray, x, n: int) -> pd.Series:
        """The column in its training dtype: training values taken by position, missing where not present."""
        dtype = self.dtypes_[col.name]
        if col.value_step is None:
            return pd.Series(np.full(n, np.nan)).astype(dtype) if n else pd.Series([], dtype=dtype)
        if x is not None:
            s = pd.Series(np.where(present, x, np.nan))
            if present.all() or not (isinstance(dtype, np.dtype) and dtype.kind in "iu"):
                s = s.astype(dtype)
            return s
        s = col.values.take(member).reset_index(drop=True)
        return s if present.all() else s.where(pd.Series(present))


@register
class CARTGenerator(SequentialGenerator):
    """Sequential CART (synthpop-style leaf sampling) for the baseline table, then the shared outcome models."""

    name = "cart"
    description = ("Sequential CART (each baseline column from a tree on the previous ones, sampling observed "
                   "leaf members; modelled missingness); Weibull PH / mixed / linear / logistic outcome model")

    def __init__(self, *, min_samples_leaf: int = 5, max_depth: int | None = None, smoothing: str | None = None,
                 visit_order=None, min_visit_fraction: float = 0.05, covariate_by_time: bool = True):
        self.min_samples_leaf = min_samples_leaf
        self.max_depth = max_depth
        self.smoothing = smoothing
        self.visit_order = visit_order
        self.min_visit_fraction = min_visit_fraction
        self.covariate_by_time = covariate_by_time

    def _baseline_model(self) -> SequentialCART:
        return SequentialCART(min_samples_leaf=self.min_samples_leaf, max_depth=self.max_depth,
                              smoothing=self.smoothing, visit_order=self.visit_order)

    @property
    def cart_(self) -> SequentialCART:
        return self.baseline_model_
