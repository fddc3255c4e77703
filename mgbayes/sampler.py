"""NUTS from the posterior mode, with one compiled density per model.

Where the time of a fit went before this module (OCV drift, 40 spectra,
``benchmarks/bench_ocv_comparison.py``): PyMC compiled the model's log
density and gradient twice (once for the MAP search, once inside
``pm.sample``; 2-5 s each, nearly all of it graph rewriting) and tuned a
diagonal mass matrix from the identity, so the strongly correlated circuit
parameters (R_ct with CPE_dl_T and CPE_dl_P, R_ion with R_e) needed trees of
16-32 leapfrog steps. Here

1. the density is compiled once (:func:`density`) and shared by the mode
   search and the NUTS step;
2. several L-BFGS optimisations look for the posterior's modes
   (:func:`find_modes`); the chains start over-dispersed around them, one
   mode after another when the search found several of comparable height
   (:func:`starting_points`), so that R-hat and the chains' mean log
   density can reveal a second mode; a fit whose draws all sit far below the
   best mode found is flagged (``mode_gap``, see :mod:`mgbayes.diagnostics`);
3. the mass matrix starts from the Laplace approximation at the mode
   (:func:`laplace_covariance`, central differences of the gradient) and
   adapts on the draws as usual; it is dense (trees of the OCV models shrink
   from 13-23 to 6-15 steps) except in hierarchical models (see
   :func:`potential`).

``pm.sample`` is then called with the prepared step, so PyMC compiles
nothing more. Other NUTS backends (nutpie, NumPyro, BlackJAX) are used
only when asked for by name; see :func:`resolve_sampler`.
"""

import ctypes
import functools
import time
import warnings

import numpy as np
import pymc as pm
import pytensor
import scipy.optimize
from pymc.backends import init_traces
from pymc.blocking import DictToArrayBijection, RaveledVars
from pymc.progress_bar import MCMCProgressBarManager
from pymc.sampling.mcmc import _sample_return
from pymc.step_methods.hmc.quadpotential import QuadPotentialDiagAdapt, QuadPotentialFullAdapt
from threadpoolctl import threadpool_limits

from . import cache, parallel
from .chains import ChainProcesses, Chains
from .errors import SamplingError

#: Above this many free parameters the mass matrix is diagonal (a dense one costs O(n^2) per step).
DENSE_MAX = 80
#: How many draws the Laplace covariance counts for when the mass matrix adapts.
LAPLACE_WEIGHT = 10
#: Variance bounds (unconstrained space) for directions the mode's curvature does not fix.
VARIANCE_RANGE = (1e-12, 25.0)
BACKENDS = ("pymc", "nutpie", "numpyro", "blackjax")
#: Optima closer than this (largest coordinate difference, unconstrained space) are one mode.
SAME_MODE = 0.05
#: Chains also start at modes at most this many nats below the best one (lower ones hold no posterior mass).
MODE_RANGE = 10.0
#: Laplace standard deviations of the chains' over-dispersed starts (at most :data:`START_MAX` per coordinate).
START_SCALE, START_MAX = 1.0, 2.0
#: Loss of a point without finite density in the mode search (finite, so L-BFGS backs away from it).
NOWHERE = 1e300
#: PyTensor settings under which every density is compiled and sampled. With LLVM's fast-math flags
#: (PyTensor's Numba default: reassociation, approximate functions) a fresh Numba compile and one
#: loaded from Numba's disk cache round differently (up to 4e-15 relative in the log density of the
#: OCV model), and NUTS amplifies that into different draws: the same seed then gave different
#: posteriors depending on which worker process compiled first. Without fast-math both are bit-identical.
EXACT_ARITHMETIC = {"numba__fastmath": False}
#: BLAS threads while a model is sampled (mode search, Laplace covariance, NUTS chains). The matrices are
#: tiny (one row per free parameter), so BLAS threads only wait on each other: with OpenBLAS's default of
#: one thread per core, every L-BFGS-B iteration (a few BLAS calls of size ~10) paid thread hand-offs,
#: and the mode search of an OCV model took 12 times longer on a loaded 2-core machine than with one
#: thread. One thread also makes the arithmetic independent of the machine's core count. Forked chain
#: processes inherit the limit (PyMC applies its ``blas_cores`` only to spawned ones).
BLAS_THREADS = 1


