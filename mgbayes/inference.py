"""Hypothesis + data → ``pm.Model`` → NUTS → ArviZ ``DataTree``.

One builder serves every hypothesis (impedance drift, current–overpotential,
transients). Sampling starts from the best of several optimisations of the
posterior density (a MAP point), so good data do not fail to fit for want of
a good start. After sampling, the forward model is evaluated again with
NumPy on the posterior draws to give the pointwise log-likelihood (Re and Im
of one frequency point summed into one observation), a thinned posterior
predictive, time-resolved parameters and the derived quantities; no second
PyTensor compilation is needed for that.
"""

import importlib.metadata
import platform
import warnings

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from . import cache, diagnostics, hypotheses
from .observations import check_kind, observe
from .sampler import resolve_sampler, sample

#: Posterior-predictive draws kept in results (enough for 94 % bands).
PREDICTIVE_DRAWS = 200
#: Observed values × draws per block when the forward model is evaluated on the posterior with NumPy.
CHUNK_VALUES = 1 << 19


def build_model(hypothesis, data, *, exclude=None):
    """Return ``(pm.Model, Observations)`` for ``hypothesis`` on ``data``.

    Every free parameter is a PyMC variable (with ``dims="cell"`` for
    hierarchical offsets); the observed variable has the same name and dims
    in every hypothesis of an experiment, so they can be compared by LOO.

    ``exclude`` (boolean, shape of the pointwise dims) leaves observations
    out of the likelihood, for exact leave-one-out refits; the likelihood is
    then a ``pm.Potential`` over the kept observations.
    """
    obs = data if hasattr(data, "pointwise_dims") else observe(data)
    check_kind(hypothesis, obs)
    priors = priors_for(hypothesis, obs)
    with pm.Model(coords=obs.coords) as model:
        free = {}
        for name, prior in priors.items():
            if name.startswith("noise_"):
                continue
            dims = "cell" if name.endswith("_z") and name[:-2] in hypothesis.hierarchy else None
            free[name] = prior.to_pymc(name, dims=dims) if not prior.is_fixed else prior.to_pymc(name)
        noise = {k[len("noise_"):]: p.to_pymc(k) for k, p in priors.items() if k.startswith("noise_")}
        inputs = {k: pt.as_tensor_variable(v) for k, v in obs.inputs.items()}
        resolved = hypothesis.resolve(free, inputs, cell_index=obs.cell_index)
        mu = obs.predict(hypothesis, resolved)
        sigma = obs.noise_scale(hypothesis.noise_model, mu, noise["sigma"])
        if exclude is not None:
            dist = (pm.StudentT.dist(nu=noise["nu"], mu=mu, sigma=sigma) if hypothesis.noise_model == "student_t"
                    else pm.Normal.dist(mu=mu, sigma=sigma))
            ll = pm.logp(dist, obs.values)
            ll = ll.sum(axis=-1) if obs.kind == "impedance" else ll
            pm.Potential("kept_loglik", (ll * (1.0 - np.asarray(exclude, dtype=float))).sum())
        elif hypothesis.noise_model == "student_t":
            pm.StudentT(hypothesis.observed_name, nu=noise["nu"], mu=mu, sigma=sigma, observed=obs.values, dims=obs.dims)
        else:
            pm.Normal(hypothesis.observed_name, mu=mu, sigma=sigma, observed=obs.values, dims=obs.dims)
    model.mgbayes_priors = priors
    model.mgbayes_hierarchical = any(model.named_vars_to_dims.get(rv.name) == ("cell",) for rv in model.free_RVs)
    model.mgbayes_key = cache.fingerprint(repr(hypothesis), priors, vars(obs), exclude)
    return model, obs


