"""Save and load fitted generators: a directory with the model and a ``model_card.json``.

::

    my_generator/
        model.pkl          the fitted generator (pickle; torch weights travel inside as tensors)
        model_card.json    what a review board checks: family, hyperparameters, seed, training-data SHA-256,
                           schema, package versions, evaluation metrics, privacy budget, training time

Loading checks, before anything is unpickled, that the card parses, that its ``card_sha256`` matches its own
content, that ``model.pkl`` has the SHA-256 the card records, and that the packages the pickle depends on
(numpy, pandas, scikit-learn, scipy, statsmodels, torch) have the same major.minor version as when it was saved.
Any failure raises :class:`~cohorts.errors.InvalidDataError` saying what differs. The hashes detect accidental
or naive edits; they are not a signature: load only generators from people you trust (unpickling runs code).
"""

from __future__ import annotations

import json
import pickle
from datetime import datetime, timezone
from pathlib import Path

from cohorts.errors import InvalidDataError
from cohorts.provenance import json_safe, package_versions, platform_info, read_format_json, sha256_bytes

__all__ = ["save_generator", "load_generator", "read_model_card", "CARD_FORMAT", "PINNED_PACKAGES"]

CARD_FORMAT = 1
MODEL_FILE, CARD_FILE = "model.pkl", "model_card.json"
#: packages whose objects live inside the pickle: a different major.minor version is refused
PINNED_PACKAGES = ("numpy", "pandas", "scipy", "scikit-learn", "statsmodels", "torch")


def _card_digest(card: dict) -> str:
    body = {k: v for k, v in card.items() if k != "card_sha256"}
    return sha256_bytes(json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8"))


def save_generator(generator, directory: str | Path, *, training_data_sha256: str, seed: int | None,
                   metrics: dict | None = None, holdout_ids: list | None = None, extra: dict | None = None) -> Path:
    """Write ``generator`` (fitted) and its model card to ``directory`` (created; existing files replaced)."""
    if not getattr(generator, "is_fitted", False):
        raise InvalidDataError("only a fitted generator can be saved: call fit(...) first")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    blob = pickle.dumps(generator, protocol=pickle.HIGHEST_PROTOCOL)
    card = {
        "format": CARD_FORMAT,
        "generator": generator.name,
        "class": f"{type(generator).__module__}.{type(generator).__qualname__}",
        "description": generator.description,
        "hyperparameters": json_safe(generator.get_params()),
        "seed": seed,
        "training_data_sha256": training_data_sha256,
        "n_train_patients": int(generator.n_train_),
        "schema": generator.schema_.to_dict(),
        "training_seconds": round(float(getattr(generator, "training_seconds_", float("nan"))), 3),
        "fit_notes": list(getattr(generator, "fit_notes_", [])),
        "privacy": json_safe(getattr(generator, "privacy_", None)),
        "metrics": json_safe(metrics or {}),
        "holdout_ids": json_safe(holdout_ids) if holdout_ids is not None else None,
        "package_versions": package_versions(),
        "platform": platform_info(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model_file": MODEL_FILE,
        "model_sha256": sha256_bytes(blob),
        **(json_safe(extra) if extra else {}),
    }
    card["card_sha256"] = _card_digest(card)
    (out / MODEL_FILE).write_bytes(blob)
    (out / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return out


def read_model_card(directory: str | Path) -> dict:
    """The model card of a saved generator, checked for integrity (raises InvalidDataError)."""
    path = Path(directory) / CARD_FILE
    card = read_format_json(path, CARD_FORMAT, what="model card",
                            missing=f"no {CARD_FILE} in {directory}: is this a directory written by `insilico train` "
                                    "or save_generator?")
    if card.get("card_sha256") != _card_digest(card):
        raise InvalidDataError(f"{path} was modified after it was written (its card_sha256 does not match its "
                               "content); re-train and save the generator instead of editing the card")
    return card


def _major_minor(version: str) -> tuple[str, ...]:
    return tuple(version.split("+")[0].split(".")[:2])


def load_generator(directory: str | Path, *, allow_version_mismatch: bool = False):
    """The generator saved in ``directory``, after the integrity and version checks of the module docstring."""
    directory = Path(directory)
    card = read_model_card(directory)
    model_path = directory / card.get("model_file", MODEL_FILE)
    if not model_path.is_file():
        raise InvalidDataError(f"the model file {model_path} named by the card is missing")
    blob = model_path.read_bytes()
    if sha256_bytes(blob) != card.get("model_sha256"):
        raise InvalidDataError(f"{model_path} does not match the SHA-256 recorded in its model card: the file was "
                               "changed or replaced; refusing to load it")
    if not allow_version_mismatch:
        now, then = package_versions(PINNED_PACKAGES), card.get("package_versions", {})
        diff = [f"{p} {then.get(p)} (saved) vs {now[p]} (installed)" for p in PINNED_PACKAGES
                if then.get(p) != "not installed" and _major_minor(str(then.get(p))) != _major_minor(now[p])]
        if diff:
            raise InvalidDataError("the generator was saved with other package versions: " + "; ".join(diff)
                                   + ". Install those versions, re-train, or pass allow_version_mismatch=True "
                                   "(--allow-version-mismatch) if you accept the risk")
    generator = pickle.loads(blob)
    generator.model_card_ = card
    return generator
