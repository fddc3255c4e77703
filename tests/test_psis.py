"""The vectorised PSIS-LOO equals ArviZ's, observation by observation."""

import warnings

import arviz as az
import numpy as np
import pytest
import xarray as xr

from mgbayes import psis


def log_lik(seed=0, chains=4, draws=500):
    """Pointwise log-likelihoods from well-behaved to heavy-tailed (high Pareto k) observations."""
    rng = np.random.default_rng(seed)
    theta = rng.standard_t(3, (chains, draws, 1))
    y = np.concatenate([rng.normal(0, 1, 20), [6.0, 12.0, 30.0]])  # the last ones are outliers
    scale = np.linspace(0.2, 3.0, y.size)
    ll = -0.5 * ((y - theta) / scale) ** 2 - np.log(scale)
    return xr.DataArray(ll, dims=("chain", "draw", "point"), coords={"point": np.arange(y.size)})


def arviz_loo(ll, r_eff):
    tree = xr.DataTree.from_dict({"posterior": xr.Dataset({"a": ll.isel(point=0)}),
                                  "log_likelihood": xr.Dataset({"y": ll})})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return az.loo(tree, pointwise=True, var_name="y", reff=r_eff)


@pytest.mark.parametrize("r_eff", [1.0, 0.35])
def test_psis_loo_equals_arviz(r_eff):
    ll = log_lik()
    ours, theirs = psis.loo(ll, r_eff=r_eff), arviz_loo(ll, r_eff)
    np.testing.assert_allclose(ours.pareto_k.values, theirs.pareto_k.values, rtol=1e-9)
    np.testing.assert_allclose(ours.elpd_i.values, theirs.elpd_i.values, rtol=1e-9)
    assert ours.elpd == pytest.approx(theirs.elpd, rel=1e-10)
    assert ours.se == pytest.approx(theirs.se, rel=1e-9)
    assert ours.p == pytest.approx(theirs.p, rel=1e-8)
    assert ours.good_k == theirs.good_k and ours.warning == theirs.warning
    assert ours.pareto_k.values[-1] > 0.7  # the far outlier is flagged


def test_smoothed_log_weights_equal_arviz_and_are_normalised():
    ll = log_lik(seed=3)
    lw, k = psis.psislw(-ll.values.reshape(-1, ll.sizes["point"]), 0.8)
    theirs_lw, theirs_k = ll.azstats.psislw(r_eff=0.8, dim=["chain", "draw"])
    np.testing.assert_allclose(k, theirs_k.values, rtol=1e-9)
    np.testing.assert_allclose(lw, theirs_lw.transpose("chain", "draw", "point").values.reshape(lw.shape),
                               rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(np.exp(lw).sum(axis=0), 1.0)


def test_blocks_do_not_change_the_result(monkeypatch):
    ll = log_lik(seed=5)
    whole = psis.loo(ll)
    monkeypatch.setattr(psis, "BLOCK", 4)
    np.testing.assert_array_equal(psis.loo(ll).elpd_i.values, whole.elpd_i.values)


def test_too_few_draws_and_constant_tails_are_errors():
    with pytest.raises(ValueError, match="at least 5 tail draws"):
        psis.psislw(np.zeros((20, 3)))
    with pytest.raises(ValueError, match="tail values are the same"):
        psis.psislw(np.zeros((400, 3)))
