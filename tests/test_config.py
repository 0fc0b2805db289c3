import pytest

from course_utils import budget, fast_mode


@pytest.mark.parametrize("value", ["1", "true", "YES", " on "])
def test_fast_mode_on(fast_env, value):
    fast_env(value)
    assert fast_mode() is True


@pytest.mark.parametrize("value", [None, "", "0", "false", "No", "off"])
def test_fast_mode_off(fast_env, value):
    fast_env(value)
    assert fast_mode() is False


def test_fast_mode_rejects_typos_with_a_clear_message(fast_env):
    fast_env("fsat")
    with pytest.raises(ValueError, match="COURSE_FAST='fsat' is not understood"):
        fast_mode()


def test_budget_follows_the_switch(fast_env):
    fast_env("1")
    assert budget(full=500, fast=20) == 20
    assert budget(full=1.0, fast=0.1) == 0.1
    fast_env("0")
    assert budget(full=500, fast=20) == 500


@pytest.mark.parametrize(
    ("full", "fast", "error", "message"),
    [
        (20, 500, ValueError, "larger than the full one"),
        (0, 0, ValueError, "positive"),
        (100, -1, ValueError, "positive"),
        (True, 1, ValueError, "positive"),
        ("100", 10, ValueError, "positive"),
        (100, 10.0, TypeError, "both as int or both as float"),
    ],
)
def test_budget_rejects_bad_pairs(fast_env, full, fast, error, message):
    fast_env("0")
    with pytest.raises(error, match=message):
        budget(full=full, fast=fast)


def test_course_seed_defaults_and_overrides(monkeypatch):
    from course_utils import course_seed

    monkeypatch.delenv("COURSE_SEED", raising=False)
    assert course_seed(0) == 0
    assert course_seed(5) == 5
    monkeypatch.setenv("COURSE_SEED", " 17 ")
    assert course_seed(0) == 17


@pytest.mark.parametrize("value", ["-1", "1.5", "seven", "0x10"])
def test_course_seed_rejects_what_is_not_a_seed(monkeypatch, value):
    from course_utils import course_seed

    monkeypatch.setenv("COURSE_SEED", value)
    with pytest.raises(ValueError, match="is not a seed"):
        course_seed(0)


def test_course_seed_rejects_a_bad_default(monkeypatch):
    from course_utils import course_seed

    monkeypatch.delenv("COURSE_SEED", raising=False)
    for bad in (-1, 1.0, True, "0"):
        with pytest.raises(ValueError, match="default seed"):
            course_seed(bad)
