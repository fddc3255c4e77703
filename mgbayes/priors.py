"""Prior distributions as stated in hypothesis files.

A prior is a small table in TOML, e.g. ``{ dist = "lognormal", median = 4e4,
sd_log = 1.5 }``. The same object makes a PyMC variable, draws NumPy samples
(for simulation and multi-start optimisation) and gives a typical value.

=============  =====================================  =========================
``dist``       arguments                              notes
=============  =====================================  =========================
lognormal      ``median``, ``sd_log``                 positive scale parameters
loguniform     ``lower``, ``upper``                   flat in log over a range
normal         ``mu``, ``sigma``
halfnormal     ``sigma``                              noise scales
uniform        ``lower``, ``upper``
beta           ``alpha``, ``beta``                    exponents in (0, 1)
fixed          ``value``                              not sampled
=============  =====================================  =========================
"""

from dataclasses import dataclass

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pymc.distributions.transforms import Interval

from .errors import HypothesisError


class UniformBounds:
    """The bounds of a uniform distribution from its inputs ``(rng, size, lower, upper)``.

    What PyMC's default interval transform of ``pm.Uniform`` reads, as an
    object that pickles: PyMC's keeps a local function, so a compiled
    density of a model with a uniform prior could not be stored in the
    compile cache (:mod:`mgbayes.cache`), and every such model (fit, its
    exact refits, a warm rerun) was compiled again. The same graph.
    """

    def __call__(self, *inputs):
        return pt.as_tensor_variable(inputs[2]), pt.as_tensor_variable(inputs[3])


#: Interval (log-odds) transform of every uniform prior (and a log-uniform's logarithm).
UNIFORM_TRANSFORM = Interval(bounds_fn=UniformBounds())

_ARGUMENTS = {
    "lognormal": ("median", "sd_log"),
    "loguniform": ("lower", "upper"),
    "normal": ("mu", "sigma"),
    "halfnormal": ("sigma",),
    "uniform": ("lower", "upper"),
    "beta": ("alpha", "beta"),
    "fixed": ("value",),
}


@dataclass(frozen=True)
class Prior:
    """A prior distribution: its name and arguments."""

    dist: str
    args: dict

    @classmethod
    def from_table(cls, table, *, where):
        """Check and build a prior from a TOML table; ``where`` names it in errors."""
        if isinstance(table, (int, float)):
            table = {"dist": "fixed", "value": table}
        if not isinstance(table, dict) or "dist" not in table:
            raise HypothesisError(f"{where}: a prior is a table such as {{ dist = \"lognormal\", median = 1e3, sd_log = 1 }}, got {table!r}")
        dist = str(table["dist"]).lower()
        if dist not in _ARGUMENTS:
            raise HypothesisError(f"{where}: unknown distribution {table['dist']!r}; known: {', '.join(_ARGUMENTS)}")
        args = {k: v for k, v in table.items() if k not in ("dist", "unit")}
        expected = set(_ARGUMENTS[dist])
        if set(args) != expected:
            raise HypothesisError(
                f"{where}: {dist} takes {sorted(expected)}, got {sorted(args)}"
            )
        for key, value in args.items():
            if not isinstance(value, (int, float)) or not np.isfinite(value):
                raise HypothesisError(f"{where}: {dist} argument {key} = {value!r} is not a finite number")
        positive = {"median", "sd_log", "sigma", "alpha", "beta"}
        bad = [k for k in args if k in positive and args[k] <= 0]
        if bad or ("lower" in args and args["lower"] >= args["upper"]) or (dist == "loguniform" and args["lower"] <= 0):
            raise HypothesisError(f"{where}: invalid {dist} arguments {args}")
        return cls(dist, {k: float(v) for k, v in args.items()})

    @property
    def is_fixed(self):
        return self.dist == "fixed"

    def _pymc(self):
        """``(PyMC distribution, its arguments)`` of a prior sampled as itself (not loguniform or fixed)."""
        a = self.args
        match self.dist:
            case "lognormal":
                return pm.LogNormal, {"mu": np.log(a["median"]), "sigma": a["sd_log"]}
            case "normal":
                return pm.Normal, {"mu": a["mu"], "sigma": a["sigma"]}
            case "halfnormal":
                return pm.HalfNormal, {"sigma": a["sigma"]}
            case "uniform":
                return pm.Uniform, {"lower": a["lower"], "upper": a["upper"]}
            case "beta":
                return pm.Beta, {"alpha": a["alpha"], "beta": a["beta"]}

    def to_pymc(self, name, **kwargs):
        """Create the PyMC random variable ``name`` in the current model."""
        a = self.args
        match self.dist:
            case "loguniform":
                log_value = pm.Uniform(f"{name}_log", np.log(a["lower"]), np.log(a["upper"]),
                                       default_transform=UNIFORM_TRANSFORM, **kwargs)
                return pm.Deterministic(name, pt.exp(log_value), **kwargs)
            case "fixed":
                return pt.as_tensor_variable(a["value"])
        distribution, arguments = self._pymc()
        if distribution is pm.Uniform:
            kwargs = {"default_transform": UNIFORM_TRANSFORM, **kwargs}
        return distribution(name, **arguments, **kwargs)

    def logp(self, value):
        """Log density at ``value`` (a PyTensor expression), in the parameter's own units.

        What :meth:`to_pymc` adds to the model when the parameter is sampled
        itself; used where it is sampled in other coordinates
        (:mod:`mgbayes.hypotheses`, ``[coordinates]``).
        """
        a, value = self.args, pt.as_tensor_variable(value)
        match self.dist:
            case "loguniform":
                inside = (value >= a["lower"]) & (value <= a["upper"])
                return pt.switch(inside, -pt.log(value) - np.log(np.log(a["upper"] / a["lower"])), -np.inf)
            case "fixed":
                raise ValueError("a fixed parameter has no density")
        distribution, arguments = self._pymc()
        return pm.logp(distribution.dist(**arguments), value)

    def sample(self, rng, size=None):
        """Draw from the prior with NumPy."""
        a = self.args
        match self.dist:
            case "lognormal":
                return a["median"] * np.exp(a["sd_log"] * rng.standard_normal(size))
            case "loguniform":
                return np.exp(rng.uniform(np.log(a["lower"]), np.log(a["upper"]), size))
            case "normal":
                return rng.normal(a["mu"], a["sigma"], size)
            case "halfnormal":
                return np.abs(rng.normal(0.0, a["sigma"], size))
            case "uniform":
                return rng.uniform(a["lower"], a["upper"], size)
            case "beta":
                return rng.beta(a["alpha"], a["beta"], size)
            case "fixed":
                return np.full(size, a["value"]) if size is not None else a["value"]

    def typical(self):
        """A central value (median where known)."""
        a = self.args
        match self.dist:
            case "lognormal":
                return a["median"]
            case "loguniform":
                return float(np.sqrt(a["lower"] * a["upper"]))
            case "normal":
                return a["mu"]
            case "halfnormal":
                return 0.6745 * a["sigma"]
            case "uniform":
                return 0.5 * (a["lower"] + a["upper"])
            case "beta":
                return a["alpha"] / (a["alpha"] + a["beta"])
            case "fixed":
                return a["value"]

    def describe(self):
        """Short text, e.g. ``lognormal(median=4e+04, sd_log=1.5)``."""
        return f"{self.dist}(" + ", ".join(f"{k}={v:.4g}" for k, v in self.args.items()) + ")"
