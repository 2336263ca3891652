"""Simulated ALS natural-history cohort (NOT patient data), built from published summary figures.

Every number below is either a published summary (source named beside it) or a modelling choice (marked
"choice"). The full model, with equations and the figures measured on the simulated cohort, is documented in
``cohorts/builtin/README.md``. Sources:

- Atassi et al., Neurology 2014;83:1719 (PRO-ACT, >8,600 trial patients): ALSFRS-R decline 1.02 (SD 2.3)
  points/month.
- van Eijk et al. 2025 (PRECISION-ALS, 7,030 patients): mean decline 0.89 points/month over 24 months,
  non-linear, faster early.
- Paganoni et al., Ann Clin Transl Neurol 2023 (PRO-ACT controls matched to CENTAUR): baseline ALSFRS-R 36.8
  (SD 5.35), pre-baseline slope 0.91 (SD 0.53) points/month, median survival 13.15 months from baseline.

Generation is vectorised numpy from one fixed seed (:data:`SEED`); :func:`als_frames` caches the result, so
every call returns the same patients.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
from scipy.special import expit, ndtr, ndtri

__all__ = ["SEED", "N_PATIENTS", "VISIT_MONTHS", "ADMIN_CENSOR_MONTHS", "simulate_als", "als_frames"]

SEED = 20250601                      #: the one seed of the built-in cohort (choice)
N_PATIENTS = 3000                    #: patients simulated (choice)
VISIT_MONTHS = np.arange(13)         #: monthly ALSFRS-R visits, months 0..12 (choice)
ADMIN_CENSOR_MONTHS = 24.0           #: administrative censoring of survival (choice)
MAX_SCORE = 48                       #: ALSFRS-R: 12 items scored 0-4

# --- baseline demographics (choices informed by PRO-ACT / trial populations) -------------------------
AGE_MEAN, AGE_SD, AGE_MIN, AGE_MAX = 57.0, 11.0, 18.0, 85.0
P_FEMALE = 0.38
P_C9ORF72 = 0.09                     # carriers ~8-10 % of trial patients; onset ~3 years earlier
C9_AGE_SHIFT = -3.0
P_RILUZOLE = 0.75
# bulbar onset: logit p = BULBAR_LOGIT0 + 0.6 female + 0.35 per 10 y of age + 0.5 C9orf72 (about 28 % overall)
BULBAR_LOGIT0, BULBAR_FEMALE, BULBAR_AGE10, BULBAR_C9 = -1.28, 0.6, 0.35, 0.5

# --- pre-baseline progression (Paganoni 2023: dFS mean 0.91, SD 0.53; baseline 36.8, SD 5.35) --------
DFS_LOGMEAN, DFS_LOGSD = -0.28, 0.48     # log dFS = DFS_LOGMEAN + covariate shifts + N(0, DFS_LOGSD^2)
DFS_BULBAR, DFS_AGE10, DFS_C9 = 0.12, 0.06, 0.15
ONSET_LOGMEDIAN, ONSET_LOGSD = np.log(12.9), 0.46   # months from symptom onset to baseline (lognormal)
ONSET_MIN, ONSET_MAX = 3.0, 60.0
RHO_DFS_ONSET = -0.62                # fast progressors enter trials sooner (keeps the baseline SD ~5.4)
DELAY_BETA = (8.0, 2.0)              # diagnostic delay = fraction of onset-to-baseline time, Beta(8, 2)
FVC_MEAN, FVC_SD, FVC_MIN, FVC_MAX = 80.0, 18.0, 20.0, 130.0
RHO_FVC_DFS = -0.30                  # faster pre-baseline progression, lower FVC

# --- post-baseline ALSFRS-R (Atassi 2014, van Eijk 2025) ---------------------------------------------
RATE_LOG0 = np.log(1.02)             # initial decline of a typical patient, points/month (choice, calibrated)
RATE_DFS = 0.55                      # elasticity of the initial rate on pre-baseline dFS
RATE_BULBAR, RATE_AGE10, RATE_C9, RATE_FVC10 = 0.10, 0.05, 0.15, -0.04
RATE_RE_SD = 0.35                    # patient-level random effect on the log rate
CURVATURE = 0.035                    # decline slows as exp(-CURVATURE * month): faster early (van Eijk 2025)
CURVATURE_RE_SD = 0.015              # patient-level random effect on the curvature
VISIT_NOISE_SD = 1.5                 # visit-to-visit measurement noise, points
DROPOUT_PER_MONTH = 0.0175           # visit dropout hazard (~1.75 %/month)
VITAL_LTFU_PER_MONTH = 0.005         # part of dropout that also loses vital status (survival censored)

# --- death or tracheostomy: Weibull proportional hazards (calibrated to 13.15 months, Paganoni 2023) -
WEIBULL_SHAPE = 1.35
WEIBULL_SCALE = 18.3                 # months, for a patient with all risk terms at 0 (calibrated)
HAZ_RATE = 1.2                       # log HR per unit log initial decline rate (sicker die earlier)
HAZ_BULBAR, HAZ_AGE10, HAZ_C9, HAZ_FVC10, HAZ_RILUZOLE = 0.20, 0.25, 0.25, -0.15, -0.12


def _truncated_normal(rng: np.random.Generator, mean, sd, lo: float, hi: float) -> np.ndarray:
    """Normal(mean, sd) truncated to [lo, hi] by inverse CDF (one uniform per value)."""
    a, b = ndtr((lo - mean) / sd), ndtr((hi - mean) / sd)
    u = rng.uniform(size=np.shape(mean))
    return mean + sd * ndtri(a + u * (b - a))


def _demographics(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Sex, C9orf72, age, riluzole and site of onset (bulbar more frequent in older women and carriers)."""
    female = rng.uniform(size=n) < P_FEMALE
    c9 = rng.uniform(size=n) < P_C9ORF72
    age = _truncated_normal(rng, AGE_MEAN - C9_AGE_SHIFT * P_C9ORF72 + C9_AGE_SHIFT * c9, AGE_SD,
                            AGE_MIN, AGE_MAX)
    riluzole = rng.uniform(size=n) < P_RILUZOLE
    logit = BULBAR_LOGIT0 + BULBAR_FEMALE * female + BULBAR_AGE10 * (age - AGE_MEAN) / 10 + BULBAR_C9 * c9
    bulbar = rng.uniform(size=n) < expit(logit)
    return {"female": female, "c9": c9, "age": np.round(age, 1), "riluzole": riluzole, "bulbar": bulbar}


