"""Compile the engine's numba kernels ahead of the first real run.

Every compiled kernel is declared with ``cache=True``, so numba writes its machine code next
to the module (``__pycache__/*.nbi, *.nbc``, or the user's cache folder when that is not
writable) and later processes load it instead of compiling. Compiling the kernels takes
10-60 s on two cores (the parallel kriging kernel most of it); loading them well under a
second. :func:`warm_up` runs each kernel once on a few dozen points, with the argument types
the real commands use, so that the first ``krige`` in front of a user loads instead of
compiling. ``gcnn-rnn warmup`` (and ``gcnn-rnn doctor --warmup``, which the QGIS set-up
dialog runs after installing the engine; ``make`` runs it after installing the venv) calls it.
"""

from __future__ import annotations

import time

import numpy as np

from .progress import ProgressFn


def _steps():
    from .grid import Grid
    from .kriging import KrigingConfig, krige, krige_grid
    from .variogram.empirical import directional_variograms
    from .variogram.folds import FoldVariograms
    from .variogram.models import parse_model

    rng = np.random.default_rng(0)
    xy = rng.uniform(0.0, 100.0, size=(60, 2))
    xyz = np.column_stack([xy, rng.uniform(0.0, 10.0, size=60)])
    z = np.sin(xy[:, 0] / 20.0) + rng.normal(scale=0.1, size=60)
    model = parse_model("0.05 Nug + 1 Sph(40)")
    grid = Grid.from_extent((0.0, 0.0, 100.0, 100.0), 10.0)
    local = KrigingConfig(neighbours=8)
    return [
        ("variogram pairs", lambda: directional_variograms(xy, z, [None, 0.0, 90.0])),
        ("fold variograms", lambda: FoldVariograms(xy, z).without(np.array([0, 5]))),
        ("kriging, grid", lambda: krige_grid(xy, z, grid, model, local)),
        ("kriging, points", lambda: krige(xy, z, xy[:10] + 0.5, model, local,
                                          return_details=True)),
        ("kriging, leave-one-out", lambda: krige(xy, z, xy, model, local, exclude_self=True)),
        ("kriging, sectors", lambda: krige(xy, z, xy[:10] + 0.5, model,
                                           KrigingConfig(neighbours=8, sectors=4))),
        ("kriging, max distance", lambda: krige(xy, z, xy[:10] + 0.5, model,
                                                KrigingConfig(neighbours=8, max_distance=30.0))),
        ("kriging, 3D", lambda: krige(xyz, z, xyz[:10] + 0.5, model, local)),
        # a large-nu Matérn (its table checked where scipy's K_nu overflows)
        ("Matérn, large nu", lambda: krige(xy, z, xy[:10] + 0.5,
                                           parse_model("0.05 Nug + 1 Mat(5, nu=100)"), local)),
    ]


def warm_up(progress: ProgressFn | None = None) -> dict:
    """Run every compiled kernel once (compiling it into numba's cache if needed).

    Returns
    -------
    dict
        ``{"seconds": total, "steps": {name: seconds}}``.
    """
    t0 = time.perf_counter()
    steps = _steps()
    times = {}
    for i, (name, fn) in enumerate(steps):
        t = time.perf_counter()
        fn()
        times[name] = round(time.perf_counter() - t, 3)
        if progress is not None:
            progress((i + 1) / len(steps), f"compiled: {name}")
    return {"seconds": round(time.perf_counter() - t0, 3), "steps": times}
