"""The data side of a model: what is observed, its coords, and the inputs.

:func:`observe` turns a ``Spectrum``/``SpectrumSeries``, an ``IVCurve`` or a
list of ``Transient`` into an :class:`Observations`: the observed array with
its dims and coords, the inputs formulas may use (``t`` in hours, ``j`` in
mA·cm⁻²), the cell index for hierarchical parameters, and the forward map
from resolved parameter values to predicted means.

Impedance is observed as ``Z`` with dims ``(time, frequency, part)``, part
being Re and Im; the likelihood of one frequency point sums the two parts,
so one (time, frequency) pair is one observation for LOO. The input ``t``
is one time per spectrum (its first point); when the file records the time
of every point, drift laws see each point at its own time (a sweep of
slow frequencies lasts minutes while the cell drifts).

Several cells (a dict cell name → spectra series on a common frequency and
time grid) are stacked into ``Z`` with dims ``(cell, time, frequency,
part)``; hierarchical parameters then vary by cell around a group mean
(partial pooling), all others are shared.
"""

from dataclasses import dataclass, field

import numpy as np

from .backend import namespace
from .errors import DataError, HypothesisError


@dataclass
class Observations:
    """Observed values, dims, coords and model inputs for one experiment."""

    kind: str
    values: np.ndarray
    dims: tuple
    coords: dict
    inputs: dict
    pointwise_dims: tuple
    cell_index: np.ndarray | None = None
    symmetric: bool = False
    frequency: np.ndarray | None = None
    unit: str = ""
    source: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def t_span(self):
        t = self.inputs.get("t")
        return float(np.ptp(t)) if t is not None and np.size(t) > 1 else 1.0

    def predict(self, hypothesis, resolved):
        """Predicted mean in the layout of :attr:`values` (leading sample axes kept).

        When the spectra carry the time of every point (``extra["sweep_time_h"]``)
        and ``hypothesis`` has a drift law, the law is evaluated at each
        point's own time (:meth:`at_point_times`).
        """
        if self.kind == "impedance" and "sweep_time_h" in self.extra and hypothesis.drift:
            return self.at_point_times(hypothesis, resolved)
        if self.kind == "impedance":
            re, im = hypothesis.impedance(resolved, self.frequency, symmetric=self.symmetric)
            xp = namespace(re, im)
            shape = self.values.shape[:-1]
            if xp is np:
                re, im = np.asarray(re), np.asarray(im)
                full = np.broadcast_shapes(re.shape, im.shape)
                lead = full[:max(len(full) - len(shape), 0)]
                re = np.broadcast_to(re, lead + shape)
                im = np.broadcast_to(im, lead + shape)
                return np.stack([re, im], axis=-1)
            zeros = xp.zeros(shape)
            return xp.stack([re + zeros, im + zeros], axis=-1)
        eta = hypothesis.overpotential(resolved)
        xp = namespace(eta)
        return eta + (xp.zeros(self.values.shape) if xp is not np else np.zeros(self.values.shape))

    def at_point_times(self, hypothesis, resolved):
        """Predicted impedance with drifting quantities at the time of each point, ``t + sweep_time_h``.

        The drift laws and the formulas that use them are resolved again at
        times of shape (time, frequency); the circuit is evaluated with the
        frequency as a column, so that a value per (time, frequency) meets
        its own frequency.
        """
        xp = namespace(*resolved.values())
        t = np.asarray(self.inputs["t"], dtype=float)[:, None] + self.extra["sweep_time_h"]
        again = set(hypothesis.drift) | set(hypothesis.transform) | set(self.inputs)
        values = {k: v for k, v in resolved.items() if k not in again}
        if xp is np:  # (sample, 1) draws broadcast against (time, frequency)
            values = {k: np.asarray(v)[..., None] if np.ndim(v) >= 1 else v for k, v in values.items()}
        point = hypothesis.resolve(values, {**self.inputs, "t": t})
        re, im = hypothesis.impedance(point, self.frequency[:, None], symmetric=self.symmetric)
        shape = self.values.shape[:-1]
        if xp is np:
            re, im = np.asarray(re)[..., 0], np.asarray(im)[..., 0]
            lead = np.broadcast_shapes(re.shape, im.shape)[:-len(shape)] if max(re.ndim, im.ndim) > len(shape) else ()
            return np.stack([np.broadcast_to(re, lead + shape), np.broadcast_to(im, lead + shape)], axis=-1)
        zeros = xp.zeros(shape)
        return xp.stack([re[..., 0] + zeros, im[..., 0] + zeros], axis=-1)

    def noise_scale(self, model, mu, sigma):
        """Standard deviation of the noise for noise ``model`` at means ``mu``."""
        xp = namespace(mu, sigma)
        if model == "absolute":
            scale = sigma + 0 * mu
        elif self.kind == "impedance":
            modulus = xp.sqrt(mu[..., 0] ** 2 + mu[..., 1] ** 2)
            scale = sigma * xp.stack([modulus, modulus], axis=-1)
        else:
            scale = sigma * xp.abs(mu)
        if "sd" in self.extra:  # a known measurement sd of each value (data column), added in quadrature
            return xp.sqrt(scale**2 + self.extra["sd"] ** 2)
        return scale

    def guess_data(self):
        """(frequency, impedance) used to centre default circuit priors."""
        if self.kind != "impedance":
            return None, None
        values = self.values.reshape((-1,) + self.values.shape[-2:])  # cells' spectra one after another
        return self.frequency, values[..., 0] + 1j * values[..., 1]