#: Tuning iterations per chain by default. The chains start at the posterior mode with the Laplace
#: covariance as their mass matrix, so tuning has a step size to find and a metric to refine, not a
#: typical set to reach: with 500 instead of PyMC's 1000 the demo study gave the same verdicts and ESS of
#: the same order (benchmarks/README.md), and a fit whose tuning fell short fails a check and is sampled
#: again with :func:`retry_settings`.
TUNE = 500
#: The second fit after a failed one (see :func:`retry_settings`) asks for acceptance at least this high,
RETRY_TARGET_ACCEPT = 0.97
#: ... and tunes at least this long: the plating law charge_transfer_onset (a sharp onset), sampled again
#: at 0.97 after 1000 tuning iterations, kept 1-4 divergent transitions at 3 of 4 seeds; after 2000, none at 3 of 3.
RETRY_TUNE = 2000


def retry_settings(settings, *, tune_min=RETRY_TUNE):
    """NUTS ``settings`` for a second fit after a failed one: smaller steps, twice the tuning (at least ``tune_min``)."""
    return {**settings, "tune": max(2 * settings["tune"], tune_min),
            "target_accept": max(settings.get("target_accept", 0.9), RETRY_TARGET_ACCEPT)}


def resolve_sampler(nuts_sampler=None):
    """The NUTS backend to use: the one asked for, else ``"pymc"``.

    PyMC's own NUTS is the default even when nutpie is installed: with the
    mode start and the dense Laplace mass matrix it reached the OCV
    comparison's posteriors faster than nutpie, whose Numba compile alone
    took about 5 s per model, warm (measured with
    ``benchmarks/bench_ocv_comparison.py --samplers pymc nutpie``).
    """
    backend = nuts_sampler or "pymc"
    if backend not in BACKENDS:
        raise ValueError(f"nuts_sampler = {backend!r}; expected one of {BACKENDS}")
    return backend


@pytensor.config.change_flags(**EXACT_ARITHMETIC)
def density(model, *, key=None):
    """Log posterior density and gradient on the raveled unconstrained space.

    PyMC's own ``ValueGradFunction`` (``model.logp_dlogp_function``, compiled
    with ``trust_input``: NUTS and L-BFGS pass float64 vectors of the right
    size), which ``pm.NUTS(logp_dlogp_func=...)`` takes as it is. Compiled
    once per model (kept on it for a retry) and, with a ``key`` (see
    :func:`mgbayes.cache.fingerprint`), stored on disk whole, so the next run
    with the same model loads it instead of compiling; the loaded density's
    data inputs (``pm.Data``: left-out units, observed values) are set to
    the model's, whose values the key does not name. A density with extra
    inputs (discrete variables, set per point) is not stored.
    """
    if getattr(model, "mgbayes_density", None) is not None:
        return model.mgbayes_density
    fn = cache.load(key) if key else None
    if fn is None:
        fn = model.logp_dlogp_function(ravel_inputs=True, trust_input=True)
        if key and not fn.get_extra_values():
            cache.store(key, fn)
    else:  # its data inputs are copies, holding the values of the model that stored it
        set_inputs(fn, {v.name: v.get_value() for v in model.data_vars})
    model.mgbayes_density = fn
    return fn


def set_inputs(fn, values):
    """Set the data inputs (``pm.Data``, by name) of a compiled density ``fn`` to ``values``."""
    for shared in fn._pytensor_function.get_shared():
        if shared.name in values:
            shared.set_value(values[shared.name])


