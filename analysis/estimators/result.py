"""Result objects shared by every estimator (statsmodels style: raw numbers, summaries as methods)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["TestResult", "BatchResult"]


@dataclass(frozen=True)
class TestResult:
    """One analysis of one dataset.

    ``estimate`` is on the method's natural scale (difference treated minus control; a hazard ratio treated vs
    control for Cox and log-rank), with its two-sided ``1 - alpha`` confidence interval.
    """

    __test__ = False  # not a pytest class

    method: str
    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    statistic: float
    n_per_arm: tuple[int, int]
    details: dict = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        row = {"method": self.method, "estimate": self.estimate, "ci_low": self.ci_low,
               "ci_high": self.ci_high, "p_value": self.p_value, "statistic": self.statistic,
               "n_control": self.n_per_arm[0], "n_treated": self.n_per_arm[1]}
        return pd.DataFrame([row])


@dataclass(frozen=True, eq=False)
class BatchResult:
    """One analysis of ``R`` replicate datasets; every array has shape ``(R,)`` (``n_per_arm``: ``(R, 2)``).

    Replicates where the method is undefined (e.g. an arm with fewer than two analysable patients) carry NaN and
    count as non-rejections.
    """

    method: str
    estimate: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    p_value: np.ndarray
    statistic: np.ndarray
    n_per_arm: np.ndarray
    details: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.p_value)

    def rejected(self, alpha: float) -> np.ndarray:
        """Two-sided rejection at level ``alpha`` (NaN p-values do not reject)."""
        p = np.asarray(self.p_value, dtype=float)
        return np.where(np.isnan(p), False, p < alpha)

    def to_frame(self) -> pd.DataFrame:
        """One row per replicate: the raw output for audit."""
        n = np.asarray(self.n_per_arm)
        return pd.DataFrame({"replicate": np.arange(len(self)), "estimate": self.estimate,
                             "ci_low": self.ci_low, "ci_high": self.ci_high, "statistic": self.statistic,
                             "p_value": self.p_value, "n_control": n[:, 0], "n_treated": n[:, 1]})
