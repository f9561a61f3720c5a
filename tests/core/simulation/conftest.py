"""The simulation tests share helpers through ``sim_helpers.py`` beside this file."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # the tests import the helper module beside this file
    sys.path.insert(0, str(HERE))