def find_modes(fn, x0, *, starts=6, rng=None):
    """Distinct local maxima of ``fn`` reached by L-BFGS from ``x0`` and ``starts - 1`` random perturbations of it.

    Returns a list of ``(x, logp)``, highest first; optima closer than
    :data:`SAME_MODE` (largest coordinate difference, unconstrained space) to a
    higher one count as the same mode. Raises :class:`SamplingError` when no
    start reaches a finite density.
    """
    rng = rng if rng is not None else np.random.default_rng()

    def loss(x):
        value, grad = fn(x)
        if not np.isfinite(value):
            return NOWHERE, np.zeros_like(x)
        return -value, np.where(np.isfinite(grad), -grad, 0.0)

    found = []
    for k in range(starts):
        x = x0 + (rng.normal(0.0, 1.0, x0.size) if k else 0.0)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = scipy.optimize.minimize(loss, x, jac=True, method="L-BFGS-B", options={"maxiter": 2000})
        if result.fun < NOWHERE:  # NOWHERE: the start never reached a finite density
            found.append((result.x, -result.fun))
    if not found:
        raise SamplingError("no finite posterior density found from any start; check priors and data units")
    modes = []
    for x, logp in sorted(found, key=lambda m: -m[1]):
        if all(np.max(np.abs(x - y)) > SAME_MODE for y, _ in modes):
            modes.append((x, logp))
    return modes


def find_mode(fn, x0, *, starts=6, rng=None):
    """The best of :func:`find_modes`: ``(x, logp)``."""
    return find_modes(fn, x0, starts=starts, rng=rng)[0]


def laplace_covariance(fn, x, *, step=1e-4):
    """Inverse of the negative Hessian of ``fn`` at ``x`` (central differences of the gradient).

    Eigenvalues are clipped to :data:`VARIANCE_RANGE`, so a direction the
    data do not fix (flat or, off the exact mode, slightly convex) gets a
    broad but finite variance. Returns ``None`` when the gradient is not
    finite around ``x``.
    """
    n = x.size
    hessian = np.empty((n, n))
    for i in range(n):
        e = np.zeros(n)
        e[i] = step
        hessian[:, i] = (fn(x + e)[1] - fn(x - e)[1]) / (2 * step)
    if not np.all(np.isfinite(hessian)):
        return None
    precision, vectors = np.linalg.eigh(-0.5 * (hessian + hessian.T))
    with np.errstate(divide="ignore"):
        variance = np.clip(1.0 / np.where(precision > 0, precision, 0.0), *VARIANCE_RANGE)
    return (vectors * variance) @ vectors.T


def potential(mode, covariance, *, rng, dense=True):
    """Adaptive mass matrix starting from the Laplace ``covariance``.

    Dense when ``dense`` and at most :data:`DENSE_MAX` parameters, else
    diagonal. Hierarchical models get ``dense=False`` from :func:`sample`: a
    dense metric cannot straighten a funnel, and on the shipped I–V and
    transient hypotheses (cell offsets around group means) it gave more
    divergences than a diagonal one in 4 of 5 models.
    """
    n = mode.size
    if covariance is None:
        return QuadPotentialDiagAdapt(n, mode.copy(), np.ones(n), LAPLACE_WEIGHT, rng=rng), "diagonal (identity start)"
    if dense and n <= DENSE_MAX:
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="QuadPotentialFullAdapt is an experimental feature")
                return (QuadPotentialFullAdapt(n, mode.copy(), covariance, LAPLACE_WEIGHT, rng=rng),
                        "dense (Laplace start)")
        except np.linalg.LinAlgError:  # too ill-conditioned for a Cholesky factor
            pass
    return (QuadPotentialDiagAdapt(n, mode.copy(), np.diag(covariance).copy(), LAPLACE_WEIGHT, rng=rng),
            "diagonal (Laplace start)")


def starting_points(fn, modes, covariance, chains, *, rng):
    """One over-dispersed start per chain, the chains dealt to the ``modes`` in turn.

    ``modes`` is a list of ``(x, logp)`` (highest first, as from
    :func:`find_modes`) or one point. Only modes within :data:`MODE_RANGE`
    nats of the best get chains. Each start is the mode plus
    :data:`START_SCALE` Laplace standard deviations of noise (at most
    :data:`START_MAX` per coordinate), shrunk until the density is finite.
    """
    if isinstance(modes, np.ndarray):
        modes = [(modes, fn(modes)[0])]
    modes = [m for m in modes if m[1] >= modes[0][1] - MODE_RANGE]
    if covariance is None:
        scale = np.eye(modes[0][0].size)
    else:
        variance, vectors = np.linalg.eigh(covariance)
        scale = vectors * np.sqrt(np.clip(variance, 0.0, None))
    points = []
    for chain in range(chains):
        mode = modes[chain % len(modes)][0]
        shrink = START_SCALE
        for _ in range(20):
            x = mode + np.clip(shrink * scale @ rng.standard_normal(mode.size), -START_MAX, START_MAX)
            if np.isfinite(fn(x)[0]):
                break
            shrink /= 2
        else:
            x = mode.copy()
        points.append(x)
    return points


