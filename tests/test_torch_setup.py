import pytest
import torch

from course_utils import pick_device, set_torch_threads


def test_set_torch_threads_sets_and_returns_previous():
    original = torch.get_num_threads()
    try:
        assert set_torch_threads(1) == original
        assert torch.get_num_threads() == 1
        assert set_torch_threads(2) == 1
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(original)


@pytest.mark.parametrize("bad", [0, -2, 1.5, True])
def test_set_torch_threads_rejects_bad_counts(bad):
    with pytest.raises(ValueError, match="positive integer"):
        set_torch_threads(bad)


def test_pick_device_uses_cuda_only_when_available(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device() == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device().type == "cuda"
