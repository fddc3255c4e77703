"""What decided a comparison: power-scaling sensitivity, prior-data conflict and stated-number tensions."""

import json

import numpy as np
import pytest
import xarray as xr

from mgbayes import sensitivity

PRIORS = {"a": {"dist": "normal", "mu": 0.0, "sigma": 1.0},
          "b": {"dist": "lognormal", "median": 1.0, "sd_log": 1.0}}


def result(a_draws, b_draws, *, y=None):
    """A stub result: posterior draws of a and b, their log prior, and the log-likelihood of data y ~ N(a, 1)."""
    a, b = (np.asarray(x, float).reshape(2, -1) for x in (a_draws, b_draws))
    y = np.zeros(20) if y is None else y
    ll = -0.5 * (y[None, None, :] - a[..., None]) ** 2
    posterior = xr.Dataset({"a": (("chain", "draw"), a), "b": (("chain", "draw"), b),
                            "R_ion": (("chain", "draw", "time"), np.stack([b, 2 * b], axis=-1))},
                           coords={"chain": [0, 1], "draw": np.arange(a.shape[1]), "time": [0.0, 1.0]})
    posterior["R_ion"].attrs["kind"] = "resolved"
    log_prior = xr.Dataset({"a": (("chain", "draw"), -0.5 * a**2),
                            "b": (("chain", "draw"), -0.5 * np.log(b) ** 2 - np.log(b))})
    tree = xr.DataTree.from_dict({"posterior": posterior, "log_prior": log_prior,
                                  "log_likelihood": xr.Dataset({"Z": (("chain", "draw", "point"), ll)})})
    tree.attrs.update(hypothesis="h", priors=json.dumps(PRIORS))
    return tree


def test_conflict_flags_a_posterior_in_the_far_tail_of_its_prior():
    rng = np.random.default_rng(1)
    fine = sensitivity.conflicts(result(rng.normal(0.5, 0.1, 400), np.exp(rng.normal(0, 0.1, 400))))
    assert list(fine.parameter) == ["a", "b"] and not fine.conflict.any()  # time-resolved R_ion is not a parameter
    far = sensitivity.conflicts(result(rng.normal(3.5, 0.1, 400), np.exp(rng.normal(-3.0, 0.1, 400)))).set_index("parameter")
    assert far.conflict.all()
    assert far.loc["a", "prior_quantile"] > 0.999 and far.loc["b", "prior_quantile"] < 0.005
    assert far.loc["b", "prior"] == "lognormal(median=1, sd_log=1)"


def test_prior_cdf_of_every_distribution():
    assert sensitivity.prior_cdf({"dist": "loguniform", "lower": 10.0, "upper": 1e3}, 100.0) == pytest.approx(0.5)
    assert sensitivity.prior_cdf({"dist": "beta", "alpha": 0.5, "beta": 0.5}, 0.5) == pytest.approx(0.5)
    assert sensitivity.prior_cdf({"dist": "uniform", "lower": 4.0, "upper": 12.0}, 6.0) == pytest.approx(0.25)
    assert sensitivity.prior_cdf({"dist": "halfnormal", "sigma": 1.0}, 0.0) == 0.0


def test_power_scaling_tells_a_prior_driven_parameter_from_a_data_driven_one():
    rng = np.random.default_rng(2)
    # a is pinned by 20 observations; b follows its prior (no data on it)
    table = sensitivity.power_scaling(result(rng.normal(0.0, 1 / np.sqrt(21), 2000),
                                             np.exp(rng.normal(0.0, 1.0, 2000)))).set_index("parameter")
    assert table.loc["b", "prior_sensitivity"] > sensitivity.THRESHOLD
    assert table.loc["b", "likelihood_sensitivity"] < sensitivity.THRESHOLD
    assert table.loc["b", "diagnosis"] == "potential strong prior / weak likelihood"
    assert table.loc["a", "likelihood_sensitivity"] > sensitivity.THRESHOLD


def test_tensions_compare_stated_ranges_with_the_posterior_interval():
    rng = np.random.default_rng(3)
    tree = result(rng.normal(0.0, 0.1, 400), rng.normal(5.0, 0.1, 400))
    stated = {"b": {"range": (4.8, 6.9), "text": "eps"}, "R_ion": {"range": (3e5, 3e6), "text": "corrosion"},
              "missing": {"range": (0.0, 1.0), "text": "not in this hypothesis"}}
    table = sensitivity.tensions(tree, stated).set_index("quantity")
    assert list(table.index) == ["b", "R_ion"]
    assert table.loc["b", "status"] == "agrees"
    assert table.loc["R_ion", "status"] == "tension"  # last time: 2 b ~ 10, far below 3e5
    assert table.loc["R_ion", "median"] == pytest.approx(10.0, rel=0.05)
    assert "corrosion" in table.loc["R_ion", "stated"]


def test_shared_quantity_of_each_joint_fit_is_checked_against_the_outside_data_alone():
    rng = np.random.default_rng(4)

    def tree(centre):
        return xr.DataTree.from_dict({"posterior": xr.Dataset(
            {"R_e": (("chain", "draw"), rng.normal(centre, 100.0, (2, 300)))})})

    table = sensitivity.shared_quantities({"charge_transfer": tree(2050.0), "film": tree(9000.0)}, tree(2000.0),
                                          ["R_e"]).set_index("fit")
    assert list(table.index) == ["outside data alone", "charge_transfer", "film"]
    assert table.loc["charge_transfer", "status"] == "agrees" and table.loc["film", "status"] == "disagrees"
    assert table.loc["outside data alone", "median"] == pytest.approx(2000.0, rel=0.02)


def test_outside_evidence_kept_pointwise_counts_as_prior_in_power_scaling():
    """A joint fit's evidence log-likelihood (pointwise, as results keep it) enters psense summed, as prior."""
    rng = np.random.default_rng(5)
    tree = result(rng.normal(0.0, 1 / np.sqrt(21), 2000), np.exp(rng.normal(0.0, 0.1, 2000)))
    b = tree["posterior"]["b"].values
    # outside data on b: 30 points around 1 (what pins b here), stored per (time, frequency) as the fit stores them
    ev = -0.5 * ((np.log(b)[..., None] - rng.normal(0.0, 0.5, 30)) / 0.5) ** 2
    tree["evidence_log_likelihood"] = xr.Dataset({"outside": (("chain", "draw", "outside_time", "outside_frequency"),
                                                               ev[:, :, None, :])})
    psense_tree = sensitivity._psense_tree(tree, ["a", "b"])
    np.testing.assert_allclose(psense_tree["log_prior"]["evidence_outside"].values, ev.sum(-1))
    table = sensitivity.power_scaling(tree).set_index("parameter")
    assert table.loc["b", "prior_sensitivity"] > sensitivity.THRESHOLD  # b is set by its prior and the outside data
