"""``insilico train | sample | evaluate``: generators from the command line (used by :mod:`cli`)."""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

import numpy as np

from cohorts.errors import InvalidDataError, InvalidScenarioError

__all__ = ["add_generator_commands", "add_import_command", "progress_printer", "parse_params"]


def parse_params(pairs: list[str] | None) -> dict:
    """``["epochs=50", "dp_epsilon=3.0", "smoothing='density'"]`` -> dict, each value read as a TOML literal."""
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip().isidentifier():
            raise InvalidScenarioError(f"--param {pair!r}: write NAME=VALUE, e.g. --param epochs=50")
        try:
            out[key.strip()] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = value  # a bare word is a string
    return out


def _cohort(data: str, schema: str):
    from cohorts.io import load_cohort
    from cohorts.schema import CohortSchema
    return load_cohort(data, CohortSchema.from_toml(schema), name=Path(data).name)


def _split(cohort, holdout: float, seed: int):
    from analysis.workflow import evaluation_stream
    from cohorts.evaluate import split_train_holdout
    if holdout <= 0:
        return cohort.data, None
    return split_train_holdout(cohort.data, cohort.schema, holdout_fraction=holdout, rng=evaluation_stream(seed))


def _cmd_train(args) -> int:
    from analysis.workflow import evaluation_stream, fit_generator
    from cohorts.cohort import frame_sha256
    from cohorts.generators.persist import save_generator

    if not 0 <= args.holdout < 1:
        raise InvalidScenarioError(f"--holdout must be in [0, 1), got {args.holdout}")
    cohort = _cohort(args.data, args.schema)
    train, holdout = _split(cohort, args.holdout, args.seed)
    progress = None if args.quiet else progress_printer(sys.stderr)
    gen = fit_generator(cohort, args.generator, seed=args.seed, data=train, progress=progress,
                        **parse_params(args.param))
    metrics, holdout_ids = {}, None
    if holdout is not None:
        from cohorts.evaluate import evaluate_generator
        report = evaluate_generator(gen, train, holdout, cohort.schema, rng=evaluation_stream(args.seed))
        metrics = report.to_dict()
        holdout_ids = sorted(holdout[cohort.schema.id].drop_duplicates().tolist(), key=str)
    out = save_generator(gen, args.out, training_data_sha256=frame_sha256(train), seed=args.seed, metrics=metrics,
                         holdout_ids=holdout_ids, extra={"data_file_sha256": cohort.sha256,
                                                         "data_file": str(args.data)})
    summary = {"out": str(out), "generator": gen.name, "n_train_patients": gen.n_train_,
               "training_seconds": round(gen.training_seconds_, 3)}
    print(json.dumps(summary) if args.json else f"saved {gen.name} generator to {out} "
          f"({gen.n_train_} training patients, {gen.training_seconds_:.1f} s)")
    return 0


def _cmd_sample(args) -> int:
    from cohorts.generators.persist import load_generator
    gen = load_generator(args.model, allow_version_mismatch=args.allow_version_mismatch)
    conditions = None
    if args.criteria:
        from cohorts.conditional import SamplingConditions
        conditions = SamplingConditions(criteria=args.criteria)
    if args.n < 1:
        raise InvalidScenarioError(f"--n must be a positive number of patients, got {args.n}")
    frame = gen.sample(args.n, rng=np.random.default_rng(args.seed), conditions=conditions)
    frame.to_csv(args.out, index=False, lineterminator="\n")
    if not args.quiet:
        rate = frame.attrs.get("acceptance_rate")
        extra = f", acceptance rate {rate:.3f}" if rate is not None else ""
        print(f"wrote {args.n} synthetic patients ({len(frame)} rows) to {args.out}{extra}", file=sys.stderr)
    return 0


def _cmd_evaluate(args) -> int:
    from analysis.workflow import evaluation_stream
    from cohorts.evaluate import evaluate_generator
    from cohorts.generators.persist import load_generator, read_model_card
    from cohorts.io import load_cohort
    from cohorts.schema import CohortSchema

    card = read_model_card(args.model)
    gen = load_generator(args.model, allow_version_mismatch=args.allow_version_mismatch)
    schema = CohortSchema.from_toml(args.schema) if args.schema else CohortSchema.from_dict(card["schema"])
    data = load_cohort(args.data, schema, name=Path(args.data).name).data
    ids = card.get("holdout_ids")
    if ids:
        key = data[schema.id].astype(str)
        is_holdout = key.isin({str(i) for i in ids})
        if not is_holdout.any():
            raise InvalidDataError(f"none of the {len(ids)} holdout patients recorded in the model card is in "
                                   f"{args.data}: evaluate on the file the generator was trained from")
        train, holdout = data[~is_holdout], data[is_holdout]
    else:
        train, holdout = data, data
        print("warning: the generator was trained without a holdout (--holdout 0); privacy metrics compare the "
              "synthetic data with its own training data", file=sys.stderr)
    seed = args.seed if args.seed is not None else (card.get("seed") or 0)
    report = evaluate_generator(gen, train, holdout, schema, rng=evaluation_stream(seed))
    if args.json:
        print(json.dumps({"generator": card["generator"], "model": str(args.model), **report.to_dict()}))
    else:
        print(report.summary().to_string(index=False))
    return 0


