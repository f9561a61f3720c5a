"""Synthetic data with a known truth: Gaussian random fields sampled at random points.

The field is simulated on a regular 2D or 3D grid by **circulant embedding** (Dietrich & Newsam
1997; Wood & Chan 1994): the covariance of the variogram model on a periodic grid at least
twice the size of the target is diagonalised by the FFT, and a complex white noise coloured by
the square root of its eigenvalues gives an exact Gaussian field with that covariance (nugget
included) on the target grid. When the embedding has negative eigenvalues
(long ranges, smooth models) it is enlarged; tiny remaining negatives are set to 0 with a
warning. Only bounded (stationary) models can be simulated, and not the hole effect.

The value at a grid node is::

    value = mean + field + trend(u, v[, w]) + layer_mean(z)

* ``trend = A * (sin(2 pi u) * cos(pi v) + 4 (u - 1/2) (v - 1/2) [+ (2 w - 1)**2])`` with
  ``A = trend`` (0 = no trend), ``u, v`` the node's x, y scaled to [0, 1] over the domain and,
  in 3D, ``w`` its depth scaled to [0, 1] (0 at the top level, 1 at the bottom);
* ``layer_mean`` (3D only, ``layers = K > 0``): the depth range is cut into ``K`` horizontal
  layers of equal thickness, layer ``k`` (from the top) adds ``m_k``, drawn once from
  ``N(0, (layer_contrast * sqrt(sill))**2)`` with the seed, like the strata of a tailings
  deposit.

Samples are ``n`` distinct grid nodes taken at random (2D); in 3D they lie along vertical
"drill holes": random distinct columns sampled at every level from the top down until ``n``
samples are reached. Sample values equal the truth at their nodes. Everything is
deterministic for a given seed.

References
----------
Dietrich, C. R. & Newsam, G. N. (1997). Fast and exact simulation of stationary Gaussian
processes through circulant embedding of the covariance matrix. SIAM J. Sci. Comput. 18(4).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import fft

from .errors import EngineIOError, GridTooLargeError, InputDataError
from .grid import Grid
from .io import GPKG_OPTIONS
from .progress import ProgressFn, StopFn, check_cancel
from .variogram.models import VariogramModel

logger = logging.getLogger(__name__)

#: Largest circulant embedding (number of complex cells) tried before giving up.
MAX_EMBEDDING_CELLS = 12_000_000
DEFAULT_CRS = "EPSG:32632"
DEFAULT_ORIGIN = (500_000.0, 5_000_000.0)


def projected_wkt(crs: str) -> str:
    """WKT of a projected CRS given as ``EPSG:n``, WKT or PROJ text.

    Raises
    ------
    InputDataError
        When the CRS is unknown or not projected.
    """
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        parsed = CRS.from_user_input(crs)
    except CRSError:
        raise InputDataError(f"unknown CRS {crs!r}") from None
    if not parsed.is_projected:
        raise InputDataError(f"the synthetic data need a projected CRS, not {crs!r}")
    return parsed.to_wkt()


@dataclass(frozen=True)
class SynthConfig:
    """Settings of :func:`synthesize` (see the module docstring for the formulas).

    Attributes
    ----------
    variogram : VariogramModel
        Bounded model of the simulated field (nugget allowed, anisotropy allowed).
    dims : int
        2 or 3.
    n : int
        Number of samples.
    trend : float
        Amplitude ``A`` of the nonlinear trend (0 = none).
    layers : int
        3D: number of horizontal layers with different means (0 = none).
    layer_contrast : float
        Standard deviation of the layer means in units of ``sqrt(sill)``.
    mean : float
        Constant mean.
    seed : int
        Random seed.
    size : float
        Side of the square domain in CRS units.
    cell_size : float
        Grid spacing (horizontal).
    depth : float
        3D: vertical extent (levels from ``-depth`` to ``0``).
    z_step : float
        3D: vertical spacing of the levels.
    crs : str
        CRS of the outputs (a projected one).
    origin : tuple of float
        Lower-left corner ``(x, y)`` of the domain.
    """

    variogram: VariogramModel
    dims: int = 2
    n: int = 200
    trend: float = 0.0
    layers: int = 0
    layer_contrast: float = 2.0
    mean: float = 0.0
    seed: int = 0
    size: float = 1000.0
    cell_size: float = 10.0
    depth: float = 50.0
    z_step: float = 5.0
    crs: str = DEFAULT_CRS
    origin: tuple[float, float] = field(default=DEFAULT_ORIGIN)

    def __post_init__(self) -> None:
        if not isinstance(self.variogram, VariogramModel):
            raise InputDataError(f"not a variogram model: {self.variogram!r}")
        if not self.variogram.bounded:
            raise InputDataError(
                f"only bounded variograms can be simulated, not {self.variogram.to_text()!r}"
            )
        if self.dims not in (2, 3):
            raise InputDataError(f"dims must be 2 or 3, got {self.dims!r}")
        if int(self.n) < 1:
            raise InputDataError(f"the number of samples must be >= 1, got {self.n!r}")
        if self.layers < 0 or (self.layers > 0 and self.dims != 3):
            raise InputDataError(f"layers need dims=3 and must be >= 0, got {self.layers!r}")
        for name in ("size", "cell_size", "depth", "z_step"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise InputDataError(f"{name} must be > 0, got {value!r}")
        if self.cell_size > self.size:
            raise InputDataError(f"cell_size {self.cell_size!r} exceeds size {self.size!r}")
        for name in ("trend", "mean", "layer_contrast"):
            if not math.isfinite(getattr(self, name)):
                raise InputDataError(f"{name} must be finite, got {getattr(self, name)!r}")

    def grid(self) -> Grid:
        """The truth grid (levels from ``-depth`` to 0 in 3D)."""
        x0, y0 = (float(v) for v in self.origin)
        levels = None
        if self.dims == 3:
            nz = int(math.floor(self.depth / self.z_step + 1e-9)) + 1
            levels = tuple(-self.depth + k * self.z_step for k in range(nz))
        return Grid.from_extent(
            (x0, y0, x0 + self.size, y0 + self.size),
            self.cell_size,
            projected_wkt(self.crs),
            levels,
            snap=False,
        )


@dataclass(frozen=True)
class SynthResult:
    """Samples and truth of :func:`synthesize`.

    Attributes
    ----------
    coords : ndarray, shape (n, 2) or (n, 3)
        Sample coordinates (node centres; z = level in 3D).
    values : ndarray, shape (n,)
        Sample values (the truth at the nodes).
    hole : ndarray of int, shape (n,)
        3D: drill-hole id of each sample; 2D: 0..n-1.
    grid : Grid
        The truth grid.
    truth : ndarray
        The exhaustive field, ``grid.shape`` (``(nrows, ncols)`` or ``(nz, nrows, ncols)``).
    config : SynthConfig
        The settings used.
    layer_means : ndarray, shape (layers,)
        Mean added to each layer, top first (empty without layers).
    """

    coords: np.ndarray
    values: np.ndarray
    hole: np.ndarray
    grid: Grid
    truth: np.ndarray
    config: SynthConfig
    layer_means: np.ndarray = field(default_factory=lambda: np.zeros(0))


def _embedding_size(n: int, factor: int) -> int:
    return int(fft.next_fast_len(max(2 * (n - 1), 1) * factor if n > 1 else 1))


def _periodic_distances(model: VariogramModel, m, spacing, ndim: int) -> np.ndarray:
    """Reduced distances from node 0 to every node of the periodic grid ``m``."""
    lags = []
    for n_ax, sp in zip(m, spacing):
        k = np.arange(n_ax)
        lags.append(np.where(k <= n_ax // 2, k, k - n_ax) * float(sp))
    # physical components: x = column, y = -row (rows run southwards), z = level
    if ndim == 2:
        comps = [lags[1][None, :], -lags[0][:, None]]
    else:
        comps = [lags[2][None, None, :], -lags[1][None, :, None], lags[0][:, None, None]]
    if model.anisotropy is not None:
        mat = model.anisotropy.matrix(ndim)
        comps = [sum(mat[j, i] * comps[i] for i in range(ndim)) for j in range(ndim)]
    return np.sqrt(sum(np.broadcast_to(c * c, m) for c in comps))


def _axis_reach(model: VariogramModel, ndim: int, level: float) -> list[float]:
    """Per axis, the distance beyond which ``|covariance|`` stays below ``level * sill``."""
    h = np.geomspace(1e-6, 1e3, 4000) * max(model.max_range, 1e-12)
    cov = model.covariance(h)
    above = np.nonzero(np.abs(cov) > level * model.sill)[0]
    reach = float(h[min(above[-1] + 1, len(h) - 1)]) if above.size else 0.0
    mat = np.eye(ndim) if model.anisotropy is None else model.anisotropy.matrix(ndim)
    # axis order of the grid: (row = -y, col = x) or (level = z, row, col)
    phys = [1, 0] if ndim == 2 else [2, 1, 0]
    # the ellipsoid {h : |mat @ h| <= reach} extends |row i of inv(mat)| * reach along axis i
    inv = np.linalg.inv(mat)
    return [reach * float(np.linalg.norm(inv[i, :])) for i in phys]


def simulate_gaussian(
    model: VariogramModel,
    shape: tuple[int, ...],
    spacing: tuple[float, ...],
    rng: np.random.Generator,
) -> np.ndarray:
    """Zero-mean Gaussian field with covariance ``model.covariance`` on a regular grid.

    Parameters
    ----------
    model : VariogramModel
        Bounded model; its anisotropy is applied in the physical axes ``(x, y[, z])``.
    shape : tuple of int
        ``(nrows, ncols)`` or ``(nz, nrows, ncols)``; rows run southwards, levels upwards.
    spacing : tuple of float
        Spacing per axis, same order as ``shape``.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    ndarray of shape ``shape``

    Raises
    ------
    GridTooLargeError
        When no embedding within :data:`MAX_EMBEDDING_CELLS` is non-negative definite.
    """
    if not model.bounded:
        raise InputDataError(f"cannot simulate the unbounded model {model.to_text()!r}")
    ndim = len(shape)
    for st in model.structures:
        if st.model_class.max_dim < ndim:
            raise InputDataError(f"the {st.model!r} model is not a valid covariance in {ndim}D")
        if st.model == "hol":  # oscillating, slowly decaying: no periodic embedding is valid
            raise InputDataError("the hole-effect model 'hol' cannot be simulated")

    def sizes(reach: list[float]) -> tuple[int, ...]:
        # twice the grid, or twice the distance over which the covariance matters
        return tuple(
            _embedding_size(max(n, math.ceil(r / sp) + 1), 1)
            for n, r, sp in zip(shape, reach, spacing)
        )

    minimal = sizes([0.0] * ndim)
    strict = sizes(_axis_reach(model, ndim, 1e-6))
    tries = [minimal, sizes(_axis_reach(model, ndim, 1e-2)), strict]
    tries.append(tuple(int(fft.next_fast_len(math.ceil(1.5 * n))) for n in strict))
    best: tuple[float, tuple[int, ...], np.ndarray] | None = None
    for m_try in dict.fromkeys(tries):  # ordered, without repeats
        if math.prod(m_try) > MAX_EMBEDDING_CELLS:
            continue
        eig = fft.rfftn(model.covariance(_periodic_distances(model, m_try, spacing, ndim))).real
        bad = max(-float(eig.min()), 0.0) / float(eig.max())
        if best is None or bad < best[0]:
            best = (bad, m_try, eig)
        if bad <= 1e-6:
            break
        logger.debug("embedding %r: relative negative eigenvalue %.3g", m_try, bad)
    if best is None:
        raise GridTooLargeError(
            f"a {shape!r} grid needs a circulant embedding over {MAX_EMBEDDING_CELLS:,} cells"
        )
    bad, m, eig = best
    if bad > 1e-2:
        raise GridTooLargeError(
            f"the circulant embedding of {model.to_text()!r} on a {shape!r} grid is not "
            f"non-negative definite within {MAX_EMBEDDING_CELLS:,} cells; use a smaller grid, "
            f"a shorter range or a nugget"
        )
    if bad > 1e-6:
        logger.warning(
            "circulant embedding: negative eigenvalues down to %.3g of the largest set to 0 "
            "(the simulation is approximate)",
            bad,
        )
    # Z = K * e (circular convolution of white noise with the kernel whose spectrum is
    # sqrt(eigenvalues)) has the circulant covariance; rfftn keeps it real and half-sized
    noise = fft.rfftn(rng.standard_normal(m))
    noise *= np.sqrt(np.maximum(eig, 0.0))
    field_ = fft.irfftn(noise, s=m)
    return np.ascontiguousarray(field_[tuple(slice(0, n) for n in shape)])


def _trend(coords: np.ndarray, grid: Grid, amplitude: float) -> np.ndarray:
    xmin, ymin, xmax, ymax = grid.extent
    u = (coords[:, 0] - xmin) / (xmax - xmin)
    v = (coords[:, 1] - ymin) / (ymax - ymin)
    t = np.sin(2 * np.pi * u) * np.cos(np.pi * v) + 4.0 * (u - 0.5) * (v - 0.5)
    if coords.shape[1] == 3:
        levels = np.asarray(grid.z_levels, dtype=float)
        span = levels.max() - levels.min()
        w = (levels.max() - coords[:, 2]) / span if span > 0 else np.zeros(len(coords))
        t = t + (2.0 * w - 1.0) ** 2
    return amplitude * t


def layer_means(config: SynthConfig, rng: np.random.Generator) -> np.ndarray:
    """Means of the ``layers`` horizontal layers, top first (empty when there are none)."""
    if config.layers <= 0:
        return np.zeros(0)
    return rng.normal(0.0, config.layer_contrast * math.sqrt(config.variogram.sill), config.layers)


def synthesize(
    config: SynthConfig,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> SynthResult:
    """Simulate a field on ``config.grid()`` and sample it (see the module docstring)."""
    rng = np.random.default_rng(config.seed)
    grid = config.grid()
    if progress:
        progress(0.0, "simulating the field")
    spacing = (config.cell_size, config.cell_size)
    if config.dims == 3:
        spacing = (config.z_step, *spacing)
    truth = simulate_gaussian(config.variogram, grid.shape, spacing, rng) + config.mean
    check_cancel(should_stop)
    if progress:
        progress(0.7, "adding trend and layers")
    nodes = grid.node_coords()
    if config.trend != 0.0:
        truth = truth + _trend(nodes, grid, config.trend).reshape(grid.shape)
    means = layer_means(config, rng)
    if means.size:
        levels = np.asarray(grid.z_levels, dtype=float)
        top, bottom = levels.max(), levels.min()
        frac = (top - levels) / (top - bottom) if top > bottom else np.zeros_like(levels)
        layer_of_level = np.minimum((frac * config.layers).astype(int), config.layers - 1)
        truth = truth + means[layer_of_level][:, None, None]
    flat_truth = truth.ravel()
    per_level = grid.nrows * grid.ncols
    if config.dims == 2:
        if config.n > per_level:
            raise InputDataError(f"n={config.n!r} exceeds the {per_level} grid nodes")
        idx = np.sort(rng.choice(per_level, size=config.n, replace=False))
        hole = np.arange(config.n)
    else:
        nz = len(grid.z_levels)
        n_holes = math.ceil(config.n / nz)
        if n_holes > per_level:
            raise InputDataError(f"n={config.n!r} needs more drill holes than grid columns")
        cols = rng.choice(per_level, size=n_holes, replace=False)
        top_first = np.argsort(-np.asarray(grid.z_levels, dtype=float))
        idx = (top_first[None, :] * per_level + cols[:, None]).ravel()[: config.n]
        hole = np.repeat(np.arange(n_holes), nz)[: config.n]
    if progress:
        progress(1.0, "done")
    return SynthResult(nodes[idx], flat_truth[idx].copy(), hole, grid, truth, config, means)


def write_samples(result: SynthResult, path: str | os.PathLike, layer: str = "samples") -> Path:
    """Write the samples as a GeoPackage point layer (field ``value``; ``z``, ``hole`` in 3D).

    The file is written under a temporary name and renamed when complete.
    """
    import geopandas as gpd

    path = Path(path)
    c = result.coords
    data = {"value": result.values}
    if c.shape[1] == 3:
        data["z"] = c[:, 2]
        data["hole"] = result.hole
        geom = gpd.points_from_xy(c[:, 0], c[:, 1], c[:, 2])
    else:
        geom = gpd.points_from_xy(c[:, 0], c[:, 1])
    gdf = gpd.GeoDataFrame(data, geometry=geom, crs=result.grid.crs)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            tmp.unlink()
        gdf.to_file(tmp, layer=layer, driver="GPKG", **GPKG_OPTIONS)
        os.replace(tmp, path)
    except Exception as exc:
        if tmp.exists():
            tmp.unlink()
        raise EngineIOError(f"cannot write samples {str(path)!r}: {exc}") from None
    return path
