import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pytest

from course_utils import plot_learning_curves, smooth, use_course_style
from course_utils.plotting import FIGSIZE, returns_on_grid


def test_smooth_is_a_trailing_mean_of_what_is_available():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    np.testing.assert_allclose(smooth(x, 2), [1.0, 1.5, 2.5, 3.5, 4.5])
    np.testing.assert_allclose(smooth(x, 1), x)
    np.testing.assert_allclose(smooth(x, 10), np.cumsum(x) / np.arange(1, 6))


def test_smooth_works_row_by_row():
    rows = np.array([[0.0, 2.0, 4.0], [1.0, 1.0, 1.0]])
    np.testing.assert_allclose(smooth(rows, 2), [[0.0, 1.0, 3.0], [1.0, 1.0, 1.0]])


@pytest.mark.parametrize("window", [0, -1, 2.5])
def test_smooth_rejects_bad_windows(window):
    with pytest.raises(ValueError, match="window"):
        smooth([1.0, 2.0], window)


def test_use_course_style_sets_figure_size():
    mpl.rcParams["figure.figsize"] = (1.0, 1.0)
    use_course_style()
    fig = plt.figure()
    assert tuple(fig.get_size_inches()) == pytest.approx(FIGSIZE)
    plt.close(fig)


def band_bounds(ax, index=0):
    """Lower and upper edges of the index-th fill_between band, per x."""
    vertices = ax.collections[index].get_paths()[0].vertices
    xs = np.unique(vertices[:, 0])
    lower = np.array([vertices[vertices[:, 0] == x, 1].min() for x in xs])
    upper = np.array([vertices[vertices[:, 0] == x, 1].max() for x in xs])
    return xs, lower, upper


def test_learning_curves_draw_mean_and_std_band():
    curves = np.array([[0.0, 2.0, 4.0, 6.0], [2.0, 4.0, 8.0, 10.0], [1.0, 3.0, 6.0, 8.0]])
    ax = plot_learning_curves({"A2C": curves}, x=[10, 20, 30, 40], xlabel="env steps", ylabel="return")
    line = ax.get_lines()[0]
    np.testing.assert_allclose(line.get_xdata(), [10, 20, 30, 40])
    np.testing.assert_allclose(line.get_ydata(), curves.mean(axis=0))
    xs, lower, upper = band_bounds(ax)
    np.testing.assert_allclose(xs, [10, 20, 30, 40])
    np.testing.assert_allclose(lower, curves.mean(0) - curves.std(0))
    np.testing.assert_allclose(upper, curves.mean(0) + curves.std(0))
    assert ax.get_xlabel() == "env steps" and ax.get_ylabel() == "return"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["A2C (3 seeds)"]
    plt.close(ax.figure)


def test_learning_curves_smooth_before_averaging_and_share_colours():
    curves = {"a": [[0.0, 10.0, 0.0, 10.0], [0.0, 10.0, 0.0, 10.0]], "b": [[1.0, 1.0, 1.0, 1.0]]}
    ax = plot_learning_curves(curves, smoothing=2)
    a_line, b_line = ax.get_lines()
    np.testing.assert_allclose(a_line.get_ydata(), [0.0, 5.0, 5.0, 5.0])
    assert len(ax.collections) == 1  # one seed: no band
    np.testing.assert_allclose(ax.collections[0].get_facecolor()[0][:3], mpl.colors.to_rgb(a_line.get_color()))
    assert b_line.get_label() == "b (1 seed)"
    plt.close(ax.figure)


def test_learning_curves_reject_bad_input():
    with pytest.raises(ValueError, match="same number of points"):
        plot_learning_curves({"ragged": [[1.0, 2.0], [1.0]]})
    with pytest.raises(ValueError, match="x has 3 values"):
        plot_learning_curves({"a": [[1.0, 2.0]]}, x=[1, 2, 3])
    with pytest.raises(ValueError, match="at least one curve"):
        plot_learning_curves({})
    plt.close("all")


class Run:
    def __init__(self, ends, returns):
        self.episode_end_steps, self.episode_returns = ends, returns


def test_returns_on_grid_averages_the_last_episodes_finished_by_each_step():
    run = Run([10, 30, 60, 100], [1.0, 3.0, 5.0, 7.0])
    np.testing.assert_allclose(returns_on_grid(run, [10, 59, 60, 200], window=2), [1.0, 2.0, 4.0, 6.0])
    np.testing.assert_allclose(returns_on_grid(run, [100], window=10), [4.0])


def test_returns_on_grid_matches_a_naive_loop_on_unsorted_ends():
    rng = np.random.default_rng(0)
    ends = rng.permutation(np.cumsum(rng.integers(5, 50, size=40)))
    returns = rng.normal(size=40)
    grid = np.linspace(ends.min(), ends.max() + 10, 17)
    naive = [np.mean(returns[np.argsort(ends, kind="stable")][np.sort(ends) <= x][-5:]) for x in grid]
    np.testing.assert_allclose(returns_on_grid(Run(ends, returns), grid, window=5), naive)


def test_returns_on_grid_rejects_a_grid_starting_before_the_first_episode():
    with pytest.raises(ValueError, match="no episode had finished by step 5"):
        returns_on_grid(Run([10, 20], [1.0, 2.0]), [5, 15])
    with pytest.raises(ValueError, match="one end step per episode"):
        returns_on_grid(Run([10, 20], [1.0]), [15])
