"""The course website (`python3 course.py site`, docs/conf.py, docs/site_cache.py).

Quick tests of its logic run with the other tests: the cache key (code cells, not prose), the cache folder
(mode and code), progress bars left out, nbval's outputs recorded by two xdist workers into one cache, the
commands course.py builds. The test marked ``site`` builds the fast-mode website from the outputs the fast
suite recorded and opens every page in headless Chromium; `python3 course.py test` runs it after all the
other tests but the system tests, beside which it runs (course.test_steps), when those outputs exist.
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent


def load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


site_cache = load("site_cache_under_test", ROOT / "docs" / "site_cache.py")
course = load("course_script_for_site", ROOT / "course.py")


def notebook(*cells) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "drl-course", "display_name": "Python 3 (DRL course)", "language": "python"}
    for kind, source in cells:
        make = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
        nb.cells.append(make(source))
    return nb


def stream(text, name="stdout"):
    return {"output_type": "stream", "name": name, "text": text}


def test_cache_key_follows_code_cells_not_prose(tmp_path):
    from jupyter_cache import get_cache

    path = tmp_path / "lecture.ipynb"
    nb = notebook(("markdown", "# A lecture\nSome prose."), ("code", "x = 1\nprint(x)"), ("code", "x + 1"))
    nbformat.write(nb, path)
    executed = site_cache.executed_notebook(
        path,
        {
            0: [stream("1\n")],
            1: [{"output_type": "execute_result", "data": {"text/plain": "2"}, "metadata": {}, "execution_count": 7}],
        },
    )
    assert [c.execution_count for c in executed.cells if c.cell_type == "code"] == [1, 2]
    assert executed.cells[2].outputs[0]["execution_count"] == 2, "execution counts follow the cells"
    site_cache.store(tmp_path / "cache", path, executed)
    cache = get_cache(tmp_path / "cache")

    prose_edited = nbformat.read(path, as_version=4)
    prose_edited.cells[0].source = "# A lecture\nBetter prose, a new sentence."
    prose_edited.cells.insert(1, nbformat.v4.new_markdown_cell("A new paragraph."))
    _, merged = cache.merge_match_into_notebook(prose_edited)
    assert merged.cells[2].outputs[0]["text"] == "1\n" and "Better prose" in merged.cells[0].source

    code_edited = nbformat.read(path, as_version=4)
    code_edited.cells[2].source = "x + 2"
    with pytest.raises(KeyError):
        cache.match_cache_notebook(code_edited)


def test_incomplete_recording_is_refused(tmp_path):
    path = tmp_path / "lecture.ipynb"
    nbformat.write(notebook(("code", "1"), ("code", "2")), path)
    with pytest.raises(ValueError, match="1 of 2 code cells"):
        site_cache.executed_notebook(path, {0: []})


def test_cache_folder_depends_on_mode_and_on_the_code_notebooks_import(tmp_path):
    (tmp_path / "course_utils" / "sub").mkdir(parents=True)
    (tmp_path / "course_utils" / "sub" / "a.py").write_text("A = 1\n")
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements" / "constraints.txt").write_text("torch==2.13.0\n")
    fast, full = site_cache.cache_dir("fast", tmp_path), site_cache.cache_dir("full", tmp_path)
    assert fast != full and fast.parent.name == "fast" and full.parent.name == "full"
    assert site_cache.cache_dir("fast", tmp_path) == fast, "the same code gives the same folder"
    (tmp_path / "course_utils" / "sub" / "a.py").write_text("A = 2\n")
    assert site_cache.cache_dir("fast", tmp_path) != fast, "a course_utils change must not reuse old outputs"
    changed = site_cache.cache_dir("fast", tmp_path)
    (tmp_path / "requirements" / "constraints.txt").write_text("torch==2.14.0\n")
    assert site_cache.cache_dir("fast", tmp_path) != changed, "new pinned versions must not reuse old outputs"
    with pytest.raises(ValueError):
        site_cache.cache_dir("slow", tmp_path)
    assert site_cache.site_mode({"COURSE_FAST": "1"}) == "fast"
    assert site_cache.site_mode({"COURSE_FAST": "0"}) == site_cache.site_mode({}) == "full"


def test_progress_bars_are_stripped_and_everything_else_kept():
    widget = {
        "output_type": "display_data",
        "data": {site_cache.WIDGET_VIEW: {"model_id": "abc"}, "text/plain": "  0%|          | 0/10 [00:00<?, ?it/s]"},
        "metadata": {},
    }
    bar = stream(
        "train:  40%|####      | 4/10 [00:01<00:02,  3.10it/s, ret=21]\rtrain: 100%|##########| 10/10 [00:02<00:00,  4.1it/s]\n",
        "stderr",
    )
    warning = stream("/x.py:3: UserWarning: something to read\n", "stderr")
    printed = stream("J = 0.93 ± 0.01\n")
    figure = {"output_type": "display_data", "data": {"image/png": "iVBOR", "text/plain": "<Figure>"}, "metadata": {}}
    kept = site_cache.strip_progress([widget, bar, warning, printed, figure])
    assert kept == [warning, printed, figure]


TINY_CONFTEST = """
import importlib.util, os
from pathlib import Path

