"""Registry of the built-in reference cohorts: name -> (info, schema file, data loader)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import pandas as pd

from cohorts.builtin.als import N_PATIENTS, als_frames
from cohorts.cohort import Cohort
from cohorts.errors import UnknownNameError
from cohorts.schema import CohortSchema

__all__ = ["BuiltinInfo", "DEFAULT_BUILTIN", "available_builtins", "load_builtin"]

DEFAULT_BUILTIN = "als-natural-history"

_ALS_CITATION = (
    "Simulated from published summaries: Atassi N et al., Neurology 2014;83:1719 (PRO-ACT); "
    "van Eijk RPA et al., 2025 (PRECISION-ALS); Paganoni S et al., Ann Clin Transl Neurol 2023 "
    "(PRO-ACT controls matched to CENTAUR)."
)
_ALS_NOT_DATA = (
    f"NOT patient data: {N_PATIENTS:,} virtual patients simulated from published summary figures "
    "(Atassi 2014 PRO-ACT, van Eijk 2025 PRECISION-ALS, Paganoni 2023 CENTAUR-matched PRO-ACT controls): "
    "baseline ALSFRS-R ~36.8 (SD 5.35), decline ~1 point/month, faster early, median survival ~13 months. "
    "Model and calibration: cohorts/builtin/README.md."
)


@dataclass(frozen=True)
class BuiltinInfo:
    """What a built-in cohort is: its registry name, a title, a description, its source and whether simulated."""

    name: str
    title: str
    description: str
    citation: str
    simulated: bool


@dataclass(frozen=True)
class _Entry:
    info: BuiltinInfo
    schema_file: str
    loader: Callable[[], pd.DataFrame]


def _als_long() -> pd.DataFrame:
    return als_frames()[0]


def _als_survival() -> pd.DataFrame:
    return als_frames()[1]


def _va_lung() -> pd.DataFrame:
    with resources.files("cohorts.builtin").joinpath("va_lung.csv").open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh)


_REGISTRY: dict[str, _Entry] = {
    "als-natural-history": _Entry(
        BuiltinInfo(
            name="als-natural-history",
            title="ALS natural history (simulated from published summaries)",
            description="Monthly ALSFRS-R (0-48) at months 0-12 in long format, stopping at dropout, death or "
                        "tracheostomy. " + _ALS_NOT_DATA,
            citation=_ALS_CITATION,
            simulated=True),
        "als_natural_history.toml", _als_long),
    "als-natural-history-survival": _Entry(
        BuiltinInfo(
            name="als-natural-history-survival",
            title="ALS natural history, survival (simulated from published summaries)",
            description="Time from baseline to death or tracheostomy (months; censored at 24 months or loss to "
                        "follow-up), one row per patient; the same patients as 'als-natural-history'. "
                        + _ALS_NOT_DATA,
            citation=_ALS_CITATION,
            simulated=True),
        "als_natural_history_survival.toml", _als_survival),
    "va-lung": _Entry(
        BuiltinInfo(
            name="va-lung",
            title="Veterans' Administration lung cancer trial",
            description="Real trial data: 137 men with advanced inoperable lung cancer randomized to standard "
                        "or test chemotherapy; survival in days (128 deaths). Published Cox HR test vs "
                        "standard 1.018 (0.714-1.450).",
            citation="Kalbfleisch JD, Prentice RL. The Statistical Analysis of Failure Time Data. New York: "
                     "Wiley; 1980 (Veterans' Administration lung cancer trial; data via scikit-survival "
                     "load_veterans_lung_cancer).",
            simulated=False),
        "va_lung.toml", _va_lung),
}


def available_builtins() -> list[BuiltinInfo]:
    """Every built-in cohort, the default first."""
    names = sorted(_REGISTRY, key=lambda n: (n != DEFAULT_BUILTIN, n))
    return [_REGISTRY[n].info for n in names]


def _entry(name: str) -> _Entry:
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise UnknownNameError("built-in cohort", name, _REGISTRY) from None


@lru_cache(maxsize=None)
def _prototype(name: str) -> Cohort:
    """The cohort loaded once (schema parsed, data read or simulated, SHA-256 computed)."""
    entry = _entry(name)
    text = resources.files("cohorts.builtin").joinpath(entry.schema_file).read_text(encoding="utf-8")
    schema = CohortSchema.from_toml(text)
    info = entry.info
    return Cohort(name=name, schema=schema, data=entry.loader(), source=f"builtin:{name}",
                  citation=info.citation, description=info.description)


def load_builtin(name: str) -> Cohort:
    """A built-in cohort by name; its data is a fresh copy, so callers may modify it freely.

    Raises :class:`cohorts.errors.UnknownNameError` (listing the valid names) for an unknown name.
    """
    proto = _prototype(_entry(name).info.name)
    return Cohort(name=proto.name, schema=proto.schema, data=proto.data.copy(), source=proto.source,
                  citation=proto.citation, description=proto.description, sha256=proto.sha256)
