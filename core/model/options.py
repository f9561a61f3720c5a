"""Command-line flags of the hybrid model, shared by ``train``, ``cv`` and ``run``.

``add_model_arguments(parser)`` adds every flag of the ``train`` contract that the parser does
not have yet (``cv`` already defines ``--transform``, ``--variogram`` and ``--seed`` for
ordinary kriging; the hybrid then uses the same values). ``estimator_from_args`` turns the
parsed flags into a :class:`~.estimator.HybridRegressor`.
"""

from __future__ import annotations

import argparse

from ..errors import InputDataError

#: Defaults of the hybrid model's flags (the ``train`` contract).
DEFAULTS = {
    "transform": "none",
    "variogram": "auto",
    "neighbours": 16,
    "kriging_neighbours": 32,
    "ensemble": 5,
    "epochs": 60,
    "batch_size": 64,
    "learning_rate": 5e-3,
    "patience": 12,
    "seed": 0,
    "target": "residual",
    "loss": "huber",
    "interval": 0.9,
    "augment": 0,
    "leave_out": "auto",
    "select": "cv",
    "base": "auto",
}


def _has(parser: argparse.ArgumentParser, flag: str) -> bool:
    return flag in parser._option_string_actions  # argparse keeps no public registry


def _add(group, parser, flag: str, **kwargs) -> None:
    if not _has(parser, flag):
        group.add_argument(flag, **kwargs)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the hybrid model's flags (those the parser lacks) in an argument group."""
    g = parser.add_argument_group("hybrid model")
    _add(g, parser, "--transform", choices=("none", "log", "nscore"),
         default=DEFAULTS["transform"], help="transform of the field before kriging/training")
    _add(g, parser, "--variogram", metavar="V.json|auto", default=DEFAULTS["variogram"],
         help="variogram model: V.json, text like '0.05 Nug + 0.59 Sph(897)', or auto "
              "(fitted on the training samples)")
    _add(g, parser, "--select", choices=("cv", "sse"), default=DEFAULTS["select"],
         help="how --variogram auto picks among its candidates (sph, exp, gau, Matern): "
              "lowest kriging cross-validation RMSE (default) or lowest weighted SSE")
    _add(g, parser, "--neighbours", type=int, default=DEFAULTS["neighbours"], metavar="K",
         help="neighbour sequence length of the network (default 16)")
    _add(g, parser, "--kriging-neighbours", type=int, default=DEFAULTS["kriging_neighbours"],
         metavar="N",
         help="neighbourhood of the kriging behind the features (default 32; 0 = all, global)")
    _add(g, parser, "--covariates", metavar="a.tif,b.tif",
         help="raster covariates sampled at each location (same CRS as the points)")
    _add(g, parser, "--co-fields", metavar="Ni,Zn",
         help="fields of the sample layer used as co-located features (one-hot if text)")
    _add(g, parser, "--coordinates", action="store_true",
         help="also use the coordinates as features")
    _add(g, parser, "--ensemble", type=int, default=DEFAULTS["ensemble"], metavar="M",
         help="ensemble members, trained together (default 5)")
    _add(g, parser, "--epochs", type=int, default=DEFAULTS["epochs"], metavar="N",
         help="maximum epochs (early stopping usually ends sooner; default 60)")
    _add(g, parser, "--batch-size", type=int, default=DEFAULTS["batch_size"], metavar="B",
         help="mini-batch size (default 64; above 16,384 training rows the minimum: "
              "the batch grows to keep an epoch at 256 steps)")
    _add(g, parser, "--learning-rate", type=float, default=DEFAULTS["learning_rate"],
         metavar="LR", help="initial Adam learning rate (default 0.005)")
    _add(g, parser, "--patience", type=int, default=DEFAULTS["patience"], metavar="P",
         help="early-stopping patience in epochs (default 12; halved above 16,384 "
              "training rows, where only a 0.1 %% improvement restarts it)")
    _add(g, parser, "--target", choices=("residual", "standardised", "value"),
         default=DEFAULTS["target"],
         help="learn the residual from kriging (default), the residual divided by the "
              "kriging standard deviation, or the value")
    _add(g, parser, "--loss", choices=("huber", "mse"), default=DEFAULTS["loss"],
         help="training loss (default huber)")
    _add(g, parser, "--augment", type=int, default=DEFAULTS["augment"], metavar="A",
         help="extra training copies with sparser leave-one-out neighbourhoods (default 0)")
    _add(g, parser, "--stack", action="store_true",
         help="rescale the network's correction by its least-squares factor on the "
              "out-of-fold residuals (needs --no-gate: the gate fits its own weight)")
    _add(g, parser, "--base", choices=("auto", "ok", "ked"), default=DEFAULTS["base"],
         help="the classical predictor the network corrects: ordinary kriging, kriging with "
              "an external drift in the --covariates, or auto (default: KED when covariates "
              "are given and its leave-one-out error on the training data is clearly lower; "
              "its drift in each non-negative covariate as given, or its sqrt or log when "
              "that is clearly better)")
    _add(g, parser, "--gate", action=argparse.BooleanOptionalAction, default=True,
         help="do-no-harm gate (default on): keep only the share of the network's "
              "correction that lowers the inner cross-validation error; none when it does "
              "not, and the prediction is then the kriging base's")
    _add(g, parser, "--leave-out", choices=("auto", "sample", "column"),
         default=DEFAULTS["leave_out"],
         help="training features of a sample leave out the sample, or its whole vertical "
              "column (a drill hole: samples with the same x, y); auto (default): column for "
              "3D samples that share columns")
    _add(g, parser, "--interval", type=float, default=DEFAULTS["interval"], metavar="P",
         help="prediction-interval level (default 0.9)")
    _add(g, parser, "--seed", type=int, default=DEFAULTS["seed"], metavar="S",
         help="random seed (reruns with the same seed give the same model)")


