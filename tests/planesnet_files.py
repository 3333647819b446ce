"""A tiny learnable PlanesNet archive: 20x20 RGB tiles named {label}__{scene}__{lon}_{lat}.png."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image


def write_tiny_planesnet(folder: Path, n_scenes: int = 40, per_scene: int = 10, seed: int = 0) -> Path:
    """``folder/planesnet/planesnet.zip``; planes are a bright cross on a noisy background (1 in 4)."""
    rng = np.random.default_rng(seed)
    out = folder / "planesnet"
    out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out / "planesnet.zip", "w") as zf:
        for s in range(n_scenes):
            scene = f"2017{s:04d}_181317_0e2f"
            for t in range(per_scene):
                label = int(rng.random() < 0.25)
                tile = rng.integers(40, 120, (20, 20, 3)).astype(np.uint8)
                if label:
                    tile[9:11, 3:17] = 250
                    tile[4:16, 9:11] = 250
                buf = io.BytesIO()
                Image.fromarray(tile).save(buf, format="PNG")
                zf.writestr(
                    f"planesnet/{label}__{scene}__{-118.4 + t / 100:.6f}_{33.9 + s / 100:.6f}.png", buf.getvalue()
                )
    return folder
