"""PNG plot of experimental variograms with the fitted model (matplotlib, Agg backend)."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..errors import EngineIOError
from .empirical import EmpiricalVariogram
from .models import VariogramModel

logger = logging.getLogger(__name__)


def _directional_gamma(model: VariogramModel, h: np.ndarray, azimuth: float) -> np.ndarray:
    """Model along a horizontal azimuth (anisotropy applied), at distances ``h``."""
    az = math.radians(azimuth)
    offsets = np.outer(h, [math.sin(az), math.cos(az)])
    if model.anisotropy is not None and model.anisotropy.is_3d:
        offsets = np.column_stack([offsets, np.zeros(len(h))])
    return model.gamma(np.linalg.norm(model.reduce(offsets), axis=1))


def plot_variogram(
    path: str | os.PathLike,
    model: VariogramModel,
    omni: EmpiricalVariogram | None = None,
    directions: Mapping[float, EmpiricalVariogram] | None = None,
    title: str = "",
) -> Path:
    """Write a PNG: experimental points (area proportional to pairs) and model curves.

    The omnidirectional variogram is drawn with the model (isotropic models); each direction
    gets its own colour and, with an anisotropic model, the model in that direction. The title
    shows the model rounded to 4 digits. The file is written under a temporary name and
    renamed.
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    path = Path(path)
    evs = [v for v in [omni, *(directions or {}).values()] if v is not None]
    hmax = max([v.cutoff for v in evs if math.isfinite(v.cutoff)] or [model.max_range * 1.5 or 1])
    h = np.linspace(0.0, hmax, 400)[1:]
    nmax = max([int(v.npairs.max()) for v in evs if v.n_bins] or [1])
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    try:
        if omni is not None and omni.n_bins:
            ax.scatter(
                omni.lags,
                omni.gamma,
                s=10 + 90 * omni.npairs / nmax,
                c="k",
                label="omnidirectional",
                zorder=3,
            )
        if model.anisotropy is None:
            ax.plot(h, model.gamma(h), "k-", lw=1.5, label="model")
        cmap = plt.get_cmap("tab10")
        for k, (azimuth, ev) in enumerate((directions or {}).items()):
            colour = cmap(k % 10)
            ax.scatter(
                ev.lags,
                ev.gamma,
                s=10 + 90 * ev.npairs / nmax,
                color=colour,
                marker="^",
                label=f"{azimuth:g}°",
                zorder=3,
            )
            if model.anisotropy is not None:
                ax.plot(h, _directional_gamma(model, h, float(azimuth)), "--", color=colour, lw=1)
        ax.set_xlim(0, hmax)
        ax.set_ylim(bottom=0)
        ax.set_xlabel("distance")
        ax.set_ylabel("semivariance")
        head = f"{title}: " if title else ""
        ax.set_title(f"{head}{model.to_text(digits=4)}", fontsize=9)
        ax.legend(fontsize=8, loc="lower right")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        tmp = path.with_name(f".{path.stem}.tmp.png")
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(tmp, format="png")
        os.replace(tmp, path)
    except OSError as exc:
        raise EngineIOError(f"cannot write plot {str(path)!r}: {exc}") from None
    finally:
        plt.close(fig)
    return path
