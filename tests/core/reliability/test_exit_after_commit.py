"""A SIGTERM that arrives after the result line, while the interpreter tears down, leaves the
exit code at 0: the folder holds the complete new set and the code must say so (reliability
re-run: the console script was killed by the default handler, exit 143)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

ENTRIES = {
    "console script": [sys.executable, "-c",
                       "from gcnn_rnn.core.cli.main import console_main; console_main()"],
    "python -m": [sys.executable, "-m", "gcnn_rnn.core"],
}


@pytest.mark.parametrize("entry", sorted(ENTRIES))
def test_sigterm_after_the_result_keeps_exit_0(meuse_gpkg, tmp_path, entry):
    out = tmp_path / "o"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")
    proc = subprocess.Popen(
        [*ENTRIES[entry], "krige", "--json-progress", "--input", str(meuse_gpkg), "--field",
         "zinc", "--variogram", "0.05 Nug + 0.6 Sph(900)", "--transform", "log",
         "--cell-size", "100", "--output-dir", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        for line in proc.stdout:
            if json.loads(line).get("type") == "result":
                proc.send_signal(signal.SIGTERM)  # during the teardown
                break
        code = proc.wait(timeout=120)
    finally:
        proc.kill()
    assert code == 0
    assert (out / "kriging_estimate.tif").exists() and (out / "kriging_variance.tif").exists()
