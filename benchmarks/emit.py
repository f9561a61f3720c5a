"""Shared ending of the benchmark scripts: print the result as JSON, optionally save it."""

from __future__ import annotations

import json
import os
from pathlib import Path


def blas() -> dict:
    """The BLAS kernels this process runs and the OpenBLAS settings it was given: a machine
    may force older kernels through ``OPENBLAS_CORETYPE``/``OPENBLAS_L2_SIZE`` (the project's
    VMs do), which slows float32 products, so every result says which were used."""
    import numpy  # noqa: F401 - loads the BLAS threadpoolctl reports
    from threadpoolctl import threadpool_info

    return {"libraries": [{k: lib.get(k) for k in ("internal_api", "architecture", "version")}
                          for lib in threadpool_info() if lib.get("user_api") == "blas"],
            "environment": {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS_")}}


def emit(result: dict, output: str | None) -> int:
    """Print ``result`` (with :func:`blas`) as indented JSON and write it to ``output`` when
    given; returns 0."""
    result = {**result, "blas": blas()}
    text = json.dumps(result, indent=1)
    print(text)
    if output:
        Path(output).write_text(text)
    return 0
