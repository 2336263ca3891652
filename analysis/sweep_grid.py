"""Parameter grids for a sweep (TOML), validated against the scenario they vary.

::

    # sweep_grid.toml: every key is optional and a list; an omitted key keeps the scenario's value
    [grid]
    effect = [0.15, 0.25, 0.35]          # the treatment arm's effect, same kind as the scenario's
    n_total = [120, 240]                 # total sample sizes (omitted: the scenario's power.n_total)
    dropout_per_month = [0.01, 0.03]     # loss to follow-up per month
    analysis = ["slope", "ancova"]       # analyses valid for the scenario's outcome type

The grid is the Cartesian product of the four axes in the fixed order ``effect, n_total, dropout_per_month,
analysis``, each axis sorted ascending (analyses by name), the last axis varying fastest. A cell's index in this
canonical order names it, and (with the seed) fixes its random stream (:func:`analysis.sweep.cell_stream`), so
listing the same values in another order gives the same cells and the same numbers.

Every problem is reported at once by key path (``grid.effect[2]: ...``) in one
:class:`~cohorts.errors.InvalidScenarioError`: unknown keys (with a suggestion), wrong types, values the design
would refuse, duplicates, empty lists, an analysis that does not fit the outcome, and grids of more than
:data:`MAX_CELLS` cells.
"""

from __future__ import annotations

import itertools
import math
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

from cohorts.errors import InvalidScenarioError
from trials.design import ANALYSIS_OUTCOME, Effect, TrialDesign
from trials.scenario import Scenario, read_text_file

__all__ = ["SweepGrid", "SweepCell", "parse_grid", "parse_grid_text", "load_grid", "GRID_AXES", "MAX_CELLS"]

#: the grid's axes in canonical order (the last varies fastest)
GRID_AXES = ("effect", "n_total", "dropout_per_month", "analysis")
#: the largest grid accepted (each cell simulates 2 x replicates trials)
MAX_CELLS = 10_000


@dataclass(frozen=True)
class SweepCell:
    """One point of the grid; ``index`` is its position in canonical order."""

    index: int
    effect: float
    n_total: int
    dropout_per_month: float
    analysis: str

    def design(self, base: TrialDesign) -> TrialDesign:
        """``base`` with this cell's effect (of the first treatment arm; other arms keep theirs), dropout per month
        (arms with their own ``dropout_per_month`` keep it) and analysis; everything else (visits, follow-up, event
        target, conduct, modifiers) is kept."""
        arm = replace(base.treatment, effect=replace(base.effect, value=self.effect))
        return replace(base, arms=(base.control, arm, *base.arms[2:]),
                       endpoint=replace(base.endpoint, analysis=self.analysis),
                       dropout=replace(base.dropout, per_month=self.dropout_per_month))

    def label(self) -> str:
        return (f"effect {self.effect:g}, N {self.n_total}, dropout {self.dropout_per_month:g}/month, "
                f"{self.analysis}")


@dataclass(frozen=True)
class SweepGrid:
    """The four axes, each a sorted tuple of distinct values; ``effect_kind`` is the scenario's effect kind."""

    effect_kind: str
    effect: tuple[float, ...]
    n_total: tuple[int, ...]
    dropout_per_month: tuple[float, ...]
    analysis: tuple[str, ...]

    @property
    def n_cells(self) -> int:
        return math.prod(len(getattr(self, axis)) for axis in GRID_AXES)

    def cells(self) -> list[SweepCell]:
        """Every cell in canonical order."""
        product = itertools.product(*(getattr(self, axis) for axis in GRID_AXES))
        return [SweepCell(i, *values) for i, values in enumerate(product)]

    def to_json_dict(self) -> dict:
        return {"effect_kind": self.effect_kind, **{axis: list(getattr(self, axis)) for axis in GRID_AXES}}

    def to_toml(self) -> str:
        """The grid file that parses back to this grid (against a scenario with the same effect kind)."""
        import json
        lines = [f"# effect: {self.effect_kind}", "[grid]"]
        lines += [f"{axis} = {json.dumps(list(getattr(self, axis)))}"
                  for axis in GRID_AXES]
        return "\n".join(lines) + "\n"


def _suggest(key: str, allowed) -> str:
    import difflib
    m = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.5)
    return f" (did you mean {m[0]!r}?)" if m else ""


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_effect(v, kind: str) -> str | None:
    if not _is_number(v):
        return f"must be a number (a {kind}, the scenario's effect kind), got {v!r}"
    try:
        Effect(kind, v)
    except InvalidScenarioError as exc:
        return f"{kind} {exc.problems[0].split(': ', 1)[-1]}"
    return None


def _check_n(v, kind: str) -> str | None:
    if isinstance(v, bool) or not isinstance(v, int):
        return f"must be an integer total sample size, got {v!r}"
    return None if v >= 4 else f"must be at least 4, got {v}"


