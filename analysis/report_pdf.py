"""The review-board report as a PDF: the HTML report's template rendered with static figures and paged media.

:func:`render_pdf` renders ``templates/report.html.j2`` with ``static = True`` (no JavaScript): every figure
becomes an SVG made by kaleido (plotly's static export, which drives a headless Chromium; one browser session
per report, :func:`figures_to_svg`), and weasyprint lays the HTML out on A4 or US Letter pages with "page X of
Y" footers, a table of contents with page numbers, the title page alone on its page and tables kept whole row
by row (``templates/report_print.css``).

Two renderers live outside Python: weasyprint needs Pango, kaleido needs a Chromium-based browser. When one is
missing, :class:`ReportRendererMissing` says which and how to install it; :func:`pdf_renderer_problem` tells
the same without rendering anything (the app greys out its PDF button with it).
"""

from __future__ import annotations

import asyncio
import base64
import threading
from pathlib import Path

from analysis.report import figure_placeholder, render_document
from analysis.report_inputs import ReportInputs
from cohorts.errors import WorkbenchError

__all__ = ["render_pdf", "build_pdf_report", "figures_to_svg", "pdf_renderer_problem", "ReportRendererMissing",
           "PAPER_SIZES", "INSTALL_CHROMIUM", "INSTALL_WEASYPRINT", "INSTALL_PANGO", "INSTALL_KALEIDO"]

#: paper name -> CSS ``@page`` size
PAPER_SIZES = {"a4": "A4", "letter": "letter"}
INSTALL_CHROMIUM = "sudo apt-get install chromium"
INSTALL_WEASYPRINT = "pip install weasyprint"
INSTALL_PANGO = "sudo apt-get install libpango-1.0-0 libpangoft2-1.0-0"
INSTALL_KALEIDO = "pip install kaleido"
#: the default size of a figure without its own layout width / height, in CSS pixels
FIGURE_WIDTH, FIGURE_HEIGHT = 900, 480


class ReportRendererMissing(WorkbenchError):
    """A program the PDF report needs (weasyprint with Pango, or kaleido with Chromium) is not installed; the
    message names it and the command that installs it."""


def _weasyprint_problem() -> str | None:
    try:
        import weasyprint  # noqa: F401
    except ImportError:
        return f"PDF needs the weasyprint package to lay out pages: {INSTALL_WEASYPRINT}"
    except OSError as exc:  # weasyprint is installed but cannot load the Pango library
        return f"PDF needs Pango for weasyprint ({exc}): {INSTALL_PANGO}"
    return None


def _browser_problem() -> str | None:
    try:
        import kaleido  # noqa: F401
    except ImportError:
        return f"PDF needs kaleido to draw static figures: {INSTALL_KALEIDO}"
    try:  # the browser kaleido would start: choreographer's search (BROWSER_PATH, PATH, kaleido's download)
        from choreographer.browsers.chromium import Chromium
        path = Chromium.find_browser(skip_local=False)
    except (ImportError, AttributeError, TypeError):  # another choreographer: kaleido itself will tell
        return None
    if not path or not Path(path).is_file():
        where = f" (no browser at {path})" if path else ""
        return f"PDF needs Debian's chromium for static figures{where}: {INSTALL_CHROMIUM}"
    return None


def pdf_renderer_problem() -> str | None:
    """What the PDF report lacks (weasyprint / Pango, kaleido / Chromium) with the install command, or ``None``
    when both renderers are available; renders nothing."""
    return _weasyprint_problem() or _browser_problem()


def _browser_error(exc: BaseException) -> ReportRendererMissing | None:
    """The :class:`ReportRendererMissing` for a browser that kaleido could not find or start, else None."""
    from choreographer.errors import BrowserDepsError, BrowserFailedError, ChromeNotFoundError
    if isinstance(exc, ChromeNotFoundError):
        return ReportRendererMissing(f"PDF needs Debian's chromium for static figures (kaleido found no browser): "
                                     f"{INSTALL_CHROMIUM}")
    if isinstance(exc, (BrowserDepsError, BrowserFailedError)):
        return ReportRendererMissing(f"PDF needs a working Chromium for static figures; it failed to start "
                                     f"({type(exc).__name__}: {exc}). Reinstall it: {INSTALL_CHROMIUM}")
    return None


def figures_to_svg(figures: list) -> list[str]:
    """Each plotly figure as SVG text, from ONE kaleido browser session (its size: the figure's layout width
    and height, else FIGURE_WIDTH x FIGURE_HEIGHT). Raises :class:`ReportRendererMissing` without a browser."""
    if not figures:
        return []
    problem = _browser_problem()
    if problem:
        raise ReportRendererMissing(problem)
    import kaleido

    async def run() -> list[bytes]:
        out = []
        async with kaleido.Kaleido(n=1, mathjax=False) as k:  # mathjax=False: no CDN request
            for fig in figures:
                opts = {"format": "svg", "width": fig.layout.width or FIGURE_WIDTH,
                        "height": fig.layout.height or FIGURE_HEIGHT}
                out.append(await k.calc_fig(fig, opts=opts))
        return out

    box: dict = {}

    def target() -> None:  # own thread and event loop: the caller may already run one (Streamlit, Jupyter)
        try:
            box["svgs"] = asyncio.run(run())
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread below
            box["error"] = exc

    worker = threading.Thread(target=target, name="report-static-figures", daemon=True)
    worker.start()
    worker.join()
    if "error" in box:
        mapped = _browser_error(box["error"])
        if mapped is not None:
            raise mapped from box["error"]
        raise box["error"]
    return [s.decode("utf-8") if isinstance(s, bytes) else str(s) for s in box["svgs"]]


def _img(svg: str) -> str:
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return f'<img class="static-figure" alt="figure" src="data:image/svg+xml;base64,{data}">'


def _local_fetcher():
    """weasyprint's URL fetcher limited to inline ``data:`` URLs: the PDF never reaches the network or disk."""
    from weasyprint import urls
    if hasattr(urls, "URLFetcher"):  # weasyprint >= 68
        return urls.URLFetcher(allowed_protocols=("data",))

    def fetch(url, *args, **kwargs):  # older weasyprint: a fetcher function
        if not url.startswith("data:"):
            raise ValueError(f"the report refers to an external resource ({url}); it must be self-contained")
        return urls.default_url_fetcher(url, *args, **kwargs)
    return fetch


def render_pdf(inputs: ReportInputs, *, paper: str = "a4") -> bytes:
    """The review-board report of ``inputs`` as PDF bytes, on ``paper`` ``"a4"`` or ``"letter"``.

    Raises :class:`ReportRendererMissing` (with the install command) when weasyprint / Pango or kaleido /
    Chromium is missing, before anything is computed.
    """
    key = str(paper).lower()
    if key not in PAPER_SIZES:
        raise ValueError(f"paper must be one of {', '.join(PAPER_SIZES)}, got {paper!r}")
    problem = pdf_renderer_problem()
    if problem:
        raise ReportRendererMissing(problem)
    html, figures = render_document(inputs, static=True, page_size=PAPER_SIZES[key])
    for i, svg in enumerate(figures_to_svg(figures.pending)):
        html = html.replace(figure_placeholder(i), _img(svg), 1)
    import weasyprint
    return weasyprint.HTML(string=html, url_fetcher=_local_fetcher()).write_pdf()


#: the name :mod:`analysis.report_inputs` documents
build_pdf_report = render_pdf
