"""Hypothesis + data → ``pm.Model`` → NUTS → ArviZ ``DataTree``.

One builder serves every hypothesis (impedance drift, current–overpotential,
transients). Sampling starts from the best of several optimisations of the
posterior density (a MAP point), so good data do not fail to fit for want of
a good start. After sampling, the forward model is evaluated again with
NumPy on the posterior draws to give the pointwise log-likelihood (one value
per observed value, like ``observed_data``), the posterior
predictive (at every posterior draw, as ArviZ expects), time-resolved
parameters and the derived quantities, and on draws from the prior to give
the ``prior`` and ``prior_predictive`` groups; no second PyTensor
compilation is needed for that. Every variable of every group carries its
unit in ``attrs["unit"]`` (see :mod:`mgbayes.units`).
"""

import dataclasses
import importlib.metadata
import json
import platform
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
import xarray as xr

from . import cache, circuits, diagnostics, expressions, hypotheses, units
from .backend import namespace
from .errors import HypothesisError, MgbayesError
from .hypotheses import MAX_COORDINATES, PER_PART, coordinate_inputs
from .observations import check_kind, observe
from .sampler import TUNE, density, resolve_sampler, retry_settings, sample, set_inputs

#: Draws from the prior in the ``prior`` and ``prior_predictive`` groups (one chain).
PRIOR_DRAWS = 500
#: Above this many values per variable the predictive groups are stored in single precision
#: (a noisy replicate needs no more than 7 digits; it halves the file of a long series).
FLOAT32_VALUES = 1 << 21
#: Observed values × draws per block when the forward model is evaluated on the posterior with NumPy.
CHUNK_VALUES = 1 << 19
#: A fit that stops once converged (``until_converged``) and has not converged after its ``draws`` goes on to
#: at most this many times as many where only R-hat (up to 1.05) or ESS fall short: more draws mend those.
DRAWS_MORE = 2
#: Name of the ``pm.Data`` input holding the observed values of a ``mutable`` model.
OBSERVED_DATA = "observed_values"
#: Name of the ``pm.Data`` input weighting each observation unit (1 kept, 0 left out; see :func:`set_excluded`).
KEPT_DATA = "kept_units"


@dataclass(frozen=True)
class Evidence:
    """Another experiment fitted jointly with a hypothesis: outside evidence as data.

    Its likelihood joins the hypothesis's in one model. The names in
    ``shares`` are the hypothesis's own quantities (free parameters or
    formulas, e.g. the film's ``R_e``); every other parameter of the evidence
    hypothesis is its own, shared by name with the other evidence of the same
    hypothesis (e.g. one polysulfide arc in two cells). Its data are data of
    the joint model like the hypothesis's own: they are scored in LOO (each
    outside spectrum or point a unit, see :func:`mgbayes.compare.unit_loglik`),
    so a hypothesis that misfits them, or inflates their noise to absorb a
    misfit, pays for it in the comparison.

    Attributes
    ----------
    name : str
        Label of the data set (prefixes its observed variable, noise and dims).
    hypothesis : Hypothesis
        Forward model of the evidence data.
    observations : Observations
        The evidence data (:func:`mgbayes.observations.observe`).
    shares : tuple of str
        Quantities that are the main hypothesis's.
    """

    name: str
    hypothesis: object
    observations: object
    shares: tuple = ()


def check_evidence(hypothesis, evidence):
    """Raise unless every shared name is defined by ``hypothesis`` and no other name clashes with its own."""
    own = set(hypothesis.free_parameters()) | set(hypothesis.transform) | set(hypothesis.drift)
    for ev in evidence:
        names = set(ev.hypothesis.free_parameters())
        missing = [n for n in ev.shares if n not in own]
        clash = sorted((names & own) - set(ev.shares))
        if missing or clash:
            raise HypothesisError(
                f"evidence {ev.name!r} ({ev.hypothesis.path}) with hypothesis {hypothesis.name!r}: "
                + (f"shares {missing}, which {hypothesis.name!r} does not define; " if missing else "")
                + (f"{clash} are named in both but not shared: add them to shares or rename them" if clash else ""))


def _evidence_likelihoods(model, hypothesis, resolved):
    """Add each evidence's parameters and likelihood to ``model`` (inside its context)."""
    own = {}
    for ev in hypothesis.evidence:
        h, obs = ev.hypothesis, ev.observations
        values = {}
        for name, prior in priors_for(h, obs).items():
            if name.startswith("noise_"):
                continue
            if name in ev.shares:
                values[name] = resolved[name]
            else:
                if name not in own:
                    own[name] = prior.to_pymc(name)
                values[name] = own[name]
        noise = {k: p.to_pymc(f"{ev.name}_noise_{k}") for k, p in h.noise_priors.items()}
        inputs = {k: pt.as_tensor_variable(v) for k, v in obs.inputs.items()}
        mu = obs.predict(h, h.resolve(values, inputs))
        sigma = noise_sd(obs, h.noise_model, mu, noise)
        dims = tuple(f"{ev.name}_{d}" for d in obs.dims)
        for d, name in zip(obs.dims, dims):
            model.add_coord(name, obs.coords[d])
        _kept_likelihood(f"{h.observed_name}_{ev.name}", f"{KEPT_DATA}_{ev.name}", obs, obs.values, mu, sigma, noise)


def _kept_likelihood(name, kept_name, obs, observed, mu, sigma, noise):
    """The log-likelihood of ``observed`` as a ``pm.Potential``, each pointwise unit weighted by input ``kept_name``.

    Every unit is kept (weight 1) when the model is built; an exact LOO refit
    sets the weights of the units it leaves out to 0 (:func:`set_excluded`),
    so a fit and all its refits share one compiled density.
    """
    dist = pm.StudentT.dist(nu=noise["nu"], mu=mu, sigma=sigma) if "nu" in noise else pm.Normal.dist(mu=mu, sigma=sigma)
    ll = pm.logp(dist, observed)
    ll = ll.sum(axis=-1) if obs.kind == "impedance" else ll  # Re and Im of a point: one unit
    kept = pm.Data(kept_name, np.ones(tuple(len(obs.coords[d]) for d in obs.pointwise_dims)))
    pm.Potential(name, (ll * kept).sum())