def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

def pytest_configure(config):
    sc = load("sc", {site_cache!r})
    config.pluginmanager.register(sc.OutputRecorder(Path(os.environ["SITE_CACHE_UNDER_TEST"]), Path(__file__).parent))
    # Kernels start as in the test command: once more if one dies before it answers (the root conftest.py).
    load("rc", {root_conftest!r}).install_kernel_retry()
"""


def test_nbval_outputs_are_cached_by_both_xdist_workers(tmp_path):
    """A real nbval run with the test command's options: each notebook whose cells all pass is stored, from
    either worker, with its printed checks, displays and figures and without its progress bar; a failing one
    is not."""
    from jupyter_cache import get_cache

    books = tmp_path / "books"
    books.mkdir()
    (books / "conftest.py").write_text(
        TINY_CONFTEST.format(site_cache=str(ROOT / "docs" / "site_cache.py"), root_conftest=str(ROOT / "conftest.py"))
    )
    (books / "pytest.ini").write_text("[pytest]\n")
    sources = {
        "a_prints.ipynb": [
            ("markdown", "# A"),
            ("code", "print('check passed:', 2 + 2)"),
            ("code", "6 * 7"),
            ("code", "import matplotlib.pyplot as plt\nplt.plot([0, 1], [1, 0])\nplt.show()"),
        ],
        "b_bar.ipynb": [
            ("code", "from tqdm.auto import tqdm\nfor _ in tqdm(range(3), desc='steps'):\n    pass"),
            (
                "code",
                "from IPython.display import HTML\nHTML('<img src=\"data:image/gif;base64,R0lGODlhAQABAAAAACw=\"/>')",
            ),
        ],
        "c_fails.ipynb": [("code", "x = 1"), ("code", "assert x == 2, 'the check fails'")],
    }
    for name, cells in sources.items():
        nbformat.write(notebook(*cells), books / name)
    cache_folder = tmp_path / "cache"
    # MPLBACKEND=Agg as the test session sets it (tests/conftest.py): the notebooks' kernels still draw inline.
    env = dict(os.environ, SITE_CACHE_UNDER_TEST=str(cache_folder), COURSE_FAST="1", MPLBACKEND="Agg")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadfile", "-p", "no:cacheprovider",
         "--nbval-lax", "--nbval-current-env", "-c", str(books / "pytest.ini"), "--rootdir", str(books), str(books)],
        cwd=books, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 1 and "1 failed" in result.stdout, result.stdout[-3000:] + result.stderr[-2000:]
    cache = get_cache(cache_folder)
    stored = {Path(record.uri).name: record for record in cache.list_cache_records()}
    assert set(stored) == {"a_prints.ipynb", "b_bar.ipynb"}, f"{stored}\n{result.stdout[-4000:]}"
    # loadfile hands the first two files to the two workers: each wrote into the one cache.
    assert {record.data["worker"] for record in stored.values()} == {"gw0", "gw1"}
    _, a = cache.merge_match_into_notebook(nbformat.read(books / "a_prints.ipynb", as_version=4))
    assert a.cells[1].outputs[0]["text"] == "check passed: 4\n"
    assert a.cells[2].outputs[0]["data"]["text/plain"] == "42"
    assert any("image/png" in out.get("data", {}) for out in a.cells[3].outputs), a.cells[3].outputs
    _, b = cache.merge_match_into_notebook(nbformat.read(books / "b_bar.ipynb", as_version=4))
    assert b.cells[0].outputs == [], f"the progress bar should be gone: {b.cells[0].outputs}"
    assert b.cells[1].outputs[0]["data"]["text/html"].startswith("<img src=")


def test_site_command_per_mode(monkeypatch):
    monkeypatch.setenv("COURSE_SEED", "3")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    cmd, env, out = course.site_command("py", ["--fast"])
    assert env["COURSE_FAST"] == "1" and "COURSE_SEED" not in env and env["TQDM_DISABLE"] == "1"
    assert "MPLBACKEND" not in env, "the kernels the build starts must draw figures inline"
    assert out == ROOT / "_build" / "html-fast" and cmd[:4] == ["py", "-m", "sphinx", "-b"] and "--fast" not in cmd
    assert cmd[cmd.index("-c") + 1] == "docs" and cmd[-2:] == [str(ROOT), str(out)]
    cmd, env, out = course.site_command("py", ["-E"])
    assert env["COURSE_FAST"] == "0" and out == ROOT / "_build" / "html" and cmd[-1] == "-E"
    assert str(ROOT / "_build" / "doctrees" / "full") in cmd, "each mode keeps its own Sphinx environment"


def test_test_command_runs_the_site_and_system_tests_after_everything_else():
    cmd, env = course.test_command("py", [])
    first, second = course.test_steps(cmd, [], fast=True)
    assert first == ([*cmd, "-m", "not site and not system"], {})
    files = ["tests/test_site.py", *course.SYSTEM_TEST_FILES]
    assert second == ([*cmd, "-m", "site or system", *files], {"COURSE_SYSTEM_TESTS": "1"})
    assert Path(__file__).relative_to(ROOT).as_posix() == course.SITE_TEST_FILE
    assert course.test_steps(cmd, ["-k", "rl_loop"], fast=True) == [(cmd, {})], "a narrowed run is one run"
    full, _ = course.test_command("py", ["--full"])
    assert course.test_steps(full, [], fast=False) == [(full, {})]


def test_system_tests_skip_unless_their_step_runs_them(monkeypatch, root_conftest):
    class Item:
        def __init__(self, *keywords, nodeid="tests/test_hub.py::test_x"):
            self.keywords, self.markers, self.nodeid = set(keywords), [], nodeid

        def add_marker(self, marker):
            self.markers.append(marker)

    def skipped(env_value):
        if env_value is None:
            monkeypatch.delenv("COURSE_SYSTEM_TESTS", raising=False)
        else:
            monkeypatch.setenv("COURSE_SYSTEM_TESTS", env_value)
        items = [Item("system"), Item("site"), Item()]
        root_conftest.pytest_collection_modifyitems(None, items)
        return [any(m.name == "skip" for m in item.markers) for item in items]

    assert skipped(None) == [True, False, False]
    assert skipped("0") == [True, False, False]
    assert skipped("1") == [False, False, False]
    assert course.SYSTEM_MARKER == "system"
    # The system step collects only SYSTEM_TEST_FILES: a system test in any other file stops every run.
    stray = Item("system", nodeid="tests/test_vec.py::test_new")
    with pytest.raises(
        pytest.UsageError, match=r"system tests in tests/test_vec\.py: add the file to SYSTEM_TEST_FILES"
    ):
        root_conftest.pytest_collection_modifyitems(None, [Item("system"), stray])
    root_conftest.pytest_collection_modifyitems(None, [Item(nodeid="tests/test_vec.py::test_new")])  # unmarked: fine


def test_the_system_step_collects_every_file_that_holds_system_tests():
    for path in course.SYSTEM_TEST_FILES:
        assert re.search(r"pytest\.mark\.system\b", (ROOT / path).read_text()), f"{path} holds no system test"


def test_gitignore_keeps_build_output_out():
    assert "_build/" in (ROOT / ".gitignore").read_text().split()


def test_pages_workflow_builds_with_the_readme_command():
    text = (ROOT / ".github" / "workflows" / "pages.yml").read_text()
    runs = [line.strip().removeprefix("run:").strip() for line in text.splitlines() if line.strip().startswith("run:")]
    assert "python3 course.py site" in runs
    for action in ("actions/upload-pages-artifact", "actions/deploy-pages"):
        assert action in text
    assert "path: _build/html" in text.replace("'", "").replace('"', "")


# --- the website in a real browser --------------------------------------------------------------------


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture(scope="module")
def fast_site():
    """`python3 course.py site --fast`'s build (from the outputs the fast suite recorded), served on localhost."""
    cmd, env, out = course.site_command(sys.executable, ["--fast"])
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
    assert result.returncode == 0, f"the site build failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(out)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield out, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def lecture_pages() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    return [f"{p}.html" for p in re.findall(r"^\| \[\d\d · [^\]]+\]\((notebooks/[\w.-]+)\.ipynb\)", readme, flags=re.M)]


