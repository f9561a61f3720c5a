"""The ``gcnn-rnn`` command line: one module per subcommand, shared options in ``options``."""