def evidence_loglik(hypothesis, posterior, resolved):
    """Pointwise log-likelihood of each evidence data set for every draw (NumPy).

    Returns name → array (draw, pointwise dims of its observations); Re and
    Im of one frequency point are one value, as for the hypothesis's own data.
    """
    out = {}
    for ev in hypothesis.evidence:
        h, obs = ev.hypothesis, ev.observations
        names = [k for k in priors_for(h, obs) if not k.startswith("noise_")]
        values = posterior_values(posterior, [k for k in names if k not in ev.shares])
        values.update({k: resolved[k] for k in ev.shares})
        fixed = {k: np.asarray(p.args["value"]) for k, p in priors_for(h, obs).items() if p.is_fixed}
        noise = {k[len(ev.name) + 1:]: v for k, v in
                 posterior_values(posterior, [f"{ev.name}_noise_{k}" for k in h.noise_priors]).items()}
        _, mu, sigma, nu = likelihood_terms(h, obs, values, fixed, noise)
        out[ev.name] = pointwise_loglik(obs, mu, sigma, nu)
    return out


def log_prior_values(priors, posterior):
    """Log prior density of every sampled parameter at each draw: name → array like the posterior's.

    Densities are of the variable as sampled: a log-uniform parameter is
    uniform in its log (a constant), the rest in their own units.
    """
    import scipy.stats as st

    out = {}
    for name, prior in priors.items():
        a = prior.args
        if prior.is_fixed or name not in posterior:
            continue
        x = posterior[name].values
        match prior.dist:
            case "lognormal":
                lp = st.lognorm.logpdf(x, s=a["sd_log"], scale=a["median"])
            case "loguniform":
                lp = np.full(x.shape, -np.log(np.log(a["upper"] / a["lower"])))
            case "normal":
                lp = st.norm.logpdf(x, a["mu"], a["sigma"])
            case "halfnormal":
                lp = st.halfnorm.logpdf(x, scale=a["sigma"])
            case "uniform":
                lp = st.uniform.logpdf(x, a["lower"], a["upper"] - a["lower"])
            case "beta":
                lp = st.beta.logpdf(x, a["alpha"], a["beta"])
        out[name] = lp
    return out


#: Steepness of a hard bound: the log density falls by 200 for every bound's worth beyond it (about 2 at 1 %).
BOUND_STEEPNESS = 200.0


def bound_logp(x, bound):
    """Log-density term of a hard bound (``{"lower"/"upper": value}``) on ``x``, NumPy or PyTensor.

    A smooth, steep wall (a softplus), so that NUTS sees a gradient: inside
    the bound it is nearly 0, beyond it falls by :data:`BOUND_STEEPNESS`
    per bound's worth, so no amount of data carries a quantity far past it.
    """
    xp = namespace(x)
    softplus = np.logaddexp if xp is np else (lambda a, b: pt.softplus(b))
    out = 0.0
    if "upper" in bound:
        out = out - softplus(0.0, BOUND_STEEPNESS * (x / bound["upper"] - 1.0)).sum()
    if "lower" in bound:
        out = out - softplus(0.0, BOUND_STEEPNESS * (1.0 - x / bound["lower"])).sum()
    return out


class Model(pm.Model):
    """The PyMC model of one hypothesis on one data set, with what mgbayes knows about it.

    Our own subclass, so the metadata are declared here rather than set on
    PyMC's object. The names keep their ``mgbayes_`` prefix because
    :mod:`mgbayes.sampler` reads and caches them.

    Attributes
    ----------
    mgbayes_priors : dict
        The prior table the model was built from (name → Prior).
    mgbayes_hierarchical : bool
        Whether it has per-cell offsets (sampled with a diagonal mass matrix).
    mgbayes_key : str
        Fingerprint of everything its density depends on (the compile cache's key).
    mgbayes_density, mgbayes_constrained : callable or None
        Compiled functions, cached here by :mod:`mgbayes.sampler`.
    """

    mgbayes_priors = None
    mgbayes_hierarchical = False
    mgbayes_key = None
    mgbayes_density = None
    mgbayes_constrained = None
    _whole_logp = None  # (variables, graph) of the last whole-model logp(), see logp

    def logp(self, vars=None, jacobian=True, sum=True):
        """PyMC's log-density graph; the whole model's (the default arguments) is built once.

        ``pm.sample`` builds it on every call, only to ask which variables have
        a gradient, even when the step method already covers them all: 0.25 s
        per call on the OCV models, paid again by every exact refit and every
        calibration replicate of the same model. The graph is rebuilt when a
        variable or potential has been added since.
        """
        if vars is not None or not jacobian or not sum:
            return super().logp(vars=vars, jacobian=jacobian, sum=sum)
        key = (tuple(self.free_RVs), tuple(self.observed_RVs), tuple(self.potentials))
        if self._whole_logp is None or self._whole_logp[0] != key:
            self._whole_logp = (key, super().logp())
        return self._whole_logp[1]