def fit(hypothesis, data, *, draws=1000, tune=1000, chains=4, cores=None, random_seed=None,
        progressbar=False, nuts_sampler=None, target_accept=0.9, starts=6, retry=True):
    """Sample the posterior of ``hypothesis`` given ``data`` with NUTS.

    Parameters
    ----------
    hypothesis : Hypothesis
    data : Spectrum, SpectrumSeries, IVCurve or list of Transient
    draws, tune, chains : int
        NUTS settings (per chain).
    cores : int, optional
        Processes for chains (default: one per chain, at most one per CPU).
    random_seed : int, optional
        Makes the whole fit reproducible.
    nuts_sampler : {"pymc", "nutpie", "numpyro", "blackjax"}, optional
        Backend; default ``"pymc"`` (see :func:`mgbayes.sampler.resolve_sampler`).
        Recorded in the results, with the mass matrix used.
    retry : bool
        If the chains clearly failed (R-hat > 1.05, or divergences in more
        than 1 % of draws), sample once more with ``target_accept=0.97`` and
        twice the tuning; the result records ``retried = 1``. Remaining
        problems are reported, never hidden.

    Returns
    -------
    xarray.DataTree
        Groups ``posterior`` (free, time-resolved and derived quantities),
        ``log_likelihood`` (one value per observation unit),
        ``posterior_predictive``, ``observed_data``, ``sample_stats``;
        attributes hold the hypothesis file text, versions and diagnostics.
    """
    obs = data if hasattr(data, "pointwise_dims") else observe(data)
    hypothesis, notice = hypotheses.for_cells(hypothesis, len(obs.coords.get("cell", ())))
    if notice:
        warnings.warn(notice, hypotheses.HierarchyNotice, stacklevel=2)
    model, obs = build_model(hypothesis, obs)
    rng = np.random.default_rng(random_seed)
    sampler = resolve_sampler(nuts_sampler)
    settings = {"draws": draws, "tune": tune, "chains": chains, "target_accept": target_accept}
    for attempt in range(2 if retry else 1):
        idata = sample(model, cores=cores, rng=rng, progressbar=progressbar, nuts_sampler=nuts_sampler,
                       starts=starts, **settings)
        idata = finish(hypothesis, obs, idata, random_seed=rng.integers(2**31), sampler=sampler)
        failed = diagnostics.clearly_failed(idata.attrs["rhat_max"], idata.attrs["divergences"], draws * chains)
        idata.attrs["retried"] = attempt
        if not failed:
            break
        settings = {**settings, "tune": 2 * tune, "target_accept": max(target_accept, 0.97)}
    if not int(idata.attrs["converged"]):
        warnings.warn(idata.attrs["diagnostics"], diagnostics.ConvergenceWarning, stacklevel=2)
    return idata


def posterior_values(posterior, names):
    """Posterior draws of ``names`` flattened to (sample, ...) NumPy arrays.

    Scalars get a trailing axis of 1 so they broadcast against data axes.
    """
    out = {}
    for name in names:
        if name not in posterior:
            continue
        a = posterior[name].values
        a = a.reshape((-1,) + a.shape[2:])
        out[name] = a[:, None] if a.ndim == 1 else a
    return out


def draw_values(hypothesis, obs, posterior, priors):
    """``(values, fixed, noise)``: per-draw parameter and noise arrays (leading axis: draw) and fixed values."""
    values = posterior_values(posterior, [n for n in priors if not n.startswith("noise_")])
    if "cell" in obs.pointwise_dims:  # stacked cells: shared scalars broadcast over (cell, time)
        values = {n: v[:, :, None] if v.shape[1:] == (1,) else v for n, v in values.items()}
    fixed = {n: np.asarray(p.args["value"]) for n, p in priors.items() if p.is_fixed and not n.startswith("noise_")}
    noise = posterior_values(posterior, [n for n in priors if n.startswith("noise_")])
    return values, fixed, noise


def likelihood_terms(hypothesis, obs, values, fixed, noise):
    """Resolved values, means, noise scales and Student-t degrees of freedom for the given draws."""
    resolved = hypothesis.resolve({**values, **fixed}, dict(obs.inputs), cell_index=obs.cell_index)
    mu = obs.predict(hypothesis, resolved)
    sigma_param = noise["noise_sigma"]
    sigma = obs.noise_scale(hypothesis.noise_model, mu, sigma_param.reshape(sigma_param.shape + (1,) * (mu.ndim - 2)))
    nu = noise.get("noise_nu")
    if nu is not None:
        nu = nu.reshape(nu.shape + (1,) * (mu.ndim - 2))
    return resolved, mu, sigma, nu


