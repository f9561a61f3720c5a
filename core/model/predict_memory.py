"""The memory guard of ``predict``: checked before any per-target array is built.

A prediction holds, for every target, its coordinates, covariates and every output layer
(``predict_full`` concatenates the chunks), and, for one chunk of
:data:`~.estimator.PREDICT_CHUNK` targets at a time, the kriging features (``k`` neighbours
by a few channels, in float64 and float32 copies) and the network's inputs. Measured as the
growth of the peak RSS (VmHWM) of ``predict --points`` between 2,000, 70,000 and 270,000
points on Meuse (see ``tests/core/reliability/test_predict_memory.py``):

* per target: about 350 bytes + 147 per ensemble member (fitted to 498 bytes with one member
  and 8 neighbours, 793 with three members and 24 neighbours);
* per target of a chunk: about 1,250 bytes at 8 neighbours, and 237 more per further
  neighbour (5,040 at 24).

Two configurations fit four constants, so how the growth splits between members and
neighbours is an assumption; the test checks a third one (a bundle with a covariate).

A grid is streamed range by range, so only the chunk part applies, twice: the features of
the next range are computed while the network runs on this one (``tiles.run_ranges``).
"""

from __future__ import annotations

from ..errors import GridTooLargeError

#: Bytes per predicted target that stay until the output is written.
BYTES_PER_TARGET = 350
#: ... and per ensemble member.
BYTES_PER_TARGET_MEMBER = 147
#: Bytes per target of the chunk being featurised, at :data:`CHUNK_NEIGHBOURS` neighbours.
CHUNK_BYTES_PER_TARGET = 1250
CHUNK_NEIGHBOURS = 8
#: ... and per further neighbour.
CHUNK_BYTES_PER_NEIGHBOUR = 237


def predict_bytes(n_targets: int, neighbours: int, members: int, chunk: int,
                  streamed: bool = False) -> int:
    """Estimated growth of the peak memory of predicting ``n_targets`` (``streamed``: a grid
    written range by range, which keeps only one chunk)."""
    in_chunk = min(n_targets, chunk)
    per_chunk = CHUNK_BYTES_PER_TARGET + CHUNK_BYTES_PER_NEIGHBOUR * max(
        0, neighbours - CHUNK_NEIGHBOURS)
    held = 0 if streamed else n_targets * (BYTES_PER_TARGET + BYTES_PER_TARGET_MEMBER * members)
    chunks = 2 if streamed and n_targets > chunk else 1
    return int(held + chunks * in_chunk * per_chunk)


def check_predict_memory(estimator, n_targets: int, max_bytes: int,
                         streamed: bool = False) -> int:
    """Refuse (before building anything) a prediction whose arrays need more than
    ``max_bytes``; returns the estimate."""
    from .estimator import PREDICT_CHUNK

    need = predict_bytes(n_targets, int(estimator.feature_config_.neighbours),
                         int(getattr(estimator, "ensemble", 1) or 1), PREDICT_CHUNK, streamed)
    if need > max_bytes:
        raise GridTooLargeError(
            f"predicting {n_targets:,} target(s) needs about {need / 1024**3:.2f} GiB for its "
            f"features and outputs, over --max-memory-gb {max_bytes / 1024**3:.2f}; predict "
            "fewer points at once (split the file) or raise --max-memory-gb"
        )
    return need