def build_model(hypothesis, data, *, exclude=None, priors=None, mutable=False):
    """Return ``(Model, Observations)`` for ``hypothesis`` on ``data`` (:class:`Model`: a ``pm.Model`` of ours).

    Every free parameter is a PyMC variable (with ``dims="cell"`` for
    hierarchical offsets); the observed variable has the same name and dims
    in every hypothesis of an experiment, so they can be compared by LOO.

    The likelihood is a ``pm.Potential`` over the pointwise units (a
    frequency point of a spectrum, Re and Im together; a current; a time),
    each weighted by a ``pm.Data`` input that is 1 for every unit here and 0
    for the units an exact leave-one-out refit leaves out
    (:func:`set_excluded`, or ``exclude``: boolean, shape of the pointwise
    dims). The fit and all its refits thus share one compiled density: the
    refits of a comparison load the one its fit stored on disk
    (:func:`mgbayes.sampler.density`) instead of compiling their own.

    ``priors`` (a prior table, default :func:`priors_for` the data) and
    ``mutable=True`` serve calibration: the observed values become a
    ``pm.Data`` input (:data:`OBSERVED_DATA`), so :func:`set_observed` swaps
    simulated data into the compiled density without compiling again.
    """
    obs = data if hasattr(data, "pointwise_dims") else observe(data)
    check_kind(hypothesis, obs)
    priors = priors_for(hypothesis, obs) if priors is None else priors
    replaced = hypothesis.replaced()
    with Model(coords=obs.coords) as model:
        free = {}
        for name, prior in priors.items():
            if name.startswith("noise_") or name in replaced:
                continue
            per_cell = name.endswith("_z") and name[:-2] in hypothesis.hierarchy
            if per_cell and hypothesis.hierarchy[name[:-2]].get("centred"):
                free[name] = centred_offsets(name[:-2], hypothesis.hierarchy[name[:-2]], free)
            else:
                free[name] = prior.to_pymc(name, dims="cell" if per_cell else None) if not prior.is_fixed \
                    else prior.to_pymc(name)
        per_part = {"dims": "part"} if obs.kind == "impedance" else {}
        noise = {k[len("noise_"):]: p.to_pymc(k, **(per_part if k[len("noise_"):] in PER_PART else {}))
                 for k, p in priors.items() if k.startswith("noise_")}
        if replaced:
            free.update(sampled_coordinates(hypothesis, priors, obs))
        inputs = {k: pt.as_tensor_variable(v) for k, v in obs.inputs.items()}
        resolved = hypothesis.resolve(free, inputs, cell_index=obs.cell_index)
        mu = obs.predict(hypothesis, resolved)
        sigma = noise_sd(obs, hypothesis.noise_model, mu, noise)
        observed = pm.Data(OBSERVED_DATA, obs.values, dims=obs.dims) if mutable else obs.values
        _kept_likelihood(hypothesis.observed_name, KEPT_DATA, obs, observed, mu, sigma, noise)
        if hypothesis.evidence:
            _evidence_likelihoods(model, hypothesis, resolved)
        for name, bound in hypothesis.bounds.items():
            pm.Potential(f"bound_{name}", bound_logp(resolved[name], bound))
    model.mgbayes_priors = priors
    # non-centred offsets make a funnel (no useful mode, a diagonal mass matrix); centred cell values do not
    model.mgbayes_hierarchical = any(model.named_vars_to_dims.get(rv.name) == ("cell",) and rv.name.endswith("_z")
                                     for rv in model.free_RVs)
    evidence = [(ev.name, repr(ev.hypothesis), vars(ev.observations), ev.shares) for ev in hypothesis.evidence]
    # no left-out units in the key: they are an input of the density (set_excluded), not part of its graph
    model.mgbayes_key = cache.fingerprint(repr(hypothesis), priors, vars(obs), mutable, *evidence)
    if exclude is not None:
        model.set_data(KEPT_DATA, 1.0 - np.asarray(exclude, dtype=float))
    return model, obs


def sampled_coordinates(hypothesis, priors, obs):
    """The parameters a hypothesis's ``[coordinates]`` replaces, as functions of the variables NUTS samples.

    The sampled variables are flat; the replaced parameters are
    deterministic functions of them, and a ``pm.Potential`` adds their prior
    densities and ``log |det J|`` of the map (sampled → replaced), so the
    posterior of the model is the one sampled without the map. Returns
    name → replaced parameter.
    """
    spec, where = hypothesis.coordinates, f"{hypothesis.path or hypothesis.name} [coordinates]"
    sampled = [pm.Flat(name) for name in spec["sampled"]]
    inputs = coordinate_inputs(obs.inputs)
    uses = {name: expressions.parse(text)[1] for name, text in spec["formulas"].items()}  # the names each formula reads
    if inputs and inputs["t_max"] <= inputs["t_min"] and {"t_min", "t_max"} <= set().union(*uses.values()):
        raise HypothesisError(f"{where}: its formulas use t_min and t_max, but {obs.source or 'these data'} hold one "
                              f"time ({inputs['t_max']:g} h); a drift needs data at two times at least")
    values = {**inputs, **{v.name: v for v in sampled}}
    for name, text in spec["formulas"].items():
        missing = [n for n in uses[name] if n not in values]
        if missing:
            raise HypothesisError(f"{where}: {name} = {text!r} needs {missing}, which these data do not have")
        values[name] = expressions.evaluate(text, values, where=where)
    replaced = hypothesis.replaced()
    jacobian = [pytensor.grad(values[name], sampled, disconnected_inputs="ignore") for name in replaced]
    log_det = pt.log(pt.abs(determinant(jacobian)))
    pm.Potential("coordinates_prior", sum(priors[name].logp(values[name]) for name in replaced) + log_det)
    return {name: pm.Deterministic(name, values[name]) for name in replaced}


def determinant(rows):
    """Determinant of a 1×1, 2×2 or 3×3 matrix given as rows of scalars, in plain arithmetic.

    LAPACK's (``pt.linalg.det``) raises on a singular or non-finite matrix
    and its gradient inverts the matrix; where a mode search or a
    trajectory strays, this one gives 0, inf or NaN, which the sampler
    treats as no density.
    """
    match len(rows):
        case 1:
            return rows[0][0]
        case 2:
            (a, b), (c, d) = rows
            return a * d - b * c
        case 3:
            (a, b, c), (d, e, f), (g, h, i) = rows
            return a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)
    raise ValueError(f"{len(rows)} coordinates; at most {MAX_COORDINATES}")


