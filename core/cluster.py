"""Run the heavy stages on a Dask distributed cluster (optional extra ``gcnn-rnn[cluster]``).

``--scheduler ADDRESS`` (or the environment variable ``GCNN_RNN_SCHEDULER``) connects to a
running cluster; ``--workers N`` starts a local cluster of N worker processes bound to
127.0.0.1 for the command's duration. Without either nothing changes: every stage runs
in-process, and ``distributed`` is not even imported.

Tasks are pure functions of what they are given (a picklable job scattered once to every
worker, plus a range or a fold), so a task re-run on another worker after a worker died gives
the same floats, and the client can assemble results in whatever order they arrive.
"""

from __future__ import annotations

import argparse
import contextvars
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from .errors import InputDataError
from .progress import StopFn

logger = logging.getLogger(__name__)

ENV_VAR = "GCNN_RNN_SCHEDULER"
#: Seconds to wait for a scheduler before giving up with a clear error.
CONNECT_TIMEOUT_S = 5
#: Tasks kept in flight per worker thread: enough to keep workers busy while results stream
#: back, few enough that the client holds only a handful of finished ranges at once.
IN_FLIGHT_PER_THREAD = 3
#: The client of the command running now (inside :func:`cluster_client`), for stages deep in
#: the engine (the leave-out training features) that the command does not call directly.
_ACTIVE: contextvars.ContextVar = contextvars.ContextVar("gcnn_rnn_cluster", default=None)


def current_client():
    """The Dask client of the enclosing :func:`cluster_client`, or ``None`` (in-process;
    always ``None`` inside a task on a worker)."""
    return _ACTIVE.get()


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    """``--scheduler ADDRESS`` and ``--workers N``."""
    g = parser.add_argument_group("cluster (Dask distributed, optional: pip install "
                                  "gcnn-rnn[cluster])")
    x = g.add_mutually_exclusive_group()
    x.add_argument("--scheduler", metavar="ADDRESS",
                   help=f"run the heavy stages on this Dask scheduler (tcp://host:8786); "
                        f"default: the environment variable {ENV_VAR}")
    x.add_argument("--workers", type=int, metavar="N",
                   help="start a local Dask cluster of N worker processes on 127.0.0.1")


def requested(args: argparse.Namespace) -> tuple[str | None, int | None]:
    """``(address, n_workers)`` the flags and environment ask for (both None: in-process)."""
    workers = getattr(args, "workers", None)
    if workers is not None:
        if workers < 1:
            raise InputDataError(f"--workers must be >= 1, not {workers!r}")
        return None, workers
    address = getattr(args, "scheduler", None) or os.environ.get(ENV_VAR, "").strip() or None
    return address, None