def _check_dropout(v, outcome: str) -> str | None:
    if not _is_number(v) or not 0 <= v < 1:
        return f"must be a number in [0, 1) (share of patients lost per month), got {v!r}"
    if v > 0 and outcome in ("continuous", "binary"):
        return (f"must be 0: the scenario's {outcome} outcome is a single measurement without follow-up time, "
                "so dropout does not apply; omit dropout_per_month")
    return None


def _check_analysis(v, outcome: str) -> str | None:
    fits = [a for a, o in ANALYSIS_OUTCOME.items() if o == outcome]
    if not isinstance(v, str):
        return f"must be an analysis name (a string), got {v!r}; allowed for {outcome} outcomes: {', '.join(fits)}"
    if v not in ANALYSIS_OUTCOME:
        return f"unknown analysis {v!r}{_suggest(v, fits)}; allowed for {outcome} outcomes: {', '.join(fits)}"
    if ANALYSIS_OUTCOME[v] != outcome:
        return (f"{v!r} analyses {ANALYSIS_OUTCOME[v]} outcomes, but the scenario's endpoint is {outcome}; "
                f"allowed: {', '.join(fits)}")
    return None


def _axis(table: dict, key: str, default: tuple, check, context, problems: list[str]) -> tuple:
    path = f"grid.{key}"
    if key not in table:
        return default
    values = table[key]
    if not isinstance(values, list):
        problems.append(f"{path}: must be a list, e.g. {key} = [{_example(key)}]; got {values!r}")
        return ()
    if not values:
        problems.append(f"{path}: an empty list; give at least one value, or omit the key to keep the scenario's "
                        f"value ({', '.join(map(str, default))})")
        return ()
    n_before = len(problems)
    for i, v in enumerate(values):
        msg = check(v, context)
        if msg:
            problems.append(f"{path}[{i}]: {msg}")
    if len(problems) > n_before:
        return ()
    seen = set()
    for v in values:
        if v in seen:
            problems.append(f"{path}: {v!r} is listed twice; give each value once")
            return ()
        seen.add(v)
    if key in ("effect", "dropout_per_month"):
        values = [float(v) for v in values]
    return tuple(sorted(values))


def _example(key: str) -> str:
    return {"effect": "0.15, 0.25", "n_total": "120, 240", "dropout_per_month": "0.01, 0.03",
            "analysis": '"slope", "ancova"'}[key]


def parse_grid(d: dict, scenario: Scenario, *, source: str | Path | None = None) -> SweepGrid:
    """A :class:`SweepGrid` from a parsed TOML dict; axes omitted keep the scenario's values."""
    src = str(source) if source is not None else None
    problems: list[str] = []
    for key in d:
        if key != "grid":
            problems.append(f"{key}: unknown key{_suggest(key, ['grid'])}; a grid file has one [grid] table")
    table = d.get("grid")
    if table is None:
        problems.append("[grid]: missing table; e.g. [grid] with n_total = [120, 240]")
        table = {}
    elif not isinstance(table, dict):
        problems.append(f"grid: must be a table ([grid]), got {type(table).__name__}")
        table = {}
    for key in table:
        if key not in GRID_AXES:
            problems.append(f"grid.{key}: unknown key{_suggest(key, GRID_AXES)}; allowed: {', '.join(GRID_AXES)}")
    design = scenario.design
    outcome = design.endpoint.outcome_type
    kind = design.effect.kind
    effect = _axis(table, "effect", (design.effect.value,), _check_effect, kind, problems)
    n_total = _axis(table, "n_total", tuple(sorted(set(scenario.power.n_total))), _check_n, None, problems)
    dropout = _axis(table, "dropout_per_month", (float(design.dropout.per_month),), _check_dropout, outcome,
                    problems)
    analysis = _axis(table, "analysis", (design.endpoint.analysis,), _check_analysis, outcome, problems)
    if not problems:
        grid = SweepGrid(kind, effect, n_total, dropout, analysis)
        if grid.n_cells > MAX_CELLS:
            sizes = " x ".join(f"{len(getattr(grid, a))} {a}" for a in GRID_AXES)
            problems.append(f"grid: {grid.n_cells:,} cells ({sizes}) is more than {MAX_CELLS:,}; shorten the lists "
                            "or split the sweep into several grid files")
        else:
            return grid
    raise InvalidScenarioError(problems, source=src)


def parse_grid_text(text: str, scenario: Scenario, *, source: str | Path | None = None) -> SweepGrid:
    """Parse grid TOML text."""
    try:
        d = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidScenarioError(f"not valid TOML: {exc}", source=str(source) if source else None) from None
    return parse_grid(d, scenario, source=source)


def load_grid(path: str | Path, scenario: Scenario) -> SweepGrid:
    """Read a grid file and validate it against ``scenario``."""
    path = Path(path)
    return parse_grid_text(read_text_file(path, "grid"), scenario, source=path)
