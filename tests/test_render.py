import base64
import io
import os
import re

import numpy as np
import pytest
from PIL import Image

from course_utils import animate, animation_gif, record_episode


def test_importing_course_utils_makes_pygame_headless():
    assert os.environ["SDL_VIDEODRIVER"] == "dummy"


def test_record_episode_returns_one_frame_per_step_plus_the_first():
    frames, total = record_episode("CartPole-v1", lambda obs: 0, seed=0, max_steps=8)
    assert len(frames) == int(total) + 1
    assert 1 <= total <= 8
    assert frames[0].shape == (400, 600, 3) and frames[0].dtype == np.uint8
    assert frames[0].std() > 0  # something was drawn, not a blank canvas
    assert not np.array_equal(frames[0], frames[-1])  # the cart and pole moved


def test_record_episode_is_reproducible():
    a, _ = record_episode("CartPole-v1", lambda obs: int(obs[3] > 0), seed=3, max_steps=5)
    b, _ = record_episode("CartPole-v1", lambda obs: int(obs[3] > 0), seed=3, max_steps=5)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def frames(n, h=40, w=60):
    return [np.full((h, w, 3), 20 * i, dtype=np.uint8) for i in range(n)]


def test_animation_gif_keeps_frames_scale_and_speed():
    gif = Image.open(io.BytesIO(animation_gif(frames(10), fps=50, scale=0.5, every=2)))
    assert gif.format == "GIF"
    assert gif.n_frames == 5
    assert gif.size == (30, 20)
    assert gif.info["duration"] == 40  # every second frame at 50 fps: 40 ms each keeps real speed


def test_animate_embeds_a_playable_gif_in_html():
    html = animate(frames(3), fps=10).data
    payload = re.search(r'src="data:image/gif;base64,([^"]+)"', html).group(1)
    assert Image.open(io.BytesIO(base64.b64decode(payload))).n_frames == 3


@pytest.mark.parametrize(
    ("bad_frames", "kwargs", "message"),
    [
        ([], {}, "no frames"),
        ([np.zeros((4, 4), dtype=np.uint8)], {}, r"\(H, W, 3\) uint8"),
        ([np.zeros((4, 4, 3), dtype=np.float32)], {}, r"\(H, W, 3\) uint8"),
        (frames(2), {"scale": 0}, "scale"),
        (frames(2), {"every": 0}, "every"),
    ],
)
def test_animation_gif_rejects_bad_input(bad_frames, kwargs, message):
    with pytest.raises(ValueError, match=message):
        animation_gif(bad_frames, **kwargs)