def parse_csv(text: str | None) -> tuple[str, ...]:
    """``"a, b"`` → ``("a", "b")``; empty → ``()``."""
    if not text:
        return ()
    return tuple(t.strip() for t in str(text).split(",") if t.strip())


def _kriging_neighbours(value) -> int:
    """``--kriging-neighbours``: None means the default, 0 all samples (as for ``krige``)."""
    k = DEFAULTS["kriging_neighbours"] if value is None or value == "" else int(value)
    if k < 0:
        raise InputDataError(f"--kriging-neighbours must be >= 0 (0 = all), not {k!r}")
    return k


def _select(value) -> str:
    text = str(value or DEFAULTS["select"]).strip().lower()
    text = "cv" if text == "loo" else text
    if text not in ("cv", "sse"):
        raise InputDataError(f"--select must be cv or sse, not {value!r}")
    return text


def model_options(args: argparse.Namespace | dict) -> dict:
    """The hybrid estimator's parameters from parsed flags (or a dict of the same names)."""
    get = (args.get if isinstance(args, dict)
           else lambda k, d=None: getattr(args, k, d))
    level = float(get("interval", DEFAULTS["interval"]) or DEFAULTS["interval"])
    if not 0.0 < level < 1.0:
        raise InputDataError(f"--interval must be in (0, 1), not {level!r}")
    for flag in ("seed", "patience"):
        value = get(flag, DEFAULTS[flag])
        if value is not None and int(value) < 0:
            raise InputDataError(f"--{flag} must be >= 0, not {value!r}")
    covs = get("covariates")
    cofs = get("co_fields")
    from .gate import check_stack

    check_stack(bool(get("stack", False)), bool(get("gate", True)))
    return {
        "transform": get("transform", DEFAULTS["transform"]) or "none",
        "variogram": get("variogram", DEFAULTS["variogram"]) or "auto",
        "neighbours": int(get("neighbours", DEFAULTS["neighbours"])),
        "kriging_neighbours": _kriging_neighbours(get("kriging_neighbours")),
        "covariates": covs if isinstance(covs, tuple | list) else parse_csv(covs),
        "co_fields": cofs if isinstance(cofs, tuple | list) else parse_csv(cofs),
        "coordinates": bool(get("coordinates", False)),
        "ensemble": int(get("ensemble", DEFAULTS["ensemble"])),
        "epochs": int(get("epochs", DEFAULTS["epochs"])),
        "batch_size": int(get("batch_size", DEFAULTS["batch_size"])),
        "learning_rate": float(get("learning_rate", DEFAULTS["learning_rate"])),
        "patience": int(get("patience", DEFAULTS["patience"])),
        "seed": int(get("seed", DEFAULTS["seed"]) or 0),
        "target": get("target", DEFAULTS["target"]) or "residual",
        "loss": get("loss", DEFAULTS["loss"]) or "huber",
        "alpha": 1.0 - level,
        "augment": int(get("augment", DEFAULTS["augment"]) or 0),
        "stack": bool(get("stack", False)),
        "leave_out": get("leave_out", DEFAULTS["leave_out"]) or DEFAULTS["leave_out"],
        "gate": bool(get("gate", True)),
        "base": str(get("base", DEFAULTS["base"]) or DEFAULTS["base"]).lower(),
        "variogram_select": _select(get("select", DEFAULTS["select"])),
        "model_options": dict(get("model_options") or {}) or None,
        "train_options": dict(get("train_options") or {}) or None,
        "feature_options": dict(get("feature_options") or {}) or None,
    }


def estimator_from_args(args: argparse.Namespace | dict, crs: str | None = None):
    """A :class:`~.estimator.HybridRegressor` configured from the flags."""
    from pathlib import Path

    from .estimator import HybridRegressor

    opts = model_options(args)
    for path in opts["covariates"]:
        if not Path(path).exists():
            raise InputDataError(f"covariate raster not found: {path!r}")
    # absolute paths: the bundle must find them again from any working directory
    opts["covariates"] = tuple(str(Path(p).resolve()) for p in opts["covariates"])
    return HybridRegressor(crs=crs, **opts)
