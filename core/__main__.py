"""``python -m gcnn_rnn.core`` runs the ``gcnn-rnn`` command line."""

import sys

from .cli.main import main

# Guarded: Dask's local worker processes are spawned, and re-import this module under
# another name; they must not run the command line again.
if __name__ == "__main__":
    sys.exit(main())
