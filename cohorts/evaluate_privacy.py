"""Privacy of synthetic patients: copies, distance to closest record, membership inference.

All metrics work on the patient-level features of :func:`cohorts.evaluate_fidelity.patient_features`
(baseline covariates + outcome summaries).

**Gower-type distance** between patients a and b over the p features::

    d(a, b) = (1 / p) * sum_k d_k(a_k, b_k)
    numeric k:      d_k = min(1, |a_k - b_k| / R_k),  R_k = max - min of feature k in the TRAINING rows
                    (R_k = 0: d_k = 0 if equal else 1); both missing: 0; one missing: 1
    categorical k:  d_k = 0 if equal else 1 (missing is a level of its own)

so 0 <= d <= 1 and d = 0 exactly for identical rows (numeric values within floating-point equality).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import rankdata

__all__ = ["GowerEncoder", "gower_matrix", "closest_distance", "exact_copy_rate", "roc_auc", "PrivacyResult",
           "privacy_metrics"]


class GowerEncoder:
    """Turns patient-level frames into matrices for the Gower distance, with ranges taken from ``reference``."""

    def __init__(self, reference: pd.DataFrame):
        self.columns = list(reference.columns)
        self.numeric = [c for c in self.columns if pd.api.types.is_float_dtype(reference[c])]
        self.categorical = [c for c in self.columns if c not in self.numeric]
        x = reference[self.numeric].to_numpy(float)
        with np.errstate(invalid="ignore"):
            lo, hi = np.nanmin(x, axis=0, initial=np.inf), np.nanmax(x, axis=0, initial=-np.inf)
        self.ranges = np.where(np.isfinite(hi - lo), hi - lo, 0.0)
        self.levels = {c: {} for c in self.categorical}

    def transform(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """``(numeric / range, categorical codes)``; codes are shared across every frame this encoder sees."""
        num = frame[self.numeric].to_numpy(float)
        scale = np.where(self.ranges > 0, self.ranges, 1.0)
        cat = np.empty((len(frame), len(self.categorical)), dtype=np.int64)
        for j, c in enumerate(self.categorical):
            codes = self.levels[c]
            cat[:, j] = [codes.setdefault(v, len(codes)) for v in frame[c].astype(str)]
        return num / scale, cat

    def _zero_range(self) -> np.ndarray:
        return self.ranges <= 0


def _block(an, ac, bn, bc, zero_range) -> np.ndarray:
    """Gower distances between the rows of block a and every row of b (len(a) x len(b))."""
    p = an.shape[1] + ac.shape[1]
    total = np.zeros((an.shape[0], bn.shape[0]))
    for k in range(an.shape[1]):
        x, y = an[:, k][:, None], bn[:, k][None, :]
        with np.errstate(invalid="ignore"):
            d = np.abs(x - y)
            d = np.where(zero_range[k], (d > 0).astype(float), np.minimum(d, 1.0))
        nx, ny = np.isnan(x), np.isnan(y)
        total += np.where(nx & ny, 0.0, np.where(nx | ny, 1.0, d))
    for k in range(ac.shape[1]):
        total += ac[:, k][:, None] != bc[:, k][None, :]
    return total / max(p, 1)


def gower_matrix(a: pd.DataFrame, b: pd.DataFrame, reference: pd.DataFrame) -> np.ndarray:
    """Full Gower distance matrix between the rows of ``a`` and ``b`` (ranges from ``reference``)."""
    enc = GowerEncoder(reference)
    return _block(*enc.transform(a), *enc.transform(b), enc._zero_range())


def closest_distance(a: pd.DataFrame, b: pd.DataFrame, reference: pd.DataFrame, *,
                     chunk: int = 512) -> np.ndarray:
    """For each row of ``a``: the Gower distance to its closest row of ``b`` (computed in row chunks)."""
    enc = GowerEncoder(reference)
    an, ac = enc.transform(a)
    bn, bc = enc.transform(b)
    if len(b) == 0:
        return np.full(len(a), np.nan)
    out = np.empty(len(a))
    for s in range(0, len(a), chunk):
        out[s:s + chunk] = _block(an[s:s + chunk], ac[s:s + chunk], bn, bc, enc._zero_range()).min(axis=1)
    return out


def _row_keys(frame: pd.DataFrame, columns: list[str]) -> list[tuple]:
    """Hashable rows: numeric as float (NaN -> None), categorical as text."""
    cols = []
    for c in columns:
        s = frame[c]
        if pd.api.types.is_float_dtype(s):
            v = s.to_numpy(float)
            cols.append([None if np.isnan(x) else float(x) for x in v])
        else:
            cols.append([str(x) for x in s])
    return list(zip(*cols))


def exact_copy_rate(synthetic: pd.DataFrame, train: pd.DataFrame) -> float:
    """Share of ``synthetic`` rows equal to some ``train`` row on every feature (missing equals missing)."""
    if len(synthetic) == 0:
        return float("nan")
    keys = set(_row_keys(train, list(train.columns)))
    return float(np.mean([k in keys for k in _row_keys(synthetic, list(train.columns))]))


def roc_auc(labels, scores) -> float:
    """ROC AUC = P(score of a positive > score of a negative) + 0.5 P(tie) (Mann-Whitney form, mid-ranks);
    NaN when a class is empty."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=float)
    n1, n0 = int(labels.sum()), int((~labels).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    r = rankdata(scores)
    return float((r[labels].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


@dataclass(frozen=True)
class PrivacyResult:
    """Privacy metrics of a synthetic sample against its training rows (see the module docstring).

    * ``exact_copy_rate``: share of synthetic patients identical to a training patient on every feature;
      ``exact_copy_rate_holdout``: the same share for holdout patients (what unseen real patients show by
      chance: the reference level);
    * ``dcr_synthetic`` / ``dcr_holdout``: distance of each synthetic / holdout patient to its closest training
      patient, with medians and 5th percentiles (``numpy.quantile``, linear interpolation);
      ``share_closer_than_holdout_p5``: share of synthetic patients with DCR strictly below the holdout 5th
      percentile (about 0.05 when synthetic patients are no closer to the training rows than new real ones);
    * ``membership_auc``: AUC of the attack that scores each real patient by minus its distance to the closest
      synthetic patient, training patients being members (1) and holdout patients non-members (0); 0.5 = no
      leakage, 1 = every training patient is closer to the synthetic data than every holdout patient.
    """

    exact_copy_rate: float
    exact_copy_rate_holdout: float
    dcr_synthetic: np.ndarray
    dcr_holdout: np.ndarray
    dcr_synthetic_median: float
    dcr_holdout_median: float
    dcr_synthetic_p5: float
    dcr_holdout_p5: float
    share_closer_than_holdout_p5: float
    membership_auc: float
    distance_to_synthetic_train: np.ndarray
    distance_to_synthetic_holdout: np.ndarray


def _q(x: np.ndarray, q: float) -> float:
    return float(np.quantile(x, q)) if x.size else float("nan")


def privacy_metrics(train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame) -> PrivacyResult:
    """Every privacy metric from the patient-level frames (Gower ranges from ``train``)."""
    synthetic, holdout = synthetic[train.columns], holdout[train.columns]
    dcr_s = closest_distance(synthetic, train, train)
    dcr_h = closest_distance(holdout, train, train)
    to_syn_tr = closest_distance(train, synthetic, train)
    to_syn_ho = closest_distance(holdout, synthetic, train)
    p5_h = _q(dcr_h, 0.05)
    auc = roc_auc(np.r_[np.ones(len(to_syn_tr)), np.zeros(len(to_syn_ho))], -np.r_[to_syn_tr, to_syn_ho])
    return PrivacyResult(
        exact_copy_rate=exact_copy_rate(synthetic, train), exact_copy_rate_holdout=exact_copy_rate(holdout, train),
        dcr_synthetic=dcr_s, dcr_holdout=dcr_h, dcr_synthetic_median=_q(dcr_s, 0.5),
        dcr_holdout_median=_q(dcr_h, 0.5), dcr_synthetic_p5=_q(dcr_s, 0.05), dcr_holdout_p5=p5_h,
        share_closer_than_holdout_p5=float(np.mean(dcr_s < p5_h)) if dcr_s.size else float("nan"),
        membership_auc=auc, distance_to_synthetic_train=to_syn_tr, distance_to_synthetic_holdout=to_syn_ho)
