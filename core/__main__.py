"""``python -m gcnn_rnn.core`` runs the ``gcnn-rnn`` command line."""

import sys

from .cli.main import main

sys.exit(main())