def centred_offsets(base, spec, free):
    """Offsets ``X_z`` of a centred hierarchy, as a deterministic of each cell's own value.

    Non-centred (the default) samples ``X_z ~ Normal(0, 1)``; where every
    cell's data fix its value (a sharp change point per transient) the
    offsets then sit on a thin ridge ``z = (X_cell - mu) / sd`` that moves
    with ``mu`` and ``sd``, and NUTS with a diagonal mass matrix mixes
    poorly. Centred samples each cell's value itself, ``X_log ~
    Normal(log mu, sd)`` (scale ``log``) or ``X_cell ~ Normal(mu, sd)``
    (``additive``): the same model, a better geometry when the data are
    informative. ``X_z`` stays in the result, so everything downstream reads
    it as before.
    """
    mu, sd = free[f"{base}_mu"], free[f"{base}_sd"]
    if spec["scale"] == "log":
        value = pm.Normal(f"{base}_log", mu=pt.log(mu), sigma=sd, dims="cell")
        return pm.Deterministic(f"{base}_z", (value - pt.log(mu)) / sd, dims="cell")
    value = pm.Normal(f"{base}_cell", mu=mu, sigma=sd, dims="cell")
    return pm.Deterministic(f"{base}_z", (value - mu) / sd, dims="cell")


def set_observed(model, obs, values):
    """Observe ``values`` (shape of ``obs.values``) in a model built with ``mutable=True``.

    The values go into the model's ``pm.Data`` input and into the compiled
    density (:func:`mgbayes.sampler.density`, compiled or loaded here if not
    yet), whose copy of that input is separate when it came from the disk
    cache. Returns the :class:`Observations` holding ``values``.
    """
    values = np.asarray(values, dtype=float)
    if values.shape != obs.values.shape:
        raise ValueError(f"observed values of shape {values.shape}; the model observes {obs.values.shape}")
    _set_input(model, OBSERVED_DATA, values)
    return dataclasses.replace(obs, values=values)


def set_excluded(model, exclude, outside=None):
    """Leave out the observations ``exclude`` (boolean, pointwise dims) of a model from :func:`build_model`.

    ``outside`` maps an outside data set's name to its mask (its pointwise
    dims). The masks are inputs of the compiled density, so exact LOO refits
    share the fit's compiled density instead of compiling one per left-out
    unit; the cache key names no mask.
    """
    _set_input(model, KEPT_DATA, 1.0 - np.asarray(exclude, dtype=float))
    for name, mask in (outside or {}).items():
        _set_input(model, f"{KEPT_DATA}_{name}", 1.0 - np.asarray(mask, dtype=float))


def _set_input(model, name, values):
    """Set the ``pm.Data`` input ``name`` in the model and in its compiled density (a separate copy when loaded from disk)."""
    model.set_data(name, values)
    set_inputs(density(model, key=getattr(model, "mgbayes_key", None)), {name: values})