# Run in the page: wait for MathJax to finish, then report what the checks need.
PAGE_REPORT = """async () => {
  if (window.MathJax && MathJax.Hub) { await new Promise(done => MathJax.Hub.Queue(done)); }
  const article = document.querySelector('article') || document.body;
  const copy = article.cloneNode(true);
  copy.querySelectorAll('pre, code, script, style, .MathJax, .MathJax_Display, .MathJax_Preview, .highlight')
      .forEach(e => e.remove());
  return {
    brokenImages: Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))
                       .map(i => i.src.slice(0, 100)),
    mathSources: document.querySelectorAll('span.math.notranslate, div.math.notranslate').length,
    mathRendered: document.querySelectorAll('span.MathJax').length,
    mathErrors: document.querySelectorAll('.MathJax_Error, merror').length,
    text: copy.innerText,
    animations: document.querySelectorAll('.cell_output img[src^="data:image/gif"]').length,
    figures: document.querySelectorAll('.cell_output img').length,
    outputs: document.querySelectorAll('.cell_output').length,
    sidebar: Array.from(document.querySelectorAll('nav.bd-docs-nav a.reference.internal'))
                  .map(a => new URL(a.href).pathname),
    next: (document.querySelector('a.right-next') || {}).href || null,
    links: Array.from(document.querySelectorAll('p.course-links a')).map(a => a.href),
  };
}"""

