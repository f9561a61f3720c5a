"""``gcnn-rnn variogram``: experimental variogram(s), model fit, ``V.json`` and an optional plot.

The ``V.json`` format is documented in :mod:`gcnn_rnn.core.variogram.io`.
"""

from __future__ import annotations

import argparse
import math

from ..errors import InputDataError
from ..progress import scaled
from ..variogram.empirical import DEFAULT_LAGS, DEFAULT_MAX_POINTS, directional_variograms
from ..variogram.fit import (
    DEFAULT_CANDIDATES,
    SELECT,
    WEIGHTS,
    fit_anisotropy,
    fit_variogram,
    fit_vertical_anisotropy,
)
from ..variogram.io import variogram_document, write_variogram_json
from ..variogram.models import MODELS
from .options import add_point_input, parse_csv_list, points_from_args
from .session import Session

NAME = "variogram"
HELP = "compute experimental variograms, fit a model and write it as V.json (+ a PNG plot)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_point_input(parser)
    parser.add_argument(
        "--transform",
        choices=("none", "log", "nscore"),
        default="none",
        help="model the variogram of transformed values (default none)",
    )
    parser.add_argument(
        "--models",
        default=",".join(DEFAULT_CANDIDATES),
        metavar="M1,M2,...",
        help="candidate models, from: "
        + ", ".join(n for n in MODELS if n != "nug")
        + f" (default {','.join(DEFAULT_CANDIDATES)}); or one start model as text, e.g. "
        "'0.1 Nug + 0.5 Sph(300) + 0.5 Exp(1000)' for a nested fit",
    )
    parser.add_argument(
        "--directions",
        metavar="A1,A2,...",
        help="also directional variograms at these azimuths (degrees clockwise "
        "from north), e.g. 0,45,90,135",
    )
    parser.add_argument(
        "--output-json",
        required=True,
        metavar="V.json",
        help="the variogram file (read by krige --variogram)",
    )
    parser.add_argument("--plot", metavar="V.png", help="also write a PNG plot")
    g = parser.add_argument_group("expert options")
    g.add_argument(
        "--cutoff",
        type=float,
        metavar="D",
        help="largest pair distance (default: bounding-box diagonal / 3)",
    )
    g.add_argument("--lags", type=float, metavar="W", help="lag width (default: cutoff / 15)")
    g.add_argument(
        "--n-lags",
        type=int,
        default=DEFAULT_LAGS,
        metavar="N",
        help=f"number of lags when --lags is not given (default {DEFAULT_LAGS})",
    )
    g.add_argument(
        "--estimator",
        choices=("matheron", "cressie"),
        default="matheron",
        help="semivariance estimator (default matheron)",
    )
    g.add_argument(
        "--tolerance",
        type=float,
        metavar="DEG",
        help="angular tolerance of directions (default 90 / number of directions, as gstat)",
    )
    g.add_argument(
        "--max-points",
        type=int,
        default=DEFAULT_MAX_POINTS,
        metavar="N",
        help=f"above N points use the pairs of a seeded random subsample of N points "
        f"(default {DEFAULT_MAX_POINTS}; 0 = always all points); V.json records n_used",
    )
    g.add_argument("--seed", type=int, default=0, help="seed of that subsample (default 0)")
    g.add_argument(
        "--bandwidth",
        type=float,
        metavar="D",
        help="maximum distance of a pair from the direction line",
    )
    g.add_argument(
        "--fit-weights",
        choices=WEIGHTS,
        default="npairs_h2",
        help="least-squares weights: N_j, N_j/h_j^2 (default, as gstat) or Cressie",
    )
    parser.add_argument(
        "--select",
        choices=SELECT,
        default="cv",
        help="choose among the candidates by kriging cross-validation RMSE (default; "
        "leave-one-out, 10-fold above 3000 samples; ties: MSDR closest to 1, then SSE) or by "
        "weighted SSE ('loo' is the old name of cv)",
    )
    g.add_argument(
        "--neighbours",
        type=int,
        default=32,
        metavar="N",
        help="kriging neighbours of the cross-validation of --select cv (default 32, 0 = all)",
    )
    g.add_argument(
        "--nugget",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="fit a nugget (default yes)",
    )
    g.add_argument(
        "--anisotropy",
        action="store_true",
        help="fit a geometric anisotropy (azimuth, ratio) from --directions",
    )
    parser.add_argument(
        "--vertical",
        action="store_true",
        help="3D: fit the candidates to the horizontal variogram and a vertical range ratio "
        "to the vertical one (22.5 degree cones; what --variogram auto does with 3D data)",
    )


