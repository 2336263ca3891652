"""Generator page logic that draws nothing: hyperparameter forms, evaluation and comparison jobs, and the
save / load round trip through a zip file.

Seeds follow the CLI exactly (``cli_generators.py``): the train/holdout split and the evaluation sample use
:func:`analysis.workflow.evaluation_stream`, a generator is fitted with :func:`analysis.workflow.fit_generator`
(the seed's training stream), so ``insilico train --holdout 0.3 --seed S`` gives the app's evaluation numbers.

Session keys written here (besides the ones listed in :mod:`app_pages._state`):

* ``eval_job`` / ``evaluation``: the evaluation :class:`Job` and the last finished :class:`EvaluationRun`;
* ``compare_job`` / ``comparison``: the comparison job and the last finished :class:`ComparisonRun`;
* ``generator_card`` (model card of a loaded generator) and ``loaded_upload`` (SHA-256 of the zip it came from).
"""

from __future__ import annotations

import inspect
import io
import json
import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pandas as pd

from analysis.workflow import HOLDOUT_FRACTION
from cohorts.errors import InvalidDataError

__all__ = ["hyperparameters", "hyperparameter_defaults", "parse_optional", "widget_value", "changed_params",
           "evaluation_key", "EvaluationRun", "ComparisonRun", "run_evaluation", "run_comparison", "generator_zip",
           "extract_generator_zip", "load_generator_zip", "schema_difference", "start_evaluation",
           "start_comparison", "adopt_generator_jobs", "generator_download", "load_upload", "MAX_ZIP_BYTES",
           "ZIP_MEMBERS"]

#: largest total uncompressed size of an uploaded generator zip
MAX_ZIP_BYTES = 500 * 1024 ** 2
#: the only files a generator zip may hold (what save_generator writes)
ZIP_MEMBERS = ("model.pkl", "model_card.json")


# ------------------------------------------------------------------------------------ hyperparameters
_SCALARS = {"bool": bool, "int": int, "float": float, "str": str}
_OPTIONAL = re.compile(r"^(?:(bool|int|float|str)\s*\|\s*None|None\s*\|\s*(bool|int|float|str)|"
                       r"Optional\[(bool|int|float|str)\])$")


def hyperparameters(name: str) -> dict[str, tuple[type, object]]:
    """``{parameter: (type, default)}`` for the keyword parameters of a family's ``__init__`` that a small form
    can edit: a number, boolean or string default, or a ``None`` default annotated ``int | None`` (``float``,
    ``str``: optional, None means the family's automatic choice). Others (tuples, dicts) keep their defaults."""
    from cohorts.generators import REGISTRY
    cls = REGISTRY.get(name)
    if cls is None:
        return {}
    out = {}
    for p in inspect.signature(cls.__init__).parameters.values():
        if p.name == "self" or p.kind not in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD):
            continue
        if isinstance(p.default, (bool, int, float, str)):
            out[p.name] = (type(p.default), p.default)
        elif p.default is None and p.annotation is not p.empty:
            ann = p.annotation if isinstance(p.annotation, str) else getattr(p.annotation, "__name__", "")
            m = _OPTIONAL.match(str(ann).replace("typing.", "").strip())
            if m:
                out[p.name] = (_SCALARS[next(g for g in m.groups() if g)], None)
    return out


def hyperparameter_defaults(name: str) -> dict:
    """``{parameter: default}`` of :func:`hyperparameters`."""
    return {k: default for k, (_, default) in hyperparameters(name).items()}


def parse_optional(text: str, kind: type):
    """The value of an optional hyperparameter's text box: None when blank; raises ValueError when unreadable."""
    text = (text or "").strip()
    if not text or text.lower() == "none":
        return None
    if kind is bool:
        if text.lower() not in ("true", "false"):
            raise ValueError("write true or false")
        return text.lower() == "true"
    return kind(text)


