import torch

from course_utils import notebook_setup


def test_notebook_setup_seeds_sets_threads_and_reports(capsys, fast_env):
    fast_env("1")
    original = torch.get_num_threads()
    try:
        device = notebook_setup(seed=5)
        first = torch.rand(3)
        notebook_setup(seed=5)
        assert torch.equal(torch.rand(3), first)
        assert device.type in ("cpu", "cuda")
        assert torch.get_num_threads() == 1
        out = capsys.readouterr().out
        assert "seed=5" in out and "mode: FAST" in out and f"device={device}" in out
    finally:
        torch.set_num_threads(original)
