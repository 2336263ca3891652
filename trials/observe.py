"""The observation process of a simulated trial: visits, visit windows, dropout, follow-up and data cuts.

Everything is batched over ``(R, N)`` patients. Dropout is a per-patient hazard ``h`` (per month; per arm in a
design with arm-specific dropout): each patient gets one standard exponential ``E`` and leaves when the cumulative
dropout hazard reaches it, ``leave = E / h`` for a constant hazard (so a design without informative dropout draws
exactly as before). Informative dropout (``hazard_ratio_per_unit_change`` = ``c``) multiplies the hazard between
visits ``j - 1`` and ``j`` by ``c ** (y_{j-1} - y_0)`` (the last observed change from baseline); visit ``j`` is
missing once ``sum_{l <= j} h * c ** (y_{l-1} - y_0) * (t_l - t_{l-1}) > E``, which for ``c = 1`` is
``t_j > E / h``.

Time to event: ``time_full`` / ``event_full`` observe each patient up to ``min(followup, dropout)`` from entry.
The analysis happens at calendar time ``cut`` (per replicate): the time of the ``events``-th observed event in
calendar time (entry + time) for an event-driven design (the end of all follow-up when fewer events ever occur),
else the end of all follow-up. At a cut, a patient is observed for ``min(time_full, cut - entry)`` (0 for a
patient not yet entered: no contribution), with the event only if it happened by the cut.
"""

from __future__ import annotations

import numpy as np

__all__ = ["visit_times_actual", "dropout_missing", "observe_tte", "cut_tte", "event_cut"]


def visit_times_actual(visits_months, window: float, shape: tuple[int, int], *,
                       rng: np.random.Generator) -> np.ndarray | None:
    """``(R, N, V)`` actual visit months: each post-baseline visit uniform within +-``window`` of nominal
    (``None`` when ``window`` is 0: visits on time)."""
    if window <= 0:
        return None
    v = np.asarray(visits_months, dtype=float)
    jitter = rng.uniform(-window, window, size=(*shape, len(v)))
    jitter[..., 0] = 0.0
    return v + jitter


def dropout_missing(y: np.ndarray, times_months: np.ndarray, hazard: np.ndarray, hr_per_unit_change: float, *,
                    rng: np.random.Generator) -> np.ndarray:
    """``(R, N, V)`` bool: visits missed because the patient has left (see the module docstring).

    ``times_months``: ``(V,)`` or ``(R, N, V)``; ``hazard``: per patient ``(R, N)`` or a scalar, per month."""
    R, N, _ = y.shape
    e = rng.exponential(1.0, size=(R, N))
    h = np.broadcast_to(np.asarray(hazard, dtype=float), (R, N))
    t = np.broadcast_to(np.asarray(times_months, dtype=float), y.shape)
    if hr_per_unit_change == 1.0:
        with np.errstate(divide="ignore"):
            leave = e * (1.0 / h)
        return t > leave[..., None]
    change = y[..., :-1] - y[..., :1]                      # change from baseline at the visit opening the interval
    rate = h[..., None] * np.power(hr_per_unit_change, change)
    cum = np.concatenate([np.zeros((R, N, 1)), np.cumsum(rate * np.diff(t, axis=-1), axis=-1)], axis=-1)
    return cum > e[..., None]


def observe_tte(t_event: np.ndarray, followup: float | None, leave: np.ndarray | None):
    """``(time_full, event_full)``: observed up to ``min(followup, leave)`` (``None``: no limit)."""
    censor = np.full(t_event.shape, np.inf if followup is None else float(followup))
    if leave is not None:
        censor = np.minimum(censor, leave)
    event = t_event <= censor
    return np.where(event, t_event, censor), event


def event_cut(time_full: np.ndarray, event_full: np.ndarray, entry: np.ndarray, events) -> np.ndarray:
    """``(R,)`` calendar time of the ``events``-th event (scalar or per replicate ``(R,)``), in the time unit of
    ``time_full`` and ``entry``; the end of all follow-up where fewer events occur."""
    calendar = np.where(event_full, entry + time_full, np.inf)
    end = np.max(np.where(np.isfinite(time_full), entry + time_full, -np.inf), axis=1)
    d = np.broadcast_to(np.asarray(events, dtype=int), (len(time_full),))
    srt = np.sort(calendar, axis=1)
    kth = srt[np.arange(len(d)), np.clip(d, 1, calendar.shape[1]) - 1]
    return np.where(np.isfinite(kth) & (d <= calendar.shape[1]), kth, end)


def cut_tte(time_full: np.ndarray, event_full: np.ndarray, entry: np.ndarray, cut) -> tuple[np.ndarray, np.ndarray]:
    """``(time, event)`` observed at calendar ``cut`` (``(R,)``): follow-up truncated at ``cut - entry``."""
    cut = np.asarray(cut, dtype=float)[:, None]
    # compare in calendar time, as event_cut does: ``time_full <= cut - entry`` can round the other way, losing
    # the event that defines the cut or shortening a follow-up that ended before the cut by an ulp
    done = entry + time_full <= cut
    time = np.where(done, time_full, np.clip(cut - entry, 0.0, None))
    return time, event_full & done
