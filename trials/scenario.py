"""Scenario files (TOML) <-> design objects, with every problem reported by key path.

::

    title = "ALS phase 2, 6-month ALSFRS-R slope"
    seed = 20261122
    [cohort]
    builtin = "als-natural-history"   # or: data = "controls.csv" and schema = "schema.toml"
    generator = "default"
    # params = { epochs = 300 }       # optional: the generator's hyperparameters
    [endpoint]
    analysis = "slope"                # slope | ancova | logrank | cox | ttest | proportions
    visits_months = [0, 1, 2, 3, 4, 5, 6]   # longitudinal
    # followup = 365                  # time to event, in the data's time unit
    [[arms]]
    name = "placebo"
    allocation = 1
    [[arms]]
    name = "treatment"
    allocation = 1
    effect = { slope_reduction = 0.25 }      # or { hazard_ratio = 0.7 }, { odds_ratio = 1.5 } ...
    # modifiers: { hazard_ratio = 0.7, delay = 3 } (HR 1 before 3), { hazard_ratio = 0.6, until = 12 } (then 1),
    # { slope_reduction = 0.3, responder_fraction = 0.5 }, { slope_reduction = 0.4, subgroup = "age < 60" }
    # (outside_value = 0.1: the effect outside the subgroup; default none), { risk_difference = -0.1 }
    [dropout]
    per_month = 0.02
    [power]
    n_total = [60, 120, 180, 240]
    replicates = 1000
    alpha = 0.05

Relative paths resolve against the scenario file's folder. Unknown keys, wrong types and impossible values
raise one :class:`~cohorts.errors.InvalidScenarioError` listing each key path with the allowed values.
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cohorts.errors import InvalidScenarioError
from cohorts.schema import toml_literal as _lit
from trials.conduct import MULTIPLICITY, Accrual, Eligibility, HybridControl, Looks, Randomization
from trials.design import EFFECT_MODIFIERS, EFFECT_OUTCOME, Arm, Dropout, Effect, Endpoint, PowerSettings, TrialDesign

__all__ = ["CohortRef", "Scenario", "load_scenario", "parse_scenario_text", "parse_scenario", "scenario_to_toml"]

_KEYS = {
    "": ("title", "seed", "cohort", "endpoint", "arms", "dropout", "power", "multiplicity", "accrual",
         "randomization", "eligibility", "looks", "hybrid"),
    "cohort": ("builtin", "data", "schema", "generator", "params"),
    "endpoint": ("analysis", "visits_months", "followup", "events", "visit_window_months", "assessment_months"),
    "arms": ("name", "allocation", "effect", "dropout_per_month"),
    "dropout": ("per_month", "hazard_ratio_per_unit_change"),
    "power": ("n_total", "replicates", "alpha"),
    "accrual": ("duration", "rates", "starts", "process"),
    "randomization": ("method", "block_size", "strata"),
    "eligibility": ("criteria", "enrich"),
    "looks": ("information_fractions", "spending", "gamma", "futility", "beta", "gamma_futility", "sided"),
    "hybrid": ("synthetic_controls", "drift"),
}


@dataclass(frozen=True)
class CohortRef:
    """Where the historical data comes from: a built-in cohort, or a data file with its schema file."""

    builtin: str | None = None
    data: Path | None = None
    schema: Path | None = None
    generator: str = "default"
    params: tuple[tuple[str, object], ...] = ()   # generator hyperparameters, as sorted (name, value) pairs

    @property
    def generator_params(self) -> dict:
        return dict(self.params)

    def describe(self) -> str:
        return f"built-in {self.builtin!r}" if self.builtin else f"{self.data} (schema {self.schema})"


@dataclass(frozen=True)
class Scenario:
    """A whole simulation study: cohort, generator, design, power settings and seed."""

    title: str
    seed: int
    cohort: CohortRef
    design: TrialDesign
    power: PowerSettings
    source: Path | None = None
    text: str | None = None  # the TOML as read, kept verbatim for the report


def _suggest(key: str, allowed) -> str:
    m = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.5)
    return f" (did you mean {m[0]!r}?)" if m else ""


def _unknown(table: dict, section: str, path: str, problems: list[str]) -> None:
    allowed = _KEYS[section]
    for key in table:
        if key not in allowed:
            where = f"{path}.{key}" if path else key
            problems.append(f"{where}: unknown key{_suggest(key, allowed)}; allowed: {', '.join(allowed)}")


def _table(d: dict, key: str, problems: list[str], required: bool = True) -> dict:
    v = d.get(key)
    if v is None:
        if required:
            problems.append(f"[{key}]: missing table")
        return {}
    if not isinstance(v, dict):
        problems.append(f"{key}: must be a table ([{key}]), got {type(v).__name__}")
        return {}
    return v


def _build(problems: list[str], fn, *args, **kwargs):
    """Call a validating constructor, turning its error into collected problems."""
    try:
        return fn(*args, **kwargs)
    except InvalidScenarioError as exc:
        problems.extend(exc.problems)
    except (TypeError, ValueError) as exc:
        problems.append(str(exc))
    return None


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _parse_cohort(c: dict, base_dir: Path | None, problems: list[str]) -> CohortRef | None:
    _unknown(c, "cohort", "cohort", problems)
    builtin, data, schema = c.get("builtin"), c.get("data"), c.get("schema")
    generator = c.get("generator", "default")
    n_before = len(problems)
    for key, v in (("builtin", builtin), ("data", data), ("schema", schema), ("generator", generator)):
        if v is not None and (not isinstance(v, str) or not v):
            problems.append(f"cohort.{key}: must be a non-empty string, got {v!r}")
    if len(problems) > n_before:
        return None
    if (builtin is None) == (data is None):
        problems.append("cohort: give either builtin = NAME or data = FILE with schema = FILE (not both)")
        return None
    if builtin is not None:
        from cohorts.builtin import available_builtins
        names = [b.name for b in available_builtins()]
        if builtin not in names:
            problems.append(f"cohort.builtin: unknown cohort {builtin!r}{_suggest(builtin, names)}; "
                            f"allowed: {', '.join(names)}")
        if schema is not None:
            problems.append("cohort.schema: applies only with cohort.data; a built-in cohort has its own schema")
    paths = {}
    if data is not None:
        if schema is None:
            problems.append("cohort.schema: required with cohort.data (a TOML file of column roles)")
        for key, v in (("data", data), ("schema", schema)):
            if v is None:
                continue
            p = Path(v).expanduser()
            if not p.is_absolute() and base_dir is not None:
                p = base_dir / p
            if not p.is_file():
                problems.append(f"cohort.{key}: file not found: {p} (relative paths resolve against the "
                                "scenario file's folder)")
            paths[key] = p
    from cohorts.generators import available_generators
    if generator not in available_generators():
        problems.append(f"cohort.generator: unknown generator {generator!r}{_suggest(generator, available_generators())};"
                        f" allowed: {', '.join(available_generators())}")
    params = c.get("params", {})
    if not isinstance(params, dict) or any(isinstance(v, (dict, list)) for v in params.values()):
        problems.append("cohort.params: must be an inline table of numbers, strings or booleans, "
                        f"e.g. params = {{ epochs = 300 }}; got {params!r}")
        params = {}
    elif generator in available_generators():
        import inspect
        from cohorts.generators import REGISTRY
        allowed = [p for p in inspect.signature(REGISTRY[generator].__init__).parameters if p != "self"]
        for key in params:
            if key not in allowed:
                problems.append(f"cohort.params.{key}: not a hyperparameter of {generator!r}{_suggest(key, allowed)}; "
                                f"allowed: {', '.join(allowed) or 'none'}")
    return CohortRef(builtin=builtin, data=paths.get("data"), schema=paths.get("schema"), generator=generator,
                     params=tuple(sorted(params.items())))


_EFFECT_KEYS = tuple(EFFECT_OUTCOME) + EFFECT_MODIFIERS


def _parse_effect(e, path: str, problems: list[str]) -> Effect | None:
    if not isinstance(e, dict) or not e:
        problems.append(f"{path}: must be an inline table with an effect kind, e.g. {{ slope_reduction = 0.25 }}; "
                        f"allowed keys: {', '.join(EFFECT_OUTCOME)} (one of them) and the modifiers "
                        f"{', '.join(EFFECT_MODIFIERS)}")
        return None
    kinds = [k for k in e if k in EFFECT_OUTCOME]
    unknown = [k for k in e if k not in _EFFECT_KEYS]
    for key in unknown:
        problems.append(f"{path}.{key}: unknown key{_suggest(key, _EFFECT_KEYS)}; allowed: one effect kind of "
                        f"{', '.join(EFFECT_OUTCOME)}, and the modifiers {', '.join(EFFECT_MODIFIERS)}")
    if len(kinds) > 1:
        problems.append(f"{path}: give one effect kind, got {' and '.join(kinds)}")
    elif not kinds and not unknown:
        problems.append(f"{path}: needs an effect kind, one of {', '.join(EFFECT_OUTCOME)} (e.g. "
                        f"{{ hazard_ratio = 0.7, delay = 3 }}); got only {', '.join(e)}")
    if len(kinds) != 1 or unknown:
        return None
    kind = kinds[0]
    found: list[str] = []
    effect = _build(found, Effect, kind, e[kind], **{k: v for k, v in e.items() if k in EFFECT_MODIFIERS})
    # a modifier's problem gets the arm's key path (the kind's value keeps its historical "effect.<kind>" path)
    problems.extend(f"{path}.{p[len('effect.'):]}" if p.split(":", 1)[0].split(".")[-1] in EFFECT_MODIFIERS else p
                    for p in found)
    return effect


def _cohort_context(cohort: CohortRef) -> tuple[tuple[str, ...], str | None, Any] | None:
    """``(baseline columns, outcome time unit, data frame or None)`` of the cohort when it can be read cheaply
    (a built-in cohort, or a data file's schema file); ``None`` otherwise (loading reports its own problems)."""
    from cohorts.errors import WorkbenchError
    from cohorts.schema import CohortSchema
    try:
        if cohort.builtin is not None:
            from cohorts.builtin import load_builtin
            c = load_builtin(cohort.builtin)
            return c.schema.baseline, c.schema.outcome.unit, c.data
        if cohort.schema is not None and Path(cohort.schema).is_file():
            schema = CohortSchema.from_toml(cohort.schema)
            return schema.baseline, schema.outcome.unit, None
    except (WorkbenchError, OSError, ValueError):
        return None
    return None


def _effects_against_cohort(arms: tuple[Arm, ...], cohort: CohortRef | None,
                            problems: list[str]) -> tuple[Arm, ...]:
    """Check each subgroup against the cohort's baseline columns (and, for a built-in cohort, its column types and
    text values), and give time-varying effects the cohort's time unit for their description."""
    if cohort is None or not any(a.effect is not None and (a.effect.subgroup or a.effect.is_time_varying)
                                 for a in arms):
        return arms
    ctx = _cohort_context(cohort)
    if ctx is None:
        return arms
    baseline, unit, frame = ctx
    out = []
    for i, arm in enumerate(arms):
        eff = arm.effect
        if eff is not None and eff.subgroup is not None:
            crit = eff.criteria()
            try:
                if frame is not None and set(baseline) <= set(frame.columns):
                    crit.check(frame[list(baseline)])
                    problems.extend(f"arms[{i}].effect.subgroup: {h} (the subgroup would select nobody)"
                                    for h in crit.value_hints(frame[list(baseline)]))
                else:
                    crit.check(baseline)
            except InvalidScenarioError as exc:
                problems.extend(f"arms[{i}].effect.subgroup: {p}" for p in exc.problems)
        if eff is not None and eff.is_time_varying and unit:
            arm = replace(arm, effect=replace(eff, time_unit=unit))
        out.append(arm)
    return tuple(out)


def _parse_arms(arms, problems: list[str]) -> tuple[Arm, ...] | None:
    if not isinstance(arms, list) or not arms:
        problems.append("[[arms]]: missing; give two [[arms]] tables, the control first")
        return None
    out = []
    for i, a in enumerate(arms):
        path = f"arms[{i}]"
        if not isinstance(a, dict):
            problems.append(f"{path}: must be a table")
            continue
        _unknown(a, "arms", path, problems)
        name, alloc = a.get("name"), a.get("allocation", 1)
        if not isinstance(name, str) or not name:
            problems.append(f"{path}.name: required, a non-empty string")
            continue
        if not _number(alloc) or alloc <= 0:
            problems.append(f"{path}.allocation: must be a positive number (relative share), got {alloc!r}")
            continue
        effect = _parse_effect(a["effect"], f"{path}.effect", problems) if "effect" in a else None
        arm = _build(problems, Arm, name=name, allocation=float(alloc), effect=effect,
                     dropout_per_month=a.get("dropout_per_month"))
        if arm is not None:
            out.append(arm)
    return tuple(out) if len(out) == len(arms) else None


_CONDUCT = {"accrual": Accrual, "randomization": Randomization, "eligibility": Eligibility, "looks": Looks,
            "hybrid": HybridControl}
_TUPLES = {"rates", "starts", "strata", "information_fractions"}


def _parse_conduct(d: dict, problems: list[str]) -> dict | None:
    """The optional conduct tables (and ``multiplicity``) as :class:`TrialDesign` keyword arguments; ``None``
    when one of them is invalid (its problems are collected)."""
    out, ok = {}, True
    for key, cls in _CONDUCT.items():
        t = _table(d, key, problems, required=False)
        if not t:
            continue
        n_before = len(problems)
        _unknown(t, key, key, problems)
        kwargs = {k: (tuple(v) if k in _TUPLES and isinstance(v, list) else v) for k, v in t.items()
                  if k in _KEYS[key]}
        if key == "eligibility" and isinstance(kwargs.get("enrich"), dict):
            kwargs["enrich"] = tuple(kwargs["enrich"].items())
        obj = _build(problems, cls, **kwargs)
        if obj is None or len(problems) > n_before:
            ok = False
        out[key] = obj
    m = d.get("multiplicity")
    if m is not None:
        if m not in MULTIPLICITY:
            problems.append(f"multiplicity: must be one of {', '.join(MULTIPLICITY)}, got {m!r}")
            ok = False
        out["multiplicity"] = m
    return out if ok else None


def parse_scenario(d: dict[str, Any], *, base_dir: Path | None = None, source: Path | None = None,
                   text: str | None = None) -> Scenario:
    """Build a :class:`Scenario` from a parsed TOML dict; every problem is reported at once."""
    problems: list[str] = []
    if not isinstance(d, dict):
        raise InvalidScenarioError("a scenario must be a TOML table", source=str(source) if source else None)
    _unknown(d, "", "", problems)
    title = d.get("title", "Untitled scenario")
    if not isinstance(title, str):
        problems.append(f"title: must be a string, got {title!r}")
    seed = d.get("seed")
    if not _is_int(seed) or seed < 0:
        problems.append(f"seed: required, a non-negative integer (e.g. seed = 20261122), got {seed!r}")

    cohort = _parse_cohort(_table(d, "cohort", problems), base_dir, problems)

    ep = _table(d, "endpoint", problems)
    _unknown(ep, "endpoint", "endpoint", problems)
    endpoint = None
    visits, followup = ep.get("visits_months"), ep.get("followup")
    if visits is not None and (not isinstance(visits, list) or not all(_number(v) for v in visits)):
        problems.append(f"endpoint.visits_months: must be a list of numbers (months), got {visits!r}")
    elif followup is not None and not _number(followup):
        problems.append(f"endpoint.followup: must be a number (in the cohort's time unit), got {followup!r}")
    elif ep:
        analysis = ep.get("analysis")
        if not isinstance(analysis, str):
            problems.append("endpoint.analysis: required, one of slope, ancova, logrank, cox, ttest, proportions")
        else:
            endpoint = _build(problems, Endpoint, analysis,
                              tuple(visits) if visits is not None else None, followup,
                              **{k: ep[k] for k in ("events", "visit_window_months", "assessment_months") if k in ep})

    arms = _parse_arms(d.get("arms"), problems)
    if arms is not None:
        arms = _effects_against_cohort(arms, cohort, problems)
    dr = _table(d, "dropout", problems, required=False)
    _unknown(dr, "dropout", "dropout", problems)
    dropout = _build(problems, Dropout, dr.get("per_month", 0.0), dr.get("hazard_ratio_per_unit_change", 1.0))
    conduct = _parse_conduct(d, problems)

    pw = _table(d, "power", problems)
    _unknown(pw, "power", "power", problems)
    power = None
    if pw:
        n_total = pw.get("n_total")
        if _is_int(n_total):
            n_total = [n_total]
        if not isinstance(n_total, list):
            problems.append(f"power.n_total: required, a list of total sample sizes, e.g. [60, 120], got {n_total!r}")
        else:
            power = _build(problems, PowerSettings, tuple(n_total), pw.get("replicates", 1000),
                           pw.get("alpha", 0.05))

    design = None
    if endpoint is not None and arms is not None and dropout is not None:
        if conduct is not None:
            design = _build(problems, TrialDesign, arms, endpoint, dropout, **conduct)
    if design is not None and design.looks is not None and power is not None:
        _build(problems, design.looks.gs_design, power.alpha)     # e.g. a futility beta out of range
    if problems:
        raise InvalidScenarioError(problems, source=str(source) if source else None)
    return Scenario(title=title, seed=seed, cohort=cohort, design=design, power=power, source=source, text=text)


def parse_scenario_text(text: str, *, base_dir: Path | None = None, source: Path | None = None) -> Scenario:
    """Parse scenario TOML text (the UI's upload, or a file's contents)."""
    try:
        d = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidScenarioError(f"not valid TOML: {exc}", source=str(source) if source else None) from None
    return parse_scenario(d, base_dir=base_dir, source=source, text=text)


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario file; relative paths inside resolve against its folder."""
    path = Path(path)
    return parse_scenario_text(read_text_file(path, "scenario"), base_dir=path.resolve().parent, source=path)


def read_text_file(path: Path, what: str) -> str:
    """The UTF-8 text of ``path``; a missing or unreadable file raises :class:`InvalidScenarioError` naming it
    as the ``what`` file."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidScenarioError(f"{what} file not found: {path}") from None
    except (UnicodeDecodeError, IsADirectoryError) as exc:
        raise InvalidScenarioError(f"cannot read {path} as UTF-8 text: {exc}") from None


def scenario_to_toml(s: Scenario) -> str:
    """TOML text that :func:`parse_scenario_text` reads back to an equal scenario."""
    c = s.cohort
    lines = [f"title = {_lit(s.title)}", f"seed = {s.seed}", "", "[cohort]"]
    if c.builtin:
        lines.append(f"builtin = {_lit(c.builtin)}")
    else:
        lines += [f"data = {_lit(str(c.data))}", f"schema = {_lit(str(c.schema))}"]
    lines.append(f"generator = {_lit(c.generator)}")
    if c.params:
        lines.append("params = { " + ", ".join(f"{k} = {_lit(v)}" for k, v in c.params) + " }")
    d = s.design
    ep = d.endpoint
    lines += ["", "[endpoint]", f"analysis = {_lit(ep.analysis)}"]
    if ep.visits_months is not None:
        lines.append(f"visits_months = {_lit(list(ep.visits_months))}")
    if ep.followup is not None:
        lines.append(f"followup = {_lit(float(ep.followup))}")
    if ep.events is not None:
        lines.append(f"events = {ep.events}")
    for key in ("visit_window_months", "assessment_months"):
        if getattr(ep, key):
            lines.append(f"{key} = {_lit(getattr(ep, key))}")
    for arm in d.arms:
        lines += ["", "[[arms]]", f"name = {_lit(arm.name)}", f"allocation = {_lit(float(arm.allocation))}"]
        if arm.effect is not None:
            parts = [(arm.effect.kind, arm.effect.value), *arm.effect.modifiers.items()]
            lines.append("effect = { " + ", ".join(f"{k} = {_lit(v)}" for k, v in parts) + " }")
        if arm.dropout_per_month is not None:
            lines.append(f"dropout_per_month = {_lit(float(arm.dropout_per_month))}")
    lines += ["", "[dropout]", f"per_month = {_lit(float(d.dropout.per_month))}"]
    if d.dropout.informative:
        lines.append(f"hazard_ratio_per_unit_change = {_lit(float(d.dropout.hazard_ratio_per_unit_change))}")
    if d.n_treatments > 1:
        lines.insert(2, f"multiplicity = {_lit(d.multiplicity)}")
    defaults = {"accrual": {"process": "uniform", "rates": (), "starts": ()},
                "randomization": {"method": "fixed", "strata": ()}, "eligibility": {"enrich": ()},
                "looks": {"spending": "obf", "sided": 2}, "hybrid": {}}
    for key in _CONDUCT:
        obj = getattr(d, key)
        if obj is None or (key == "randomization" and obj == Randomization()):
            continue
        lines += ["", f"[{key}]"]
        for name in _KEYS[key]:
            v = getattr(obj, name)
            if v is None or defaults[key].get(name, object()) == v:
                continue
            if key == "eligibility" and name == "enrich":
                lines.append("enrich = { " + ", ".join(f"{_lit(e)} = {_lit(w)}" for e, w in v) + " }")
            else:
                lines.append(f"{name} = {_lit(list(v) if isinstance(v, tuple) else v)}")
    lines += ["", "[power]", f"n_total = {_lit(list(s.power.n_total))}",
              f"replicates = {s.power.replicates}", f"alpha = {_lit(float(s.power.alpha))}"]
    return "\n".join(lines) + "\n"
