"""The figures of the HTML report, each returned as a base64-encoded PNG string."""

from __future__ import annotations

import base64
import io

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _encode(fig) -> str:
    plt = _plt()
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    finally:
        plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def histogram(values: np.ndarray, field: str, transformed: np.ndarray | None = None,
              transform: str = "none") -> str:
    """Histogram of the data (and of the transformed data when a transform is used)."""
    plt = _plt()
    panels = 2 if transformed is not None and transform != "none" else 1
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.2), squeeze=False)
    axes[0, 0].hist(values, bins=25, color="#3b528b")
    axes[0, 0].set_xlabel(field)
    axes[0, 0].set_ylabel("count")
    if panels == 2:
        axes[0, 1].hist(transformed, bins=25, color="#21918c")
        axes[0, 1].set_xlabel(f"{transform}({field})")
    return _encode(fig)


def variogram(model, experimental=None, title: str = "") -> str:
    """Experimental points (size by pair count) and the fitted model."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    hmax = None
    if experimental is not None and len(experimental.lags):
        sizes = 10 + 80 * experimental.npairs / max(int(experimental.npairs.max()), 1)
        ax.scatter(experimental.lags, experimental.gamma, s=sizes, c="k", label="experimental")
        hmax = float(experimental.cutoff)
    if not hmax or not np.isfinite(hmax):
        hmax = 1.5 * float(model.max_range or 1.0)
    h = np.linspace(0.0, hmax, 300)[1:]
    ax.plot(h, model.gamma(h), color="#b73779", label=model.to_text())
    ax.set_xlim(0, hmax)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("distance")
    ax.set_ylabel("semivariance")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    return _encode(fig)


def cv_scatter(observed: np.ndarray, predictions: dict[str, np.ndarray], units: str) -> str:
    """Observed against predicted, one panel per method, same axes."""
    plt = _plt()
    names = list(predictions)
    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.5), squeeze=False)
    allv = np.concatenate([observed, *[p[np.isfinite(p)] for p in predictions.values()]])
    lo, hi = float(np.nanmin(allv)), float(np.nanmax(allv))
    for ax, name in zip(axes[0], names):
        pred = predictions[name]
        ax.scatter(pred, observed, s=9, alpha=0.7, color="#3b528b")
        ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8)
        rmse = float(np.sqrt(np.nanmean((observed - pred) ** 2)))
        ax.set_title(f"{name}: RMSE {rmse:.4g}", fontsize=9)
        ax.set_xlabel(f"predicted ({units})")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
    axes[0, 0].set_ylabel(f"observed ({units})")
    return _encode(fig)


def residual_map(coords: np.ndarray, residuals: np.ndarray, title: str) -> str:
    """Sample locations coloured by cross-validation residual (diverging, centred at 0)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4.6))
    m = float(np.nanmax(np.abs(residuals))) or 1.0
    sc = ax.scatter(coords[:, 0], coords[:, 1], c=residuals, cmap="RdBu_r", vmin=-m, vmax=m,
                    s=18, edgecolors="k", linewidths=0.2)
    fig.colorbar(sc, ax=ax, shrink=0.8, label="observed − predicted")
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    return _encode(fig)


def training_curves(history: dict) -> str:
    """Training and (mean member) validation loss per epoch, learning rate on a twin axis."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    ax.plot(epochs, history.get("loss", []), label="training loss")
    ax.plot(epochs, history.get("val_loss", []), label="validation loss (spatial)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (scaled target)")
    ax.legend(fontsize=8, loc="upper right")
    if history.get("lr"):
        ax2 = ax.twinx()
        ax2.plot(epochs, history["lr"], color="grey", ls=":", lw=1)
        ax2.set_ylabel("learning rate", color="grey")
        ax2.set_yscale("log")
    return _encode(fig)


def maps(layers: dict[str, np.ndarray], extent: tuple[float, float, float, float],
         samples: np.ndarray | None = None) -> str:
    """A panel per raster layer (2D, or the first level of a 3D grid)."""
    plt = _plt()
    names = list(layers)
    cols = min(3, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, 3.8 * rows), squeeze=False)
    xmin, ymin, xmax, ymax = extent
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    for ax, name in zip(axes.ravel(), names):
        arr = np.asarray(layers[name], dtype=float)
        if arr.ndim == 3:
            arr = arr[0]
        cmap = "magma" if ("variance" in name or "std" in name or "width" in name) else (
            "Reds" if "probability" in name else "viridis")
        finite = arr[np.isfinite(arr)]
        vmin, vmax = (np.percentile(finite, [2, 98]) if finite.size else (0, 1))
        im = ax.imshow(arr, extent=(xmin, xmax, ymin, ymax), origin="upper", cmap=cmap,
                       vmin=vmin, vmax=vmax, interpolation="nearest")
        if samples is not None:
            ax.scatter(samples[:, 0], samples[:, 1], s=2, c="w", alpha=0.6)
        fig.colorbar(im, ax=ax, shrink=0.75)
        ax.set_title(name.replace("_", " "), fontsize=9)
        ax.tick_params(labelsize=6)
    return _encode(fig)