def widget_value(value, kind: type, default):
    """What a hyperparameter's widget holds for ``value`` (text for an optional one; the default's type
    otherwise, since a widget keeps one type), or the default's when ``value`` does not fit."""
    if default is None:
        return "" if value is None else str(value)
    if kind in (bool, str):
        return value if type(value) is kind else default
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) if kind is float else (int(value) if float(value).is_integer() else default)
    return default


def changed_params(name: str, values: dict) -> dict:
    """The entries of ``values`` that differ from the family's defaults (what is passed to ``fit_generator``)."""
    defaults = hyperparameter_defaults(name)
    return {k: v for k, v in values.items() if k in defaults and v != defaults[k]}


def evaluation_key(cohort, name: str, seed: int, params: dict) -> tuple:
    return (cohort.sha256, name, int(seed), tuple(sorted(params.items())))


# ------------------------------------------------------------------------------------------- jobs
def _split(cohort, seed: int):
    from analysis.workflow import evaluation_stream
    from cohorts.evaluate import split_train_holdout
    return split_train_holdout(cohort.data, cohort.schema, holdout_fraction=HOLDOUT_FRACTION,
                               rng=evaluation_stream(seed))


@dataclass(frozen=True, eq=False)
class EvaluationRun:
    key: tuple
    report: object
    figures: dict = field(default_factory=dict)
    n_train: int = 0
    n_holdout: int = 0


def run_evaluation(cohort, name: str, seed: int, params: dict, progress) -> EvaluationRun:
    """Fit ``name`` on 70 % of the patients (the seed's training stream) and evaluate it on the other 30 %."""
    from analysis.evaluation_plots import fidelity_figures
    from analysis.workflow import evaluate_family

    done = evaluate_family(cohort, name, seed=seed, params=params, holdout_fraction=HOLDOUT_FRACTION,
                           progress=progress)
    progress(0.95, "drawing the figures")
    return EvaluationRun(evaluation_key(cohort, name, seed, params), done.report, fidelity_figures(done.report),
                         done.n_train, done.n_holdout)


@dataclass(frozen=True, eq=False)
class ComparisonRun:
    key: tuple
    table: pd.DataFrame
    n_train: int = 0
    n_holdout: int = 0


def run_comparison(cohort, families: list[str], seed: int, progress) -> ComparisonRun:
    """Every family fitted on the same 70 % and scored on the same 30 % (the evaluation's split); the
    families' random streams are children of a fresh ``evaluation_stream(seed)``."""
    from analysis.workflow import evaluation_stream
    from cohorts.compare import compare_families

    progress(0.0, "splitting patients 70 / 30")
    train, holdout = _split(cohort, seed)
    table, _, _ = compare_families(train, holdout, cohort.schema, list(families), rng=evaluation_stream(seed),
                                   progress=progress)
    ids = cohort.schema.id
    return ComparisonRun((cohort.sha256, tuple(families), int(seed)), table, int(train[ids].nunique()),
                         int(holdout[ids].nunique()))


# -------------------------------------------------------------------------------------- save / load
def generator_zip(generator, *, training_data_sha256: str, seed: int | None, metrics: dict | None = None,
                  extra: dict | None = None) -> bytes:
    """The directory :func:`~cohorts.generators.persist.save_generator` writes, as zip bytes."""
    from cohorts.generators.persist import save_generator
    buf = io.BytesIO()
    with tempfile.TemporaryDirectory() as tmp:
        out = save_generator(generator, Path(tmp) / "generator", training_data_sha256=training_data_sha256,
                             seed=seed, metrics=metrics, extra=extra)
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name in ZIP_MEMBERS:
                zf.write(out / name, arcname=name)
    return buf.getvalue()


def _member_name(raw: str) -> str | None:
    """The file name a zip member stands for (``model.pkl`` ...), None for a directory entry; raises for a
    path that could leave the extraction directory or a file that is not part of a saved generator."""
    name = raw.replace("\\", "/")
    path = PurePosixPath(name)
    if name.startswith("/") or (len(name) > 1 and name[1] == ":") or ".." in path.parts:
        raise InvalidDataError(f"the zip member {raw!r} has an absolute path or '..': refusing to extract it")
    if name.endswith("/"):
        return None
    if len(path.parts) > 2 or path.name not in ZIP_MEMBERS:
        raise InvalidDataError(f"the zip holds {raw!r}; a generator zip holds only {' and '.join(ZIP_MEMBERS)} "
                               "(at its top level or in one folder)")
    return path.name