def evaluate_draws(hypothesis, obs, draws, *, keep=()):
    """Pointwise log-likelihood of every draw, and ``(mu, sigma, nu)`` of the draws ``keep``.

    ``draws`` is ``(values, fixed, noise)`` from :func:`draw_values`.

    The forward model runs on blocks of draws holding about
    :data:`CHUNK_VALUES` values: the temporaries of a whole posterior (4000
    draws × 40 spectra × 78 frequencies × Re, Im) do not fit in cache, and
    one block at a time is about ten times faster.
    """
    values, fixed, noise = draws
    n = next(iter(noise.values())).shape[0]
    keep = np.asarray(keep, dtype=int)
    ll, kept = [], []
    step = max(1, CHUNK_VALUES // obs.values.size)
    for start in range(0, n, step):
        block = slice(start, min(n, start + step))
        _, mu, sigma, nu = likelihood_terms(hypothesis, obs, {k: v[block] for k, v in values.items()}, fixed,
                                            {k: v[block] for k, v in noise.items()})
        ll.append(pointwise_loglik(obs, mu, sigma, nu))
        here = keep[(keep >= block.start) & (keep < block.stop)] - block.start
        kept.append((mu[here], sigma[here], None if nu is None else nu[here]))
    mu, sigma = (np.concatenate([k[i] for k in kept]) for i in (0, 1))
    nu = None if kept[0][2] is None else np.concatenate([k[2] for k in kept])
    return np.concatenate(ll), (mu, sigma, nu)


def pointwise_loglik(obs, mu, sigma, nu=None):
    """Log-likelihood per observation unit (Re + Im summed for impedance)."""
    import scipy.stats

    y = obs.values
    if nu is None:
        ll = -0.5 * ((y - mu) / sigma) ** 2 - np.log(sigma) - 0.5 * np.log(2 * np.pi)
    else:
        ll = scipy.stats.t.logpdf(y, df=nu, loc=mu, scale=sigma)
    return ll.sum(axis=-1) if obs.kind == "impedance" else ll


def finish(hypothesis, obs, idata, *, random_seed=None, sampler="pymc"):
    """Add log-likelihood, predictive, derived quantities and provenance to ``idata``."""
    posterior = idata.posterior.to_dataset()
    priors = priors_for(hypothesis, obs)
    n_chain, n_draw = posterior.sizes["chain"], posterior.sizes["draw"]
    kept = np.unique(np.linspace(0, n_draw - 1, min(n_draw, -(-PREDICTIVE_DRAWS // n_chain))).astype(int))
    draws = draw_values(hypothesis, obs, posterior, priors)
    ll, predictive = evaluate_draws(hypothesis, obs, draws,
                                    keep=(np.arange(n_chain)[:, None] * n_draw + kept[None, :]).ravel())
    values, fixed, _ = draws
    resolved = hypothesis.resolve({**values, **fixed}, dict(obs.inputs), cell_index=obs.cell_index)
    pw_dims = obs.pointwise_dims
    coords = {d: obs.coords[d] for d in pw_dims}
    ll_da = xr.DataArray(ll.reshape((n_chain, n_draw) + ll.shape[1:]), dims=("chain", "draw") + pw_dims,
                         coords={"chain": posterior.chain, "draw": posterior.draw, **coords})
    idata["log_likelihood"] = xr.Dataset({hypothesis.observed_name: ll_da})
    _add_predictive(idata, hypothesis, obs, predictive, n_chain, kept, random_seed)
    _add_resolved(idata, hypothesis, obs, resolved, n_chain, n_draw)
    idata["constant_data"] = _constant_data(obs)
    attrs = provenance(hypothesis, obs, sampler)
    report = diagnostics.check(idata, hypothesis.name)
    attrs["diagnostics"] = report.text()
    attrs["converged"] = int(report.ok)
    attrs["rhat_max"] = float(report.rhat_max)
    attrs["divergences"] = int(report.divergences)
    idata.attrs.update(attrs)
    return idata


def priors_for(hypothesis, obs):
    """Complete prior table of ``hypothesis`` with defaults centred on ``obs``."""
    f, z = obs.guess_data()
    return hypothesis.prior_table(frequency=f, impedance=z, t_span=obs.t_span)


def _add_predictive(idata, hypothesis, obs, predictive, n_chain, keep, seed):
    """Posterior-predictive draws and means for the draws ``keep`` of every chain."""
    rng = np.random.default_rng(seed)
    m, s, nu = predictive
    noise = rng.standard_normal(m.shape) if nu is None else rng.standard_t(nu, m.shape)
    y = (m + s * noise).reshape((n_chain, keep.size) + m.shape[1:])
    dims = ("chain", "draw") + obs.dims
    coords = {"chain": np.arange(n_chain), "draw": keep, **{d: obs.coords[d] for d in obs.dims}}
    idata["posterior_predictive"] = xr.Dataset({hypothesis.observed_name: xr.DataArray(y, dims=dims, coords=coords)})
    mean = m.reshape((n_chain, keep.size) + m.shape[1:])
    idata["posterior_predictive"][f"{hypothesis.observed_name}_mean"] = xr.DataArray(mean, dims=dims, coords=coords)
    idata["observed_data"] = xr.Dataset({hypothesis.observed_name: xr.DataArray(obs.values, dims=obs.dims, coords={d: obs.coords[d] for d in obs.dims})})


def _add_resolved(idata, hypothesis, obs, resolved, n_chain, n_draw):
    """Store time-resolved parameters and derived quantities in the posterior."""
    if "cell" in obs.pointwise_dims:
        return _add_cell_resolved(idata, hypothesis, obs, resolved, n_chain, n_draw)
    derived = hypothesis.derive(resolved)
    posterior = idata["posterior"].to_dataset()
    time_dim = "time" if obs.kind == "impedance" else None
    for name, value in {**{k: v for k, v in resolved.items() if k in hypothesis.drift or k in hypothesis.transform}, **derived}.items():
        value = np.asarray(value)
        if value.ndim == 0 or value.shape[0] != n_chain * n_draw:
            continue
        value = value.reshape((n_chain, n_draw) + value.shape[1:])
        if value.ndim == 3 and value.shape[2] == 1:
            value = value[:, :, 0]
        dims = ("chain", "draw")
        if value.ndim == 3 and time_dim and value.shape[2] == obs.coords["time"].size:
            dims += (time_dim,)
        elif value.ndim == 3 and value.shape[2] == len(obs.coords.get("point", [])):
            dims += ("point",)
        elif value.ndim > 2:
            continue
        posterior[name] = _posterior_variable(value, dims, posterior, obs, hypothesis.derived.get(name),
                                              derived=name in derived)
    idata["posterior"] = posterior


def _posterior_variable(value, dims, posterior, obs, spec, *, derived):
    """A posterior DataArray with the unit and description of its ``[derived]`` entry."""
    da = xr.DataArray(value, dims=dims, coords={d: posterior[d] if d in posterior.coords else obs.coords[d] for d in dims})
    spec = spec or {}
    da.attrs = {"unit": spec.get("unit", ""), "description": spec.get("description", ""),
                "kind": "derived" if derived else "resolved"}
    return da


def _add_cell_resolved(idata, hypothesis, obs, resolved, n_chain, n_draw):
    """Per-cell (and per cell and time) parameters and derived quantities of stacked cells."""
    derived = hypothesis.derive(resolved)
    posterior = idata["posterior"].to_dataset()
    n_cell, n_time = len(obs.coords["cell"]), len(obs.coords["time"])
    keep = set(hypothesis.drift) | set(hypothesis.transform) | set(hypothesis.hierarchy) | set(derived)
    for name, value in {**resolved, **derived}.items():
        value = np.asarray(value)
        if name not in keep or value.ndim < 2 or value.shape[0] != n_chain * n_draw:
            continue
        value = value.reshape((n_chain, n_draw) + value.shape[1:])
        while value.ndim > 2 and value.shape[-1] == 1:
            value = value[..., 0]
        if value.ndim == 4 and value.shape[2] == 1 and n_cell > 1:  # shared, time-resolved
            value = value[:, :, 0]
        if value.shape[2:] == (n_cell,):
            dims = ("chain", "draw", "cell")
        elif value.shape[2:] == (n_cell, n_time):
            dims = ("chain", "draw", "cell", "time")
        elif value.shape[2:] == (n_time,):
            dims = ("chain", "draw", "time")
        elif value.ndim == 2:
            dims = ("chain", "draw")
        else:
            continue
        posterior[name] = _posterior_variable(value, dims, posterior, obs, hypothesis.derived.get(name),
                                              derived=name in derived)
    idata["posterior"] = posterior


def _constant_data(obs):
    data = {k: xr.DataArray(np.asarray(v), dims=(obs.pointwise_dims[0] if obs.kind != "impedance" else "time",))
            for k, v in obs.inputs.items()}
    if obs.cell_index is not None and np.ndim(obs.cell_index) == 1:
        data["cell_index"] = xr.DataArray(obs.cell_index, dims=("point",))
    ds = xr.Dataset(data)
    ds.attrs["unit"] = obs.unit
    ds.attrs["symmetric"] = int(obs.symmetric)
    return ds


def provenance(hypothesis, obs, sampler):
    """Attributes recording what produced a result."""
    versions = {}
    for package in ("mgbayes", "pymc", "pytensor", "arviz", "numpy", "scipy", "xarray"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "unknown"
    return {
        "hypothesis": hypothesis.name,
        "experiment": hypothesis.experiment,
        "hypothesis_title": hypothesis.title,
        "hypothesis_physics": hypothesis.physics,
        "hypothesis_file": hypothesis.path or "",
        "hypothesis_text": hypothesis.text,
        "data_source": obs.source,
        "data_unit": obs.unit,
        "nuts_sampler": str(sampler),
        "python": platform.python_version(),
        "versions": "; ".join(f"{k} {v}" for k, v in versions.items()),
    }


def save(idata, path):
    """Write ``idata`` to NetCDF atomically (a temporary file, then rename)."""
    import os
    from pathlib import Path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    idata.to_netcdf(tmp, engine="netcdf4")
    os.replace(tmp, path)
    return path


def load(path):
    """Read a result written by :func:`save`."""
    with xr.open_datatree(path, engine="netcdf4") as tree:
        return tree.load()
