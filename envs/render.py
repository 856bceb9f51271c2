"""Pictures for logging (MLflow artifacts): visit heat maps of gridworlds and short clips of any env.

No Ray, no matplotlib.pyplot: only numpy, matplotlib's colour maps, and PIL (installed with matplotlib).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

_WALL_RGB = np.array([25, 25, 25], dtype=np.uint8)  # darker than viridis's darkest (68, 1, 84)


def count_visits(positions: Iterable[Sequence[int]], shape: tuple[int, int]) -> np.ndarray:
    """int [H, W]: how often each (x, y) occurs in `positions` (e.g. the info["pos"] of every skill's end)."""
    counts = np.zeros(shape, dtype=np.int64)
    xy = np.asarray(list(positions), dtype=np.int64).reshape(-1, 2)
    np.add.at(counts, (xy[:, 1], xy[:, 0]), 1)
    return counts


def occupancy_image(
    counts: np.ndarray,
    walls: np.ndarray | None = None,
    pixels_per_cell: int = 8,
    colormap: str = "viridis",
) -> np.ndarray:
    """RGB uint8 [H * p, W * p, 3]: a heat map of `counts` [H, W], one square of p x p pixels per cell.

    Colours scale linearly from 0 visits to the largest count, so pictures of batches of different sizes compare
    by where the visits go, not by how many there were. Pass the map's `walls` (bool [H, W], e.g.
    `env.unwrapped.grid.walls`) to draw them near-black, apart from the never-visited floor (dark purple).
    """
    from matplotlib import colormaps  # colour maps only; importing pyplot would pick a GUI backend

    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 2:
        raise ValueError(f"counts must be [H, W], got shape {counts.shape}")
    peak = counts.max()
    scaled = counts / peak if peak > 0 else counts
    rgb = (colormaps[colormap](scaled)[..., :3] * 255).round().astype(np.uint8)
    if walls is not None:
        if walls.shape != counts.shape:
            raise ValueError(f"walls {walls.shape} and counts {counts.shape} must have the same shape")
        rgb[walls.astype(bool)] = _WALL_RGB
    return np.repeat(np.repeat(rgb, pixels_per_cell, axis=0), pixels_per_cell, axis=1)


def write_clip(frames: Sequence[np.ndarray], path: str | Path, fps: float = 8.0) -> Path:
    """Save RGB uint8 frames [H, W, 3] as an animated GIF that loops forever; returns the path written.

    PIL merges identical consecutive frames into one shown for their summed duration, so the clip's timing holds
    even when its frame count drops. GIF has 256 colours per frame: exact for gridworlds, dithered for cameras.
    """
    from PIL import Image

    path = Path(path)
    if path.suffix.lower() != ".gif":
        raise ValueError(f"write_clip writes animated GIFs; give a path ending in .gif, not {path.name!r}")
    if len(frames) == 0:
        raise ValueError("write_clip needs at least one frame")
    images = [Image.fromarray(_as_rgb_uint8(frame)) for frame in frames]
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(
        path,
        save_all=True,
        append_images=images[1:],
        duration=max(1, round(1000 / fps)),  # milliseconds per frame
        loop=0,
    )
    return path


def _as_rgb_uint8(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"frames must be RGB uint8 [H, W, 3], got {frame.dtype} {frame.shape}")
    return frame
