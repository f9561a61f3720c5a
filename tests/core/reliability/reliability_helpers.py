"""Helpers of the reliability tests (issue 11, report reliability-2026-12-01).

Subprocess runs are bounded: a wall-clock timeout, an address-space limit (``RLIMIT_AS``) so
that no case can grow past a few GB, and optionally a file-size limit (``RLIMIT_FSIZE``) to
simulate a full disk. Python ignores ``SIGXFSZ``, so a write over the limit fails with
``EFBIG`` instead of killing the process, as on a real full disk.
"""

from __future__ import annotations

import hashlib
import os
import resource
import subprocess
import sys
from pathlib import Path

V = "0.0507 Nug + 0.5906 Sph(897)"
#: Address-space ceiling of an engine subprocess (TensorFlow reserves much virtual memory).
AS_LIMIT = 4 * 1024**3
AS_LIMIT_TF = 12 * 1024**3
TINY = ["--ensemble", "1", "--epochs", "2", "--neighbours", "8", "--kriging-neighbours", "16"]


def limits(fsize: int | None = None, address_space: int | None = AS_LIMIT):
    def apply() -> None:
        if address_space:
            resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        os.setsid()  # own process group: a signal to it reaches nothing else

    return apply


def engine(args: list[str], *, fsize: int | None = None, timeout: float = 240,
           address_space: int | None = AS_LIMIT, cwd: str | None = None):
    """Run ``python -m gcnn_rnn.core ARGS`` bounded in time, memory and file size."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-m", "gcnn_rnn.core", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=cwd,
                          preexec_fn=limits(fsize, address_space))


def engine_popen(args: list[str], *, address_space: int | None = AS_LIMIT) -> subprocess.Popen:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")
    return subprocess.Popen([sys.executable, "-m", "gcnn_rnn.core", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=limits(None, address_space))


def digests(folder: Path) -> dict[str, str]:
    """Name -> SHA-256 of every file directly in ``folder`` (hidden ones included)."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.is_file()}


def krige_args(meuse_gpkg, out, *extra: str, variogram: str = V) -> list[str]:
    return ["krige", "--quiet", "--input", str(meuse_gpkg), "--field", "zinc", "--transform",
            "log", "--variogram", variogram, "--output-dir", str(out), *extra]
