"""What the Report page offers for download, built without streamlit (testable): the HTML and PDF reports of
run directories, a zip of the raw data and a zip of the whole run directory."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

__all__ = ["build_html", "build_pdf", "pdf_problem", "raw_zip", "run_zip", "run_label", "RAW_PARTS"]

#: what the raw-data zip holds (relative to the run directory)
RAW_PARTS = ("manifest.json", "raw", "results")


def run_label(run) -> str:
    m = run.manifest
    kind = {"power": "power", "sample_size": "sample size", "sweep": "sweep"}[run.kind]
    return f"{m.get('started', '')[:19].replace('T', ' ')} UTC · {kind} · {m.get('title', '')}"


def build_html(run_dirs, *, title: str | None = None, author: str | None = None) -> str:
    from analysis.report import render_html
    from analysis.run_reader import report_inputs
    return render_html(report_inputs(list(run_dirs), title=title or None, author=author))


def build_pdf(run_dirs, *, title: str | None = None, author: str | None = None, paper: str = "a4") -> bytes:
    from analysis.report_pdf import render_pdf
    from analysis.run_reader import report_inputs
    return render_pdf(report_inputs(list(run_dirs), title=title or None, author=author), paper=paper)


def pdf_problem() -> str | None:
    from analysis.report_pdf import pdf_renderer_problem
    return pdf_renderer_problem()


def _zip(root: Path, parts) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for part in parts:
            p = root / part
            files = [p] if p.is_file() else sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else []
            for f in files:
                z.write(f, f"{root.name}/{f.relative_to(root).as_posix()}")
    return buf.getvalue()


def raw_zip(run) -> bytes:
    """The manifest, the per-replicate raw tables and the result tables of a run directory."""
    return _zip(Path(run.path), RAW_PARTS)


def run_zip(run) -> bytes:
    """The whole run directory (unzip, then `insilico reproduce DIR`)."""
    root = Path(run.path)
    return _zip(root, sorted(p.name for p in root.iterdir()))