def fit(hypothesis, data, *, draws=1000, tune=TUNE, chains=4, cores=None, random_seed=None,
        progressbar=False, nuts_sampler=None, target_accept=0.9, starts=6, retry=True, model=None, light=False,
        until_converged=True):
    """Sample the posterior of ``hypothesis`` given ``data`` with NUTS.

    Parameters
    ----------
    hypothesis : Hypothesis
    data : Spectrum, SpectrumSeries, IVCurve or list of Transient
    draws, tune, chains : int
        NUTS settings (per chain); with ``until_converged``, ``draws`` is the
        most a converging chain makes (see there).
    cores : int, optional
        Processes for chains (default: one per chain, at most one per CPU).
    random_seed : int, optional
        Makes the whole fit reproducible.
    target_accept : float
        NUTS's target acceptance; at least the hypothesis's ``[sampler]
        target_accept`` where it states one.
    nuts_sampler : {"pymc", "nutpie", "numpyro", "blackjax"}, optional
        Backend; default ``"pymc"`` (see :func:`mgbayes.sampler.resolve_sampler`).
        Recorded in the results, with the mass matrix used.
    retry : bool
        If the chains clearly failed (R-hat > 1.05, or divergences in more
        than 1 % of draws), sit in different modes (their mean log
        densities differ, or all draws lie far below the best mode the
        search found), or have more divergent transitions than a verdict
        allows (:data:`mgbayes.diagnostics.DIVERGENCES_HANDFUL`), sample
        once more with ``target_accept=0.97`` and twice the tuning; the
        result records ``retried = 1``, why (``first_run``: the first run's
        diagnostics, or that it was stopped for its divergent transitions)
        and the settings of the run it holds (``tune``, ``target_accept``).
        Remaining problems are reported,
        never hidden. Smaller steps and a longer adaptation are what
        divergences ask for (on the demo's plating data they took
        ``koutecky_levich`` from 6 divergent transitions of 4000 to 0); an
        R-hat between 1.01 and 1.05 or a short ESS asks for more draws,
        which is the caller's choice.
    model : tuple, optional
        A prepared ``(pm.Model, Observations)`` of ``hypothesis`` (e.g. from
        :func:`build_model` with ``mutable=True`` and :func:`set_observed`);
        ``data`` is then not read.
    until_converged : bool
        Stop sampling at the first look (after 20 %, 30 %, ... of ``draws``,
        :func:`mgbayes.sampler.looks`) at which every convergence check of
        :func:`mgbayes.diagnostics.check` passes on the draws so far (R-hat
        at most 1.01, bulk and tail ESS at least 400, E-BFMI, chains in one
        mode) but divergent transitions, of which there are at most a
        handful at the rate found so far over all ``draws``: more draws
        would only add to those (they stay in the report); and with at least
        :data:`mgbayes.diagnostics.LOO_DRAWS_MIN` draws in all chains, for
        PSIS-LOO. A fit that has not got there after ``draws`` goes on, look
        by look, to at most :data:`DRAWS_MORE` × ``draws`` while only R-hat
        (up to 1.05) or ESS (one that reaches 400 by then at its rate) fall
        short, which more draws mend; with
        divergences, low E-BFMI or chains in different modes it stops at
        ``draws``, as without. The kept draws are exactly the first draws
        of the longer run (PyMC's NUTS only; other backends always make
        ``draws``).
    light : bool
        Keep only what a comparison and the convergence checks need: the
        posterior as sampled, ``log_likelihood``, ``observed_data``,
        ``sample_stats`` and the diagnostics (calibration's replicate fits,
        thousands of them). No predictive, prior, derived quantities,
        ``log_prior`` or units; the same draws and diagnostics as a full fit.

    Returns
    -------
    xarray.DataTree
        Groups ``posterior`` (free, time-resolved and derived quantities),
        ``log_likelihood`` (one value per observed value, dims of ``observed_data``),
        ``posterior_predictive`` (noisy replicates ``Z``/``eta`` and the
        noise-free model ``Z_mean``/``eta_mean`` at every posterior draw),
        ``prior`` and ``prior_predictive`` (:data:`PRIOR_DRAWS` draws),
        ``observed_data``, ``constant_data``, ``sample_stats``; every variable
        has a ``unit`` attribute; attributes of the tree hold the hypothesis
        file text, versions and diagnostics.
    """
    if model is None:  # a prepared model (calibration) is used as it is
        obs = data if hasattr(data, "pointwise_dims") else observe(data)
        hypothesis, notice = hypotheses.for_cells(hypothesis, len(obs.coords.get("cell", ())))
        if notice:
            warnings.warn(notice, hypotheses.HierarchyNotice, stacklevel=2)
        model = build_model(hypothesis, obs)
    model, obs = model
    check_derived(hypothesis, obs, model.mgbayes_priors)
    rng = np.random.default_rng(random_seed)
    sampler = resolve_sampler(nuts_sampler)
    target_accept = max(target_accept, hypothesis.target_accept or 0.0)  # the hypothesis's [sampler] floor
    settings = {"draws": draws, "tune": tune, "chains": chains, "target_accept": target_accept}
    gate = _Gate(hypothesis, model.mgbayes_priors, draws * chains) if until_converged else None
    stopping = {"enough": gate.enough, "more": gate.more, "draws_max": DRAWS_MORE * draws} if gate else {}
    attempts, first_run = 2 if retry else 1, None
    for attempt in range(attempts):
        # a first run with more than a handful of divergences is sampled again below: stop it at that point
        limit = diagnostics.DIVERGENCES_HANDFUL if attempt < attempts - 1 else None
        idata = sample(model, cores=cores, rng=rng, progressbar=progressbar, nuts_sampler=nuts_sampler,
                       starts=starts, divergence_limit=limit, **stopping, **settings)
        seed = rng.integers(2**31)  # finish()'s, drawn for a stopped run too: a retry samples as after a whole one
        if idata is None:
            first_run = f"stopped after more than {diagnostics.DIVERGENCES_HANDFUL} divergent transitions"
            settings = retry_settings(settings)
            continue
        idata = order_arcs(hypothesis, model.mgbayes_priors, idata)
        idata = finish(hypothesis, obs, idata, random_seed=seed, sampler=sampler, light=light)
        idata.attrs.update({"retried": attempt, "tune": settings["tune"], "target_accept": settings["target_accept"],
                            **({"first_run": first_run} if attempt else {})})
        made = idata["posterior"].sizes["chain"] * idata["posterior"].sizes["draw"]
        failed = (diagnostics.clearly_failed(idata.attrs["rhat_max"], idata.attrs["divergences"], made)
                  or int(idata.attrs["modes_disagree"]) or idata.attrs["divergences"] > diagnostics.DIVERGENCES_HANDFUL)
        if not failed:
            break
        first_run = idata.attrs["diagnostics"].removeprefix(f"{hypothesis.name}: ")
        settings = retry_settings(settings)
    if not int(idata.attrs["converged"]):
        warnings.warn(idata.attrs["diagnostics"], diagnostics.ConvergenceWarning, stacklevel=2)
    return idata


class _Gate:
    """When a fit's chains (a raw sampler DataTree, arcs ordered as :func:`fit` orders them) have drawn enough.

    ``enough``: more of the ``planned`` draws (all chains) could change no
    convergence check (:meth:`mgbayes.diagnostics.ConvergenceReport.enough_draws`);
    ``more``: past the planned draws, more can still mend what fails
    (:meth:`~mgbayes.diagnostics.ConvergenceReport.more_draws_help`).
    """

    def __init__(self, hypothesis, priors, planned):
        self.hypothesis, self.priors, self.planned, self._last = hypothesis, priors, planned, (None, None)

    def report(self, idata):
        if self._last[0] is not idata:  # both questions are asked of the same draws: checked once
            ordered = order_arcs(self.hypothesis, self.priors, idata)
            self._last = (idata, diagnostics.check(ordered, self.hypothesis.name))
        return self._last[1]

    def enough(self, idata):
        return self.report(idata).enough_draws(self.planned, draws_min=diagnostics.LOO_DRAWS_MIN)

    def more(self, idata):
        return self.report(idata).more_draws_help(DRAWS_MORE * self.planned)


