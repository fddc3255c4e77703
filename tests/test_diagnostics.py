"""Refits whose chains clearly failed are named, in a warning and in the study log."""

import warnings

import arviz as az
import numpy as np
import pytest

from mgbayes import diagnostics, study


def raw_fit(shift):
    """Two chains of one parameter, ``shift`` apart (a raw sampler result)."""
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (2, 500)) + np.array([[0.0], [shift]])
    return az.from_dict({"posterior": {"R_ct": x}, "sample_stats": {"diverging": np.zeros((2, 500), bool)}})


def test_clearly_failed_refit_warns_by_name_and_a_good_one_does_not():
    with pytest.warns(diagnostics.ConvergenceWarning, match="ct, refit without point 3: R-hat"):
        report = diagnostics.warn_if_failed(raw_fit(5.0), "ct, refit without point 3")
    assert report.failed(1000)
    with warnings.catch_warnings():
        warnings.simplefilter("error", diagnostics.ConvergenceWarning)
        assert not diagnostics.warn_if_failed(raw_fit(0.0), "fine").failed(1000)


def test_failed_means_rhat_above_1_05_or_divergences_above_one_percent():
    report = diagnostics.ConvergenceReport("x", rhat_max=1.04, divergences=10)
    assert not report.failed(1000) and report.failed(999)
    assert diagnostics.ConvergenceReport("x", rhat_max=1.06).failed(1000)


def test_study_logs_refit_problems_and_drops_other_warnings():
    def refits():
        warnings.warn("ct, refit: R-hat 1.3", diagnostics.ConvergenceWarning)
        warnings.warn("noise from a library", RuntimeWarning)
        return 7

    lines = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert study._logging_refit_problems(refits, lines.append) == 7
    assert lines == ["    refit problem: ct, refit: R-hat 1.3"]


def fit_with(divergences=0, shift=0.0, n=500):
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, (4, n)) + np.array([[0.0], [0.0], [0.0], [shift]])
    diverging = np.zeros((4, n), bool)
    diverging[0, :divergences] = True
    return az.from_dict({"posterior": {"R_ct": x}, "sample_stats": {"diverging": diverging}})


def test_enough_draws_when_every_check_passes_but_a_handful_of_divergences():
    assert diagnostics.check(fit_with()).enough_draws()
    few = diagnostics.check(fit_with(divergences=diagnostics.DIVERGENCES_HANDFUL))
    assert few.enough_draws() and not few.ok and few.kinds == ["divergences"]  # reported, but more draws cannot help
    assert not diagnostics.check(fit_with(divergences=diagnostics.DIVERGENCES_HANDFUL + 1)).enough_draws()
    # a fifth of the planned draws: one divergence is a whole run's handful at its rate, two are not
    assert diagnostics.check(fit_with(divergences=1)).enough_draws(5 * 4 * 500)
    assert not diagnostics.check(fit_with(divergences=2)).enough_draws(5 * 4 * 500)
    apart = diagnostics.check(fit_with(shift=1.0))  # one chain elsewhere: R-hat
    assert "rhat" in apart.kinds and not apart.enough_draws()
    short = diagnostics.check(fit_with(n=60))  # 240 draws: ESS below 400
    assert "ess" in short.kinds and not short.enough_draws()
    # 4 × 240 draws pass every check, but are fewer than PSIS-LOO asks of a fit to be compared
    report = diagnostics.check(fit_with(n=240))
    assert report.enough_draws() and report.draws == 960
    assert not report.enough_draws(draws_min=diagnostics.LOO_DRAWS_MIN)
    assert diagnostics.check(fit_with(n=260)).enough_draws(draws_min=diagnostics.LOO_DRAWS_MIN)
    # past the planned draws (a run that went on) the handful stays a handful, not more at its rate
    assert not diagnostics.check(fit_with(divergences=diagnostics.DIVERGENCES_HANDFUL + 1)).enough_draws(1000)


def test_more_draws_help_where_only_rhat_or_ess_fall_short():
    assert not diagnostics.check(fit_with()).more_draws_help()  # nothing to mend
    mild = diagnostics.check(fit_with(shift=0.25))  # R-hat a little above 1.01
    assert mild.kinds == ["rhat"] and diagnostics.RHAT_MAX < mild.rhat_max <= diagnostics.RHAT_FAILED
    assert mild.more_draws_help()
    short = diagnostics.check(fit_with(n=60, divergences=2))  # ESS short, a handful of divergences
    assert set(short.kinds) == {"ess", "divergences"} and short.more_draws_help()
    ess = min(short.ess_bulk_min, short.ess_tail_min)  # 240 draws: at its rate, 400 by twice as many or not
    assert short.more_draws_help(2 * 240) == (ess * 2 >= diagnostics.ESS_MIN)
    assert not short.more_draws_help(240 + 1) and short.more_draws_help(100 * 240)
    assert not diagnostics.check(fit_with(shift=1.0)).more_draws_help()  # R-hat above 1.05: clearly failed
    many = diagnostics.check(fit_with(n=60, divergences=diagnostics.DIVERGENCES_HANDFUL + 1))
    assert not many.more_draws_help()  # smaller steps, not more draws
    assert not diagnostics.check(fit_with(divergences=3)).more_draws_help()  # divergences alone: more only add
