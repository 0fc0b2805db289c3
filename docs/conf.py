"""Sphinx configuration of the course website: ``python3 course.py site`` (full mode) or ``site --fast``.

Why Sphinx with myst-nb, and not Jupyter Book: Jupyter Book 1.x is this same stack (Sphinx, myst-nb,
sphinx-book-theme) behind a _config.yml/_toc.yml layer that pins older Sphinx releases; Jupyter Book 2 needs
node and downloads at build time. One conf.py gives direct control of what matters here: the execution
cache shared with the test runs, MathJax served from the site itself, and pages built from the repository's
own folders (the README as landing page, the lectures in the README's order) without copying them.

The source folder is the repository root (``sphinx-build -c docs . <out>``), limited by include_patterns to
the README, the lecture notebooks and their worked solutions, the released assignment stubs and the
instructors' guide. solutions/ (the assignments' model answers) is never part of the site.

Outputs come from the jupyter-cache that the test commands fill (docs/site_cache.py): a notebook whose code
is unchanged since the last test run in the same mode is not executed again; any other notebook is executed
here, and a notebook that raises fails the build with its path.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS))

import site_cache  # noqa: E402

MODE = site_cache.site_mode()

project = "Deep Reinforcement Learning and Gradient Estimation"
author = "the course authors"
copyright = "the course authors, MIT licence"
extensions = ["myst_nb", "sphinx.ext.mathjax"]
root_doc = "README"
include_patterns = [
    "README.md",
    "notebooks/*.ipynb",
    "notebooks/exercise_solutions/*.ipynb",
    "assignments/*/*.ipynb",
    "docs/instructors.md",
]
exclude_patterns = ["_build", ".venv", "**/.ipynb_checkpoints"]
suppress_warnings = ["myst.xref_missing", "myst.header", "misc.highlighting_failure"]

# --- execution: from the cache the tests filled, executing only what is missing or stale ---------------
nb_execution_mode = "cache"
nb_execution_cache_path = str(site_cache.cache_dir(MODE))
nb_execution_excludepatterns = ["assignments/*/*.ipynb"]  # released stubs raise NotImplementedError by design
nb_execution_timeout = 1800
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True
# Progress bars: widgets have no state in a static page; nbval's records are stripped of them
# (site_cache.strip_progress) and notebooks executed here run with TQDM_DISABLE=1 (course.py site).
nb_mime_priority_overrides = [("html", "application/vnd.jupyter.widget-view+json", None)]
nb_ipywidgets_js = {}  # never require.js and the widget manager from a CDN, whatever a notebook holds

myst_enable_extensions = ["dollarmath", "amsmath"]
myst_dmath_double_inline = True  # $$...$$ inside a paragraph is display math, as JupyterLab renders it
myst_heading_anchors = 3

# --- offline: MathJax 2.7 from the jupyter-server-mathjax package, copied into _static/mathjax ----------
MATHJAX_SOURCE = None
try:
    import jupyter_server_mathjax

    MATHJAX_SOURCE = Path(jupyter_server_mathjax.__file__).parent / "static"
except ImportError:  # pragma: no cover - the install step of course.py provides it
    pass
mathjax_path = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full"
myst_update_mathjax = False
mathjax2_config = {
    "tex2jax": {"inlineMath": [["\\(", "\\)"]], "displayMath": [["\\[", "\\]"]], "processEscapes": False},
    # The package ships the STIX-Web fonts only; no font is looked for on the reader's machine or online.
    "HTML-CSS": {
        "availableFonts": [],
        "preferredFont": None,
        "webFont": "STIX-Web",
        "imageFont": None,
        # MathJax's empty measuring font is url('about:blank'), which Chromium reports as a blocked request.
        "styles": {"@font-face": {"font-family": "MathJax_Blank", "src": "local('MathJax_Blank')"}},
        # Typeset a page in one pass (the default pauses every 50 formulas; lectures have hundreds).
        "EqnChunk": 10000,
        "EqnChunkDelay": 0,
    },
    "fast-preview": {"disabled": True},  # its quick preview uses the TeX fonts, which the package does not ship
    # Chromium would get the NativeMML output, whose styles ask for TeX fonts: always HTML-CSS with STIX-Web.
    "menuSettings": {"zoom": "None", "CHTMLpreview": False, "renderer": "HTML-CSS", "assistiveMML": False},
    "showMathMenu": False,
    "messageStyle": "none",
}

# --- look: sphinx-book-theme, every asset bundled with it ---------------------------------------------
html_theme = "sphinx_book_theme"
html_favicon = "favicon.svg"
html_context = {"default_mode": "light"}  # an explicit mode (the theme logs an error for an empty one)
html_title = "Deep RL and Gradient Estimation"
html_theme_options = {
    "show_toc_level": 2,
    "use_download_button": False,  # each lecture page links its source notebook itself (course-links)
    "use_fullscreen_button": False,
    "show_prev_next": True,
    "navigation_with_keys": False,
}
html_static_path = []
html_copy_source = False
html_show_sourcelink = False
html_last_updated_fmt = None

# --- the pages in the README's order -------------------------------------------------------------------
README = (ROOT / "README.md").read_text(encoding="utf-8")
LECTURES = re.findall(r"^\| \[\d\d · [^\]]+\]\((notebooks/[\w.-]+)\.ipynb\)", README, flags=re.M)
# Which graded assignment practises which lecture (each assignment's introduction names its lectures).
ASSIGNMENT_OF = {
    "01": "a1_score_function",
    "02": "a1_score_function",
    "03": "a2_policy_gradients",
    "04": "a2_policy_gradients",
    "05": "a2_policy_gradients",
    "06": "a3_reparameterization",
    "07": "a3_reparameterization",
    "08": "a4_dqn",
    "09": "a5_trpo",
}
ASSIGNMENTS = sorted(p.parent.name for p in (ROOT / "assignments").glob("*/*.ipynb"))


def solutions_of(lecture: str) -> str:
    return f"notebooks/exercise_solutions/{Path(lecture).name}_solutions"


def navigation() -> str:
    """The site's table of contents, appended to the README (the landing page) when Sphinx reads it."""

    def toctree(caption: str, entries: list[str]) -> str:
        return "\n```{toctree}\n:hidden:\n:caption: " + caption + "\n\n" + "\n".join(entries) + "\n```\n"

    solutions = [solutions_of(lecture) for lecture in LECTURES if (ROOT / f"{solutions_of(lecture)}.ipynb").exists()]
    return (
        toctree("Lectures", LECTURES)
        + toctree("Worked exercise solutions", solutions)
        + toctree("Assignments", [f"assignments/{name}/{name}" for name in ASSIGNMENTS])
        + toctree("For instructors", ["docs/instructors"])
    )