def _candidates(text: str) -> list[str]:
    if "(" in text or "+" in text:
        return [text]
    names = parse_csv_list(text)
    if not names:
        raise InputDataError(f"no candidate models in --models {text!r}")
    return names


def _directions(text: str | None) -> list[float]:
    out = []
    for item in parse_csv_list(text):
        try:
            value = float(item)
        except ValueError:
            raise InputDataError(f"--directions: not an azimuth: {item!r}") from None
        if not math.isfinite(value):
            raise InputDataError(f"--directions: not an azimuth: {item!r}")
        out.append(value)
    return out


def run(args: argparse.Namespace, session: Session) -> dict:
    pts = points_from_args(args)
    directions = _directions(args.directions)
    if args.anisotropy and len(directions) < 2:
        raise InputDataError("--anisotropy needs at least two --directions, e.g. 0,45,90,135")
    if args.vertical:
        if pts.ndim != 3:
            raise InputDataError("--vertical needs 3D points (a --z-field or Z geometries)")
        if args.anisotropy:
            raise InputDataError("use either --vertical (3D) or --anisotropy (horizontal)")
    transform_params = None
    values = pts.values
    if args.transform != "none":
        from ..transforms import fit_transform

        fitted_transform = fit_transform(values, args.transform)
        values = fitted_transform.forward(values)
        transform_params = fitted_transform.to_dict()
    session.progress(0.0, "experimental variogram")
    evs = directional_variograms(
        pts.coords,
        values,
        [None, *directions],
        cutoff=args.cutoff,
        width=args.lags,
        n_lags=args.n_lags,
        estimator=args.estimator,
        tolerance=args.tolerance,
        bandwidth=args.bandwidth,
        max_points=args.max_points,
        seed=args.seed,
        progress=scaled(session.progress, 0.0, 0.5),
        should_stop=session.should_stop,
    )
    omni, dir_evs = evs[0], dict(zip(directions, evs[1:]))
    session.check()
    session.progress(0.5, "fitting")
    cv_score = None
    if args.select in ("cv", "loo"):
        from ..kriging.model_cv import CandidateCV

        if args.neighbours < 0:
            raise InputDataError(f"--neighbours must be >= 0 (0 = all), not {args.neighbours!r}")
        cv_score = CandidateCV(pts.coords, values, args.neighbours)
    if args.vertical:  # the horizontal and vertical variograms replace the omnidirectional fit
        fitted = fit_vertical_anisotropy(pts.coords, values, _candidates(args.models),
                                         nugget=args.nugget, weights=args.fit_weights,
                                         cv_score=cv_score)
        if fitted is None:
            raise InputDataError(
                "--vertical: too few near-horizontal or near-vertical pairs (each direction "
                "needs 3 lag bins of 10 pairs); fit an omnidirectional variogram instead"
            )
    else:
        fitted = fit_variogram(
            omni,
            _candidates(args.models),
            nugget=args.nugget,
            weights=args.fit_weights,
            select=args.select,
            cv_score=cv_score,
        )
    if args.anisotropy:
        session.progress(0.8, "fitting the anisotropy")
        aniso = fit_anisotropy(list(dir_evs.values()), fitted.model, weights=args.fit_weights)
        fitted = type(fitted)(
            aniso.model, aniso.sse, fitted.method, fitted.candidates, fitted.selected_by
        )
    if omni.subsample_seed is not None:
        session.info(f"experimental variogram from a random subsample of {omni.n_used} of "
                     f"{omni.n_points} points (seed {omni.subsample_seed})")
    session.info(f"variogram model: {fitted.model.to_text()}")
    if len(fitted.candidates) > 1:
        session.info(f"candidates (selected by {fitted.selected_by}):\n{fitted.summary()}")
    doc = variogram_document(
        fitted.model,
        omni=omni,
        directions=dir_evs,
        fit=fitted,
        field=pts.field,
        transform=args.transform,
        transform_params=transform_params,
        crs=pts.crs,
        dims=pts.ndim,
        n=pts.n,
    )
    path = write_variogram_json(args.output_json, doc)
    outputs = {"variogram": str(path), "model": fitted.model.to_text()}
    if args.plot:
        from ..variogram.plot import plot_variogram

        title = f"{pts.field}" + (f" ({args.transform})" if args.transform != "none" else "")
        outputs["plot"] = str(plot_variogram(args.plot, fitted.model, omni, dir_evs, title))
    session.progress(1.0, "done")
    return outputs
