"""``python -m gcnn_rnn.core`` runs the ``gcnn-rnn`` command line."""

_early: list[int] = []

# Guarded: Dask's local worker processes are spawned, and re-import this module under
# another name; they must not run the command line again (nor take its signals).
if __name__ == "__main__":
    # A cancel that arrives while Python starts and imports (seconds on a busy machine) must
    # end as a cancel (exit 130, nothing written), not as a kill by the default handler.
    from .cli.startup_signals import record_signals

    _early = record_signals()

from .cli.main import main  # noqa: E402 - after the early handlers, on purpose

if __name__ == "__main__":
    from .cli.main import exit_process

    exit_process(130 if _early else main(early_signals=_early))