def _pre_baseline(rng: np.random.Generator, d: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Latent pre-baseline slope dFS, time since onset, baseline ALSFRS-R, diagnostic delay and FVC.

    log dFS and log(months since onset) are bivariate normal (correlation RHO_DFS_ONSET); the latent
    baseline is 48 - dFS * months; the observed baseline adds visit noise. FVC is correlated with dFS.
    """
    n = d["age"].size
    z = rng.standard_normal((n, 3))
    shift = DFS_BULBAR * d["bulbar"] + DFS_AGE10 * (d["age"] - AGE_MEAN) / 10 + DFS_C9 * d["c9"]
    log_dfs = DFS_LOGMEAN + shift + DFS_LOGSD * z[:, 0]
    z_dfs = (log_dfs - log_dfs.mean()) / log_dfs.std()
    z_onset = RHO_DFS_ONSET * z_dfs + np.sqrt(1 - RHO_DFS_ONSET ** 2) * z[:, 1]
    months = np.clip(np.exp(ONSET_LOGMEDIAN + ONSET_LOGSD * z_onset), ONSET_MIN, ONSET_MAX).round(1)
    latent0 = MAX_SCORE - np.exp(log_dfs) * months
    observed0 = np.clip(np.rint(latent0 + VISIT_NOISE_SD * rng.standard_normal(n)), 0, MAX_SCORE - 1)
    delay = np.minimum((months * rng.beta(*DELAY_BETA, size=n)).round(1), months - 0.1)
    z_fvc = RHO_FVC_DFS * z_dfs + np.sqrt(1 - RHO_FVC_DFS ** 2) * z[:, 2]
    fvc = np.clip(np.rint(FVC_MEAN + FVC_SD * z_fvc), FVC_MIN, FVC_MAX)
    return {"months_since_onset": months, "latent0": latent0, "alsfrs_r_baseline": observed0.astype(int),
            "pre_baseline_slope": np.round((MAX_SCORE - observed0) / months, 4),
            "diagnostic_delay_months": delay, "fvc_percent": fvc, "log_dfs": log_dfs}


def _decline(rng: np.random.Generator, d: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Individual initial decline rate (points/month at month 0) and curvature.

    log rate = RATE_LOG0 + RATE_DFS (log dFS - mean) + covariate terms + N(0, RATE_RE_SD^2);
    curvature = CURVATURE + N(0, CURVATURE_RE_SD^2), floored at 0 (decline never speeds up).
    """
    n = d["age"].size
    log_rate = (RATE_LOG0 + RATE_DFS * (d["log_dfs"] - d["log_dfs"].mean())
                + RATE_BULBAR * d["bulbar"] + RATE_AGE10 * (d["age"] - AGE_MEAN) / 10 + RATE_C9 * d["c9"]
                + RATE_FVC10 * (d["fvc_percent"] - FVC_MEAN) / 10 + RATE_RE_SD * rng.standard_normal(n))
    curvature = np.maximum(CURVATURE + CURVATURE_RE_SD * rng.standard_normal(n), 0.0)
    return np.exp(log_rate), curvature


def _scores(rng: np.random.Generator, d: dict[str, np.ndarray], rate: np.ndarray,
            curvature: np.ndarray) -> np.ndarray:
    """Integer ALSFRS-R at VISIT_MONTHS (n x 13), before missingness; month 0 is the observed baseline.

    y(t) = latent0 - rate * (1 - exp(-curvature t)) / curvature + noise, rounded and bounded to 0-48.
    """
    t = VISIT_MONTHS[None, :].astype(float)
    c = curvature[:, None]
    safe_c = np.where(c > 0, c, 1.0)
    g = np.where(c > 0, -np.expm1(-safe_c * t) / safe_c, t)  # cumulative decline per unit initial rate
    y = d["latent0"][:, None] - rate[:, None] * g + VISIT_NOISE_SD * rng.standard_normal(g.shape)
    y = np.clip(np.rint(y), 0, MAX_SCORE).astype(int)
    y[:, 0] = d["alsfrs_r_baseline"]
    return y


def _survival(rng: np.random.Generator, d: dict[str, np.ndarray], rate: np.ndarray) -> np.ndarray:
    """Time to death or tracheostomy (months) from a Weibull PH model, by inverse CDF.

    S(t) = exp(-(t / WEIBULL_SCALE)^k exp(eta)), eta = HAZ_RATE log(rate / median rate) + covariate terms.
    """
    eta = (HAZ_RATE * (np.log(rate) - np.median(np.log(rate))) + HAZ_BULBAR * d["bulbar"]
           + HAZ_AGE10 * (d["age"] - AGE_MEAN) / 10 + HAZ_C9 * d["c9"]
           + HAZ_FVC10 * (d["fvc_percent"] - FVC_MEAN) / 10 + HAZ_RILUZOLE * d["riluzole"])
    e = rng.standard_exponential(rate.size)
    return WEIBULL_SCALE * (e * np.exp(-eta)) ** (1 / WEIBULL_SHAPE)


def _follow_up(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(visit dropout time, vital-status loss time), months; visits always stop first.

    Vital status is lost at rate VITAL_LTFU_PER_MONTH; visits stop at the earlier of that and an extra
    exponential time, so the total visit dropout hazard is DROPOUT_PER_MONTH.
    """
    vital = rng.exponential(1 / VITAL_LTFU_PER_MONTH, n)
    extra = rng.exponential(1 / (DROPOUT_PER_MONTH - VITAL_LTFU_PER_MONTH), n)
    return np.minimum(vital, extra), vital


def simulate_als(*, rng: np.random.Generator | None = None,
                 n: int = N_PATIENTS) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Simulate the cohort: (long frame, one visit per row; survival frame, one patient per row).

    ``rng`` defaults to ``np.random.default_rng(SEED)``, which gives the built-in cohort.
    """
    rng = np.random.default_rng(SEED) if rng is None else rng
    d = _demographics(rng, n)
    d.update(_pre_baseline(rng, d))
    rate, curvature = _decline(rng, d)
    y = _scores(rng, d, rate, curvature)
    event_time = _survival(rng, d, rate)
    dropout, vital_loss = _follow_up(rng, n)
    censor = np.minimum(vital_loss, ADMIN_CENSOR_MONTHS)
    died = event_time <= censor
    surv_months = np.round(np.where(died, event_time, censor), 2)
    surv_months = np.maximum(surv_months, 0.01)
    # a visit at month m happens while the patient is alive, followed and still attending
    last = np.minimum(surv_months, dropout)
    seen = (VISIT_MONTHS[None, :] < last[:, None]) | (VISIT_MONTHS[None, :] == 0)

    ids = np.arange(1, n + 1)
    surv = pd.DataFrame({
        "patient_id": ids,
        "age": d["age"],
        "sex": np.where(d["female"], "Female", "Male"),
        "site_of_onset": np.where(d["bulbar"], "Bulbar", "Limb"),
        "months_since_onset": d["months_since_onset"],
        "diagnostic_delay_months": d["diagnostic_delay_months"],
        "pre_baseline_slope": d["pre_baseline_slope"],
        "fvc_percent": d["fvc_percent"],
        "riluzole": np.where(d["riluzole"], "Yes", "No"),
        "c9orf72": np.where(d["c9"], "Carrier", "Non-carrier"),
        "alsfrs_r_baseline": d["alsfrs_r_baseline"],
        "survival_months": surv_months,
        "death_or_tracheostomy": died.astype(int),
    })
    rows, cols = np.nonzero(seen)
    long = surv.drop(columns="alsfrs_r_baseline").iloc[rows].reset_index(drop=True)
    long.insert(long.columns.get_loc("survival_months"), "month", VISIT_MONTHS[cols].astype(int))
    long.insert(long.columns.get_loc("survival_months"), "alsfrs_r", y[rows, cols].astype(int))
    return long, surv


@lru_cache(maxsize=1)
def _cached() -> tuple[pd.DataFrame, pd.DataFrame]:
    return simulate_als()


def als_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The built-in cohort as (long, survival) frames: fresh copies of one cached simulation."""
    long, surv = _cached()
    return long.copy(), surv.copy()
