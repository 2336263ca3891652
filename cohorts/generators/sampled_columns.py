"""Synthetic baseline columns before they become a frame: :class:`SampledColumns`.

A power analysis draws millions of synthetic patients whose covariates only feed an outcome model's design matrix;
making a pandas frame of them, with a string column per categorical covariate, took a tenth of a log-rank
simulation's time. The copula therefore returns its columns as they come out of the sampler: numeric columns as
series in the training dtypes, non-numeric columns as level codes (an integer per patient into the column's few
levels). :class:`~cohorts.generators.regression.BaselineDesign` reads the codes directly; :meth:`SampledColumns.frame`
builds the frame (once) when someone asks for it, e.g. ``PatientDraw.baseline`` for strata, subgroups or
eligibility. The frame, the design matrix and every number are the same either way
(tests/cohorts/test_draw_speed_equivalence.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cohorts.generators.regression import _level_codes, _remember_codes, codes_from_slots

__all__ = ["SampledColumns", "restore_dtype", "levels_series"]


class SampledColumns:
    """``n`` synthetic rows of ``columns``: series (:meth:`add_series`) or level codes (:meth:`add_levels`)."""

    def __init__(self, n: int, columns):
        self.n, self.columns = int(n), list(columns)
        self._series: dict[str, pd.Series] = {}
        self._levels: dict[str, tuple] = {}
        self._frame: pd.DataFrame | None = None

    def __len__(self) -> int:
        return self.n

    def add_series(self, name: str, series: pd.Series) -> None:
        self._series[name] = series

    def add_levels(self, name: str, levels, codes: np.ndarray, missing: np.ndarray | None, dtype) -> None:
        """Column ``name`` holds ``levels[codes]`` (missing where ``missing``), in ``dtype``."""
        k = np.array(codes, dtype=np.intp)
        if missing is not None:
            k[missing] = len(levels)
        slots = np.empty(len(levels) + 1, dtype=object)
        slots[:-1] = levels
        slots[-1] = np.nan
        self._levels[name] = (k, restore_dtype(slots, dtype))

    def column(self, name: str) -> pd.Series:
        """One column as a series (the frame's column once the frame is built)."""
        if self._frame is not None:
            return self._frame[name]
        if name in self._series:
            return self._series[name]
        k, slots = self._levels[name]
        return levels_series(k, slots)

    def frame(self) -> pd.DataFrame:
        """The columns as a frame (built on the first call, the same object after)."""
        if self._frame is None:
            out = {c: self.column(c) for c in self.columns}
            self._frame = pd.DataFrame(out, index=pd.RangeIndex(self.n), columns=self.columns)
        return self._frame

    def numeric_values(self, name: str) -> np.ndarray:
        """``pd.to_numeric(frame[name], errors="coerce")`` as floats."""
        return pd.to_numeric(self.column(name), errors="coerce").to_numpy(dtype=float)

    def level_codes(self, name: str, levels) -> np.ndarray:
        """``regression._level_codes(frame[name], levels)``, from the codes when the column has them."""
        if self._frame is None and name in self._levels:
            k, slots = self._levels[name]
            return codes_from_slots(k, slots.to_numpy(dtype=object), levels)
        return _level_codes(self.column(name), levels)


def levels_series(k: np.ndarray, slots: pd.Series) -> pd.Series:
    """The column ``slots[k]`` (``slots``: the levels and a last missing slot, already in the column's dtype): the
    codes index the few slots, so no object array of ``n`` values is built. Equal to ``restore_dtype(levels[k]
    blanked, dtype)``, because that conversion acts value by value."""
    out = pd.Series(slots.array.take(k))
    _remember_codes(out, k.astype(np.min_scalar_type(len(slots))), slots.to_numpy(dtype=object))
    return out


def restore_dtype(values: np.ndarray, dtype) -> pd.Series:
    """A series with the training column's dtype (values are training values or missing)."""
    if isinstance(dtype, pd.CategoricalDtype):
        return pd.Series(pd.Categorical(values, dtype=dtype))
    if values.dtype != object and isinstance(dtype, np.dtype) and dtype.kind in "iu" and np.isnan(values).any():
        return pd.Series(values)  # an int64 column cannot hold a missing value (never seen in training data)
    if values.dtype == dtype and values.dtype != object:
        return pd.Series(values)  # what astype gives, without its copy
    return pd.Series(values).astype(dtype)
