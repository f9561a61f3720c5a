"""``auto`` variograms chosen by kriging cross-validation: the shared-search scorer agrees with
the kriging engine, and the selection finds the generating model of fields with a known
variogram (and never one whose leave-one-out error is clearly above the best)."""

from __future__ import annotations

import numpy as np
import pytest

from gcnn_rnn.core.kriging import KrigingConfig, krige
from gcnn_rnn.core.kriging.model_cv import CandidateCV
from gcnn_rnn.core.synth import SynthConfig, synthesize
from gcnn_rnn.core.variogram.fit import (
    TIE_RTOL,
    Candidate,
    auto_variogram,
    choose,
)
from gcnn_rnn.core.variogram.models import parse_model


def _field(text: str, n: int, seed: int, dims: int = 2):
    r = synthesize(SynthConfig(parse_model(text), n=n, seed=seed, dims=dims))
    # off the grid nodes: no ties in neighbour distances, so the neighbour sets are unique
    jitter = np.random.default_rng(seed).uniform(-1.0, 1.0, r.coords.shape)
    if dims == 3:
        jitter[:, 2] = 0.0
    return r.coords + jitter, r.values


def _engine_loo(coords, values, model, neighbours):
    res = krige(coords, values, coords, model, KrigingConfig(neighbours=neighbours),
                exclude_self=True)
    err = res.estimate - values
    return float(np.sqrt(np.mean(err**2))), float(np.mean(err**2 / res.variance))


@pytest.mark.parametrize("neighbours", [12, 0])
@pytest.mark.parametrize("text", ["0.1 Nug + 0.9 Sph(300)", "0.05 Nug + 1 Mat(120, 0.8)",
                                  "0.2 Nug + 1 Pow(1, 1.2)"])
def test_scores_equal_the_kriging_engines_leave_one_out(text, neighbours):
    coords, values = _field("0.1 Nug + 0.9 Sph(300)", 90, seed=4)
    model = parse_model(text)
    score = CandidateCV(coords, values, neighbours)(model)
    rmse, msdr = _engine_loo(coords, values, model, neighbours)
    assert score.scheme == "loo" and score.n == 90
    assert score.rmse == pytest.approx(rmse, rel=1e-9)
    assert score.msdr == pytest.approx(msdr, rel=1e-7)


def test_kfold_above_the_loo_limit_equals_kriging_each_fold():
    coords, values = _field("0.1 Nug + 0.9 Exp(150)", 130, seed=2)
    model = parse_model("0.1 Nug + 0.9 Exp(150)")
    scorer = CandidateCV(coords, values, 16, max_loo=100, seed=5)
    score = scorer(model)
    assert score.scheme == "10-fold" and score.n == 130
    err = np.empty(130)
    for f in range(10):
        test, train = scorer.folds == f, scorer.folds != f
        res = krige(coords[train], values[train], coords[test], model, KrigingConfig(16))
        err[test] = res.estimate - values[test]
    assert score.rmse == pytest.approx(float(np.sqrt(np.mean(err**2))), rel=1e-9)


def test_ties_go_to_the_msdr_nearest_one_then_to_sse():
    m = parse_model("1 Sph(10)")
    cands = [Candidate(m, sse=3.0, loo_rmse=1.0, msdr=1.6),
             Candidate(m.replace(structures=(m.structures[0].__class__("exp", 1.0, 5.0),)),
                       sse=2.0, loo_rmse=1.0 * (1 + TIE_RTOL / 2), msdr=1.05),
             Candidate(m, sse=1.0, loo_rmse=1.1, msdr=1.0)]
    assert choose(cands, "cv") is cands[1]  # tied on RMSE, better MSDR; 3rd is not tied
    assert choose(cands, "sse") is cands[2]


GENERATORS = {"sph": "0.05 Nug + 0.95 Sph(400)", "exp": "0.05 Nug + 0.95 Exp(150)",
              "gau": "0.05 Nug + 0.95 Gau(200)"}


@pytest.mark.parametrize("family", sorted(GENERATORS))
def test_selection_finds_the_generating_model_and_never_a_clearly_worse_one(family):
    picks = []
    for seed in range(5):
        coords, values = _field(GENERATORS[family], 250, seed)
        fitted = auto_variogram(coords, values, neighbours=32)
        assert fitted.selected_by == "cv" and len(fitted.candidates) == 4
        chosen = fitted.selected_candidate
        picks.append(chosen.model.structures[-1].model)
        # judged by the kriging engine itself, not by the scorer that chose
        engine = [_engine_loo(coords, values, c.model, 32)[0] for c in fitted.candidates]
        assert _engine_loo(coords, values, chosen.model, 32)[0] <= 1.02 * min(engine)
    assert picks.count(family) >= 3, picks


