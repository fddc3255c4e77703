"""Synthetic data from any hypothesis: demo data, recovery tests, calibration.

The forward model is the hypothesis's own (the same code NUTS samples). With
the defaults, data are exactly what a hypothesis predicts plus the noise its
proportional likelihood assumes; ``floor_ohm`` and ``sweep_drift`` add the
errors of a real measurement (an instrument floor, a cell that drifts during
the sweep) that no likelihood we fit contains, for honest verdict tests.
"""

import numpy as np

from . import data as d
from .errors import HypothesisError


def frequency_grid(f_max=1e6, f_min=20e-3, per_decade=10):
    """Log-spaced frequencies from ``f_max`` down to ``f_min`` (both included)."""
    n = int(round(np.log10(f_max / f_min) * per_decade)) + 1
    return np.logspace(np.log10(f_max), np.log10(f_min), n)


def _resolve(hypothesis, params, inputs, cell_index=None):
    free = hypothesis.free_parameters()
    missing = [n for n in free if n not in params]
    unknown = [n for n in params if n not in free and not n.startswith("noise_")]
    if missing or unknown:
        raise HypothesisError(
            f"simulate {hypothesis.name!r}: needs values for {free}; missing {missing}, unknown {unknown}"
        )
    values = {n: np.asarray(params[n], dtype=float) for n in free}
    return hypothesis.resolve(values, inputs, cell_index=cell_index)


def sweep_times_h(frequency, start_h):
    """Time of each point of a sweep that starts at ``start_h`` [h].

    Each point lasts one period ``1/f`` (the layout :func:`mgbayes.io.write_mpt`
    writes), so a 1 MHz - 20 mHz sweep takes about four minutes, nearly all
    of it at the lowest frequencies.
    """
    frequency = np.asarray(frequency, dtype=float)
    return start_h + np.concatenate([[0.0], np.cumsum(1.0 / frequency[:-1])]) / 3600.0


def spectra(hypothesis, params, *, times_h, frequency=None, area_cm2=1.0, symmetric=True,
            noise=0.01, floor_ohm=0.0, sweep_drift=False, seed=None, source="simulated"):
    """Simulate a :class:`~mgbayes.data.SpectrumSeries` from an impedance hypothesis.

    Parameters
    ----------
    hypothesis : Hypothesis
    params : dict
        Value of every free parameter (``hypothesis.free_parameters()``), in
        the hypothesis's units (Ohm cm2 with an area).
    times_h : array_like
        Time of each spectrum in hours (the start of its sweep).
    frequency : array_like, optional
        Frequencies in Hz; default 1 MHz to 20 mHz, 10 per decade.
    area_cm2 : float
        Electrode area; the returned impedance is in Ohm (per cell).
    symmetric : bool
        Two electrodes in series.
    noise : float
        Relative noise: Re and Im each get Gaussian noise of sd ``noise |Z|``.
    floor_ohm : float
        Noise floor of the instrument [Ohm, per cell]: Re and Im each get
        Gaussian noise of sd ``sqrt(floor_ohm**2 + (noise |Z|)**2)``.
    sweep_drift : bool
        The cell keeps drifting while a sweep runs: each point is evaluated
        at its own time (:func:`sweep_times_h`), not at the spectrum's time.
        A realistic error that no likelihood of a single-time spectrum has.
    """
    frequency = frequency_grid() if frequency is None else np.asarray(frequency, float)
    times_h = np.atleast_1d(np.asarray(times_h, dtype=float))
    if sweep_drift:
        z = np.stack([_sweep(hypothesis, params, frequency, t, symmetric) for t in times_h])
    else:
        resolved = _resolve(hypothesis, params, {"t": times_h})
        re, im = hypothesis.impedance(resolved, frequency, symmetric=symmetric)
        z = np.broadcast_to(np.asarray(re) + 1j * np.asarray(im), (times_h.size, frequency.size))
    rng = np.random.default_rng(seed)
    scale = np.sqrt((floor_ohm * area_cm2) ** 2 + (noise * np.abs(z)) ** 2)  # in the units of z (per area)
    z = z + scale * (rng.standard_normal(z.shape) + 1j * rng.standard_normal(z.shape))
    meta = {"synthetic": True, "hypothesis": hypothesis.name, "noise_relative": noise, "noise_floor_ohm": floor_ohm,
            "sweep_drift": bool(sweep_drift), "parameters": {k: float(np.asarray(v)) for k, v in params.items()}}
    return d.SpectrumSeries([
        d.Spectrum(frequency, z[i] / area_cm2, time_h=float(t), area_cm2=area_cm2, symmetric=symmetric,
                   source=source, metadata=meta)
        for i, t in enumerate(times_h)
    ])


def _sweep(hypothesis, params, frequency, start_h, symmetric):
    """One spectrum whose points are each evaluated at their own time in the sweep."""
    t = sweep_times_h(frequency, start_h)
    resolved = _resolve(hypothesis, params, {"t": t})
    re, im = hypothesis.impedance(resolved, frequency, symmetric=symmetric)  # (time of point, frequency)
    z = np.broadcast_to(np.asarray(re) + 1j * np.asarray(im), (t.size, frequency.size))
    return np.diagonal(z).copy()


def iv_curve(hypothesis, params, *, current_density_mA_cm2, cells=None, noise_V=0.01, seed=None,
             process="plating", source="simulated"):
    """Simulate an :class:`~mgbayes.data.IVCurve` from an ``iv`` hypothesis.

    ``cells`` labels each point (default: one cell); hierarchical offsets
    (``X_z``) in ``params`` have one entry per distinct label in order.
    """
    j = np.asarray(current_density_mA_cm2, dtype=float)
    cells = np.asarray(["1"] * j.size if cells is None else cells, dtype=str)
    labels = list(dict.fromkeys(cells))
    index = np.array([labels.index(c) for c in cells])
    resolved = _resolve(hypothesis, params, {"j": j}, cell_index=index)
    eta = np.asarray(hypothesis.overpotential(resolved), dtype=float) + 0 * j
    eta = eta + np.random.default_rng(seed).normal(0.0, noise_V, j.size)
    return d.IVCurve(current_density_mA_cm2=j, overpotential_V=eta, cell=cells,
                     process=np.full(j.size, process), source=source,
                     metadata={"synthetic": True, "hypothesis": hypothesis.name})


def transients(hypothesis, params, *, current_densities_mA_cm2, duration_h=3.0, points=120,
               noise_V=0.01, seed=None, cell="sim", source="simulated"):
    """Simulate galvanostatic overpotential transients, one per current density."""
    out, rng = [], np.random.default_rng(seed)
    t_h = np.linspace(0.0, duration_h, points)
    for k, j in enumerate(current_densities_mA_cm2):
        resolved = _resolve(hypothesis, params, {"t": t_h, "j": np.full(points, float(j))},
                            cell_index=np.full(points, k))
        eta = np.asarray(hypothesis.overpotential(resolved), float) + rng.normal(0.0, noise_V, points)
        out.append(d.Transient(time_s=t_h * 3600.0, overpotential_V=eta, current_density_mA_cm2=float(j),
                               cell=cell, process="stripping", source=source,
                               metadata={"synthetic": True, "hypothesis": hypothesis.name}))
    return out
