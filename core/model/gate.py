"""The do-no-harm gate: how much of the network's correction of its base to keep.

The hybrid predicts ``base + w * correction``. The weight ``w`` in [0, 1] comes from the
out-of-fold predictions on the training data (each sample predicted by the ensemble member
that held it out): the least-squares factor of ``observed - base ≈ w * correction``, clipped
to [0, 1]. Fitted on the same residuals it is judged on, that factor always looks at least as
good as the base, so the decision is cross-validated as well: ``w`` is refitted with each
spatial validation group left out and applied to that group. When these gated out-of-fold
predictions do not lower the base's error, ``w = 0`` and the hybrid returns the base exactly
(and says so, :func:`gate_message`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

#: Fewest out-of-fold samples for a decision; with fewer the gate returns the base.
MIN_OUT_OF_FOLD = 10


def check_stack(stack: bool, gate: bool) -> None:
    """Refuse ``--stack`` with the gate on: both set the weight of the correction, and the
    gate's (cross-validated, in [0, 1]) would silently replace the stacking factor.

    Raises
    ------
    InputDataError
        ``stack`` and ``gate`` both true.
    """
    if stack and gate:
        from ..errors import InputDataError

        raise InputDataError(
            "--stack has no effect while the do-no-harm gate is on (the gate already fits "
            "the weight of the network's correction, clipped to [0, 1], and checks it by "
            "cross-validation): drop --stack, or add --no-gate to rescale the correction "
            "by --stack's factor (clipped to [0, 1.5]) without that check")


@dataclass(frozen=True)
class GateDecision:
    """The gate's weight and the inner-CV errors (transformed units) it was decided on."""

    weight: float
    base: str
    base_rmse: float
    hybrid_rmse: float  # the network's full correction (w = 1), out of fold
    gated_rmse: float  # w refitted without each group, out of fold
    n: int

    @property
    def kept(self) -> bool:
        """True when some of the correction is kept."""
        return self.weight > 0.0

    def to_dict(self) -> dict:
        """JSON-safe form (bundle, report) with the plain-words message."""
        doc = {k: (float(v) if isinstance(v, float) and np.isfinite(v) else
                   None if isinstance(v, float) else v) for k, v in asdict(self).items()}
        return {**doc, "kept": self.kept, "message": gate_message(self)}


def _ls_weight(resid: np.ndarray, corr: np.ndarray) -> float:
    denom = float(np.dot(corr, corr))
    if not np.isfinite(denom) or denom <= 0.0:
        return 0.0
    return float(np.clip(np.dot(resid, corr) / denom, 0.0, 1.0))


def _rmse(e: np.ndarray) -> float:
    return float(np.sqrt(np.mean(e * e))) if e.size else float("nan")


def gate_weight(observed: np.ndarray, oof: np.ndarray, base: np.ndarray, groups: np.ndarray,
                base_name: str = "OK") -> GateDecision:
    """Decide the weight of the correction ``oof - base`` from out-of-fold predictions.

    Parameters
    ----------
    observed, oof, base : ndarray, shape (n,)
        Observed values, the hybrid's out-of-fold predictions and the base's leave-one-out
        predictions at the same samples (transformed units).
    groups : ndarray of int, shape (n,)
        Spatial validation group of each sample (the weight is cross-validated over them).
    base_name : str
        The base's name for the message (``"OK"``, ``"KED"``).
    """
    y, p, b = (np.asarray(a, dtype=float) for a in (observed, oof, base))
    g = np.asarray(groups)
    ok = np.isfinite(y) & np.isfinite(p) & np.isfinite(b)
    y, p, b, g = y[ok], p[ok], b[ok], g[ok]
    resid, corr = y - b, p - b
    base_rmse, hybrid_rmse = _rmse(resid), _rmse(resid - corr)
    if y.size < MIN_OUT_OF_FOLD:
        return GateDecision(0.0, base_name, base_rmse, hybrid_rmse, base_rmse, int(y.size))
    gated = np.empty_like(y)
    labels = np.unique(g)
    for lab in labels:
        out = g == lab
        w = _ls_weight(resid[~out], corr[~out]) if labels.size > 1 else _ls_weight(resid, corr)
        gated[out] = b[out] + w * corr[out]
    gated_rmse = _rmse(y - gated)
    weight = _ls_weight(resid, corr) if gated_rmse < base_rmse else 0.0
    return GateDecision(weight, base_name, base_rmse, hybrid_rmse, gated_rmse, int(y.size))


def gate_message(d: GateDecision) -> str:
    """Plain words for the log, the report and the QGIS log."""
    if not d.kept:
        return (f"the network did not improve on {d.base} for these data: the prediction "
                f"equals {d.base} (inner cross-validation RMSE {d.base} {d.base_rmse:.4g}, "
                f"with the network's correction {d.gated_rmse:.4g})")
    return (f"the network improves on {d.base} for these data: {100 * d.weight:.2g} % of its "
            f"correction is kept (inner cross-validation RMSE {d.gated_rmse:.4g} against "
            f"{d.base}'s {d.base_rmse:.4g})")