@contextmanager
def cluster_client(args: argparse.Namespace) -> Iterator[object | None]:
    """A connected ``distributed.Client`` for the command, or ``None`` (in-process).

    Everything it started (local cluster, worker folders) is shut down and removed on exit,
    cancel included.

    Raises
    ------
    InputDataError
        ``distributed`` is not installed, or the scheduler cannot be reached within
        :data:`CONNECT_TIMEOUT_S` seconds.
    """
    address, n_workers = requested(args)
    if address is None and n_workers is None:
        yield None
        return
    try:
        import dask
        import distributed
    except ImportError:
        raise InputDataError(
            "--scheduler/--workers (or $" + ENV_VAR + ") need Dask distributed: "
            "pip install 'gcnn-rnn[cluster]' (or dask[distributed])"
        ) from None
    scratch = tempfile.mkdtemp(prefix="gcnn-rnn-dask-")
    cluster = client = None
    try:
        if n_workers is not None:
            # The workers share this machine's cores: each gets its share for numba and BLAS
            # (results do not depend on the number of threads).
            share = str(max(1, (os.cpu_count() or 1) // n_workers))
            with dask.config.set({"distributed.nanny.pre-spawn-environ": _worker_environ()}), \
                    _environ(WORKER_MALLOC):
                cluster = distributed.LocalCluster(
                    n_workers=n_workers, threads_per_worker=1, processes=True,
                    host="127.0.0.1", dashboard_address=None, local_directory=scratch,
                    silence_logs=logging.ERROR,
                    env={"NUMBA_NUM_THREADS": share, "OMP_NUM_THREADS": share,
                         "OPENBLAS_NUM_THREADS": share})
            client = distributed.Client(cluster, timeout=CONNECT_TIMEOUT_S * 6)
            logger.info("local Dask cluster of %d worker process(es) at %s", n_workers,
                        cluster.scheduler_address)
        else:
            client = _connect(distributed, address)
        token = _ACTIVE.set(client)
        try:
            yield client
        finally:
            _ACTIVE.reset(token)
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
        shutil.rmtree(scratch, ignore_errors=True)


#: glibc allocation settings of local workers (bytes): glibc's own adaptive values at their
#: ceiling (an mmap threshold of 32 MiB, heap trimmed beyond twice that), made explicit.
WORKER_MALLOC = {"MALLOC_MMAP_THRESHOLD_": "33554432", "MALLOC_TRIM_THRESHOLD_": "67108864"}


def _worker_environ() -> dict:
    """Dask's environment for new worker processes, with :data:`WORKER_MALLOC`.

    Dask sets ``MALLOC_TRIM_THRESHOLD_=65536`` so that workers hand freed memory back to the
    system (and writes it into this process's environment, which later workers inherit).
    Setting it also turns off glibc's adaptive ``mmap`` threshold, so every array over
    128 KiB is mapped and unmapped anew and its pages zeroed by the kernel: a hybrid
    ``predict`` range allocates hundreds of such arrays, and the workers spent 40 % of their
    time in the kernel (measured: 17.9 s of system time in a 25 s run on 2 workers, 2.4 s in
    process). Explicit values that do what the adaptive threshold does are given to the
    nanny both in its setting and in the environment (:func:`_environ`: a value already in
    the environment would win over the setting). Our workers run one bounded task after
    another, so the memory they keep is bounded too.
    """
    import dask

    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", None) or {})
    environ.update(WORKER_MALLOC)
    return environ


@contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    """``values`` in this process's environment for the block, then as before. Dask's
    nanny takes a variable of ``pre-spawn-environ`` from the environment when it is set
    there, before its own setting."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _connect(distributed, address: str):
    try:
        client = distributed.Client(address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputDataError(
            f"cannot reach the Dask scheduler {address!r} within {CONNECT_TIMEOUT_S} s "
            f"({type(exc).__name__}: {exc}); check the address (tcp://host:8786), that "
            f"'dask scheduler' runs there and the port is open, or unset {ENV_VAR}"
        ) from None
    n = len(client.scheduler_info().get("workers", {}))
    logger.info("connected to the Dask scheduler %s (%d worker(s))", address, n)
    if n == 0:
        logger.warning("the scheduler %s has no worker yet; tasks wait for one", address)
    return client


def _threads(client) -> int:
    """Threads of the cluster's workers, all together."""
    return sum(w.get("nthreads", 1) for w in client.scheduler_info().get("workers", {}).values())


def _call(job: Callable, item):
    return job(*item) if isinstance(item, tuple) else job(item)


def map_unordered(client, job: Callable, items: Iterable, should_stop: StopFn | None = None,
                  in_flight: int | None = None) -> Iterator[tuple[object, object]]:
    """``(item, job(*item))`` for every item, computed on the cluster, as they finish.

    ``job`` (a picklable callable holding the shared inputs) is scattered to the workers once.
    At most ``in_flight`` tasks are submitted at a time. When the consumer stops early (a
    cancel, an error) every pending task is cancelled.
    """
    from distributed import as_completed

    items = list(items)
    if in_flight is None:
        in_flight = max(2, IN_FLIGHT_PER_THREAD * max(_threads(client), 1))
    shared = client.scatter(job, broadcast=True, hash=False)
    todo = iter(enumerate(items))
    pending: dict = {}
    queue = as_completed()

    def submit_next() -> bool:
        nxt = next(todo, None)
        if nxt is None:
            return False
        i, item = nxt
        fut = client.submit(_call, shared, item, pure=False, retries=1,
                            key=f"gcnn-rnn-{i}-{os.getpid()}-{id(shared)}")
        pending[fut.key] = (fut, item)
        queue.add(fut)
        return True

    try:
        for _ in range(in_flight):
            if not submit_next():
                break
        for fut in queue:
            _, item = pending.pop(fut.key)
            result = fut.result()
            fut.release()
            submit_next()
            yield item, result
            if should_stop is not None and should_stop():
                return
    finally:
        if pending:
            client.cancel([f for f, _ in pending.values()], force=True)
        client.cancel([shared], force=True)


def _step_call(job: Callable, step: Callable, item, state):
    return step(job, *item, state) if isinstance(item, tuple) else step(job, item, state)


def map_chains(client, job, step: Callable, chains: dict, should_stop: StopFn | None = None,
               in_flight: int | None = None) -> Iterator[tuple[object, object, object]]:
    """Chains of tasks on the cluster, ``(item, state, output)`` as each task finishes.

    ``chains`` maps each item to ``(state, tasks)``: its first state and how many tasks it
    runs. A task is ``step(job, *item, state)`` → ``(state, output)``, and the next task of
    its chain starts from the state it returns. The client passes each state on, so every
    task carries all of its inputs: a task lost with its worker is retried elsewhere with
    the same inputs, and gives the same floats. The outputs of one chain arrive in order.
    At most ``in_flight`` chains run at once (default: the cluster's threads). When the
    consumer stops early (a cancel, an error), the running tasks are cancelled.
    """
    from distributed import as_completed

    if in_flight is None:
        in_flight = max(1, _threads(client))
    shared = client.scatter(job, broadcast=True, hash=False)
    todo = iter(chains.items())
    pending: dict = {}
    queue = as_completed()
    count = [0]

    def submit(item, state, left: int) -> None:
        with warnings.catch_warnings():
            # the state travels in the task on purpose (a scattered one dies with its worker)
            warnings.filterwarnings("ignore", message="Sending large graph")
            fut = client.submit(_step_call, shared, step, item, state, pure=False, retries=1,
                                key=f"gcnn-rnn-chain-{count[0]}-{os.getpid()}-{id(shared)}")
        count[0] += 1
        pending[fut.key] = (fut, item, left - 1)
        queue.add(fut)

    def start_next() -> None:
        nxt = next(todo, None)
        if nxt is not None:
            item, (state, tasks) = nxt
            if tasks > 0:
                submit(item, state, tasks)

    try:
        for _ in range(in_flight):
            start_next()
        for fut in queue:
            _, item, left = pending.pop(fut.key)
            state, output = fut.result()
            fut.release()
            if left > 0:
                submit(item, state, left)
            else:
                start_next()
            yield item, state, output
            if should_stop is not None and should_stop():
                return
    finally:
        if pending:
            client.cancel([f for f, _, _ in pending.values()], force=True)
        client.cancel([shared], force=True)