def check_derived(hypothesis, data, priors=None, *, draws=16, seed=0):
    """Evaluate the ``[derived]`` quantities at the priors' typical values and ``draws`` prior draws, before sampling.

    Raises HypothesisError (naming the file and quantity) for one that fails everywhere.
    """
    if not hypothesis.derived:
        return
    obs = data if hasattr(data, "pointwise_dims") else observe(data)
    priors = priors if priors is not None else priors_for(hypothesis, obs)
    rng = np.random.default_rng(seed)
    n_cell = len(obs.coords.get("cell", [])) or 1
    fake = {}
    for name, prior in priors.items():
        if prior.is_fixed:
            continue
        per_cell = name.endswith("_z") and name[:-2] in hypothesis.hierarchy
        shape = (draws + 1, n_cell) if per_cell else (draws + 1,)
        value = np.asarray(prior.sample(rng, shape), dtype=float)
        value[0] = prior.typical()
        fake[name] = xr.DataArray(value[None], dims=("chain", "draw") + (("cell",) if per_cell else ()))
    values, fixed, _ = draw_values(hypothesis, obs, xr.Dataset(fake), priors)
    points = [{**{k: v[i:i + 1] for k, v in values.items()}, **fixed} for i in range(draws + 1)]
    hypothesis.check_derived(points, dict(obs.inputs), cell_index=obs.cell_index)


def _derive(idata, hypothesis, resolved):
    """Derived quantities of a fit; one that fails is named in ``attrs["derived_missing"]`` and warned about, not fatal."""
    missing = {}
    derived = hypothesis.derive(resolved, missing=missing)
    if missing:
        text = "; ".join(f"{k} = {v}" for k, v in missing.items())
        idata.attrs["derived_missing"] = text
        warnings.warn(f"{hypothesis.name}: derived quantities missing from this fit: {text}", UserWarning, stacklevel=4)
    return derived
def order_arcs(hypothesis, priors, idata):
    """Relabel exchangeable arcs of the circuit by time constant, so that "R1" is the fastest arc in every draw.

    Applies to groups from :func:`mgbayes.circuits.exchangeable_arcs` whose
    parameters are sampled scalars with identical priors (then both
    labellings are equally probable and ordering picks one); records what was
    ordered in the ``ordered_arcs`` attribute.
    """
    posterior = idata["posterior"].to_dataset()
    done = []
    for circuit in (hypothesis.series, hypothesis.electrode):
        for group in circuits.exchangeable_arcs(circuit) if circuit is not None else []:
            names = [n for arc in group for n in arc]
            if not all(n in posterior and posterior[n].dims == ("chain", "draw") for n in names):
                continue  # drifting or derived: not a plain swap
            if any(priors.get(arc[i]) != priors.get(group[0][i]) for arc in group for i in range(len(arc))):
                continue  # different priors tell the arcs apart
            ordered = circuits.order_arcs({n: posterior[n].values for n in names}, group)
            for n in names:
                posterior[n] = posterior[n].copy(data=ordered[n])
            done.append(" < ".join(f"tau({arc[0]})" for arc in group))
    if done:
        idata["posterior"] = posterior
        idata.attrs["ordered_arcs"] = "; ".join(done)
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
    n_draws = posterior.sizes["chain"] * posterior.sizes["draw"]
    noise.update({n: np.full((n_draws, 1), p.args["value"]) for n, p in priors.items()  # a known noise scale
                  if n.startswith("noise_") and p.is_fixed})
    return values, fixed, noise


def noise_sd(obs, model, mu, noise):
    """Standard deviation of the noise ``model`` at means ``mu`` (PyTensor or NumPy).

    ``noise`` maps the model's parameters (``sigma``; ``floor`` and
    ``proportional``, one per part of an impedance) to values that broadcast
    against ``mu``. See :mod:`mgbayes.hypotheses` for the models.
    """
    if model not in ("composite", "composite_student_t"):
        return obs.noise_scale(model, mu, noise["sigma"])
    xp = namespace(mu, noise["floor"], noise["proportional"])
    if obs.kind == "impedance":
        modulus = xp.sqrt(mu[..., 0] ** 2 + mu[..., 1] ** 2)
        size = xp.stack([modulus, modulus], axis=-1)
    else:
        size = xp.abs(mu)
    return xp.sqrt(noise["floor"] ** 2 + (noise["proportional"] * size) ** 2)


def likelihood_terms(hypothesis, obs, values, fixed, noise):
    """Resolved values, means, noise scales and Student-t degrees of freedom for the given draws."""
    resolved = hypothesis.resolve({**values, **fixed}, dict(obs.inputs), cell_index=obs.cell_index)
    mu = obs.predict(hypothesis, resolved)
    # (draw,) or (draw, part) parameters against (draw, ..., part) means
    noise = {k[len("noise_"):]: v.reshape(v.shape[:1] + (1,) * (mu.ndim - v.ndim) + v.shape[1:])
             for k, v in noise.items()}
    sigma = noise_sd(obs, hypothesis.noise_model, mu, noise)
    return resolved, mu, sigma, noise.get("nu")