def progress_printer(stream):
    """A ``progress(fraction, message)`` callback drawing a bar on ``stream`` (stderr), every 5 %."""
    state = {"last": -1}

    def progress(fraction: float, message: str) -> None:
        pct = int(fraction * 100)
        if pct // 5 != state["last"] // 5 or fraction >= 1.0:
            state["last"] = pct
            stream.write(f"\r[{'#' * (pct // 5):<20}] {pct:3d}%  {message:<40}")
            if fraction >= 1.0:
                stream.write("\n")
            stream.flush()
    return progress


def add_generator_commands(sub) -> None:
    from cohorts.generators import available_generators

    tr = sub.add_parser("train", help="train a generator on a data file and save it with its model card")
    tr.add_argument("data", help="CSV, Parquet or SAS XPT file of historical patients")
    tr.add_argument("--schema", required=True, help="schema TOML file (column roles)")
    tr.add_argument("--generator", default="default", help=f"family: {', '.join(available_generators())}")
    tr.add_argument("--out", required=True, help="directory to write (model.pkl, model_card.json)")
    tr.add_argument("--seed", type=int, required=True)
    tr.add_argument("--holdout", type=float, default=0.3,
                    help="share of patients held out for evaluation (default 0.3; 0 trains on all)")
    tr.add_argument("--param", action="append", metavar="NAME=VALUE", help="a hyperparameter (repeatable)")
    tr.add_argument("--json", action="store_true")
    tr.add_argument("--quiet", action="store_true")
    tr.set_defaults(func=_cmd_train)

    sa = sub.add_parser("sample", help="draw synthetic patients from a saved generator")
    sa.add_argument("model", help="directory written by `insilico train`")
    sa.add_argument("--n", type=int, required=True, help="number of patients")
    sa.add_argument("--seed", type=int, required=True)
    sa.add_argument("--out", required=True, help="CSV file to write")
    sa.add_argument("--criteria", help="eligibility expression, e.g. \"age >= 18 and sex == 'Female'\"")
    sa.add_argument("--allow-version-mismatch", action="store_true")
    sa.add_argument("--quiet", action="store_true")
    sa.set_defaults(func=_cmd_sample)

    ev = sub.add_parser("evaluate", help="fidelity, utility and privacy of a saved generator")
    ev.add_argument("model", help="directory written by `insilico train`")
    ev.add_argument("--data", required=True, help="the data file the generator was trained from")
    ev.add_argument("--schema", help="schema TOML (default: the one in the model card)")
    ev.add_argument("--seed", type=int, help="seed of the synthetic sample (default: the training seed)")
    ev.add_argument("--json", action="store_true")
    ev.add_argument("--allow-version-mismatch", action="store_true")
    ev.set_defaults(func=_cmd_evaluate)


def _cmd_import(args) -> int:
    """Write an imported ADaM or PRO-ACT cohort as CSV plus its schema TOML (then `insilico train` reads them)."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.format == "proact":
        from cohorts.proact import load_proact
        if not args.source:
            raise InvalidScenarioError("import proact needs SOURCE: a PRO-ACT folder or .zip")
        cohort = load_proact(args.source, placebo_only=not args.all_arms, outcome=args.outcome,
                             max_months=args.max_months)
    else:
        from cohorts.adam import load_adam
        if not args.adsl or bool(args.adtte) == bool(args.bds):
            raise InvalidScenarioError("import adam needs --adsl and exactly one of --adtte or --bds")
        cohort = load_adam(args.adsl, adtte=args.adtte, bds=args.bds, paramcd=args.paramcd, arm=args.arm)
    cohort.data.to_csv(out / "cohort.csv", index=False, lineterminator="\n")
    (out / "schema.toml").write_text(cohort.schema.to_toml(), encoding="utf-8")
    report = getattr(cohort, "import_report", None)
    print(f"wrote {cohort.n_patients} patients ({len(cohort.data)} rows) to {out / 'cohort.csv'} and "
          f"{out / 'schema.toml'}; source SHA-256 {cohort.sha256}", file=sys.stderr)
    if report is not None:
        for note in getattr(report, "notes", []):
            print(f"  {note}", file=sys.stderr)
    return 0


def add_import_command(sub) -> None:
    im = sub.add_parser("import", help="convert a PRO-ACT extract or CDISC ADaM files to CSV + schema TOML")
    im.add_argument("format", choices=["proact", "adam"])
    im.add_argument("source", nargs="?", help="proact: folder or .zip of PROACT_<TABLE>.csv files")
    im.add_argument("--out", required=True, help="directory for cohort.csv and schema.toml")
    im.add_argument("--outcome", default="alsfrs_r", choices=["alsfrs_r", "survival"], help="proact outcome")
    im.add_argument("--all-arms", action="store_true", help="proact: keep active-arm subjects too")
    im.add_argument("--max-months", type=float, default=12.0, help="proact: follow-up kept (months)")
    im.add_argument("--adsl", help="adam: ADSL (.xpt, .csv or .parquet)")
    im.add_argument("--adtte", help="adam: ADTTE for a time-to-event cohort")
    im.add_argument("--bds", help="adam: a long BDS dataset (ADQS, ADLB ...) for a longitudinal cohort")
    im.add_argument("--paramcd", help="adam: the PARAMCD to keep")
    im.add_argument("--arm", help="adam: keep subjects of this arm (e.g. Placebo)")
    im.set_defaults(func=_cmd_import)
