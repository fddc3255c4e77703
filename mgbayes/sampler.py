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
2. the chains start from the best of several L-BFGS optimisations
   (:func:`find_mode`);
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
import warnings

import numpy as np
import pymc as pm
import scipy.optimize
from pymc.blocking import DictToArrayBijection, RaveledVars
from pymc.step_methods.hmc.quadpotential import QuadPotentialDiagAdapt, QuadPotentialFullAdapt

from . import cache, parallel
from .errors import SamplingError

#: Above this many free parameters the mass matrix is diagonal (a dense one costs O(n^2) per step).
DENSE_MAX = 80
#: How many draws the Laplace covariance counts for when the mass matrix adapts.
LAPLACE_WEIGHT = 10
#: Variance bounds (unconstrained space) for directions the mode's curvature does not fix.
VARIANCE_RANGE = (1e-12, 25.0)
BACKENDS = ("pymc", "nutpie", "numpyro", "blackjax")
#: Loss of a point without finite density in the mode search (finite, so L-BFGS backs away from it).
NOWHERE = 1e300


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


class CachedDensity:
    """A compiled log density and gradient loaded from :mod:`mgbayes.cache`.

    Called like PyMC's ``ValueGradFunction`` (raveled point → ``(logp,
    grad)``) and offering what PyMC's NUTS reads from one: the compiled
    function, raveled inputs, its dtype and no extra variables.
    """

    _raveled_inputs = True

    def __init__(self, function):
        self._pytensor_function = function
        self._extra_vars_shared = {}
        self.dtype = str(function.maker.fgraph.outputs[0].dtype)
        self.trust_input = True

    def __call__(self, x, *_):
        return self._pytensor_function(x)


def density(model, *, key=None):
    """Log posterior density and gradient on the raveled unconstrained space.

    Compiled once per model (kept on it for a retry) and, with a ``key``
    (see :func:`mgbayes.cache.fingerprint`), stored on disk so the next run
    with the same model loads it instead of compiling.
    """
    if getattr(model, "mgbayes_density", None) is not None:
        return model.mgbayes_density
    function = cache.load(key) if key else None
    if function is not None:
        fn = CachedDensity(function)
    else:
        fn = model.logp_dlogp_function(ravel_inputs=True)
        fn.set_extra_values({})
        if key and not fn._extra_vars_shared:  # a graph with extra inputs cannot be reloaded alone
            cache.store(key, fn._pytensor_function)
    fn._pytensor_function.trust_input = True  # NUTS and L-BFGS pass float64 vectors of the right size
    fn.trust_input = True
    model.mgbayes_density = fn
    return fn


def find_mode(fn, x0, *, starts=6, rng=None):
    """Best of ``starts`` L-BFGS maximisations of ``fn`` from ``x0`` and random perturbations of it.

    Returns ``(x, logp)``; raises :class:`SamplingError` when no start
    reaches a finite density.
    """
    rng = rng if rng is not None else np.random.default_rng()

    def loss(x):
        value, grad = fn(x)
        if not np.isfinite(value):
            return NOWHERE, np.zeros_like(x)
        return -value, np.where(np.isfinite(grad), -grad, 0.0)

    best = (None, -np.inf)
    for k in range(starts):
        x = x0 + (rng.normal(0.0, 1.0, x0.size) if k else 0.0)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = scipy.optimize.minimize(loss, x, jac=True, method="L-BFGS-B", options={"maxiter": 2000})
        if result.fun < NOWHERE and -result.fun > best[1]:  # NOWHERE: the start never reached a finite density
            best = (result.x, -result.fun)
    if best[0] is None:
        raise SamplingError("no finite posterior density found from any start; check priors and data units")
    return best


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


def starting_points(fn, mode, covariance, chains, *, rng):
    """One start per chain: the mode plus half a Laplace standard deviation of noise (at most 1 per coordinate)."""
    if covariance is None:
        scale = np.eye(mode.size)
    else:
        variance, vectors = np.linalg.eigh(covariance)
        scale = vectors * np.sqrt(np.clip(variance, 0.0, None))
    points = []
    for _ in range(chains):
        shrink = 0.5
        for _ in range(20):
            x = mode + np.clip(shrink * scale @ rng.standard_normal(mode.size), -1.0, 1.0)
            if np.isfinite(fn(x)[0]):
                break
            shrink /= 2
        else:
            x = mode.copy()
        points.append(x)
    return points


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


def sample(model, *, draws, tune, chains, cores=None, rng=None, progressbar=False, nuts_sampler=None,
           target_accept=0.9, starts=6):
    """NUTS on ``model`` from the posterior mode; returns the raw DataTree.

    The result's attributes record the backend (``nuts_sampler``) and the
    mass matrix (``mass_matrix``).
    """
    rng = rng if rng is not None else np.random.default_rng()
    backend = resolve_sampler(nuts_sampler)
    reuse_freed_memory()
    fn = density(model, key=getattr(model, "mgbayes_key", None))
    x0 = DictToArrayBijection.map(model.initial_point())
    info, x0 = x0.point_map_info, x0.data
    mode, _ = find_mode(fn, x0, starts=starts, rng=np.random.default_rng(rng.integers(2**31)))
    covariance = laplace_covariance(fn, mode)
    points = starting_points(fn, mode, covariance, chains, rng=rng)
    initvals = _constrained(model, [DictToArrayBijection.rmap(RaveledVars(x, info)) for x in points])
    common = {"draws": draws, "tune": tune, "chains": chains, "cores": cores or min(chains, parallel.cpus()),
              "progressbar": progressbar, "compute_convergence_checks": False, "quiet": not progressbar}
    with model, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*initvals.*")
        # a trajectory that overflows (non-finite momentum or energy) is a divergence: NUTS rejects
        # it and counts it, and diagnostics.check reports the count by name
        warnings.filterwarnings("ignore", message="(overflow|invalid value) encountered", category=RuntimeWarning,
                                module=r"pymc\.")
        if backend == "pymc":
            pot, mass = potential(mode, covariance, rng=np.random.default_rng(rng.integers(2**31)),
                                  dense=not getattr(model, "mgbayes_hierarchical", False))
            step = pm.NUTS(potential=pot, logp_dlogp_func=fn, target_accept=target_accept)
            idata = pm.sample(step=step, initvals=initvals, random_seed=int(rng.integers(2**31)), **common)
        else:  # external samplers take one start and tune their own mass matrix
            mass = "tuned by " + backend
            idata = pm.sample(initvals=initvals[0], nuts_sampler=backend, target_accept=target_accept,
                              random_seed=int(rng.integers(2**31)), **common)
    idata.attrs["nuts_sampler"] = backend
    idata.attrs["mass_matrix"] = mass
    return idata