RAW_MATH = re.compile(r"\\\(|\\\[|\$\$|(?<![\w$])\$[^\s$][^$\n]{0,120}[^\s$\\]\$(?![\w$])")


@pytest.mark.site
def test_every_page_of_the_fast_site_in_chromium(fast_site, chromium_browser):
    """Every page of the fast-mode website, opened in headless Chromium: no console error, no request leaving
    localhost, every image loaded, math rendered by the site's own MathJax (no raw TeX left), the inline episode
    animation, outputs without progress bars; the sidebar and the "next" links reach every lecture in the
    README's order; search finds REINFORCE; each lecture links its source notebook and its assignment."""
    out, base = fast_site
    pages = sorted(
        p.relative_to(out).as_posix() for p in out.rglob("*.html") if not p.relative_to(out).parts[0].startswith("_")
    )
    pages.remove("index.html")  # a redirect to the landing page, checked below
    lectures = lecture_pages()
    assert set(lectures) <= set(pages) and "README.html" in pages and "docs/instructors.html" in pages, pages

    # Offline: no script, stylesheet or font is fetched from elsewhere (checked in the files, then in the browser).
    for page in pages:
        html = (out / page).read_text(encoding="utf-8")
        remote = re.findall(r"<(?:script|link)\b[^>]*?(?:src|href)=\"(?:https?:)?//[^\"]+\"", html)
        assert not remote, f"{page} loads from the network: {remote}"

    problems: dict[str, list[str]] = {}
    reports: dict[str, dict] = {}
    browser = chromium_browser
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    outside: list[str] = []
    context.on(
        "request",
        lambda req: (
            None
            if urlparse(req.url).hostname == "127.0.0.1" or req.url.startswith("data:")
            else outside.append(req.url)
        ),
    )
    tab = context.new_page()
    errors: list[str] = []
    tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    # (a request the next navigation cancels, such as the favicon's, is no failure of the site)
    tab.on(
        "requestfailed",
        lambda req: None if req.failure == "net::ERR_ABORTED" else errors.append(f"request failed: {req.url}"),
    )
    timings = {}
    for page in pages:
        started = time.perf_counter()
        errors.clear()
        response = tab.goto(base + page, wait_until="load")
        assert response is not None and response.ok, page
        report = tab.evaluate(PAGE_REPORT)
        reports[page] = report
        found = list(errors)
        if report["brokenImages"]:
            found.append(f"images not loaded: {report['brokenImages']}")
        if report["mathSources"] and report["mathRendered"] < report["mathSources"]:
            found.append(f"math rendered {report['mathRendered']} of {report['mathSources']}")
        if report["mathErrors"]:
            found.append(f"{report['mathErrors']} MathJax errors")
        raw = RAW_MATH.findall(report["text"])
        if raw:
            found.append(f"raw TeX left in the text: {raw[:5]}")
        if re.search(r"\d+%\|[^|]*\|\s*\d+/\d+|HBox\(children", report["text"]):
            found.append("a progress bar in the page")
        if found:
            problems[page] = found
        timings[page] = time.perf_counter() - started
    slowest = sorted(timings.items(), key=lambda item: -item[1])[:5]
    print(f"{len(pages)} pages in {sum(timings.values()):.0f} s; slowest: {slowest}")
    assert not outside, f"requests left localhost: {sorted(set(outside))[:10]}"
    assert not problems, json.dumps(problems, indent=1)[:6000]

    # Math, figures, printed checks and the animation are there, where the lectures put them.
    assert sum(reports[p]["mathRendered"] for p in lectures) > 100, "the lectures' math was not rendered"
    for page in lectures:
        assert reports[page]["outputs"] > 0, f"{page} shows no outputs"
    assert reports["notebooks/00_rl_loop.html"]["animations"] >= 1, "notebook 00's episode animation is missing"
    assert sum(reports[p]["figures"] for p in lectures) >= len(lectures), "too few figures in the lectures"
    assert "Monte Carlo" in reports["notebooks/00_rl_loop.html"]["text"]

    # The site's address opens the landing page (the README's overview).
    tab.goto(base)
    tab.wait_for_url(base + "README.html")
    assert "gradient estimation" in tab.locator("article").inner_text()

    # Navigation: the sidebar lists every lecture; "next" from the landing page walks them in order.
    landing_sidebar = {path.lstrip("/") for path in reports["README.html"]["sidebar"]}
    assert set(lectures) <= landing_sidebar, sorted(set(lectures) - landing_sidebar)
    walked, page = [], "README.html"
    while page and len(walked) < len(pages):
        walked.append(page)
        following = reports[page]["next"]
        page = urlparse(following).path.lstrip("/") if following else None
    assert [p for p in walked if p in lectures] == lectures, walked

    # Each lecture links its source notebook (served) and its graded assignment (a page of the site).
    links = reports["notebooks/03_reinforce.html"]["links"]
    assert any(link.endswith("/_notebooks/notebooks/03_reinforce.ipynb") for link in links), links
    assert any(link.endswith("/assignments/a2_policy_gradients/a2_policy_gradients.html") for link in links), links
    for link in links:
        assert tab.request.get(link).ok, link
    source = json.loads(tab.request.get(base + "_notebooks/notebooks/03_reinforce.ipynb").text())
    assert source["cells"], "the source notebook is served"

    # Search: a course word returns results, the REINFORCE lecture among them.
    tab.goto(base + "search.html?q=REINFORCE")
    results = tab.locator("#search-results ul.search li a")
    results.first.wait_for(timeout=30_000)
    hrefs = [urlparse(h).path for h in results.evaluate_all("links => links.map(a => a.href)")]
    assert any(h.endswith("notebooks/03_reinforce.html") for h in hrefs), hrefs
