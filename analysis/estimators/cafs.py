"""CAFS: Combined Assessment of Function and Survival (ALS), with the Finkelstein-Schoenfeld test.

Berry JD, Miller R, Moore DH, et al. The Combined Assessment of Function and Survival (CAFS): a new endpoint
for ALS clinical trials. Amyotroph Lateral Scler Frontotemporal Degener 2013;14:162-8. Finkelstein DM,
Schoenfeld DA. Combining mortality and longitudinal measures in clinical trials. Stat Med 1999;18:1341-54.

Every patient is compared with every other analysable patient. Follow-up is first truncated at the
``horizon`` ``H``: ``t_i = min(time_i, H)``; patient ``i`` *died* when the death was observed at
``time_i <= H`` (a death after ``H`` counts as alive and followed to ``H``). Rules for the pair ``(i, j)``:

1. **Survival**, when it is determinable:

   a. both died: the one who died earlier is worse (``t_i < t_j``: ``i`` loses); equal death times are not
      decided by survival (go to 2);
   b. only ``i`` died: ``i`` is worse if ``j`` was followed at least to ``i``'s death (``t_j >= t_i``: alive
      at the horizon, or censored at or after ``t_i``); if ``j`` was censored before ``t_i``
      (``t_j < t_i``) survival is not determinable (go to 2);
   c. neither died (both alive at the horizon, or censored): not decided by survival (go to 2).

2. **Function**: the larger ``change`` (ALSFRS-R at the last visit minus baseline: less decline) is better;
   equal changes, or a missing change for either patient, are a tie (0).

The pair scores ``+1`` to the better patient and ``-1`` to the worse (0 both for a tie). Patient ``i``'s CAFS
score is ``U_i = wins - losses`` (``sum U = 0``). Berry et al. rank the scores; the patients' *mean ranks* per
arm (mid-ranks of ``U`` among all analysable patients) are reported in ``details``. Test (Finkelstein and
Schoenfeld 1999, permutation distribution of the treated sum): ``T = sum_{treated} U_i``, ``E[T] = 0``,
``V = n1 n0 / (N (N - 1)) sum_i U_i^2``, ``z = T / sqrt(V)`` (the reported statistic), two-sided normal
p-value. Estimate: the difference in mean CAFS score, treated minus control, ``d = T N / (n1 n0)``, with the
test-based CI ``d -/+ z_{1-alpha/2} se``, ``se = sqrt(V) N / (n1 n0)`` (the permutation SE, exact under the
null; it does not estimate the SE away from it). With no censoring before the horizon the test equals the
Wilcoxon-Mann-Whitney test of the ranks (checked against scipy). Unlike Finkelstein-Schoenfeld, the function
comparison uses each patient's change to their own last visit, as CAFS does, not the last common visit.

Implementation: ``U = S + G - rowsum(H) + colsum(H)`` with ``S`` (survival wins - losses) and ``G`` (function
wins - losses over all pairs) from sorted ranks, and ``H_ij = win_ij sign(c_i - c_j)`` (``win_ij``: ``i``
outlived ``j``, who died) built by broadcasting over chunks of replicates (``O(N^2)`` per replicate; ~2 MB of
``int8`` per chunk). Non-analysable patients (non-finite time, missing death indicator) take no part; their
score is NaN. Undefined (NaN): an arm with fewer than two analysable patients or ``V = 0`` (every pair tied).
Checked against an independent double loop in R (tests/analysis/results/cafs_reference.R) on the ddI/ddC
trial and on a hand-checked example.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from cohorts.errors import InvalidDataError

from ._common import (arm_indicator, as_replicates, numeric_column, require_columns, to_test_result, z_crit,
                      zero_one_column)
from .result import BatchResult, TestResult

__all__ = ["cafs_batched", "cafs_test", "cafs_scores"]

METHOD = "CAFS (survival, then change) pairwise scores; Finkelstein-Schoenfeld permutation z-test"
_CHUNK_BYTES = 2 ** 21


def _less_greater(v: np.ndarray, *counted: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """For every entry of ``v`` ``(R, N)`` and every mask in ``counted``: how many counted entries of its row
    are strictly smaller and strictly larger, from one sort (NaN entries compare with nothing: count 0, and
    are never counted)."""
    R, N = v.shape
    nan = np.isnan(v)
    rows = (np.arange(R) * N)[:, None]
    order = np.argsort(np.where(nan, np.inf, v), axis=1) + rows          # flat gathers beat take_along_axis
    s = v.ravel()[order]
    idx = np.broadcast_to(np.arange(N), (R, N))
    new = np.ones((R, N), dtype=bool)
    new[:, 1:] = s[:, 1:] != s[:, :-1]
    last = np.ones((R, N), dtype=bool)
    last[:, :-1] = new[:, 1:]
    start = np.maximum.accumulate(np.where(new, idx, 0), axis=1) + rows
    end = np.minimum.accumulate(np.where(last, idx, N - 1)[:, ::-1], axis=1)[:, ::-1] + rows
    s_nan = np.isnan(s)
    out = []
    for mask in counted:
        c = (mask & ~nan).ravel()[order].astype(np.int32)
        cum = np.cumsum(c, axis=1)
        before = (cum - c).ravel()[start]                                 # counted before the tie group
        after = cum[:, -1:] - cum.ravel()[end]                            # counted after the tie group
        less, greater = np.empty(R * N, np.int32), np.empty(R * N, np.int32)
        less[order] = np.where(s_nan, 0, before)
        greater[order] = np.where(s_nan, 0, after)
        out.append((less.reshape(R, N), greater.reshape(R, N)))
    return out


def cafs_scores(death_time: np.ndarray, died: np.ndarray, change: np.ndarray,
                horizon: float | None = None) -> np.ndarray:
    """CAFS scores ``U`` ``(R, N)`` (wins - losses over every other analysable patient of the replicate, as
    floats; NaN for patients with a non-finite time or a missing death indicator). See the module docstring."""
    t = as_replicates(death_time, ndim=2, name="death_time")
    d_raw = as_replicates(died, ndim=2, name="died")
    c = as_replicates(change, ndim=2, name="change")
    if not (t.shape == d_raw.shape == c.shape):
        raise ValueError(f"death_time, died and change must have one shape, got {t.shape}, {d_raw.shape}, "
                         f"{c.shape}")
    H = np.inf if horizon is None else float(horizon)
    if not H > 0:
        raise ValueError(f"horizon must be positive (or None for no truncation), got {horizon!r}")
    valid = np.isfinite(t) & ~np.isnan(d_raw)
    d = valid & (d_raw == 1) & (t <= H)
    tt = np.where(valid, np.minimum(t, H), np.nan)
    # one key per patient: a death at t sorts before a censoring at t (nextafter), so
    # "i outlived j, who died" is exactly  died_j & key_j < key_i
    key = np.where(d, tt, np.nextafter(tt, np.inf))
    c = np.where(valid, c, np.nan)
    R, N = t.shape
    (k_less, _), (k_rank, k_greater) = _less_greater(key, d, valid)   # rank: number of smaller keys
    [(c_rank, c_greater)] = _less_greater(c, valid)
    U = k_less - np.where(d, k_greater, 0) + c_rank - c_greater
    # pairwise part on small integer ranks (6x faster to compare than float64); a non-analysable patient
    # gets key rank -1 (outlives nobody) and never died; a missing change is masked out of the function part
    itype = np.int16 if N < 2 ** 15 else np.int32
    kr = np.where(valid, k_rank, -1).astype(itype)
    cr = c_rank.astype(itype)
    c_ok = ~np.isnan(c)
    chunk = max(1, _CHUNK_BYTES // max(N * N, 1))
    for a in range(0, R, chunk):
        b = slice(a, a + chunk)
        win = kr[b, None, :] < kr[b, :, None]                            # key_j < key_i
        win &= d[b, None, :]                                             # ... and j died
        if not c_ok[b].all():
            win &= c_ok[b, None, :]
            win &= c_ok[b, :, None]
        g = (cr[b, :, None] > cr[b, None, :]).view(np.int8) - (cr[b, :, None] < cr[b, None, :]).view(np.int8)
        g *= win                                                         # H_ij = win_ij sign(c_i - c_j)
        U[b] += g.sum(axis=1, dtype=np.int32) - g.sum(axis=2, dtype=np.int32)
    return np.where(valid, U, np.nan)


def cafs_batched(death_time: np.ndarray, died: np.ndarray, change: np.ndarray, treated: np.ndarray,
                 horizon: float | None = None, alpha: float = 0.05) -> BatchResult:
    """CAFS test on every replicate: ``death_time`` (time of death or of last follow-up), ``died`` (1/True =
    death observed at ``death_time``), ``change`` (ALSFRS-R change from baseline to the last visit; NaN =
    unknown, a tie in every function comparison), ``treated``, all ``(R, N)``; ``horizon`` truncates follow-up
    (``None``: no truncation).

    ``estimate`` is the difference in mean CAFS score (treated minus control), ``statistic`` the
    Finkelstein-Schoenfeld z. ``details``: ``scores`` ``(R, N)``, ``mean_score_control``,
    ``mean_score_treated``, ``mean_rank_control``, ``mean_rank_treated`` (mid-ranks of the scores, 1 = worst),
    ``sum_score_treated`` (T), ``variance`` (V), ``se``, ``deaths`` ``(R, 2)`` (before the horizon: control,
    treated).
    """
    zc = z_crit(alpha)
    x = as_replicates(treated, ndim=2, name="treated", dtype=bool)
    U = cafs_scores(death_time, died, change, horizon)
    if x.shape != U.shape:
        raise ValueError(f"treated must have shape {U.shape}, got {x.shape}")
    valid = ~np.isnan(U)
    u = np.where(valid, U, 0.0)
    n = np.stack([(valid & ~x).sum(axis=1), (valid & x).sum(axis=1)], axis=1)
    n0, n1 = n[:, 0].astype(float), n[:, 1].astype(float)
    N = n0 + n1
    t = as_replicates(death_time, ndim=2, name="death_time")
    H = np.inf if horizon is None else float(horizon)
    dead = valid & (as_replicates(died, ndim=2, name="died") == 1) & (t <= H)
    deaths = np.stack([(dead & ~x).sum(axis=1), (dead & x).sum(axis=1)], axis=1)
    [(less, greater)] = _less_greater(U, valid)
    rank = 1.0 + less + 0.5 * (N[:, None] - 1.0 - less - greater)        # mid-rank among analysable
    with np.errstate(all="ignore"):
        T = np.where(x, u, 0.0).sum(axis=1)
        V = n1 * n0 / (N * (N - 1.0)) * (u ** 2).sum(axis=1)
        defined = (n.min(axis=1) >= 2) & (V > 0)
        nan = np.where(defined, 0.0, np.nan)
        V = V + nan
        z = T / np.sqrt(V)
        p = 2.0 * stats.norm.sf(np.abs(z))
        diff = T * N / (n1 * n0) + nan
        se = np.sqrt(V) * N / (n1 * n0)
        means = [np.where(w, u, 0.0).sum(axis=1) / m + nan for w, m in ((valid & ~x, n0), (valid & x, n1))]
        ranks = [np.where(w, rank, 0.0).sum(axis=1) / m + nan for w, m in ((valid & ~x, n0), (valid & x, n1))]
    return BatchResult(METHOD, diff, diff - zc * se, diff + zc * se, p, z, n,
                       {"scores": U, "mean_score_control": means[0], "mean_score_treated": means[1],
                        "mean_rank_control": ranks[0], "mean_rank_treated": ranks[1],
                        "sum_score_treated": T + nan, "variance": V, "se": se, "deaths": deaths,
                        "horizon": H})


def cafs_test(data: pd.DataFrame, *, time: str, event: str, change: str, arm: str, treated_value,
              horizon: float | None = None, alpha: float = 0.05) -> TestResult:
    """CAFS test of one row per patient: ``time`` (to death or last follow-up), ``event`` (0/1, 1 = death),
    ``change`` (ALSFRS-R change from baseline to the last visit; missing = tie in function comparisons).

    Rows with a missing arm, time or event are dropped. ``details["scores"]`` lists the scores of the kept
    rows in their original order.
    """
    require_columns(data, [time, event, change, arm])
    if horizon is not None and not float(horizon) > 0:
        raise InvalidDataError(f"horizon must be a positive time (in the units of column {time!r}) or None, "
                               f"got {horizon!r}")
    treated, known = arm_indicator(data, arm, treated_value)
    t = numeric_column(data, time)
    e = zero_one_column(data, event, "the death indicator")
    c = numeric_column(data, change)
    if (t[np.isfinite(t)] < 0).any():
        raise InvalidDataError(f"column {time!r}: negative follow-up times; times count from randomization")
    keep = known & np.isfinite(t) & ~np.isnan(e)
    return to_test_result(cafs_batched(t[keep][None], e[keep][None], c[keep][None], treated[keep][None],
                                       horizon, alpha))
