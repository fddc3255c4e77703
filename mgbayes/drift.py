"""Drift laws: how a parameter changes with time (in hours).

A law turns a parameter ``X`` into a function of time with its own
parameters, named ``X_<suffix>``:

==============  ====================================================  ======================
law             X(t)                                                  parameters
==============  ====================================================  ======================
``constant``    X                                                     ``X``
``linear``      X_0 (1 + X_rate t)                                    ``X_0``, ``X_rate`` [1/h]
``power``       X_0 (1 + t / X_tau) ^ X_alpha                         ``X_0``, ``X_tau`` [h], ``X_alpha``
``saturating``  X_0 + (X_inf − X_0) (1 − exp(−t / X_tau))             ``X_0``, ``X_inf``, ``X_tau`` [h]
==============  ====================================================  ======================

Default priors for the time parameters scale with the span of the data
(``t_span`` in hours); the value parameters (``X_0``, ``X_inf``) take the
prior the hypothesis gives ``X``, or the element's data-based default.
"""

from .backend import namespace
from .priors import Prior


def _linear(t, X_0, X_rate):
    return X_0 * (1 + X_rate * t)


def _power(t, X_0, X_tau, X_alpha):
    return X_0 * (1 + t / X_tau) ** X_alpha


def _saturating(t, X_0, X_inf, X_tau):
    xp = namespace(t, X_0, X_inf, X_tau)
    return X_0 + (X_inf - X_0) * (1 - xp.exp(-t / X_tau))


#: law name → (function, parameter suffixes)
LAWS = {
    "linear": (_linear, ("0", "rate")),
    "power": (_power, ("0", "tau", "alpha")),
    "saturating": (_saturating, ("0", "inf", "tau")),
}

#: suffixes whose prior is the prior of the drifting quantity itself
VALUE_SUFFIXES = ("0", "inf")
#: units of the time parameters (the value parameters take the unit of the drifting quantity)
SUFFIX_UNITS = {"rate": "h-1", "tau": "h", "alpha": "1"}


def default_time_prior(suffix, t_span):
    """Weakly informative prior for a law's time parameter, given the data span."""
    t_span = max(float(t_span), 1e-3)
    match suffix:
        case "rate":
            return Prior("lognormal", {"median": 1.0 / t_span, "sd_log": 2.5})
        case "tau":
            return Prior("lognormal", {"median": t_span / 2, "sd_log": 2.5})
        case "alpha":
            return Prior("lognormal", {"median": 1.0, "sd_log": 1.0})
    raise KeyError(suffix)


def parameter_names(name, law):
    """Names of the parameters of ``law`` applied to ``name``."""
    return [f"{name}_{s}" for s in LAWS[law][1]]


def evaluate(name, law, t, values):
    """Value of ``name`` at times ``t`` under ``law`` with parameter ``values``."""
    function, suffixes = LAWS[law]
    return function(t, *(values[f"{name}_{s}"] for s in suffixes))
