"""Complex non-linear least squares (CNLS): the classical point estimate.

Used as a check of the Bayesian fits (posterior medians should agree with it
on good data) and by the benchmarks as the impedance.py-style baseline.
Residuals are relative (weighted by 1/|Z|), parameters are fitted in log
space within their bounds, from several starts around the data-based guesses.
"""

import numpy as np
import scipy.optimize

from .circuits import Circuit


def least_squares(circuit, frequency, impedance, *, starts=8, seed=0):
    """Fit ``circuit`` to one spectrum; returns ``(params, relative_rms)``.

    Parameters
    ----------
    circuit : Circuit or str
    frequency : array_like
        Hz.
    impedance : array_like of complex
        Same units as the parameters should come out in.
    """
    circuit = Circuit(circuit) if isinstance(circuit, str) else circuit
    frequency, impedance = np.asarray(frequency, float), np.asarray(impedance, complex)
    names = circuit.parameter_names
    guesses = circuit.guesses(frequency, impedance)
    specs = [circuit.parameters[n] for n in names]
    bounded = np.array([np.isfinite(p.upper) for p in specs])

    def unpack(x):
        values = np.where(bounded, 1 / (1 + np.exp(-x)), np.exp(x))
        return dict(zip(names, values))

    def residuals(x):
        z = circuit.impedance(frequency, **unpack(x))
        r = (z - impedance) / np.abs(impedance)
        return np.concatenate([r.real, r.imag])

    x0 = np.array([np.log(p / (1 - p)) if b else np.log(guesses[n])
                   for n, p, b in zip(names, [guesses[n] for n in names], bounded)])
    rng = np.random.default_rng(seed)
    best = None
    for k in range(starts):
        x = x0 + (rng.normal(0, 1.5, x0.size) if k else 0)
        with np.errstate(all="ignore"):
            result = scipy.optimize.least_squares(residuals, x, method="lm", x_scale="jac", max_nfev=5000)
        if best is None or result.cost < best.cost:
            best = result
    rms = float(np.sqrt(2 * best.cost / (2 * frequency.size)))
    return unpack(best.x), rms
