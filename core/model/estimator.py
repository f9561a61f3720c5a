"""``HybridRegressor``: kriging features → batched Conv1D/BiLSTM ensemble, sklearn-compatible.

``fit(coords, values)`` transforms the values, fits the variogram (``"auto"``) on them,
computes leave-one-out kriging features at every sample, trains the ensemble on the residual
from ordinary kriging and calibrates split-conformal intervals on its out-of-fold residuals.
``predict(coords)`` returns predictions in data units; :meth:`HybridRegressor.predict_full`
returns every layer of the ``predict`` command (kriging estimate and variance, prediction
standard deviation, interval bounds, exceedance probability).

Everything learnt from data (transform, variogram, scalers, calibration) comes from the
training samples given to ``fit`` only, so the estimator can sit inside any cross-validation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import InputDataError
from ..features import (
    CoFieldEncoding,
    FeatureConfig,
    FeatureSet,
    Scaler,
    compute_features,
    encode_co_fields,
    fit_co_field_encoding,
    leave_out_groups,
    sample_covariates,
)
from ..progress import ProgressFn, StopFn, check_cancel, scaled
from .config import ModelConfig, TrainConfig
from .conformal import calibrate
from .sklearn_protocol import RegressorParams

logger = logging.getLogger(__name__)

#: Fewest samples the hybrid model accepts (LOO features, inner spatial validation groups).
MIN_SAMPLES = 20
#: Candidate models of ``variogram="auto"`` (the same as the ``cv`` command's OK default, so
#: that OK and the hybrid compared in cross-validation use the same variogram in each fold).
AUTO_MODELS = ("sph", "exp", "gau", "mat")
#: Targets per prediction chunk (features + network).
PREDICT_CHUNK = 65536


def resolve_variogram(spec, coords: np.ndarray, values: np.ndarray, select: str = "cv",
                      neighbours: int = 32):
    """A :class:`VariogramModel` from ``spec``: a model, ``"auto"``, a ``V.json`` or text.

    ``"auto"`` fits :data:`AUTO_MODELS` (gstat-like experimental variogram, N_j/h_j²
    weights) to ``values`` at ``coords`` and keeps the candidate with the lowest kriging
    cross-validation RMSE with ``neighbours`` (``select="cv"``) or the lowest SSE — the
    caller passes training data only.
    """
    return resolve_fitted_variogram(spec, coords, values, select, neighbours)[0]


def resolve_fitted_variogram(spec, coords: np.ndarray, values: np.ndarray, select: str = "cv",
                             neighbours: int = 32, should_stop: StopFn | None = None):
    """``(model, FittedVariogram or None)``: as :func:`resolve_variogram`, with the fit (every
    candidate's SSE, CV RMSE and MSDR) when ``spec`` is ``"auto"``."""
    from ..variogram import VariogramModel
    from ..variogram.io import load_variogram

    if isinstance(spec, VariogramModel):
        return spec, None
    text = "auto" if spec is None else str(spec).strip()
    if text.lower() != "auto":
        return load_variogram(text), None
    from ..variogram.fit import auto_variogram

    fitted = auto_variogram(coords, values, AUTO_MODELS, select=select or "cv",
                            neighbours=int(neighbours), should_stop=should_stop)
    return fitted.model, fitted


@dataclass(frozen=True)
class Targets:
    """Prediction targets: coordinates, covariate/co-field columns (None without), and, once
    computed, their kriging features."""

    coords: np.ndarray
    extra: np.ndarray | None
    features: FeatureSet | None = None


@dataclass(frozen=True)
class Prediction:
    """Everything the hybrid model predicts at a set of targets.

    Data units (back-transformed): ``prediction``, ``kriging_estimate``,
    ``kriging_variance``, ``prediction_std``, ``interval_lower``, ``interval_upper``,
    ``exceedance_probability`` (None without a threshold). Transformed units (``*_t``):
    ``prediction_t``, ``sigma_t`` (combined ensemble/kriging standard deviation),
    ``ensemble_std_t``, ``members_t`` ``(n, M)``.
    """

    prediction: np.ndarray
    kriging_estimate: np.ndarray
    kriging_variance: np.ndarray
    prediction_std: np.ndarray
    interval_lower: np.ndarray
    interval_upper: np.ndarray
    exceedance_probability: np.ndarray | None
    prediction_t: np.ndarray
    sigma_t: np.ndarray
    ensemble_std_t: np.ndarray
    ok_estimate_t: np.ndarray
    ok_variance_t: np.ndarray
    members_t: np.ndarray

    LAYERS = ("prediction", "kriging_estimate", "kriging_variance", "prediction_std",
              "interval_lower", "interval_upper", "exceedance_probability")


class HybridRegressor(RegressorParams):
    """The GCNN-RNN hybrid: ordinary kriging plus a learnt correction with honest intervals.

    Parameters
    ----------
    transform : {"none", "log", "nscore"}
    variogram : "auto", a text form, a JSON path or a VariogramModel
    neighbours : int
        Length of the neighbour sequence (default 16).
    kriging_neighbours : int
        Neighbourhood of the kriging behind the features (default 32; 0 = all samples).
    coordinates : bool
        Use the coordinates as features.
    covariates : tuple of str
        Raster covariates (paths; same CRS as the points, given by ``crs``).
    co_fields : tuple of str
        Co-located fields; ``fit``/``predict`` then need ``attributes``.
    crs : str, optional
        CRS (WKT or ``EPSG:n``) of the coordinates, checked against the covariate rasters.
    ensemble, epochs, batch_size, learning_rate, patience, seed :
        Training settings (:class:`~.config.TrainConfig`, ``ensemble`` = members).
    target : {"residual", "value"}
    loss : {"huber", "mse"}
    alpha : float
        Interval miscoverage (0.1: 90 % intervals).
    augment : int
        Extra copies of the training set with sparser leave-one-out neighbourhoods
        (:class:`~.config.TrainConfig`).
    leave_out : {"auto", "sample", "column"}
        What the training features of a sample leave out: itself, or its whole drill hole
        (3D samples sharing x, y; ``auto`` detects them). See
        :class:`~gcnn_rnn.core.features.FeatureConfig`.
    stack : bool
        Scale the network's correction of kriging by the factor that best fits the
        out-of-fold residuals (least squares, clipped to [0, 1.5]); 1 = as trained, 0 = OK.
        Off by default: on Meuse it shrank the (averaged) correction too much. Needs
        ``gate=False`` (both set the correction's weight; ``fit`` refuses the pair).
    gate : bool
        The do-no-harm gate (default on, :mod:`.gate`): keep the share of the network's
        correction (a weight in [0, 1]) that lowers the cross-validated error of the
        out-of-fold predictions; 0 when it does not, and the prediction is then the base's.
    base : {"auto", "ok", "ked"}
        The classical predictor the network corrects (:mod:`.base`): ordinary kriging, or
        kriging with an external drift in the covariate rasters; ``auto`` (default) takes KED
        when covariates are given and its leave-one-out RMSE on the training samples is
        clearly lower than OK's.
    variogram_select : {"cv", "sse"}
        How ``variogram="auto"`` picks among its candidates: kriging cross-validation with
        ``kriging_neighbours`` (default) or weighted SSE.
    model_options : dict, optional
        Further :class:`~.config.ModelConfig` fields (architecture).
    train_options : dict, optional
        Further :class:`~.config.TrainConfig` fields (e.g. ``early_stopping``).
    feature_options : dict, optional
        Further :class:`~gcnn_rnn.core.features.FeatureConfig` fields (``covariate_sequence``,
        ``multiscale``).
    """

    def __init__(self, transform="none", variogram="auto", neighbours=16, kriging_neighbours=32,
                 coordinates=False, covariates=(), co_fields=(), crs=None, ensemble=5,
                 epochs=60, batch_size=64, learning_rate=5e-3, patience=12, seed=0,
                 target="residual", loss="huber", alpha=0.1, augment=0, stack=False,
                 leave_out="auto", model_options=None, train_options=None,
                 feature_options=None, gate=True, variogram_select="cv", base="auto"):
        self.transform = transform
        self.variogram = variogram
        self.neighbours = neighbours
        self.kriging_neighbours = kriging_neighbours
        self.coordinates = coordinates
        self.covariates = covariates
        self.co_fields = co_fields
        self.crs = crs
        self.ensemble = ensemble
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.patience = patience
        self.seed = seed
        self.target = target
        self.loss = loss
        self.alpha = alpha
        self.augment = augment
        self.stack = stack
        self.leave_out = leave_out
        self.model_options = model_options
        self.train_options = train_options
        self.feature_options = feature_options
        self.gate = gate
        self.variogram_select = variogram_select
        self.base = base

    # ----------------------------------------------------------------- configs
    def _configs(self) -> tuple[FeatureConfig, ModelConfig, TrainConfig]:
        fcfg = FeatureConfig(
            neighbours=int(self.neighbours), kriging_neighbours=int(self.kriging_neighbours),
            coordinates=bool(self.coordinates), covariates=tuple(self.covariates or ()),
            co_fields=tuple(self.co_fields or ()), leave_out=str(self.leave_out or "auto"),
            **dict(self.feature_options or {}),
        )
        mcfg = ModelConfig(members=int(self.ensemble), target=self.target, loss=self.loss,
                           **dict(self.model_options or {}))
        tcfg = TrainConfig(epochs=int(self.epochs), batch_size=int(self.batch_size),
                           learning_rate=float(self.learning_rate), patience=int(self.patience),
                           seed=int(self.seed), augment=int(self.augment),
                           **dict(self.train_options or {}))
        return fcfg, mcfg, tcfg

    # ----------------------------------------------------------------- fit
    def fit(self, X, y, attributes: pd.DataFrame | None = None,
            progress: ProgressFn | None = None, should_stop: StopFn | None = None):
        """Fit on sample coordinates ``X (n, 2|3)`` and values ``y (n,)`` (data units).

        Raises
        ------
        InputDataError
            Too few samples, a constant field, bad transform input, covariates that do not
            cover the samples or are in another CRS, missing co-fields.
        """
        from ..transforms import fit_transform
        from .gate import check_stack

        check_stack(bool(self.stack), bool(self.gate))
        coords = np.ascontiguousarray(np.asarray(X, dtype=float))
        values = np.asarray(y, dtype=float).ravel()
        _check_training_data(coords, values, int(self.neighbours))
        fcfg, mcfg, tcfg = self._configs()
        if fcfg.co_fields and attributes is None:
            raise InputDataError(f"co-fields {list(fcfg.co_fields)!r} need the samples' attributes")
        self._check_memory(coords, fcfg, tcfg)
        check_cancel(should_stop)
        ft = fit_transform(values, self.transform)
        yt = ft.forward(values)
        if np.ptp(yt) <= 0:
            raise InputDataError("the transformed values are all equal; nothing to model")
        model, fitted = resolve_fitted_variogram(self.variogram, coords, yt,
                                                 self.variogram_select,
                                                 int(self.kriging_neighbours), should_stop)
        self.variogram_fit_ = None if fitted is None else fitted.to_dict()
        self.transform_, self.variogram_ = ft, model
        self.coords_, self.values_, self.values_t_ = coords, values, yt
        self.feature_config_, self.model_config_, self.train_config_ = fcfg, mcfg, tcfg

        extra, names = self._training_extra(coords, attributes)
        self.sample_extra_ = np.zeros((len(coords), 0)) if extra is None else extra
        groups = leave_out_groups(coords, fcfg.leave_out)
        self.leave_out_ = "sample" if groups is None else "column"
        feats = compute_features(coords, yt, coords, model, fcfg, exclude_self=True,
                                 extra=extra, extra_names=names, sample_extra=extra,
                                 groups=groups, progress=scaled(progress, 0.0, 0.1),
                                 should_stop=should_stop)
        feats = self._choose_base(coords, yt, extra, feats, groups)
        augmented = self._augmented(coords, yt, model, extra, names, should_stop, groups)
        self._fit_network(feats, yt, augmented, progress=scaled(progress, 0.1, 1.0),
                          should_stop=should_stop)
        return self

    @staticmethod
    def _check_memory(coords: np.ndarray, fcfg: FeatureConfig, tcfg: TrainConfig) -> None:
        """Refuse a training set that would not fit in memory before any work is done."""
        from ..kriging.dense import available_bytes
        from .train import check_training_memory

        d = coords.shape[1]
        n_extra = len(fcfg.covariates) + len(fcfg.co_fields)  # at least one column each
        n_seq = 4 + d + (2 * n_extra if fcfg.covariate_sequence else 0)
        n_static = 6 + 4 * int(fcfg.multiscale) + d * int(fcfg.coordinates) + 3 * n_extra
        rows = len(coords) * (1 + int(tcfg.augment))
        check_training_memory(rows, int(fcfg.neighbours) * n_seq + n_static,
                              int(fcfg.kriging_neighbours) or len(coords), available_bytes())

    def _augmented(self, coords, yt, model, extra, names, should_stop, groups=None) -> list:
        """Extra training examples: leave-one-out features with a random quarter of the
        other samples also left out (sparser neighbourhoods), ``augment`` times.

        Returns a list of ``(FeatureSet, sample_index)``; no example ever sees its own value.
        """
        tcfg, fcfg = self.train_config_, self.feature_config_
        out = []
        rng = np.random.default_rng(tcfg.seed + 7919)
        n = len(yt)
        for _ in range(int(tcfg.augment)):
            check_cancel(should_stop)
            keep = rng.random(n) >= tcfg.augment_drop
            if keep.sum() < fcfg.neighbours + 2 or keep.all():
                continue
            kept, dropped = np.flatnonzero(keep), np.flatnonzero(~keep)
            f1 = compute_features(coords[kept], yt[kept], coords[kept], model, fcfg,
                                  exclude_self=True,
                                  groups=None if groups is None else groups[kept],
                                  extra=None if extra is None else extra[kept],
                                  extra_names=names,
                                  sample_extra=None if extra is None else extra[kept])
            f2 = compute_features(coords[kept], yt[kept], coords[dropped], model, fcfg,
                                  extra=None if extra is None else extra[dropped],
                                  extra_names=names,
                                  sample_extra=None if extra is None else extra[kept])
            if self.base_.name == "ked":
                f1, f2 = self._ked_features(f1, f2, coords, yt, extra, kept, dropped, groups)
            out.append((_concat_features(f1, f2), np.concatenate([kept, dropped])))
        return out

    def _choose_base(self, coords, yt, extra, feats: FeatureSet, groups) -> FeatureSet:
        """Choose OK or KED on the training samples (:func:`.base.choose_base`); with KED the
        features carry its leave-one-out estimate and variance instead of OK's."""
        from .base import choose_base, with_base

        n_cov = len(self.feature_config_.covariates)
        drift = extra[:, :n_cov] if n_cov else None
        base, est, var, trend = choose_base(str(self.base or "auto"), coords, yt, drift,
                                            feats.ok_estimate, int(self.kriging_neighbours),
                                            self.variogram_select, groups)
        self.base_ = base
        return feats if base.name == "ok" else with_base(feats, est, var, trend)

    def _ked_features(self, f1, f2, coords, yt, extra, kept, dropped, groups):
        """Augmented examples with a KED base: KED from the kept samples only (leave-one-out
        among them for ``f1``; at the dropped samples for ``f2``)."""
        from ..kriging.drift import krige_external_drift
        from .base import drift_design, drift_part_loo, ked_at_samples, with_base

        b = self.base_
        drift = b.drift_columns(extra)
        k = self._ked_neighbours()
        est1, var1 = ked_at_samples(coords[kept], yt[kept], drift[kept], b.model, k,
                                    None if groups is None else groups[kept])
        trend1, beta = drift_part_loo(yt[kept], drift[kept])
        res = krige_external_drift(coords[kept], yt[kept], drift[kept], coords[dropped],
                                   drift[dropped], b.model, neighbours=k)
        return (with_base(f1, est1, var1, trend1),
                with_base(f2, res.estimate, res.variance, drift_design(drift[dropped]) @ beta))

    def _ked_neighbours(self) -> int:
        k = int(self.kriging_neighbours)
        return k if k == 0 else max(k, self.base_.n_drift + 2)

    def _training_extra(self, coords, attributes):
        fcfg = self.feature_config_
        cols, names = [], []
        if fcfg.covariates:
            cols.append(sample_covariates(fcfg.covariates, coords, self.crs, "samples"))
            names.extend(f"covariate:{p}" for p in fcfg.covariates)
        self.co_encoding_ = CoFieldEncoding()
        self.co_values_ = np.zeros((len(coords), 0))
        self.co_models_ = ()
        if fcfg.co_fields:
            enc = fit_co_field_encoding(attributes, fcfg.co_fields)
            vals = encode_co_fields(attributes, enc, "samples")
            self.co_encoding_, self.co_values_ = enc, vals
            self.co_models_ = tuple(_co_field_model(coords, vals[:, j])
                                    for j in range(vals.shape[1]))
            cols.append(vals)
            names.extend(f"co:{n}" for n in enc.names)
        if not cols:
            return None, []
        return np.column_stack(cols), names

    def _raw_target(self, feats: FeatureSet, yt: np.ndarray) -> np.ndarray:
        target = self.model_config_.target
        if target == "value":
            return yt
        raw = yt - feats.ok_estimate
        return raw / _ok_std(feats) if target == "standardised" else raw

    def _fit_network(self, feats: FeatureSet, yt: np.ndarray, augmented=(), progress=None,
                     should_stop=None):
        from .train import spatial_groups, train_ensemble

        mcfg, tcfg = self.model_config_, self.train_config_
        raw = self._raw_target(feats, yt)
        if mcfg.target == "value":
            self.target_scaler_ = Scaler.fit(yt[:, None])
        else:
            self.target_scaler_ = Scaler((0.0,), (float(np.std(raw)) or 1.0,))  # 0 stays OK
        self.sequence_scaler_ = Scaler.fit(feats.sequence)
        self.static_scaler_ = Scaler.fit(feats.static)
        self.feature_names_ = {"sequence": list(feats.sequence_names),
                               "static": list(feats.static_names)}
        inputs = self._scaled_inputs(feats)
        target = self.target_scaler_.transform(raw[:, None])[:, 0]
        groups = spatial_groups(self.coords_, tcfg.validation_folds, tcfg.block_size, tcfg.seed)
        self.input_shapes_ = (int(inputs["sequence"].shape[1]), int(inputs["sequence"].shape[2]),
                              int(inputs["static"].shape[1]))
        all_inputs, all_target, all_groups = dict(inputs), [target], [groups]
        for aug, idx in augmented:
            more = self._scaled_inputs(aug)
            for key in all_inputs:
                all_inputs[key] = np.concatenate([all_inputs[key], more[key]])
            all_target.append(self.target_scaler_.transform(
                self._raw_target(aug, yt[idx])[:, None])[:, 0])
            all_groups.append(groups[idx])
        result, weights = train_ensemble(all_inputs, np.concatenate(all_target),
                                         np.concatenate(all_groups), mcfg, tcfg,
                                         progress=progress, should_stop=should_stop)
        from dataclasses import replace

        result = replace(result, validation_member=result.validation_member[: len(yt)])
        self.weights_, self.train_result_ = weights, result
        # Out-of-fold calibration: each sample predicted by the member that held it out.
        self.shrinkage_ = 1.0
        members = self._members_t(feats, inputs)
        held = result.validation_member
        rows = np.flatnonzero(held >= 0)
        oof = np.full(len(yt), np.nan)
        oof[rows] = members[rows, held[rows]]
        self.gate_ = None
        if self.gate:
            from .gate import gate_message, gate_weight

            decision = gate_weight(yt[rows], oof[rows], feats.ok_estimate[rows], groups[rows],
                                   base_name=self._base().label)
            self.shrinkage_ = decision.weight
            self.gate_ = decision.to_dict()
            (logger.info if decision.kept else logger.warning)("%s", gate_message(decision))
        elif self.stack and mcfg.target != "value" and rows.size >= 10:
            self.shrinkage_ = _shrinkage(yt[rows], oof[rows], feats.ok_estimate[rows])
        # the network's own out-of-fold error, before any gate (a diverged network is refused
        # even when the gate would hide it: bundle_checks.check_metrics)
        net_rmse = float(np.sqrt(np.mean((yt[rows] - oof[rows]) ** 2)))
        if self.shrinkage_ != 1.0:  # the final predictor: base + weight x correction
            ok = feats.ok_estimate
            members = ok[:, None] + self.shrinkage_ * (members - ok[:, None])
            oof = ok + self.shrinkage_ * (oof - ok)
        sigma = self._sigma(members, feats.ok_variance)
        self.calibration_ = calibrate(yt, oof, sigma, float(self.alpha))
        base_err = yt[rows] - feats.ok_estimate[rows]
        ok_err = yt[rows] - feats.static[rows, 0] if self._base().name == "ked" else base_err
        hy_err = yt[rows] - oof[rows]
        lower, upper = self.calibration_.interval(oof[rows], sigma[rows])
        self.training_metrics_ = {
            "n_out_of_fold": int(rows.size),
            "ok_loo_rmse": float(np.sqrt(np.mean(ok_err**2))),
            "hybrid_oof_rmse": float(np.sqrt(np.mean(hy_err**2))),
            "network_oof_rmse": net_rmse,
            "oof_coverage": float(np.mean((yt[rows] >= lower) & (yt[rows] <= upper))),
            "base": self._base().to_dict(),
            "base_loo_rmse": float(np.sqrt(np.mean(base_err**2))),
            "shrinkage": float(self.shrinkage_),
            "gate": self.gate_,
            "leave_out": getattr(self, "leave_out_", "sample"),
            "units": "transformed",
        }
        logger.info(
            "hybrid out-of-fold RMSE %.4g vs %s leave-one-out %.4g (transformed units, n=%d)",
            self.training_metrics_["hybrid_oof_rmse"], self._base().label,
            self.training_metrics_["base_loo_rmse"], rows.size,
        )

    def _base(self):
        """The fitted base (OK for bundles written before bases existed)."""
        from .base import Base

        base = getattr(self, "base_", None)
        return base if base is not None else Base()

    # ----------------------------------------------------------------- internals
    def _scaled_inputs(self, feats: FeatureSet, clip: bool = False) -> dict[str, np.ndarray]:
        return {"sequence": self.sequence_scaler_.transform(feats.sequence, clip=clip),
                "static": self.static_scaler_.transform(feats.static, clip=clip)}

    def _members_t(self, feats: FeatureSet, inputs=None) -> np.ndarray:
        """Each member's prediction in transformed units, shape ``(n, M)``."""
        ok = feats.ok_estimate[:, None]
        weight = float(getattr(self, "shrinkage_", 1.0))
        if weight == 0.0:  # the gate closed: exactly the base, the network is not evaluated
            return np.repeat(ok, int(self.model_config_.members), axis=1)
        inputs = self._scaled_inputs(feats, clip=True) if inputs is None else inputs
        out = self._forward()(inputs, threads=_threads())
        scale, shift = self.target_scaler_.scale[0], self.target_scaler_.mean[0]
        raw = out.astype(np.float64) * scale + shift
        if self.model_config_.target == "residual":
            pred = ok + raw
        elif self.model_config_.target == "standardised":
            pred = ok + raw * _ok_std(feats)[:, None]
        else:
            pred = raw
        return pred if weight == 1.0 else ok + weight * (pred - ok)

    @staticmethod
    def _sigma(members: np.ndarray, ok_variance: np.ndarray) -> np.ndarray:
        ens_var = members.var(axis=1) if members.shape[1] > 1 else np.zeros(len(members))
        return np.sqrt(ens_var + np.clip(ok_variance, 0.0, None))

    def _target_extra(self, coords, attributes, allow_missing: bool):
        fcfg = self.feature_config_
        cols = []
        if fcfg.covariates:
            cols.append(sample_covariates(fcfg.covariates, coords, self.crs, "targets",
                                          allow_missing=allow_missing))
        if fcfg.co_fields:
            if attributes is not None:
                cols.append(encode_co_fields(attributes, self.co_encoding_, "target points"))
            else:
                cols.append(self._krige_co_fields(coords))
        return np.column_stack(cols) if cols else None

    def _krige_co_fields(self, coords: np.ndarray) -> np.ndarray:
        from ..kriging import KrigingConfig, krige

        out = np.empty((len(coords), self.co_values_.shape[1]))
        kcfg = KrigingConfig(neighbours=min(32, len(self.coords_)))
        for j, model in enumerate(self.co_models_):
            est = krige(self.coords_, self.co_values_[:, j], coords, model, kcfg).estimate
            if self.co_encoding_.columns[j][1] is not None:  # an indicator: keep it in [0, 1]
                est = np.clip(est, 0.0, 1.0)
            out[:, j] = est
        return out

    # ----------------------------------------------------------------- predict
    def predict(self, X, attributes: pd.DataFrame | None = None) -> np.ndarray:
        """Predictions in data units at ``X (n, 2|3)``."""
        return self.predict_full(X, attributes=attributes).prediction

    def predict_full(self, X, attributes: pd.DataFrame | None = None,
                     threshold: float | None = None, allow_missing: bool = True,
                     progress: ProgressFn | None = None,
                     should_stop: StopFn | None = None) -> Prediction:
        """All prediction layers at ``X``, in chunks of :data:`PREDICT_CHUNK` targets.

        Targets where a covariate is missing (outside the raster or nodata) get NaN.
        """
        self._check_fitted()
        coords = np.ascontiguousarray(np.asarray(X, dtype=float))
        if coords.ndim != 2 or coords.shape[1] != self.coords_.shape[1]:
            raise InputDataError(
                f"targets must have shape (n, {self.coords_.shape[1]}), not {coords.shape!r}"
            )
        extra = self._target_extra(coords, attributes, allow_missing)
        parts = []
        n = len(coords)
        for start in range(0, n, PREDICT_CHUNK):
            check_cancel(should_stop)
            stop = min(n, start + PREDICT_CHUNK)
            part = Targets(coords[start:stop], None if extra is None else extra[start:stop])
            parts.append(self._chunk_members(self._chunk_features(part)))
            if progress is not None:
                progress(stop / n, "predicting")
        cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        return self._finish(cat, threshold)

    # The two stages of a chunk, which a streamed grid overlaps (``PredictJob``): the kriging
    # behind the features, then the network. ``predict_full`` runs them one after the other.
    def chunk_features(self, X) -> Targets:
        """Stage 1 of predicting at most :data:`PREDICT_CHUNK` targets ``X``: covariates,
        kriging features and the base."""
        self._check_fitted()
        coords = np.ascontiguousarray(np.asarray(X, dtype=float))
        return self._chunk_features(Targets(coords, self._target_extra(coords, None, True)))

    def chunk_prediction(self, targets: Targets, threshold: float | None = None) -> Prediction:
        """Stage 2: the network and every layer, for what :meth:`chunk_features` gave."""
        return self._finish(self._chunk_members(targets), threshold)

    def _chunk_features(self, targets: Targets) -> Targets:
        coords, extra = targets.coords, targets.extra
        feats = compute_features(self.coords_, self.values_t_, coords, self.variogram_,
                                 self.feature_config_, exclude_self=False,
                                 extra=None if extra is None else np.nan_to_num(extra),
                                 extra_names=(), sample_extra=self._sample_extra())
        if self._base().name == "ked":
            feats = self._ked_at(coords, extra, feats)
        return Targets(coords, extra, feats)

    def _chunk_members(self, targets: Targets) -> dict[str, np.ndarray]:
        feats, extra = targets.features, targets.extra
        members = self._members_t(feats)
        # Exact at the data, like kriging: a target on a sample keeps the sample's value.
        on_sample = feats.static[:, 3] <= 1e-9 * max(float(np.ptp(self.coords_)), 1.0)
        members[on_sample] = feats.ok_estimate[on_sample, None]
        if extra is not None:
            members[~np.isfinite(extra).all(axis=1)] = np.nan
        return {"members": members, "ok": feats.ok_estimate, "okvar": feats.ok_variance,
                "lagrange": feats.lagrange}

    def _ked_at(self, coords, extra, feats: FeatureSet) -> FeatureSet:
        """The KED base at targets from all training samples (NaN where a covariate is
        missing)."""
        from ..kriging.drift import krige_external_drift
        from .base import drift_design, with_base

        b = self.base_
        f_t = b.drift_columns(extra)
        ok = np.isfinite(f_t).all(axis=1)
        f_t = np.where(ok[:, None], f_t, 0.0)
        res = krige_external_drift(self.coords_, self.values_t_, b.drift_columns(self.sample_extra_),
                                   coords, f_t, b.model, neighbours=self._ked_neighbours())
        est = np.where(ok, res.estimate, np.nan)
        var = np.where(ok, res.variance, np.nan)
        return with_base(feats, est, var, drift_design(f_t) @ np.asarray(b.beta))

    def _finish(self, cat: dict, threshold: float | None) -> Prediction:
        ft, cal = self.transform_, self.calibration_
        members = cat["members"]
        pred_t = members.mean(axis=1)
        sigma = self._sigma(members, cat["okvar"])
        ens_std = members.std(axis=1) if members.shape[1] > 1 else np.zeros(len(pred_t))
        lower_t, upper_t = cal.interval(pred_t, sigma)
        sd_t = cal.predictive_std(sigma)
        prediction, pred_var = ft.back(pred_t, sd_t**2)
        ok_est, ok_var = ft.back(cat["ok"], cat["okvar"], cat["lagrange"])
        exceed = None
        if threshold is not None:
            thr_t = float(ft.forward(np.array([float(threshold)]))[0])
            exceed = cal.exceedance(pred_t, sigma, thr_t)
        return Prediction(
            prediction=prediction, kriging_estimate=ok_est, kriging_variance=ok_var,
            prediction_std=np.sqrt(np.clip(pred_var, 0.0, None)),
            interval_lower=ft.inverse(lower_t), interval_upper=ft.inverse(upper_t),
            exceedance_probability=exceed, prediction_t=pred_t, sigma_t=sigma,
            ensemble_std_t=ens_std, ok_estimate_t=cat["ok"], ok_variance_t=cat["okvar"],
            members_t=members,
        )

    def _forward(self):
        """The NumPy forward pass of this estimator's network (:mod:`.forward`)."""
        from .forward import EnsembleForward

        cached = getattr(self, "_forward_cache", None)
        if cached is None or cached[0] is not self.weights_:
            cached = (self.weights_, EnsembleForward(self.model_config_, self.weights_,
                                                     *self.input_shapes_))
            self._forward_cache = cached
        return cached[1]

    def _sample_extra(self) -> np.ndarray | None:
        """The covariate/co-field columns at the training samples (None without any)."""
        extra = getattr(self, "sample_extra_", None)
        return None if extra is None or extra.size == 0 else extra

    def _check_fitted(self) -> None:
        if not hasattr(self, "weights_"):
            raise InputDataError("the hybrid model is not fitted yet; call fit() first")


def _threads() -> int:
    """Threads of the network's forward pass: those the kriging kernels use."""
    import numba

    return int(numba.get_num_threads())


def _shrinkage(observed: np.ndarray, oof: np.ndarray, ok: np.ndarray) -> float:
    """Least-squares factor ``b`` of ``observed - ok ≈ b (oof - ok)``, clipped to [0, 1.5]."""
    c, r = oof - ok, observed - ok
    denom = float(np.dot(c, c))
    if denom <= 0 or not np.isfinite(denom):
        return 1.0
    return float(np.clip(np.dot(r, c) / denom, 0.0, 1.5))


def _concat_features(a: FeatureSet, b: FeatureSet) -> FeatureSet:
    return FeatureSet(
        sequence=np.concatenate([a.sequence, b.sequence]),
        static=np.concatenate([a.static, b.static]),
        ok_estimate=np.concatenate([a.ok_estimate, b.ok_estimate]),
        ok_variance=np.concatenate([a.ok_variance, b.ok_variance]),
        lagrange=np.concatenate([a.lagrange, b.lagrange]),
        sequence_names=a.sequence_names, static_names=a.static_names,
        n_singular=a.n_singular + b.n_singular,
    )


def _ok_std(feats: FeatureSet) -> np.ndarray:
    """Kriging standard deviation, floored so that exact nodes do not divide by zero."""
    sd = np.sqrt(np.clip(feats.ok_variance, 0.0, None))
    return np.maximum(sd, 1e-3 * max(float(np.median(sd)), 1e-12))


def _co_field_model(coords: np.ndarray, values: np.ndarray):
    """Variogram of one co-field column (fitted automatically; pure nugget if flat)."""
    from ..variogram import parse_model

    if np.ptp(values) <= 0:
        return parse_model("1 Nug")
    try:
        return resolve_variogram("auto", coords, values)
    except InputDataError as exc:
        logger.warning("co-field variogram fit failed (%s); using a pure nugget", exc)
        return parse_model(f"{max(float(np.var(values)), 1e-12)!r} Nug")


def _check_training_data(coords: np.ndarray, values: np.ndarray, neighbours: int) -> None:
    if coords.ndim != 2 or coords.shape[1] not in (2, 3):
        raise InputDataError(f"coordinates must have shape (n, 2) or (n, 3), not {coords.shape!r}")
    if len(values) != len(coords):
        raise InputDataError(f"{len(values)} values for {len(coords)} coordinates")
    if not (np.isfinite(values).all() and np.isfinite(coords).all()):
        raise InputDataError("coordinates and values must be finite")
    need = max(MIN_SAMPLES, int(neighbours) + 2)
    if len(values) < need:
        raise InputDataError(
            f"the hybrid model needs at least {need} samples (leave-one-out features with "
            f"{neighbours} neighbours and spatial validation groups for the ensemble), got "
            f"{len(values)}; use ordinary kriging for so few samples"
        )
    if np.ptp(values) == 0:
        raise InputDataError(
            f"all {len(values)} values are equal ({values[0]!r}); there is nothing to model"
        )
