import io
import os
import subprocess
import sys

from course_utils import progress


def test_progress_yields_every_item_unchanged():
    assert list(progress(range(5), desc="x", file=io.StringIO())) == [0, 1, 2, 3, 4]


def test_progress_reports_to_its_stream_and_counts_total():
    stream = io.StringIO()
    with progress(total=3, desc="steps", file=stream, mininterval=0) as bar:
        for _ in range(3):
            bar.update(1)
    text = stream.getvalue()
    assert "steps" in text and "3/3" in text


def test_progress_defaults_redraw_at_most_once_a_second():
    bar = progress(range(3), file=io.StringIO())
    assert bar.mininterval == 1.0
    bar.close()


def test_tqdm_disable_variable_switches_bars_off():
    """tqdm reads TQDM_DISABLE when it is imported, so check in a fresh interpreter."""
    code = "from course_utils import progress; print(sum(progress(range(3), desc='quiet')))"
    env = dict(os.environ, TQDM_DISABLE="1")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "3" and "quiet" not in result.stderr


def test_tqdm_disable_variable_switches_the_notebook_bar_off_too(monkeypatch):
    """tqdm's notebook widget ignores TQDM_DISABLE, and callers may pass disable=False: the variable wins."""
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert progress(range(3), disable=False).disable
    from tqdm.notebook import tqdm as notebook_bar

    monkeypatch.setattr(sys.modules["course_utils.progress"], "tqdm", notebook_bar)
    bar = progress(range(3))
    assert bar.disable and list(bar) == [0, 1, 2]
    monkeypatch.setenv("TQDM_DISABLE", "0")
    assert not progress(range(3), file=io.StringIO()).disable
