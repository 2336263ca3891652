"""The review-board report of a simulation study as one self-contained HTML document.

:func:`render_html` renders ``templates/report.html.j2`` (jinja2, autoescaped) for a
:class:`~analysis.report_inputs.ReportInputs` into ONE HTML string that works offline: plotly.js is inlined once
in the head and each figure is an interactive ``<div>``; no external resource of any kind (no CDN, no web font).
The PDF (:func:`analysis.report_pdf.render_pdf`) renders the same template with ``static = True``: SVG figures,
paged-media CSS, no JavaScript. Sections (:data:`analysis.report_text.SECTIONS`) follow what a review board
expects of a simulation report (FDA adaptive-design guidance 2019, ACE item 24b): executive summary, data
provenance, generator and its validation, design, operating characteristics under the effect and the null,
sensitivity grid, one example trial, limitations, reproducibility (seed, replicates, versions, hashes, scenario).

:func:`build_html_report` is the older keyword entry point (CLI, app): it builds a ``ReportInputs`` and calls
:func:`render_html`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import jinja2
import numpy as np
from markupsafe import Markup

from analysis.report_context import build_context
from analysis.report_inputs import ReportInputs
from analysis.report_text import ANALYSIS_DESCRIPTIONS
from cohorts.provenance import RUN_PACKAGES
from cohorts.provenance import package_versions as _package_versions

__all__ = ["render_html", "render_document", "build_html_report", "package_versions", "FigureMarkup",
           "figure_placeholder", "REPORT_PACKAGES", "ANALYSIS_DESCRIPTIONS"]

#: distributions whose versions the report lists (the scientific stack, the cluster and the report renderers)
REPORT_PACKAGES = RUN_PACKAGES

_TEMPLATES = Path(__file__).parent / "templates"


def package_versions() -> dict[str, str]:
    """Versions of python and the scientific stack; ``"not installed"`` for a missing distribution."""
    return _package_versions(REPORT_PACKAGES)


def _finite(x) -> bool:
    return x is not None and np.isfinite(float(x))


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
                             autoescape=jinja2.select_autoescape(["html", "j2", "html.j2"], default=True),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = lambda x, d=1: f"{100 * float(x):.{d}f} %" if _finite(x) else "n/a"
    env.filters["num"] = lambda x, d=3: f"{float(x):.{d}f}" if _finite(x) else "n/a"
    return env


def figure_placeholder(i: int) -> str:
    """The marker of the ``i``-th static figure in the rendered HTML."""
    return f"<!--insilico-figure-{i}-->"


class FigureMarkup:
    """Plotly figures -> report markup: an interactive ``<div>`` (``static=False``), or a placeholder
    (:func:`figure_placeholder`) with the figure kept in :attr:`pending` for a static (SVG) rendering."""

    def __init__(self, static: bool = False):
        self.static, self.pending = static, []

    def __call__(self, fig, *, height: int = 480) -> Markup | None:
        if fig is None:
            return None
        if not self.static:
            return Markup(fig.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False},
                                      default_height=f"{height}px"))
        self.pending.append(fig)
        return Markup(figure_placeholder(len(self.pending) - 1))


def _plotlyjs() -> str:
    from plotly.offline import get_plotlyjs
    # a literal "</script>" inside the bundle would end the tag early; escape it the way browsers accept
    return get_plotlyjs().replace("</script>", "<\\/script>")


def render_document(inputs: ReportInputs, *, static: bool = False, page_size: str = "A4") -> tuple[str, FigureMarkup]:
    """The report's HTML and its :class:`~analysis.report_context.FigureMarkup`.

    ``static=False``: interactive figures, plotly.js inlined. ``static=True``: each figure is a placeholder left
    in ``FigureMarkup.pending`` for the caller to replace by its SVG, and the paged-media CSS for ``page_size``
    (a CSS ``@page`` size, e.g. ``"A4"`` or ``"letter"``) is included.
    """
    figure = FigureMarkup(static=static)
    ctx = build_context(inputs, figure, versions=package_versions())
    ctx.update(static=static, page_size=page_size, plotlyjs=None if static else Markup(_plotlyjs()))
    return _env().get_template("report.html.j2").render(**ctx), figure


def render_html(inputs: ReportInputs) -> str:
    """One self-contained, offline HTML document: the review-board report of ``inputs``."""
    return render_document(inputs)[0]


def build_html_report(*, title: str, cohort, generator, scenario_or_design, result, figures: dict | None = None,
                      created: datetime | None = None) -> str:
    """:func:`render_html` of the :class:`ReportInputs` of these arguments.

    ``scenario_or_design``: a :class:`~trials.scenario.Scenario` (its TOML is then reproduced verbatim) or a
    bare :class:`~trials.design.TrialDesign`. ``figures``: name -> plotly figure (see ``ReportInputs.figures``);
    the power curve and the real-vs-synthetic figures missing from it are built (synthetic sample drawn with
    ``result.seed``).
    """
    scenario = scenario_or_design if (hasattr(scenario_or_design, "design")
                                      and hasattr(scenario_or_design, "cohort")) else None
    design = scenario.design if scenario is not None else scenario_or_design
    inputs = ReportInputs(title=title, cohort=cohort, generator=generator, design=design, result=result,
                          scenario=scenario, scenario_toml=getattr(scenario, "text", None) or None,
                          figures=dict(figures or {}), created=created)
    return render_html(inputs)
