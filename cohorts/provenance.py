"""Provenance facts recorded in model cards, run manifests and reports: package versions, platform, hashes."""

from __future__ import annotations

import hashlib
import json
import math
import platform
from importlib import metadata
from pathlib import Path

__all__ = ["PACKAGES", "RUN_PACKAGES", "package_versions", "platform_info", "sha256_file", "sha256_bytes", "json_safe",
           "read_format_json"]

#: distributions whose versions are recorded (the scientific stack the numbers depend on)
PACKAGES = ("numpy", "pandas", "scipy", "statsmodels", "scikit-learn", "torch", "opacus", "plotly", "streamlit",
            "jinja2", "insilico-workbench")
#: what run manifests, sweep summaries and reports record: the stack plus the cluster and report renderers
RUN_PACKAGES = (*PACKAGES, "dask", "distributed", "kaleido", "weasyprint")


def package_versions(packages=PACKAGES) -> dict[str, str]:
    """Versions of python and ``packages``; ``"not installed"`` for a missing distribution."""
    out = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def platform_info() -> dict[str, str]:
    return {"platform": platform.platform(), "machine": platform.machine(),
            "python_implementation": platform.python_implementation()}


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def json_safe(value):
    """Plain JSON values: numpy scalars and arrays to Python, NaN and infinities to None, tuples to lists,
    anything else to its ``str``."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # numpy arrays and scalars
        return json_safe(value.tolist())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    return str(value)


def read_format_json(path: Path, fmt, *, what: str, missing: str, fix: str = "") -> dict:
    """The JSON object in ``path`` whose ``"format"`` is ``fmt`` (a model card, a run manifest). Raises
    :class:`~cohorts.errors.InvalidDataError` with ``missing`` when there is no such file, with ``fix`` after the
    parser's message when it is not JSON, and naming ``what`` when the format is another."""
    from cohorts.errors import InvalidDataError
    path = Path(path)
    if not path.is_file():
        raise InvalidDataError(missing)
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidDataError(f"{path} is not valid JSON ({exc}){fix}") from None
    if not isinstance(d, dict) or d.get("format") != fmt:
        got = d.get("format") if isinstance(d, dict) else None
        raise InvalidDataError(f"{path}: unsupported {what} format {got!r}; this version reads format {fmt}")
    return d