def mode_gap(modes, lp, n_free):
    """How far (nats) the best draw's log density ``lp`` sits below the best mode, beyond what a posterior allows.

    Draws of a ``n_free``-dimensional posterior around its mode lie about
    ``n_free / 2`` nats below it (the best of many draws less); more than
    that plus :data:`MODE_RANGE` means the chains missed the best mode.
    Returns 0 when they did not.
    """
    lp = np.asarray(lp, dtype=float)
    lp = lp[np.isfinite(lp)]
    if lp.size == 0:
        return 0.0
    return float(max(0.0, modes[0][1] - lp.max() - 0.5 * n_free - MODE_RANGE))


@functools.cache
def reuse_freed_memory():
    """Make glibc's malloc keep freed large blocks for reuse instead of handing them back to the OS.

    Every gradient evaluation of a big model allocates and frees
    temporaries of a megabyte or more (1000 spectra × 71 frequencies).
    With glibc's default thresholds each one is a fresh ``mmap`` whose
    pages are faulted in and zeroed again: sampling that model took 38 s
    instead of 13 s. Raising the mmap threshold to 32 MiB and the trim
    threshold to 256 MiB (the process may keep that much freed memory)
    removes the cost; forked chain processes inherit the setting. Returns
    False, changing nothing, where the C library is not glibc.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(-3, 32 << 20) and libc.mallopt(-1, 256 << 20))  # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        return False


def _constrained(model, points):
    """Initial values (constrained space, by RV name) for value-variable points.

    The transform is compiled once per model (kept on it), so refitting the
    same model to new data (calibration) compiles nothing.
    """
    fn = getattr(model, "mgbayes_constrained", None)
    if fn is None:
        fn = model.compile_fn(model.unobserved_value_vars, inputs=model.value_vars, on_unused_input="ignore",
                              point_fn=False)
        model.mgbayes_constrained = fn
    names = [v.name for v in model.unobserved_value_vars]
    free = {rv.name for rv in model.free_RVs}
    out = []
    for p in points:
        values = fn(*[p[v.name] for v in model.value_vars])
        out.append({n: v for n, v in zip(names, values) if n in free})
    return out


@pytensor.config.change_flags(**EXACT_ARITHMETIC)
def sample(model, *, draws, tune, chains, cores=None, rng=None, progressbar=False, nuts_sampler=None,
           target_accept=0.9, starts=6, divergence_limit=None, enough=None, draws_max=None, more=None):
    """NUTS on ``model`` from the posterior mode; returns the raw DataTree.

    The result's attributes record the backend (``nuts_sampler``) and the
    mass matrix (``mass_matrix``). Everything is compiled and run under
    :data:`EXACT_ARITHMETIC`, so the same seed gives the same draws whether
    the density was compiled here or loaded from a cache, with
    :data:`BLAS_THREADS` BLAS threads.

    With PyMC's NUTS the chains advance together (:mod:`mgbayes.chains`),
    in this process when ``cores`` is 1, else in ``cores`` worker
    processes, with the same draws either way, and are looked at after
    the draws of :func:`looks`:

    ``divergence_limit``
        when more divergent transitions than this have occurred after
        tuning, sampling stops and None is returned (a caller that would
        sample again with smaller steps after that many learns it without
        drawing the rest); ``rng`` is left as after a full run, so what it
        samples next is the same either way.
    ``enough``
        a function of the draws so far (a DataTree like the one returned);
        when it returns True sampling stops and those draws are returned,
        ``draws`` then being the most each chain makes. A chain's first
        ``n`` draws are exactly those of a run with ``draws = n``.
    ``draws_max``, ``more``
        with ``enough``: a run that has not had enough after ``draws`` goes
        on, looked at as often, to at most ``draws_max`` draws per chain,
        as long as ``more`` (a function of the draws so far) says that more
        draws can still pass the checks.
    """
    with threadpool_limits(limits=BLAS_THREADS):
        return _sample(model, draws=draws, tune=tune, chains=chains, cores=cores, rng=rng, progressbar=progressbar,
                       nuts_sampler=nuts_sampler, target_accept=target_accept, starts=starts,
                       divergence_limit=divergence_limit, enough=enough,
                       draws_max=draws_max if enough is not None and more is not None else None, more=more)


#: A fit that may stop early (``enough``) is first looked at after this share of its draws, then after every
#: further :data:`LOOK_EVERY` share; divergences are counted at the same looks.
FIRST_LOOK, LOOK_EVERY = 0.2, 0.1


def looks(draws, *, early=True, draws_max=None):
    """Draws per chain after which a run is looked at: every :data:`LOOK_EVERY` of ``draws`` from :data:`FIRST_LOOK` on.

    With ``early=False`` only the last draw. Always holds ``draws``; with
    ``draws_max``, further looks as often up to and ending with ``draws_max``.
    """
    if not early:
        return [draws]
    every = max(1, round(LOOK_EVERY * draws))
    first = max(every, round(FIRST_LOOK * draws))
    out = [n for n in range(first, draws, every)] + [draws]
    if draws_max is not None and draws_max > draws:
        out += [n for n in range(draws + every, draws_max, every)] + [draws_max]
    return out


def _sample(model, *, draws, tune, chains, cores, rng, progressbar, nuts_sampler, target_accept, starts,
            divergence_limit, enough, draws_max, more):
    rng = rng if rng is not None else np.random.default_rng()
    backend = resolve_sampler(nuts_sampler)
    reuse_freed_memory()
    fn = density(model, key=getattr(model, "mgbayes_key", None))
    x0 = DictToArrayBijection.map(model.initial_point())
    info, x0 = x0.point_map_info, x0.data
    modes = find_modes(fn, x0, starts=starts, rng=np.random.default_rng(rng.integers(2**31)))
    mode = modes[0][0]
    covariance = laplace_covariance(fn, mode)
    points = starting_points(fn, modes, covariance, chains, rng=rng)
    hierarchical = getattr(model, "mgbayes_hierarchical", False)

    def label(idata, mass):
        idata.attrs["nuts_sampler"] = backend
        idata.attrs["mass_matrix"] = mass
        idata.attrs["modes_found"] = len(modes)
        idata.attrs["mode_logp"] = float(modes[0][1])
        stats = idata["sample_stats"]
        lp = next((stats[k].values for k in ("lp", "model_logp") if k in stats), None)
        # a funnel's mode is no summary of its draws
        idata.attrs["mode_gap"] = mode_gap(modes, lp, mode.size) if lp is not None and not hierarchical else 0.0
        return idata

    with model, warnings.catch_warnings():
        # a trajectory that overflows (non-finite momentum or energy) is a divergence: NUTS rejects
        # it and counts it, and diagnostics.check reports the count by name
        warnings.filterwarnings("ignore", message="(overflow|invalid value) encountered", category=RuntimeWarning,
                                module=r"pymc\.")
        if backend != "pymc":  # external samplers take one start and tune their own mass matrix
            initvals = _constrained(model, [DictToArrayBijection.rmap(RaveledVars(x, info)) for x in points])
            warnings.filterwarnings("ignore", message=".*initvals.*")
            idata = pm.sample(initvals=initvals[0], nuts_sampler=backend, target_accept=target_accept,
                              random_seed=int(rng.integers(2**31)), draws=draws, tune=tune, chains=chains,
                              cores=cores or min(chains, parallel.cpus()), progressbar=progressbar,
                              compute_convergence_checks=False, quiet=not progressbar, mp_ctx=parallel.chain_context())
            _check_complete(idata, chains, draws)
            return label(idata, "tuned by " + backend)
        potential_seed = rng.integers(2**31)
        steps, mass = [], None
        for _ in range(chains):  # one step method per chain, each adapting on its own, as in pm.sample
            pot, mass = potential(mode, covariance, rng=np.random.default_rng(potential_seed), dense=not hierarchical)
            steps.append(pm.NUTS(potential=pot, logp_dlogp_func=fn, target_accept=target_accept))
        initial_points = [DictToArrayBijection.rmap(RaveledVars(x, info)) for x in points]
        idata = _run_chains(model, steps, initial_points, seed=int(rng.integers(2**31)), draws=draws, tune=tune,
                            cores=cores or min(chains, parallel.cpus()), progressbar=progressbar,
                            divergence_limit=divergence_limit,
                            enough=None if enough is None else (lambda idata: enough(label(idata, mass))),
                            draws_max=draws_max,
                            more=None if more is None else (lambda idata: more(label(idata, mass))))
    return None if idata is None else label(idata, mass)


def _run_chains(model, steps, starts, *, seed, draws, tune, cores, progressbar, divergence_limit, enough,
                draws_max=None, more=None):
    """Advance the chains look by look (:func:`looks`); None when they pass ``divergence_limit``.

    Past ``draws`` (up to ``draws_max``) only while ``enough`` is False and ``more`` True.

    The draws are recorded in PyMC's traces and packaged by PyMC's own
    ``_sample_return``, so the DataTree is the one ``pm.sample`` would
    return for the same chains (tests/test_chains.py checks the draws).
    """
    chains = len(steps)
    rngs = np.random.default_rng(seed).spawn(chains)
    for g in rngs:  # pm.sample draws each chain's seed for its start from its generator first; so do we
        g.integers(2**30)
    plan = looks(draws, early=enough is not None or divergence_limit is not None, draws_max=draws_max)
    most = plan[-1]  # a chain's draws do not depend on how many it was set to make
    run, traces = init_traces(backend=None, chains=chains, expected_length=most + tune, step=steps[0],
                              initial_point=starts[0], model=model, tune=tune)
    bar = MCMCProgressBarManager(step_method=steps[0], chains=chains, draws=most, tune=tune, progressbar=progressbar)
    runner = (Chains(steps, starts, rngs, tune=tune, total=tune + most) if cores == 1 else
              ChainProcesses(steps, starts, rngs, tune=tune, total=tune + most, processes=cores))
    t0, done, divergences, last_stats = time.time(), 0, 0, [None] * chains
    try:
        with bar:
            for look in plan:
                for chain, records in enumerate(runner.advance(tune + look - done)):
                    for k, (point, stats, warm) in enumerate(records, start=done):
                        traces[chain].record(point, stats, in_warmup=warm)
                        divergences += not warm and bool(stats[0].get("diverging"))
                        bar.update(chain_idx=chain, is_last=False, draw=k, stats=stats, tuning=warm)
                    last_stats[chain] = records[-1][1]
                done = tune + look
                if divergence_limit is not None and divergences > divergence_limit:
                    return None
                last = look == most
                if last or enough is not None:
                    idata = _sample_return(run=run, traces=traces, tune=tune, t_sampling=time.time() - t0,
                                           discard_tuned_samples=True, compute_convergence_checks=False,
                                           return_inferencedata=True, keep_warning_stat=False, idata_kwargs={},
                                           model=model, quiet=True)
                    if last or enough(idata) or (look >= draws and not more(idata)):
                        for chain, stats in enumerate(last_stats):
                            bar.update(chain_idx=chain, is_last=True, draw=done - 1, stats=stats, tuning=False)
                        return idata
    finally:
        runner.close()


def _check_complete(idata, chains, draws):
    """Raise KeyboardInterrupt when PyMC returned fewer chains or draws than asked for.

    PyMC stops sampling on Ctrl-C and returns what it has, and so does each
    worker of a pool (the signal reaches the whole process group): such a
    fit must stop the run, never be post-processed, saved and reused as if
    it were whole.
    """
    posterior = idata["posterior"]
    got = (posterior.sizes.get("chain", 0), posterior.sizes.get("draw", 0))
    if got != (chains, draws):
        raise KeyboardInterrupt(f"sampling was interrupted: {got[0]} chains × {got[1]} draws of {chains} × {draws}")