def observe(data):
    """Build :class:`Observations` from a data container of mgbayes.data."""
    from . import data as d

    if isinstance(data, d.Spectrum):
        data = d.SpectrumSeries([data if data.time_h is not None else data.with_(time_h=0.0)])
    if isinstance(data, d.SpectrumSeries):
        return _impedance(data)
    if isinstance(data, d.IVCurve):
        return _iv(data)
    if isinstance(data, (list, tuple)) and data and all(isinstance(x, d.Transient) for x in data):
        return _transients(data)
    if isinstance(data, dict) and data and all(isinstance(x, (d.Spectrum, d.SpectrumSeries)) for x in data.values()):
        return _impedance_cells(data)
    raise DataError(f"cannot model data of type {type(data).__name__}; expected Spectrum, SpectrumSeries, IVCurve, "
                    "a list of Transient or a dict cell → SpectrumSeries")


def _impedance(series):
    z = series.impedance_area
    time_h = np.asarray(series.time_h, dtype=float)
    if np.any(np.isnan(time_h)):
        if len(series) > 1:
            raise DataError(
                f"{series.spectra[0].source or 'series'}: spectra have no time stamps; "
                "a drift model needs time_h for every spectrum (use the long CSV format or set time_h)"
            )
        time_h = np.zeros(1)
    frequency = series.frequency
    values = np.stack([z.real, z.imag], axis=-1)
    sweep = series.sweep_time_h
    extra = {"sweep_time_h": sweep} if sweep is not None and np.any(sweep != 0) else {}
    return Observations(
        kind="impedance",
        values=values,
        dims=("time", "frequency", "part"),
        coords={"time": time_h, "frequency": frequency, "part": ["re", "im"]},
        inputs={"t": time_h},
        pointwise_dims=("time", "frequency"),
        symmetric=bool(series.symmetric),
        frequency=frequency,
        unit="Ohm cm2" if series.area_cm2 else "Ohm",
        source=str(series.spectra[0].source or ""),
        extra=extra,
    )


def _impedance_cells(series):
    """Spectra series of several cells on one frequency and time grid, stacked along ``cell``."""
    obs = {str(c): observe(s) for c, s in series.items()}
    first_cell, first = next(iter(obs.items()))
    for cell, o in obs.items():
        for name, a, b in (("frequency", o.frequency, first.frequency), ("time", o.inputs["t"], first.inputs["t"])):
            if a.shape != b.shape or not np.allclose(a, b, rtol=1e-6):
                raise DataError(f"{o.source or cell}: cell {cell!r} has another {name} grid than cell {first_cell!r} "
                                f"({first.source}); stacking cells needs a common {name} grid")
        if o.symmetric != first.symmetric or o.unit != first.unit:
            raise DataError(f"{o.source or cell}: cell {cell!r} differs from {first_cell!r} in symmetry or units")
    cells = list(obs)
    return Observations(
        kind="impedance",
        values=np.stack([o.values for o in obs.values()]),
        dims=("cell",) + first.dims,
        coords={"cell": cells, **first.coords},
        inputs=dict(first.inputs),
        pointwise_dims=("cell",) + first.pointwise_dims,
        cell_index=np.arange(len(cells))[:, None],  # per-cell values broadcast against time
        symmetric=first.symmetric,
        frequency=first.frequency,
        unit=first.unit,
        source="; ".join(o.source for o in obs.values()),
    )


def _cells(labels):
    cells = list(dict.fromkeys(str(c) for c in labels))
    index = np.array([cells.index(str(c)) for c in labels])
    return cells, index


def _iv(curve):
    cells, index = _cells(curve.cell)
    n = len(curve.overpotential_V)
    return Observations(
        kind="iv",
        values=np.asarray(curve.overpotential_V, dtype=float),
        dims=("point",),
        coords={"point": np.arange(n), "cell": cells},
        inputs={"j": np.asarray(curve.current_density_mA_cm2, dtype=float)},
        pointwise_dims=("point",),
        cell_index=index,
        unit="V",
        source=str(curve.source or ""),
        extra={"cell_of_point": np.array([str(c) for c in curve.cell]),
               **({} if curve.sd_V is None else {"sd": np.asarray(curve.sd_V, dtype=float)})},
    )


def _transients(transients):
    t = np.concatenate([np.asarray(tr.time_s, float) / 3600.0 for tr in transients])
    j = np.concatenate([np.full(len(tr.time_s), float(tr.current_density_mA_cm2)) for tr in transients])
    eta = np.concatenate([np.asarray(tr.overpotential_V, float) for tr in transients])
    labels = np.concatenate([[f"{tr.cell}@{tr.current_density_mA_cm2:g}"] * len(tr.time_s) for tr in transients])
    cells, index = _cells(labels)
    return Observations(
        kind="transient",
        values=eta,
        dims=("point",),
        coords={"point": np.arange(len(eta)), "cell": cells},
        inputs={"t": t, "j": j},
        pointwise_dims=("point",),
        cell_index=index,
        unit="V",
        source=str(transients[0].source or ""),
        extra={"cell_of_point": labels},
    )


def check_kind(hypothesis, observations):
    """Raise if a hypothesis cannot explain this kind of data."""
    if hypothesis.kind != observations.kind:
        raise HypothesisError(
            f"hypothesis {hypothesis.name!r} explains {hypothesis.kind} data, "
            f"but the data are {observations.kind} ({observations.source})"
        )