def extract_generator_zip(data: bytes, directory: str | Path, *, max_bytes: int = MAX_ZIP_BYTES) -> Path:
    """Check every member of a generator zip, then write ``model.pkl`` and ``model_card.json`` into
    ``directory`` (never anywhere else). Raises InvalidDataError for anything unexpected."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise InvalidDataError("the upload is not a zip file: upload the .zip given by 'Download generator'") \
            from None
    with zf:
        infos, seen = [], set()
        for info in zf.infolist():
            name = _member_name(info.filename)
            if name is None:
                continue
            if name in seen:
                raise InvalidDataError(f"the zip holds {name} twice")
            seen.add(name)
            infos.append((name, info))
        missing = [n for n in ZIP_MEMBERS if n not in seen]
        if missing:
            raise InvalidDataError(f"the zip lacks {', '.join(missing)}: upload the .zip given by "
                                   "'Download generator' (or a zip of a directory written by `insilico train`)")
        if sum(info.file_size for _, info in infos) > max_bytes:
            raise InvalidDataError(f"the zip unpacks to more than {max_bytes / 1024 ** 2:.0f} MB; refusing it")
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        written = 0
        for name, info in infos:
            try:
                with zf.open(info) as src, open(out / name, "wb") as dst:
                    while chunk := src.read(1 << 20):
                        written += len(chunk)
                        if written > max_bytes:   # sizes in the zip header can lie
                            raise InvalidDataError(f"the zip unpacks to more than {max_bytes / 1024 ** 2:.0f} MB; "
                                                   "refusing it")
                        dst.write(chunk)
            except (zipfile.BadZipFile, RuntimeError, NotImplementedError, EOFError, OSError) as exc:
                raise InvalidDataError(f"cannot read {name} from the zip ({exc})") from None
    return out


def schema_difference(card_schema: dict, schema) -> list[str]:
    """How a model card's schema differs from ``schema`` (empty when they are the same)."""
    now = json.loads(json.dumps(schema.to_dict()))
    if card_schema == now:
        return []
    out = []
    for key in sorted(set(card_schema) | set(now)):
        if card_schema.get(key) != now.get(key):
            out.append(f"{key}: generator {card_schema.get(key)!r}, cohort {now.get(key)!r}")
    return out


def load_generator_zip(data: bytes, *, schema=None) -> tuple[object, dict]:
    """``(generator, model card)`` from the bytes of a generator zip: safe extraction, the card's integrity
    check, a schema check against ``schema`` (before anything is unpickled), then
    :func:`~cohorts.generators.persist.load_generator` (model hash and package versions)."""
    from cohorts.generators.persist import load_generator, read_model_card
    with tempfile.TemporaryDirectory() as tmp:
        directory = extract_generator_zip(data, tmp)
        card = read_model_card(directory)
        if schema is not None:
            diff = schema_difference(card.get("schema") or {}, schema)
            if diff:
                raise InvalidDataError("this generator was trained on data with other column roles than the "
                                       "current cohort, so it cannot stand in for it: " + "; ".join(diff)
                                       + ". Choose the matching cohort on the Data page, or train a generator here.")
        try:
            generator = load_generator(directory)
        except (ImportError, AttributeError) as exc:   # the pickle names a class this installation lacks
            raise InvalidDataError(f"the generator needs code this installation does not have ({exc}); "
                                   "install the workbench version that saved it") from None
    return generator, card


# ------------------------------------------------------------------------------ session (streamlit)
def start_evaluation(cohort, name: str, seed: int, params: dict) -> None:
    from app_pages._state import start_job
    start_job("eval_job", lambda progress: run_evaluation(cohort, name, seed, params, progress),
              label="Evaluating", key=evaluation_key(cohort, name, seed, params), kind="evaluate",
              title=f"evaluate {name} on {cohort.name} (seed {seed})")


