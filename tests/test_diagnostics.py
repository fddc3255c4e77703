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
