"""``insilico scenario``: check a scenario file and describe its design, or print the file format (used by :mod:`cli`).

::

    insilico scenario FILE            # validate; print the design (arms, endpoint, conduct, look boundaries)
    insilico scenario FILE --toml     # validate; print the normalized TOML (defaults left out, keys in order)
    insilico scenario --schema        # the JSON Schema (draft 2020-12) of scenario files

Validation is what ``insilico power`` does before simulating, without fitting or simulating anything: the file is
parsed (:func:`trials.scenario.load_scenario`, every problem at once), then checked against its cohort's schema
(the analysis suits the outcome; subgroup, eligibility, enrichment and stratification expressions name baseline
columns, and for a built-in cohort compare them with values of the right type). Problems raise
:class:`~cohorts.errors.InvalidScenarioError`; ``cli.main`` prints them and exits with status 2.
"""

from __future__ import annotations

import json
import math

from cohorts.errors import InvalidScenarioError

__all__ = ["add_scenario_command", "check_scenario", "describe_scenario"]


def _cohort_of(ref):
    """``(schema, frame or None)``: a built-in cohort's schema and data, or a data file's schema file alone."""
    if ref.builtin is not None:
        from cohorts.builtin import load_builtin
        c = load_builtin(ref.builtin)
        return c.schema, c.data
    from cohorts.schema import CohortSchema
    return CohortSchema.from_toml(ref.schema), None


def check_scenario(path):
    """The :class:`~trials.scenario.Scenario` of ``path`` and its cohort's schema, after every check that needs
    no simulation (see the module docstring); raises :class:`InvalidScenarioError` listing every problem."""
    from trials.scenario import load_scenario
    from trials.simulate import check_design_fits_cohort

    scenario = load_scenario(path)
    schema, frame = _cohort_of(scenario.cohort)
    try:
        check_design_fits_cohort(scenario.design, schema, frame)
    except InvalidScenarioError as exc:
        raise InvalidScenarioError(exc.problems, source=str(path)) from None
    return scenario, schema


def _endpoint_text(design, unit: str | None) -> str:
    """The endpoint (its event target and visit windows are among the conduct lines)."""
    ep = design.endpoint
    kind = {"tte": "time to event"}.get(ep.outcome_type, ep.outcome_type)
    text = f"{ep.analysis} ({kind})"
    if ep.visits_months is not None:
        text += f"; visits at months {', '.join(f'{v:g}' for v in ep.visits_months)}"
    if ep.followup is not None:
        text += f"; follow-up up to {ep.followup:g} {unit or '(cohort time unit)'} from entry"
    if ep.assessment_months:
        text += f"; assessed {ep.assessment_months:g} months after randomization"
    return text


def _looks_lines(scenario) -> list[str]:
    """The boundaries of the group-sequential looks at the scenario's alpha, and what each look waits for."""
    from analysis.gs_boundaries import boundaries
    d, power = scenario.design, scenario.power
    bounds = boundaries(d.looks.gs_design(power.alpha))
    table = bounds.summary().dropna(axis=1, how="all")
    lines = [f"  boundaries (Z scale; {bounds.method}):"]
    lines += ["    " + row for row in table.to_string(index=False, float_format=lambda x: f"{x:.4f}").splitlines()]
    fr = d.looks.information_fractions
    if d.endpoint.events is not None:
        lines.append(f"  events at each look: {', '.join(str(math.ceil(f * d.endpoint.events - 1e-9)) for f in fr)}")
    elif d.endpoint.outcome_type == "tte":
        lines.append("  each look at that share of the events observed by the end of follow-up")
    else:
        for n in power.n_total:
            counts = ", ".join(str(n if f == 1 else max(2, math.ceil(f * n - 1e-9))) for f in fr)
            lines.append(f"  N = {n}: patients with the endpoint assessed at each look: {counts}")
    if bounds.inflation_factor is not None:
        lines.append(f"  maximum information {bounds.inflation_factor:.3f} x that of a fixed design with the same "
                     f"alpha and power {1 - d.looks.beta:g}")
    return lines


def describe_scenario(scenario, schema=None) -> str:
    """A human summary of a parsed scenario: cohort, endpoint, arms with their effects, dropout, power settings and
    the trial's conduct (accrual, randomization, eligibility, looks with their boundaries, hybrid control)."""
    d, p, c = scenario.design, scenario.power, scenario.cohort
    unit = schema.outcome.unit if schema is not None else None
    ratio = ":".join(f"{a.allocation:g}" for a in d.arms)
    width = max(len(a.name) for a in d.arms)
    title = ""
    if c.builtin is not None:
        from cohorts.builtin import available_builtins
        title = next((f" ({b.title})" for b in available_builtins() if b.name == c.builtin), "")
    lines = [scenario.title,
             f"Cohort: {c.describe()}{title}; generator {c.generator!r}"
             + (f" ({', '.join(f'{k}={v!r}' for k, v in c.params)})" if c.params else ""),
             f"Endpoint: {_endpoint_text(d, unit)}",
             f"Arms: {len(d.arms)} (allocation {ratio}), the first the control"]
    for i, a in enumerate(d.arms):
        effect = "control" if i == 0 else ("no effect" if a.effect is None else a.effect.describe(unit))
        lines.append(f"  {a.name:<{width}}  {a.allocation:g}  {effect}")
    dropout = f"{d.dropout.per_month:.1%} per month"
    lines.append(f"Dropout: {dropout}" if d.dropout.per_month else "Dropout: none (unless per arm)")
    for label, text in d.conduct_summary():
        lines.append(f"{label}: {text}")
        if label == "Interim looks":
            lines += _looks_lines(scenario)
    lines.append(f"Power: N = {', '.join(map(str, p.n_total))}; {p.replicates} replicates per N (and as many with "
                 f"no effect); two-sided alpha {p.alpha:g}; seed {scenario.seed}")
    return "\n".join(lines)


def _cmd_scenario(args) -> int:
    if args.schema:
        if args.scenario or args.toml:
            raise InvalidScenarioError("insilico scenario --schema prints the JSON schema alone; drop FILE and --toml")
        from trials.scenario_schema import scenario_json_schema
        print(json.dumps(scenario_json_schema(), indent=2))
        return 0
    if not args.scenario:
        raise InvalidScenarioError("insilico scenario: give a scenario FILE to check (or --schema for the format)")
    scenario, schema = check_scenario(args.scenario)
    if args.toml:
        from trials.scenario import scenario_to_toml
        print(scenario_to_toml(scenario), end="")
        return 0
    print(f"{args.scenario}: valid scenario")
    print(describe_scenario(scenario, schema))
    return 0


def add_scenario_command(sub) -> None:
    """Add ``insilico scenario`` to the ``insilico`` sub-command parsers."""
    sc = sub.add_parser("scenario", help="check a scenario file and describe its design (or print its JSON schema)")
    sc.add_argument("scenario", nargs="?", metavar="FILE", help="scenario TOML file to check")
    sc.add_argument("--schema", action="store_true", help="print the JSON schema of scenario files and exit")
    sc.add_argument("--toml", action="store_true", help="print the normalized TOML of FILE instead of the summary")
    sc.set_defaults(func=_cmd_scenario)
