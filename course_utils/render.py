"""Show an episode inline in the notebook, with no display and no system packages.

Environments are made with ``render_mode="rgb_array"``, so each ``env.render()``
returns an ``(H, W, 3)`` uint8 frame drawn off-screen by pygame (the package
sets ``SDL_VIDEODRIVER=dummy`` before pygame loads). :func:`animate` turns the
frames into an animated GIF with Pillow and embeds it in the notebook's HTML
output, so it plays in JupyterLab, in exported HTML and on GitHub alike.
Used from notebook 00 on.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Sequence

import numpy as np
from IPython.display import HTML
from PIL import Image

from .seeding import make_env


def record_episode(
    env_id: str,
    policy: Callable[[np.ndarray], int],
    seed: int,
    max_steps: int = 1000,
) -> tuple[list[np.ndarray], float]:
    """Run ``policy`` for one episode of ``env_id`` and return ``(frames, total_reward)``.

    ``policy`` maps an observation to an action. ``frames`` holds the first
    frame plus one per step; recording stops at termination, truncation or
    ``max_steps``.
    """
    env = make_env(env_id, seed=seed, render_mode="rgb_array")
    try:
        obs, _ = env.reset(seed=seed)
        frames = [env.render()]
        total_reward = 0.0
        for _ in range(max_steps):
            obs, reward, terminated, truncated, _ = env.step(policy(obs))
            total_reward += float(reward)
            frames.append(env.render())
            if terminated or truncated:
                break
    finally:
        env.close()
    return frames, total_reward


def animation_gif(frames: Sequence[np.ndarray], fps: float = 30, scale: float = 0.5, every: int = 1) -> bytes:
    """Encode ``frames`` (each ``(H, W, 3)`` uint8) as an animated GIF.

    ``scale`` shrinks each frame and ``every`` keeps every n-th frame, to keep
    the notebook small; the GIF plays at ``fps / every`` shown frames a second
    so the motion keeps its real speed.
    """
    if len(frames) == 0:
        raise ValueError("no frames to animate: was the environment made with render_mode='rgb_array'?")
    if not 0 < scale <= 1 or fps <= 0 or every < 1:
        raise ValueError(f"need 0 < scale <= 1, fps > 0 and every >= 1 (got scale={scale}, fps={fps}, every={every})")
    images = []
    for frame in list(frames)[::every]:
        array = np.asarray(frame)
        if array.ndim != 3 or array.shape[2] not in (3, 4) or array.dtype != np.uint8:
            raise ValueError(f"each frame must be an (H, W, 3) uint8 array, got {array.shape} {array.dtype}")
        image = Image.fromarray(array[..., :3])
        if scale < 1:
            size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            image = image.resize(size, Image.Resampling.BILINEAR)
        images.append(image)
    buffer = io.BytesIO()
    duration_ms = round(1000 * every / fps)
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=duration_ms, loop=0)
    return buffer.getvalue()


def animate(frames: Sequence[np.ndarray], fps: float = 30, scale: float = 0.5, every: int = 1) -> HTML:
    """Return an HTML object that plays ``frames`` inline (see :func:`animation_gif`)."""
    data = base64.b64encode(animation_gif(frames, fps=fps, scale=scale, every=every)).decode("ascii")
    return HTML(f'<img src="data:image/gif;base64,{data}" alt="episode animation, {len(frames)} frames"/>')