def test_sse_selection_is_still_available():
    coords, values = _field(GENERATORS["exp"], 120, 0)
    fitted = auto_variogram(coords, values, select="sse")
    assert fitted.selected_by == "sse"
    assert fitted.sse == min(c.sse for c in fitted.candidates)
    assert all(c.cv_rmse is None for c in fitted.candidates)


def test_3d_auto_scores_every_candidate_with_its_vertical_ratio():
    coords, values = _field("0.05 Nug + 0.95 Exp(300)", 400, 1, dims=3)
    fitted = auto_variogram(coords, values, neighbours=16)
    assert fitted.selected_by == "cv" and len(fitted.candidates) == 4
    best = min(c.cv_rmse for c in fitted.candidates)
    assert fitted.selected_candidate.cv_rmse <= best * (1 + TIE_RTOL)
    doc = fitted.to_dict()
    assert doc["selected"] == fitted.model.to_text()
    assert all({"sse", "cv_rmse", "msdr", "cv_scheme"} <= set(c) for c in doc["candidates"])
    for c in fitted.candidates:  # each candidate was scored as the 3D model it would be
        assert c.cv_rmse == pytest.approx(_engine_loo(coords, values, c.model, 16)[0],
                                          rel=1e-6)


def test_above_max_targets_loo_scores_a_seeded_subset_each_from_all_other_samples(monkeypatch):
    import gcnn_rnn.core.kriging.model_cv as mcv

    monkeypatch.setattr(mcv, "MAX_TARGETS", 150)
    coords, values = _field("0.1 Nug + 0.9 Sph(300)", 260, seed=3)
    model = parse_model("0.1 Nug + 0.9 Sph(300)")
    scorer = CandidateCV(coords, values, 16, seed=1)
    assert scorer.scheme == "loo, 150 of 260 samples" and scorer.targets.size == 150
    assert np.array_equal(scorer.targets, CandidateCV(coords, values, 16, seed=1).targets)
    est, var = scorer.predictions(model)
    # the engine's leave-one-out at every sample, read at the scored ones
    res = krige(coords, values, coords, model, KrigingConfig(16), exclude_self=True)
    assert est == pytest.approx(res.estimate[scorer.targets], rel=1e-9)
    assert var == pytest.approx(res.variance[scorer.targets], rel=1e-7)


def test_race_drops_only_clearly_worse_candidates_and_scores_the_rest_in_full(monkeypatch):
    import gcnn_rnn.core.kriging.model_cv as mcv

    monkeypatch.setattr(mcv, "RACE_TARGETS", 80)
    coords, values = _field("0.05 Nug + 0.95 Sph(400)", 250, seed=0)
    models = [parse_model(t) for t in ("0.05 Nug + 0.95 Sph(400)", "0.05 Nug + 0.95 Sph(380)",
                                      "0.9 Nug + 0.1 Sph(400)", "0.05 Nug + 0.95 Gau(30)")]
    scorer = CandidateCV(coords, values, 16)
    raced = scorer.race(models)
    full = [scorer(m) for m in models]
    for r, f in zip(raced, full, strict=True):
        if r.complete:  # a survivor's score is its full score
            assert r.rmse == pytest.approx(f.rmse, rel=1e-12) and r.n == 250
        else:  # a dropped one was clearly worse, also on every sample
            assert r.n == 80 and "dropped" in r.scheme
            assert f.rmse > 1.05 * min(x.rmse for x in full)
    assert raced[0].complete and raced[1].complete  # nearly equal models both go on
    assert not raced[2].complete and not raced[3].complete
    # the selection never takes a dropped candidate, and V.json marks it
    cands = [Candidate(m, sse=0.0 if i == 2 else 1.0, loo_rmse=r.rmse, msdr=r.msdr,
                       cv_scheme=r.scheme, cv_complete=r.complete)
             for i, (m, r) in enumerate(zip(models, raced, strict=True))]
    assert choose(cands, "cv").cv_complete
    assert cands[2].to_dict()["cv_complete"] is False


def test_tabulated_matern_equals_the_exact_semivariogram():
    from gcnn_rnn.core.kriging.model_cv import MATERN_TABLE_ABOVE, _gamma

    d = np.concatenate([[0.0], np.random.default_rng(0).uniform(0, 3000, MATERN_TABLE_ABOVE)])
    for text in ("0.1 Nug + 1 Mat(100, 0.3)", "1 Mat(30, 6.9)", "0.2 Nug + 1 Mat(50, 19)"):
        m = parse_model(text)
        assert _gamma(m, d)[0] == 0.0
        assert np.abs(_gamma(m, d) - m.gamma(d)).max() < 1e-11 * m.sill