def add_navigation(app, docname, source):
    if docname == root_doc:
        source[0] += "\n" + navigation()


def course_links(app, pagename, templatename, context, doctree):
    """Above each lecture and solution page: its source notebook (a download) and its graded assignment."""
    if not (pagename.startswith("notebooks/") or pagename.startswith("assignments/")) or "body" not in context:
        return
    depth = "../" * pagename.count("/")
    name = Path(pagename).name
    links = [f'<a class="reference download" href="{depth}_notebooks/{pagename}.ipynb" download>{name}.ipynb</a>']
    number = name[:2]
    if pagename.startswith("notebooks/") and number.isdigit():
        assignment = ASSIGNMENT_OF.get(number)
        if assignment in ASSIGNMENTS:
            links.append(
                f'graded assignment: <a href="{depth}assignments/{assignment}/{assignment}.html">{assignment}</a>'
            )
        else:
            links.append("no graded assignment for this lecture")
        if "exercise_solutions" not in pagename:
            links.append(
                f'worked exercise solutions: <a href="{depth}{solutions_of(pagename)}.html">{name}_solutions</a>'
            )
    banner = '<p class="course-links">Source notebook: ' + " · ".join(links) + "</p>\n"
    context["body"] = banner + context["body"]


def finish(app, exception):
    """Copy MathJax and the source notebooks into the site; make index.html open the landing page."""
    if exception is not None or app.builder.format != "html":
        return
    out = Path(app.outdir)
    if MATHJAX_SOURCE is None:
        raise RuntimeError("jupyter-server-mathjax is not installed: the site would have no math renderer")
    shutil.copytree(MATHJAX_SOURCE, out / "_static" / "mathjax", dirs_exist_ok=True)
    for docname in app.env.found_docs:
        source = ROOT / f"{docname}.ipynb"
        if source.exists():
            target = out / "_notebooks" / f"{docname}.ipynb"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    landing = f"{root_doc}.html"
    (out / "index.html").write_text(
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(project)}</title>'
        f'<meta http-equiv="refresh" content="0; url={landing}"></head>'
        f'<body><a href="{landing}">{html.escape(project)}</a></body></html>\n',
        encoding="utf-8",
    )
    (out / ".nojekyll").write_text("")  # GitHub Pages: serve _static/ and _notebooks/ as they are


def setup(app):
    if not LECTURES:
        raise RuntimeError("README.md's notebook table names no lecture: the site would have none")
    os.environ.setdefault("TQDM_DISABLE", "1")
    app.connect("source-read", add_navigation)
    app.connect("html-page-context", course_links)
    app.connect("build-finished", finish)
    return {"parallel_read_safe": True}