def start_comparison(cohort, families: list[str], seed: int) -> None:
    from app_pages._state import start_job
    start_job("compare_job", lambda progress: run_comparison(cohort, list(families), seed, progress),
              label="Comparing", key=(cohort.sha256, tuple(families), int(seed)), kind="compare",
              title=f"compare {', '.join(families)} on {cohort.name} (seed {seed})")


def adopt_generator_jobs() -> bool:
    """Move finished evaluation / comparison results to ``evaluation`` / ``comparison``."""
    import streamlit as st
    ss, changed = st.session_state, False
    for job_key, result_key in (("eval_job", "evaluation"), ("compare_job", "comparison")):
        job = ss.get(job_key)
        if job is not None and not job.running and not job.adopted:
            job.adopted = True
            if job.result is not None:
                ss[result_key], changed = job.result, True
    return changed


def generator_download(cohort, generator) -> tuple[bytes, dict]:
    """``(zip bytes, model card)`` of the session's generator, cached per generator and evaluation.

    A trained generator records the cohort's SHA-256, its seed and the metrics of the last evaluation of the
    same family, seed and hyperparameters (if any); a loaded one keeps what its own card recorded.
    """
    import streamlit as st
    ss = st.session_state
    meta, params, card = ss["generator_meta"], ss.get("generator_params", {}), ss.get("generator_card")
    run = ss.get("evaluation")
    if card is not None:
        run, sha, seed, metrics = None, card.get("training_data_sha256"), card.get("seed"), card.get("metrics")
        extra = {k: card[k] for k in ("holdout_ids", "data_file", "data_file_sha256", "metrics_source")
                 if card.get(k) is not None}
    else:
        sha, seed, metrics, extra = cohort.sha256, meta[2], None, {"cohort": cohort.name}
        if run is not None and run.key == evaluation_key(cohort, meta[1], meta[2], params):
            metrics = run.report.to_dict()
            extra["metrics_source"] = (f"the same family, seed and hyperparameters trained on {run.n_train} "
                                       f"patients and evaluated on {run.n_holdout} held-out patients")
        else:
            run = None
    cached = ss.get("generator_zip")
    if cached is None or cached[0] is not generator or cached[1] is not run or cached[2] != sha:
        data = generator_zip(generator, training_data_sha256=sha, seed=seed, metrics=metrics, extra=extra)
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            saved_card = json.loads(zf.read("model_card.json"))
        ss["generator_zip"] = cached = (generator, run, sha, data, saved_card)
    return cached[3], cached[4]


def load_upload(cohort, uploader_key: str) -> None:
    """``on_change`` callback of the generator upload: load it into the session, or keep the error under
    ``load_error`` (runs before the page's widgets, so it may set their values)."""
    import streamlit as st

    from app_pages._state import form
    from cohorts.errors import WorkbenchError
    ss = st.session_state
    ss.pop("load_error", None)
    up = ss.get(uploader_key)
    if up is None:
        return
    try:
        generator, card = load_generator_zip(up.getvalue(), schema=cohort.schema)
    except WorkbenchError as exc:
        ss["load_error"] = exc
        return
    name = generator.name
    seed = card.get("seed") if isinstance(card.get("seed"), int) else int(ss.get("seed", 0))
    values = {k: v for k, v in generator.get_params().items()}
    ss["generator"], ss["generator_meta"] = generator, (cohort.sha256, name, int(seed))
    ss["generator_params"] = changed_params(name, values)
    ss["generator_card"] = dict(card, uploaded_file=up.name)
    # the page's widgets now show the loaded generator's family, seed and hyperparameters
    store = form()
    settings = {"generator_name": name, "seed": int(seed)}
    for k, (kind, default) in hyperparameters(name).items():
        settings[f"hp_{name}_{k}"] = widget_value(values.get(k, default), kind, default)
    for k, v in settings.items():
        store[k] = v
        ss[f"w_generator_{k}"] = v
    ss["seed"] = int(seed)
