"""scikit-learn's estimator protocol for :class:`~.estimator.HybridRegressor`, without
importing scikit-learn.

Importing ``sklearn.base`` loads ``scipy.stats`` and takes about 0.8 s, which every engine
command that loads a model paid before it did any work (a third of a small ``predict``).
scikit-learn does not require estimators to inherit from its classes: ``clone``, grid
searches and pipelines use ``get_params``/``set_params`` and the estimator's tags. This
mixin implements them as ``BaseEstimator`` and ``RegressorMixin`` do: the parameters are
the constructor's arguments, stored under their own names; the tags (asked for by
scikit-learn only, so it is loaded by then) are those of a regressor.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np


class RegressorParams:
    """``get_params``, ``set_params``, ``score`` (R²), tags and ``repr`` of a regressor whose
    constructor stores each argument under its own name."""

    _estimator_type = "regressor"

    @classmethod
    def _get_param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        names = [p.name for p in signature.parameters.values()
                 if p.name != "self" and p.kind != p.VAR_KEYWORD]
        if any(p.kind == p.VAR_POSITIONAL for p in signature.parameters.values()):
            raise TypeError(f"{cls.__name__} must not take *args (scikit-learn convention)")
        return sorted(names)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's arguments as set; with ``deep``, also ``name__sub`` of those
        that are estimators themselves."""
        out: dict[str, Any] = {}
        for name in self._get_param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update((f"{name}__{k}", v) for k, v in value.get_params().items())
            out[name] = value
        return out

    def set_params(self, **params: Any):
        """Set constructor arguments (``name__sub`` for a nested estimator's); returns self."""
        valid = self.get_params(deep=True)
        nested: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            name, sep, sub = key.partition("__")
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for estimator "
                                 f"{type(self).__name__}; valid parameters are "
                                 f"{sorted(self._get_param_names())!r}")
            if sep:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
                valid[name] = value
        for name, sub_params in nested.items():
            valid[name].set_params(**sub_params)
        return self

    def score(self, X, y, sample_weight=None) -> float:
        """Coefficient of determination R² of ``predict(X)`` against ``y``."""
        y = np.asarray(y, dtype=float).ravel()
        pred = np.asarray(self.predict(X), dtype=float).ravel()
        w = np.ones_like(y) if sample_weight is None else np.asarray(sample_weight, float)
        mean = np.average(y, weights=w)
        total = float(np.sum(w * (y - mean) ** 2))
        resid = float(np.sum(w * (y - pred) ** 2))
        if total == 0.0:
            return 1.0 if resid == 0.0 else 0.0
        return 1.0 - resid / total

    def __sklearn_tags__(self):
        from sklearn.utils import RegressorTags, Tags, TargetTags

        return Tags(estimator_type="regressor", target_tags=TargetTags(required=True),
                    regressor_tags=RegressorTags())

    def __repr__(self) -> str:
        defaults = {name: p.default for name, p in
                    inspect.signature(type(self).__init__).parameters.items()}
        changed = []
        for name in self._get_param_names():
            value = getattr(self, name, None)
            default = defaults.get(name, inspect.Parameter.empty)
            try:
                same = bool(value == default)
            except Exception:  # arrays and the like: shown
                same = False
            if not same:
                changed.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(changed)})"
