"""A stand-in for ``gcnn-rnn`` speaking the JSON-lines protocol, for the runner's tests.

Usage: python fake_engine.py SCENARIO [OUT_DIR]
   or, standing in for the engine's Python (``python -m gcnn_rnn.core CMD ... --output-dir D``),
   python fake_engine.py -m gcnn_rnn.core CMD ... with the scenario in ``FAKE_ENGINE_MODE``
   and ``D`` as OUT_DIR (``slow`` then writes ``kriging_estimate.tif`` as its final output).

Scenarios: ok, input-error, error, crash, exit3, noise, slow, slowstop, stubborn, interrupted.
``slow``/``stubborn`` write ``OUT_DIR/pid``, a final ``OUT_DIR/done.tif``, a temporary
``OUT_DIR/.part.tif.0123abcd.tmp`` and then report progress for a minute; ``slow`` exits 130 on
SIGTERM (like the engine), ``slowstop`` too but 1.1 s after it (the engine's worst measured
cancel on a loaded machine; it then writes ``OUT_DIR/stopped_cleanly``), ``stubborn`` ignores
SIGTERM (so it has to be killed).
"""

import json
import os
import signal
import sys
import time


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main(scenario, out_dir=None):
    if scenario == "ok":
        for pct in (0, 25, 50, 75, 100):
            emit({"type": "progress", "percent": pct, "text": f"step {pct}"})
        emit({"type": "log", "level": "info", "message": "read 155 points"})
        emit({"type": "log", "level": "warning", "message": "2 NULL values dropped"})
        emit({"type": "log", "level": "debug", "message": "cutoff 1500"})
        emit({"type": "result", "outputs": {"answer": 42, "path": "x.tif"}})
        return 0
    if scenario == "input-error":
        emit({"type": "error", "kind": "input", "message": "field 'zinc2' not found; numeric fields: zinc"})
        return 2
    if scenario == "error":
        print("Traceback (most recent call last):\nValueError: boom", file=sys.stderr)
        emit({"type": "error", "kind": "internal", "message": "ValueError: boom"})
        return 1
    if scenario == "exit3":
        print("something odd on stderr", file=sys.stderr)
        return 3
    if scenario == "noise":
        print("not json at all")
        print("{broken json")
        emit({"type": "progress", "percent": 100, "text": "done"})
        emit({"type": "result", "outputs": {"ok": True}})
        return 0
    if scenario == "crash":
        if out_dir:
            with open(os.path.join(out_dir, "kriging_estimate.tif"), "w") as fh:
                fh.write("written before the crash")
            with open(os.path.join(out_dir, ".kriging_variance.tif.0123abcd.tmp"), "w") as fh:
                fh.write("partial")
        emit({"type": "progress", "percent": 10, "text": "kriging"})
        print("fatal: about to be killed", file=sys.stderr)
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    if scenario == "interrupted":
        emit({"type": "error", "kind": "cancelled", "message": "cancelled by the user"})
        return 130
    if scenario in ("slow", "slowstop", "stubborn"):
        stop = {"flag": False}
        if scenario == "stubborn":
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        else:
            signal.signal(signal.SIGTERM, lambda *a: stop.update(flag=True))
        with open(os.path.join(out_dir, "pid"), "w") as fh:
            fh.write(str(os.getpid()))
        with open(os.path.join(out_dir, os.environ.get("FAKE_FINAL", "done.tif")), "w") as fh:
            fh.write("final output written before the cancel")
        with open(os.path.join(out_dir, ".part.tif.0123abcd.tmp"), "w") as fh:
            fh.write("partial")
        for i in range(1200):
            if stop["flag"]:
                if scenario == "slowstop":
                    time.sleep(1.1)
                    with open(os.path.join(out_dir, "stopped_cleanly"), "w") as fh:
                        fh.write("exit 130 after cleaning up")
                emit({"type": "error", "kind": "cancelled", "message": "cancelled by the user"})
                return 130
            emit({"type": "progress", "percent": i / 12, "text": "working"})
            time.sleep(0.05)
        return 0
    print(f"unknown scenario {scenario!r}", file=sys.stderr)
    return 1


def as_engine(argv):
    """``-m gcnn_rnn.core CMD ... --output-dir D``: the scenario comes from the environment."""
    out_dir = None
    for flag in ("--output-dir", "--model-dir"):
        if flag in argv:
            out_dir = argv[argv.index(flag) + 1]
            os.makedirs(out_dir, exist_ok=True)
    if "--output-json" in argv:
        out_dir = os.path.dirname(argv[argv.index("--output-json") + 1])
    os.environ.setdefault("FAKE_FINAL", "kriging_estimate.tif")
    return main(os.environ.get("FAKE_ENGINE_MODE", "ok"), out_dir)


if __name__ == "__main__":
    if sys.argv[1:2] == ["-m"]:
        sys.exit(as_engine(sys.argv[1:]))
    sys.exit(main(*sys.argv[1:]))
