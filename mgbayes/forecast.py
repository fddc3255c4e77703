"""Leave-future-out cross-validation: does a drift law forecast the spectra still to come?

PSIS-LOO asks how well each point is predicted from all the others, earlier
and later spectra alike, so a flexible drift law can interpolate its way to
a good score. For a drift series the sharper question is the forecast:
fitted to the spectra up to hour t, how well does a hypothesis predict the
next ``horizon`` spectra? That is LFO-CV (Bürkner, Gabry & Vehtari 2020),
computed by :func:`arviz.lfo_cv`; the refits are those of exact LOO
(:class:`mgbayes.compare.Refits`, one ArviZ ``SamplingWrapper`` for both):
the same model with the later spectra left out of its likelihood, sampled
as every fit is (:func:`mgbayes.sampler.sample`). Outside evidence of a
joint fit stays in every refit; only the hypothesis's own spectra are
forecast. With ``method="approx"`` the
posterior is carried forward by importance sampling and refitted only when
the Pareto k of the weights exceeds 0.7; ``"exact"`` refits at every origin.

The unit is one spectrum (Re and Im at every frequency), and results rank
with :func:`mgbayes.compare.combine`, so the verdict rule is the same as
for LOO.
"""

import warnings

import arviz as az
import numpy as np
import xarray as xr

from . import compare
from .observations import observe


RULE = (f"preferred when the ELPD difference exceeds {compare.DIFF_MIN:g} and {compare.SE_FACTOR:g}× its standard "
        f"error; otherwise indistinguishable (leave-future-out: each spectrum forecast from the earlier ones, "
        f"refitted where the Pareto k of the carried-forward weights exceeds {compare.K_BAD})")
OPTIONS = {"min_spectra", "horizon", "method"}


def lfo(hypothesis, data, idata, *, min_spectra=None, horizon=1, method="approx", draws=compare.REFIT["draws"],
        tune=compare.REFIT["tune"], chains=compare.REFIT["chains"], random_seed=None, cores=None):
    """LFO-CV of one fitted hypothesis on a spectra series.

    Parameters
    ----------
    hypothesis : Hypothesis
        An impedance hypothesis.
    data : SpectrumSeries
        The series ``idata`` was fitted to (one cell).
    idata : DataTree
        The fit on all spectra (:func:`mgbayes.inference.fit`).
    min_spectra : int, optional
        Spectra the first forecast is conditioned on (default: half of them).
    horizon : int
        Spectra ahead scored jointly at each forecast origin.
    method : {"approx", "exact"}
    draws, tune, chains, random_seed, cores
        Settings of the refits (``cores``: see :class:`mgbayes.compare.Refits`).

    Returns
    -------
    arviz_stats.utils.ELPDDataLFO
        One ELPD per forecast origin (``elpd_i`` over ``time``), Pareto k of
        the carried-forward weights, and the refit origins; with
        ``refit_problems``, the refits that cannot be trusted (chains that
        clearly failed, or a forecast ELPD resting on a few draws:
        :class:`mgbayes.compare.Refits`).
    """
    obs = data if hasattr(data, "pointwise_dims") else observe(data)
    if obs.kind != "impedance" or obs.pointwise_dims != ("time", "frequency"):
        raise ValueError(f"leave-future-out needs one spectra series over time; {obs.source or 'these data'} "
                         f"have dims {obs.pointwise_dims}. Use LOO (unit 'point' or 'spectrum') instead.")
    n_time = len(obs.coords["time"])
    min_spectra = int(min_spectra or max(2, n_time // 2))
    if not 1 <= min_spectra <= n_time - horizon:
        raise ValueError(f"min_spectra = {min_spectra} with horizon = {horizon} leaves nothing to forecast in "
                         f"{n_time} spectra; use 1 <= min_spectra <= {n_time - horizon}")
    name = next(iter(idata["log_likelihood"].data_vars))
    tree = xr.DataTree.from_dict({
        "posterior": idata["posterior"].to_dataset()[list(idata["posterior"].data_vars)[:1]],
        "log_likelihood": xr.Dataset({name: compare.unit_loglik(idata, "spectrum")}),
    })
    # the refits of exact LOO, left-out = the future
    wrapper = compare.Refits(hypothesis, obs, unit="spectrum", dim="time", draws=draws, tune=tune, chains=chains,
                             rng=np.random.default_rng(random_seed), cores=cores, forecast=horizon)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "many refits": stated in the result (n_refits)
        result = az.lfo_cv(tree, wrapper, min_observations=min_spectra, forecast_horizon=horizon, time_dim="time",
                           pointwise=True, var_name=name, method=method)
    result.refit_problems = wrapper.problems
    return result


def compare_lfo(hypotheses, data, results, **options):
    """Rank hypotheses by LFO-CV (same rule as LOO); ``options`` go to :func:`lfo`.

    Returns
    -------
    mgbayes.compare.Comparison
        With unit ``"future"``; ``loo`` holds the LFO results by name.
    """
    lfos = {h.name: lfo(h, data, results[h.name], **options) for h in hypotheses}
    experiment = compare.family(next(iter(results.values())))
    refits = {name: int(result.n_refits) for name, result in lfos.items()}
    problems = {name: result.refit_problems for name, result in lfos.items() if result.refit_problems}
    return compare.combine(lfos, experiment=experiment, unit="future", refits=refits, rule=RULE, fits=results,
                           refit_problems=problems)
