"""A student's first minutes, in a real browser: `python3 course.py lab` opens notebook 00 (not the
Launcher), the notebook is not marked modified once its kernel is up, and nbgrader's instructor tools
and Jupyter's news pop-up are out of sight. Drives Debian's chromium headless with Playwright."""

from __future__ import annotations

import os
import re
import shutil

import pytest
from test_course_script import start_lab, stop_group

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    if os.environ.get("CI"):
        pytest.fail("CI needs chromium for the browser test (python3 course.py test installs it as root)")
    pytest.skip("no chromium here (Debian: apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


def test_first_minutes_in_jupyterlab(tmp_path):
    process, url, log_path = start_lab(tmp_path)
    # The URL the command printed (its token is masked in the log: put the test's own back).
    printed = re.search(r"http://127\.0\.0\.1:\d+/(\S+)\?token=", log_path.read_text(errors="replace"))
    try:
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-background-networking"]
            )
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(url % printed.group(1) + "&reset")  # a fresh workspace, as on a first start
            tab = page.locator("li.lm-TabBar-tab", has_text="00_rl_loop.ipynb")
            tab.wait_for(timeout=90_000)
            page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=60_000)
            status = page.locator(".jp-StatusBar-Widget", has_text="Idle")  # the kernel has started
            status.first.wait_for(timeout=90_000)
            page.wait_for_timeout(2_000)  # let JupyterLab apply the kernel's metadata
            page.screenshot(path=str(tmp_path / "lab.png"))
            classes = tab.get_attribute("class") or ""
            assert "jp-mod-current" in classes, "notebook 00 should be the open tab"
            assert "jp-mod-dirty" not in classes, "opening notebook 00 marked it modified"
            assert page.locator(".lm-TabBar-tab", has_text="Launcher").count() == 0, "the Launcher opened too"
            menus = page.locator(".lm-MenuBar-itemLabel").all_inner_texts()
            assert "Nbgrader" not in menus and "Formgrader" not in " ".join(menus), menus
            assert page.get_by_text("get notified about official Jupyter news").count() == 0
            browser.close()
    finally:
        stop_group(process)