def evaluate_draws(hypothesis, obs, draws, *, keep=(), per_value=False):
    """Pointwise log-likelihood of every draw, and ``(mu, sigma, nu)`` of the draws ``keep``.

    ``draws`` is ``(values, fixed, noise)`` from :func:`draw_values`. The
    log-likelihood is one value per observation unit (Re + Im of an
    impedance point summed), or per observed value with ``per_value=True``
    (see :func:`pointwise_loglik`).

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
        ll.append(pointwise_loglik(obs, mu, sigma, nu, per_value=per_value))
        here = keep[(keep >= block.start) & (keep < block.stop)] - block.start
        kept.append((mu[here], sigma[here], None if nu is None else nu[here]))
    mu, sigma = (np.concatenate([k[i] for k in kept]) for i in (0, 1))
    nu = None if kept[0][2] is None else np.concatenate([k[2] for k in kept])
    return np.concatenate(ll), (mu, sigma, nu)


def pointwise_loglik(obs, mu, sigma, nu=None, *, per_value=False):
    """Log-likelihood per observation unit (Re + Im summed for impedance), or per observed value with ``per_value``."""
    import scipy.stats

    y = obs.values
    if nu is None:
        ll = -0.5 * ((y - mu) / sigma) ** 2 - np.log(sigma) - 0.5 * np.log(2 * np.pi)
    else:
        ll = scipy.stats.t.logpdf(y, df=nu, loc=mu, scale=sigma)
    return ll.sum(axis=-1) if obs.kind == "impedance" and not per_value else ll


def finish(hypothesis, obs, idata, *, random_seed=None, sampler="pymc", light=False):
    """Add log-likelihood, predictive, derived quantities and provenance to ``idata``.

    ``log_likelihood``, ``posterior_predictive`` and ``observed_data`` hold
    the observed variable with the same dims (ArviZ's layout, the one PyMC
    writes): for impedance one log-likelihood value per observed value, Re
    and Im of each frequency point apart (``part``). So ``arviz.loo_pit``
    and ``arviz.plot_loo_pit`` run on a result as it is (leaving out one
    value at a time); LOO comparisons sum Re and Im of a point into one
    unit first (:func:`mgbayes.compare.unit_loglik`). With ``light`` only
    ``log_likelihood`` and ``observed_data`` are added (see :func:`fit`).
    """
    posterior = idata.posterior.to_dataset()
    priors = priors_for(hypothesis, obs)
    n_chain, n_draw = posterior.sizes["chain"], posterior.sizes["draw"]
    kept = np.arange(n_draw)
    draws = draw_values(hypothesis, obs, posterior, priors)
    ll, predictive = evaluate_draws(hypothesis, obs, draws, keep=np.arange(0 if light else n_chain * n_draw),
                                    per_value=True)
    coords = {d: obs.coords[d] for d in obs.dims}
    ll_da = xr.DataArray(ll.reshape((n_chain, n_draw) + ll.shape[1:]), dims=("chain", "draw") + obs.dims,
                         coords={"chain": posterior.chain, "draw": posterior.draw, **coords})
    idata["log_likelihood"] = xr.Dataset({hypothesis.observed_name: ll_da})
    if light:
        idata["observed_data"] = _observed_data(hypothesis, obs)
    else:
        values, fixed, _ = draws
        resolved = hypothesis.resolve({**values, **fixed}, dict(obs.inputs), cell_index=obs.cell_index)
        _add_predictive(idata, hypothesis, obs, predictive, n_chain, kept, random_seed)
        _add_resolved(idata, hypothesis, obs, resolved, n_chain, n_draw)
        _add_log_prior(idata, hypothesis, obs, posterior, resolved, n_chain, n_draw)
        idata["constant_data"] = _constant_data(obs)
        _add_prior(idata, hypothesis, obs, priors, random_seed)
        label_units(idata, units.units(hypothesis, obs.unit), hypothesis.observed_name, obs.unit)
    _mark_coordinates(idata, hypothesis)
    attrs = provenance(hypothesis, obs, sampler)
    report = diagnostics.check(idata, hypothesis.name)
    attrs["diagnostics"] = report.text()
    attrs["converged"] = int(report.ok)
    attrs["rhat_max"] = float(report.rhat_max)
    attrs["divergences"] = int(report.divergences)
    attrs["modes_disagree"] = int(report.logp_gap > 0 or report.mode_gap > 0)
    idata.attrs.update(attrs)
    return idata


def _mark_coordinates(idata, hypothesis):
    """Mark the variables of ``[coordinates]`` in the posterior: NUTS moved in them, the tables show the parameters."""
    sampled = hypothesis.coordinates.get("sampled", ())
    if sampled:
        ds = idata["posterior"].to_dataset()
        for name in sampled:
            ds[name].attrs["role"] = units.COORDINATE_ROLE
        idata["posterior"] = ds


def _add_log_prior(idata, hypothesis, obs, posterior, resolved, n_chain, n_draw):
    """Groups ``log_prior`` (per sampled parameter) and, for joint fits, ``evidence_log_likelihood``.

    They serve power-scaling sensitivity (:mod:`mgbayes.sensitivity`).
    """
    priors = dict(priors_for(hypothesis, obs))
    for ev in hypothesis.evidence:
        priors.update({k: p for k, p in priors_for(ev.hypothesis, ev.observations).items()
                       if k not in ev.shares and not k.startswith("noise_")})
        priors.update({f"{ev.name}_noise_{k}": p for k, p in ev.hypothesis.noise_priors.items()})
    idata.attrs["priors"] = json.dumps({k: {"dist": p.dist, **p.args} for k, p in priors.items()})
    values = log_prior_values({k: p for k, p in priors.items() if k in posterior}, posterior)
    log_prior = xr.Dataset({k: xr.DataArray(v, dims=posterior[k].dims, coords=posterior[k].coords)
                            for k, v in values.items()})
    for name, bound in hypothesis.bounds.items():  # a hard bound is part of the prior
        x = np.asarray(resolved[name]).reshape(n_chain * n_draw, -1)
        log_prior[f"bound_{name}"] = (("chain", "draw"), np.array([bound_logp(row, bound) for row in x]).reshape(n_chain, n_draw))
    idata["log_prior"] = log_prior
    if hypothesis.evidence:
        ll = evidence_loglik(hypothesis, posterior, resolved)
        group = {}
        for ev in hypothesis.evidence:  # dims and coords prefixed by the evidence's name, as in the model
            obs = ev.observations
            dims = tuple(f"{ev.name}_{d}" for d in obs.pointwise_dims)
            coords = {f"{ev.name}_{d}": obs.coords[d] for d in obs.pointwise_dims}
            group[ev.name] = xr.DataArray(ll[ev.name].reshape((n_chain, n_draw) + ll[ev.name].shape[1:]),
                                          dims=("chain", "draw") + dims, coords=coords)
        idata["evidence_log_likelihood"] = xr.Dataset(group, coords={"chain": posterior.chain, "draw": posterior.draw})


def priors_for(hypothesis, obs):
    """Complete prior table of ``hypothesis`` with defaults centred on ``obs``."""
    f, z = obs.guess_data()
    return hypothesis.prior_table(frequency=f, impedance=z, t_span=obs.t_span)


def _add_predictive(idata, hypothesis, obs, predictive, n_chain, keep, seed, *, group="posterior_predictive"):
    """Predictive draws (noisy replicates) and noise-free means for the draws ``keep`` of every chain."""
    rng = np.random.default_rng(seed)
    m, s, nu = predictive
    with np.errstate(all="ignore"):  # prior draws may put the model far outside the data
        noise = rng.standard_normal(m.shape) if nu is None else rng.standard_t(nu, m.shape)
        y = (m + s * noise).reshape((n_chain, keep.size) + m.shape[1:])
    dtype = np.float32 if y[0, 0].size * y.shape[0] * y.shape[1] > FLOAT32_VALUES else float
    dims = ("chain", "draw") + obs.dims
    coords = {"chain": np.arange(n_chain), "draw": keep, **{d: obs.coords[d] for d in obs.dims}}
    mean = m.reshape((n_chain, keep.size) + m.shape[1:])
    idata[group] = xr.Dataset({
        hypothesis.observed_name: xr.DataArray(y.astype(dtype, copy=False), dims=dims, coords=coords),
        f"{hypothesis.observed_name}_mean": xr.DataArray(mean.astype(dtype, copy=False), dims=dims, coords=coords),
    })
    if group == "posterior_predictive":
        idata["observed_data"] = _observed_data(hypothesis, obs)


def _observed_data(hypothesis, obs):
    """The ``observed_data`` group: the observed values with the dims of ``log_likelihood``."""
    return xr.Dataset({hypothesis.observed_name: xr.DataArray(obs.values, dims=obs.dims,
                                                             coords={d: obs.coords[d] for d in obs.dims})})


def _add_prior(idata, hypothesis, obs, priors, seed):
    """``prior`` and ``prior_predictive`` groups: :data:`PRIOR_DRAWS` draws from the priors, with NumPy.

    Each sampled variable of the posterior gets prior draws of its shape (a
    loguniform prior's ``X_log`` too); fixed priors stay out, as they do of
    the posterior. The prior predictive is the forward model and the noise
    model on those draws, like the posterior predictive.
    """
    rng = np.random.default_rng(None if seed is None else seed + 1)
    posterior = idata["posterior"].to_dataset()
    n = PRIOR_DRAWS
    prior = {}
    for name, p in priors.items():
        if p.is_fixed or name not in posterior:
            continue
        shape = posterior[name].shape[2:]
        value = np.asarray(p.sample(rng, (n,) + shape), dtype=float)
        dims = ("chain", "draw") + posterior[name].dims[2:]
        prior[name] = xr.DataArray(value[None], dims=dims, coords={d: posterior[d] for d in dims[2:] if d in posterior.coords})
        if f"{name}_log" in posterior:
            prior[f"{name}_log"] = np.log(prior[name])
    ds = xr.Dataset(prior).assign_coords(chain=[0], draw=np.arange(n))
    idata["prior"] = ds
    draws = draw_values(hypothesis, obs, ds, priors)
    try:
        with np.errstate(all="ignore"):
            _, mu, sigma, nu = likelihood_terms(hypothesis, obs, *draws)
    except (MgbayesError, ValueError) as err:  # a formula undefined somewhere the prior reaches
        idata.attrs["prior_predictive"] = f"not computed: {str(err).splitlines()[0]}"
        warnings.warn(f"{hypothesis.name}: no prior_predictive group: the model is undefined for some prior "
                      f"draws ({str(err).splitlines()[0]})", stacklevel=3)
        return
    _add_predictive(idata, hypothesis, obs, (mu, sigma, nu), 1, np.arange(n), rng.integers(2**31),
                    group="prior_predictive")


_OTHER_UNITS = {"t": "h", "j": "mA cm-2", "lp": "nat", "energy": "nat", "energy_error": "nat",
                "max_energy_error": "nat", "process_time_diff": "s", "perf_counter_diff": "s", "perf_counter_start": "s"}


def label_units(idata, table, observed_name, data_unit):
    """Set ``attrs["unit"]`` on every variable of every group of a result.

    ``table`` is :func:`mgbayes.units.units` of the hypothesis; observed and
    predicted values take the data's unit, log-likelihoods are in nats.
    """
    for group in idata.children:
        ds = idata[group].to_dataset()
        for name, da in ds.data_vars.items():
            if group in ("posterior_predictive", "prior_predictive", "observed_data") and name.startswith(observed_name):
                unit = data_unit
            elif group == "log_likelihood":
                unit = "nat"
            elif group in ("sample_stats", "constant_data"):
                unit = da.attrs.get("unit") or _OTHER_UNITS.get(name, "1")
            else:
                unit = da.attrs.get("unit") or table.get(name, "")
            da.attrs["unit"] = unit
        idata[group] = ds


def _add_resolved(idata, hypothesis, obs, resolved, n_chain, n_draw):
    """Store time-resolved parameters and derived quantities in the posterior."""
    if "cell" in obs.pointwise_dims:
        return _add_cell_resolved(idata, hypothesis, obs, resolved, n_chain, n_draw)
    derived = _derive(idata, hypothesis, resolved)
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
    derived = _derive(idata, hypothesis, resolved)
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
        "family": hypothesis.family,
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
    """Write ``idata`` to NetCDF atomically (see :func:`mgbayes.files.replacing`)."""
    from . import files

    with files.replacing(path) as tmp:
        idata.to_netcdf(tmp, engine="netcdf4")
    return Path(path)


def load(path):
    """Read a result written by :func:`save`."""
    with xr.open_datatree(path, engine="netcdf4") as tree:
        return tree.load()


def load_or_none(path, *, log=print):
    """:func:`load`, or None with a logged line naming ``path`` when it is missing or unreadable (truncated, corrupt)."""
    if not Path(path).is_file():
        return None
    try:
        return load(path)
    except Exception as err:  # noqa: BLE001 - any unreadable file is only a fit to redo
        log(f"  cannot read the saved fit {path} ({type(err).__name__}: {err}); it will be fitted again")
        return None
