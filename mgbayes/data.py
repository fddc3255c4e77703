"""Measured data: impedance spectra, series of spectra, I–V curves, transients.

Each class holds plain NumPy arrays, their units and where they came from.
Arrays are copied and made read-only on construction, and checked: every
problem raises :class:`~mgbayes.errors.DataError` with a message that names
the source (a file path, or "array input"), the offending position and value,
and how to fix it.

Conventions
-----------
- Frequencies in Hz, impedances in Ohm *as measured on the cell*, with the
  usual sign: a capacitive arc has a **negative** imaginary part. Readers in
  :mod:`mgbayes.io` convert every instrument's convention to this one.
- ``area_cm2`` is the electrode area. When it is set,
  ``impedance_area = impedance * area_cm2`` is in Ohm cm2.
- ``symmetric=True`` marks a symmetric cell (two equal electrodes), whose
  impedance is ``Z_cell = R_el + 2 * Z_electrode``.
"""

import dataclasses
import warnings
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from .errors import DataError

__all__ = ["DataWarning", "Spectrum", "SpectrumSeries", "IVCurve", "Transient", "PROCESSES"]

MIN_POINTS = 5
PROCESSES = ("plating", "stripping")
FLIPPED_SIGN_FRACTION = 0.8
GRID_RTOL = 1e-6


class DataWarning(UserWarning):
    """Data that can be used but look suspicious (flipped sign, partial file...)."""


def _where(source):
    return str(source) if source is not None else "array input"


def _frozen(values, dtype, name, where):
    """Return a read-only 1-D copy of ``values`` as ``dtype``."""
    try:
        array = np.array(values, dtype=dtype, copy=True)
    except (TypeError, ValueError) as err:
        raise DataError(f"{where}: {name} cannot be converted to {np.dtype(dtype).name} ({err})") from None
    if array.ndim != 1:
        raise DataError(f"{where}: {name} must be one-dimensional, got shape {array.shape}")
    array.flags.writeable = False
    return array


def _check_finite(array, name, where):
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        i = bad[0]
        raise DataError(
            f"{where}: {name}[{i}] = {array[i]} is not finite ({bad.size} such point(s)); "
            "remove or re-measure those points"
        )


def _check_positive(array, name, where):
    bad = np.flatnonzero(array <= 0)
    if bad.size:
        i = bad[0]
        raise DataError(
            f"{where}: {name}[{i}] = {array[i]} is not positive; give magnitudes (> 0), and drop DC or rest points"
        )


def _check_same_length(where, **arrays):
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{n} has {k}" for n, k in lengths.items())
        raise DataError(f"{where}: arrays differ in length ({detail}); give one value per point")


def _check_area(area_cm2, where):
    if area_cm2 is None:
        return None
    area = float(area_cm2)
    if not np.isfinite(area) or area <= 0:
        raise DataError(f"{where}: area_cm2 = {area_cm2} must be a positive number of cm2 (or None)")
    return area


def _check_process(process, where):
    bad = [p for p in np.atleast_1d(process) if p not in PROCESSES]
    if bad:
        raise DataError(f"{where}: unknown process {bad[0]!r}; use one of {', '.join(PROCESSES)}")


@dataclass(frozen=True, eq=False)
class Spectrum:
    """One impedance spectrum.

    Parameters
    ----------
    frequency : array_like
        Frequencies in Hz, all positive, finite and distinct. The order of
        the file is kept; see :meth:`sorted`.
    impedance : array_like
        Complex impedance in Ohm as measured on the cell, usual sign
        (capacitive arcs have a negative imaginary part).
    time_h : float, optional
        Hours since the start of its series (None if unknown).
    timestamp : datetime, optional
        Absolute start time, when the file has one.
    area_cm2 : float, optional
        Electrode area in cm2. When set, :attr:`impedance_area` is in Ohm cm2.
    symmetric : bool
        True for a symmetric cell: ``Z_cell = R_el + 2 * Z_electrode``.
    source : str, optional
        Path of the file the spectrum came from.
    metadata : dict
        Anything else the reader found (instrument, header values...).
    sweep_time_h : array_like, optional
        Hours since the spectrum's first point, one per point, when the file
        records the time of each point (BioLogic ``time/s``, Gamry ``Time``):
        a drift law then sees each point at its own time,
        ``time_h + sweep_time_h``.

    Raises
    ------
    DataError
        For non-finite values, non-positive or duplicated frequencies, fewer
        than 5 points, arrays of different lengths, or a bad area.
    """

    frequency: np.ndarray
    impedance: np.ndarray
    time_h: float | None = None
    timestamp: datetime | None = None
    area_cm2: float | None = None
    symmetric: bool = False
    source: str | None = None
    metadata: dict = field(default_factory=dict)
    sweep_time_h: np.ndarray | None = None

    def __post_init__(self):
        where = _where(self.source)
        frequency = _frozen(self.frequency, np.float64, "frequency", where)
        impedance = _frozen(self.impedance, np.complex128, "impedance", where)
        _check_same_length(where, frequency=frequency, impedance=impedance)
        if self.sweep_time_h is not None:
            sweep = _frozen(self.sweep_time_h, np.float64, "sweep_time_h", where)
            _check_same_length(where, frequency=frequency, sweep_time_h=sweep)
            _check_finite(sweep, "sweep_time_h", where)
            object.__setattr__(self, "sweep_time_h", sweep)
        _check_finite(frequency, "frequency", where)
        _check_finite(impedance, "impedance", where)
        _check_frequencies(frequency, where)
        if len(frequency) < MIN_POINTS:
            raise DataError(
                f"{where}: a spectrum needs at least {MIN_POINTS} points, got {len(frequency)}; "
                "check that the whole sweep was read"
            )
        time_h = None if self.time_h is None else float(self.time_h)
        if time_h is not None and not np.isfinite(time_h):
            raise DataError(f"{where}: time_h = {self.time_h} is not finite; give hours or None")
        object.__setattr__(self, "frequency", frequency)
        object.__setattr__(self, "impedance", impedance)
        object.__setattr__(self, "time_h", time_h)
        object.__setattr__(self, "area_cm2", _check_area(self.area_cm2, where))
        object.__setattr__(self, "symmetric", bool(self.symmetric))
        object.__setattr__(self, "metadata", dict(self.metadata))
        _warn_if_flipped(impedance, where)

    @property
    def n_points(self):
        """Number of frequency points."""
        return len(self.frequency)

    def __len__(self):
        return self.n_points

    @property
    def omega(self):
        """Angular frequency 2 pi f in rad/s."""
        return 2 * np.pi * self.frequency

    @property
    def impedance_area(self):
        """Impedance times the area (Ohm cm2) when ``area_cm2`` is set, else in Ohm."""
        if self.area_cm2 is None:
            return self.impedance
        return self.impedance * self.area_cm2

    @property
    def impedance_unit(self):
        """Unit of :attr:`impedance_area`: ``"Ohm cm2"`` or ``"Ohm"``."""
        return "Ohm" if self.area_cm2 is None else "Ohm cm2"

    def with_(self, **changes):
        """Return a copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def select(self, *, frequency_Hz=None):
        """Return a copy with only the points in ``frequency_Hz = (low, high)`` (inclusive).

        Either bound may be None (no limit). Raises :class:`DataError` when
        fewer than 5 points remain.
        """
        if frequency_Hz is None:
            return self
        low, high = _range(frequency_Hz, "frequency_Hz", _where(self.source))
        keep = (self.frequency >= low) & (self.frequency <= high)
        if keep.sum() < MIN_POINTS:
            raise DataError(
                f"{_where(self.source)}: frequency_Hz = {list(frequency_Hz)} keeps {int(keep.sum())} of "
                f"{self.n_points} points ({self.frequency.min():.3g}-{self.frequency.max():.3g} Hz measured); "
                f"widen the range to keep at least {MIN_POINTS}"
            )
        return self.with_(frequency=self.frequency[keep], impedance=self.impedance[keep],
                          sweep_time_h=None if self.sweep_time_h is None else self.sweep_time_h[keep])

    def sorted(self, descending=True):
        """Return a copy ordered by frequency (highest first by default)."""
        order = np.argsort(self.frequency, kind="stable")
        if descending:
            order = order[::-1]
        return self.with_(frequency=self.frequency[order], impedance=self.impedance[order],
                          sweep_time_h=None if self.sweep_time_h is None else self.sweep_time_h[order])

    def __repr__(self):
        time = "" if self.time_h is None else f", time_h={self.time_h:g}"
        area = "" if self.area_cm2 is None else f", area_cm2={self.area_cm2:g}"
        return (
            f"Spectrum({self.n_points} points, {self.frequency.min():.3g}–{self.frequency.max():.3g} Hz"
            f"{time}{area}, symmetric={self.symmetric}, source={self.source!r})"
        )


def _range(bounds, name, where):
    """``(low, high)`` from a pair whose items may be None (no limit)."""
    try:
        low, high = bounds
        low = -np.inf if low is None else float(low)
        high = np.inf if high is None else float(high)
    except (TypeError, ValueError):
        raise DataError(f"{where}: {name} = {bounds!r}; give a pair (low, high), e.g. {name}=(0.1, 1e5)") from None
    if not low <= high:
        raise DataError(f"{where}: {name} = {list(bounds)} has low > high; swap the bounds")
    return low, high


def _check_frequencies(frequency, where):
    _check_positive(frequency, "frequency", where)
    values, first, counts = np.unique(frequency, return_index=True, return_counts=True)
    if np.any(counts > 1):
        k = np.flatnonzero(counts > 1)[0]
        dup = np.flatnonzero(frequency == values[k])
        raise DataError(
            f"{where}: frequency {values[k]} Hz appears {counts[k]} times (indices {dup.tolist()}); "
            "a file with several sweeps must be read as a SpectrumSeries, otherwise drop the repeats"
        )


def _warn_if_flipped(impedance, where):
    positive = np.mean(impedance.imag > 0)
    if positive > FLIPPED_SIGN_FRACTION:
        warnings.warn(
            f"{where}: {positive:.0%} of the points have Im(Z) > 0; sign convention looks flipped: "
            "is the column -Im(Z)? pass flip_imag=True to mgbayes.io.read, or negate it yourself",
            DataWarning,
            stacklevel=4,
        )


class SpectrumSeries:
    """Spectra of one cell measured one after another, ordered in time.

    Parameters
    ----------
    spectra : iterable of Spectrum
        Sorted by ``time_h`` (a stable sort). Either every spectrum has a
        ``time_h`` or none has; in the latter case the given order is kept and
        :attr:`time_h` is all NaN.
    source : str, optional
        Path of the file the series came from.

    Raises
    ------
    DataError
        If the series is empty, holds something else than spectra, or mixes
        known and unknown times.
    """

    def __init__(self, spectra, *, source=None):
        spectra = tuple(spectra)
        where = _where(source)
        if not spectra:
            raise DataError(f"{where}: a SpectrumSeries needs at least one spectrum")
        for i, s in enumerate(spectra):
            if not isinstance(s, Spectrum):
                raise DataError(f"{where}: item {i} is a {type(s).__name__}, not a Spectrum")
        known = [s.time_h is not None for s in spectra]
        if any(known) and not all(known):
            i = known.index(False)
            raise DataError(
                f"{where}: spectrum {i} has no time_h while others have one; give every spectrum a time or none"
            )
        if all(known):
            spectra = tuple(sorted(spectra, key=lambda s: s.time_h))
        self._spectra = spectra
        self.source = source

    @property
    def spectra(self):
        """The spectra as a tuple, in time order."""
        return self._spectra

    def __len__(self):
        return len(self._spectra)

    def __iter__(self):
        return iter(self._spectra)

    def __getitem__(self, index):
        """A spectrum (``series[3]``) or a series (a slice, a list of indices or a boolean mask)."""
        if isinstance(index, slice):
            return SpectrumSeries(self._spectra[index], source=self.source)
        if isinstance(index, (int, np.integer)):
            return self._spectra[index]
        return SpectrumSeries([self._spectra[k] for k in self._indices(index)], source=self.source)

    def _indices(self, index):
        where, n = _where(self.source), len(self._spectra)
        array = np.asarray(index)
        if array.dtype == bool:
            if array.shape != (n,):
                raise DataError(f"{where}: a boolean selection needs {n} values (one per spectrum), got {array.size}")
            return np.flatnonzero(array)
        if array.ndim != 1 or array.size == 0 or not np.issubdtype(array.dtype, np.integer):
            raise DataError(f"{where}: select spectra with an int, a slice, a non-empty list of ints or a "
                            f"boolean mask, got {index!r}")
        bad = array[(array < -n) | (array >= n)]
        if bad.size:
            raise DataError(f"{where}: spectrum index {int(bad[0])} is out of range; the series has {n} spectra (0-{n - 1})")
        array = np.where(array < 0, array + n, array)
        if np.unique(array).size != array.size:
            raise DataError(f"{where}: spectrum indices {array.tolist()} repeat a spectrum; give each once")
        return array

    def select(self, *, index=None, time_h=None, frequency_Hz=None):
        """Return the part of the series to fit.

        Parameters
        ----------
        index : list of int or boolean mask, optional
            Spectra to keep (positions in time order).
        time_h : (float, float), optional
            Keep spectra with ``low <= time_h <= high``; either bound may be None.
        frequency_Hz : (float, float), optional
            Keep frequencies in ``[low, high]`` in every spectrum.

        Raises
        ------
        DataError
            When nothing (or too little) is left, or an index is out of range.
        """
        where = _where(self.source)
        spectra = list(self._spectra if index is None else (self._spectra[k] for k in self._indices(index)))
        if time_h is not None:
            low, high = _range(time_h, "time_h", where)
            if np.isnan(self.time_h).all():
                raise DataError(f"{where}: time_h = {list(time_h)} given but the spectra have no times; select by index")
            spectra = [s for s in spectra if low <= s.time_h <= high]
            if not spectra:
                raise DataError(f"{where}: no spectrum has {low:g} <= time_h <= {high:g} "
                                f"(measured {np.nanmin(self.time_h):.3g}-{np.nanmax(self.time_h):.3g} h); widen the range")
        if frequency_Hz is not None:
            spectra = [s.select(frequency_Hz=frequency_Hz) for s in spectra]
        return SpectrumSeries(spectra, source=self.source)

    def __repr__(self):
        return f"SpectrumSeries({len(self)} spectra, source={self.source!r})"

    @property
    def time_h(self):
        """Times in hours, 1-D float array (NaN where unknown)."""
        return np.array([np.nan if s.time_h is None else s.time_h for s in self._spectra])

    @property
    def sweep_time_h(self):
        """Hours since each spectrum's first point, shape (n_time, n_frequency); None unless every spectrum has them."""
        if any(s.sweep_time_h is None for s in self._spectra):
            return None
        self._require_common_grid()
        return np.stack([s.sweep_time_h for s in self._spectra])

    @property
    def has_common_grid(self):
        """True if all spectra share one frequency grid (relative tolerance 1e-6)."""
        return self._first_off_grid() is None

    def _first_off_grid(self):
        grid = self._spectra[0].frequency
        for i, s in enumerate(self._spectra[1:], start=1):
            if len(s.frequency) != len(grid) or not np.allclose(s.frequency, grid, rtol=GRID_RTOL, atol=0):
                return i
        return None

    @property
    def frequency(self):
        """The common frequency grid in Hz (that of the first spectrum)."""
        self._require_common_grid()
        return self._spectra[0].frequency

    def _require_common_grid(self):
        i = self._first_off_grid()
        if i is not None:
            raise DataError(
                f"{_where(self.source)}: spectrum {i} (time_h={self._spectra[i].time_h}) has "
                f"{self._spectra[i].n_points} points on a frequency grid different from spectrum 0 "
                f"({self._spectra[0].n_points} points); resample onto a common grid or fit spectra separately"
            )

    @property
    def impedance(self):
        """Impedance in Ohm, complex array of shape (n_time, n_frequency)."""
        self._require_common_grid()
        return np.stack([s.impedance for s in self._spectra])

    @property
    def impedance_area(self):
        """Impedance times area (Ohm cm2 when the area is set), shape (n_time, n_frequency)."""
        self._require_common_grid()
        return np.stack([s.impedance_area for s in self._spectra])

    @property
    def impedance_unit(self):
        """Unit of :attr:`impedance_area`."""
        return "Ohm" if self.area_cm2 is None else "Ohm cm2"

    @property
    def area_cm2(self):
        """The electrode area shared by all spectra (DataError if they differ)."""
        return self._common("area_cm2")

    @property
    def symmetric(self):
        """Whether the cell is symmetric, shared by all spectra (DataError if they differ)."""
        return self._common("symmetric")

    def _common(self, name):
        values = [getattr(s, name) for s in self._spectra]
        for i, v in enumerate(values):
            if v != values[0]:
                raise DataError(
                    f"{_where(self.source)}: spectrum {i} has {name}={v} but spectrum 0 has "
                    f"{name}={values[0]}; set one value for the whole series with .with_({name}=...)"
                )
        return values[0]

    def with_(self, **changes):
        """Return a series with the same change (e.g. ``area_cm2``, ``symmetric``) applied to every spectrum."""
        return SpectrumSeries([s.with_(**changes) for s in self._spectra], source=self.source)


def _frozen_labels(values, name, where, n):
    if isinstance(values, str):
        values = [values] * n
    labels = np.array([str(v) for v in values], dtype=object)
    if labels.ndim != 1:
        raise DataError(f"{where}: {name} must be one-dimensional")
    labels.flags.writeable = False
    return labels


@dataclass(frozen=True, eq=False)
class IVCurve:
    """Steady-state current–overpotential points, possibly from several cells.

    Parameters
    ----------
    current_density_mA_cm2 : array_like
        Current density magnitudes in mA/cm2 (> 0).
    overpotential_V : array_like
        Overpotential magnitudes in V (> 0).
    cell : array_like of str, or str
        Cell label of each point (a single string labels all points).
    process : array_like of str, or str
        ``"plating"`` or ``"stripping"`` for each point (or one for all).
    source : str, optional
        Path of the file the points came from.
    metadata : dict
        Anything else.
    sd_V : array_like, optional
        Known measurement standard deviation of each overpotential, V (> 0),
        e.g. the spread a paper states for a mean over cells. Models add it
        in quadrature to their own noise.
    """

    current_density_mA_cm2: np.ndarray
    overpotential_V: np.ndarray
    cell: np.ndarray = "1"
    process: np.ndarray = "plating"
    source: str | None = None
    metadata: dict = field(default_factory=dict)
    sd_V: np.ndarray | None = None

    def __post_init__(self):
        where = _where(self.source)
        j = _frozen(self.current_density_mA_cm2, np.float64, "current_density_mA_cm2", where)
        eta = _frozen(self.overpotential_V, np.float64, "overpotential_V", where)
        cell = _frozen_labels(self.cell, "cell", where, len(j))
        process = _frozen_labels(self.process, "process", where, len(j))
        _check_same_length(where, current_density_mA_cm2=j, overpotential_V=eta, cell=cell, process=process)
        if len(j) == 0:
            raise DataError(f"{where}: an IVCurve needs at least one point")
        for name, array in (("current_density_mA_cm2", j), ("overpotential_V", eta)):
            _check_finite(array, name, where)
            _check_positive(array, name, where)
        _check_process(process, where)
        fields = {"current_density_mA_cm2": j, "overpotential_V": eta, "cell": cell, "process": process}
        if self.sd_V is not None:
            sd = _frozen(self.sd_V, np.float64, "sd_V", where)
            _check_same_length(where, current_density_mA_cm2=j, sd_V=sd)
            _check_finite(sd, "sd_V", where)
            _check_positive(sd, "sd_V", where)
            fields["sd_V"] = sd
        for name, value in fields.items():
            object.__setattr__(self, name, value)
        object.__setattr__(self, "metadata", dict(self.metadata))

    @property
    def n_points(self):
        """Number of points."""
        return len(self.current_density_mA_cm2)

    def __len__(self):
        return self.n_points

    @property
    def cells(self):
        """Unique cell labels, in order of first appearance."""
        return tuple(dict.fromkeys(self.cell))

    def select(self, *, process=None, cell=None):
        """Return the points of one process and/or one cell.

        Raises
        ------
        DataError
            If nothing matches.
        """
        keep = np.ones(self.n_points, dtype=bool)
        if process is not None:
            _check_process(process, _where(self.source))
            keep &= self.process == process
        if cell is not None:
            keep &= self.cell == str(cell)
        if not keep.any():
            raise DataError(
                f"{_where(self.source)}: no points with process={process!r}, cell={cell!r}; "
                f"cells are {list(self.cells)}, processes {sorted(set(self.process))}"
            )
        return dataclasses.replace(
            self,
            current_density_mA_cm2=self.current_density_mA_cm2[keep],
            overpotential_V=self.overpotential_V[keep],
            cell=self.cell[keep],
            process=self.process[keep],
            sd_V=None if self.sd_V is None else self.sd_V[keep],
        )

    def with_(self, **changes):
        """Return a copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def __repr__(self):
        return f"IVCurve({self.n_points} points, cells={list(self.cells)}, source={self.source!r})"


@dataclass(frozen=True, eq=False)
class Transient:
    """One galvanostatic overpotential transient.

    Parameters
    ----------
    time_s : array_like
        Seconds since the current was switched on, strictly increasing.
    overpotential_V : array_like
        Overpotential magnitude in V at each time (finite).
    current_density_mA_cm2 : float
        Magnitude of the applied current density in mA/cm2 (> 0).
    cell : str
        Cell label.
    process : str
        ``"plating"`` or ``"stripping"``.
    source : str, optional
        Path of the file the transient came from.
    metadata : dict
        Anything else.
    """

    time_s: np.ndarray
    overpotential_V: np.ndarray
    current_density_mA_cm2: float
    cell: str = "1"
    process: str = "stripping"
    source: str | None = None
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        where = _where(self.source)
        t = _frozen(self.time_s, np.float64, "time_s", where)
        eta = _frozen(self.overpotential_V, np.float64, "overpotential_V", where)
        _check_same_length(where, time_s=t, overpotential_V=eta)
        if len(t) < 2:
            raise DataError(f"{where}: a transient needs at least 2 points, got {len(t)}")
        _check_finite(t, "time_s", where)
        _check_finite(eta, "overpotential_V", where)
        steps = np.flatnonzero(np.diff(t) <= 0)
        if steps.size:
            i = steps[0] + 1
            raise DataError(
                f"{where}: time_s[{i}] = {t[i]} does not increase from time_s[{i - 1}] = {t[i - 1]}; "
                "give one transient per current step, in time order"
            )
        j = float(self.current_density_mA_cm2)
        if not np.isfinite(j) or j <= 0:
            raise DataError(f"{where}: current_density_mA_cm2 = {j} must be a positive magnitude")
        _check_process(self.process, where)
        object.__setattr__(self, "time_s", t)
        object.__setattr__(self, "overpotential_V", eta)
        object.__setattr__(self, "current_density_mA_cm2", j)
        object.__setattr__(self, "cell", str(self.cell))
        object.__setattr__(self, "metadata", dict(self.metadata))

    @property
    def n_points(self):
        """Number of points."""
        return len(self.time_s)

    def __len__(self):
        return self.n_points

    def with_(self, **changes):
        """Return a copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def __repr__(self):
        return (
            f"Transient({self.n_points} points, {self.process} at {self.current_density_mA_cm2:g} mA/cm2, "
            f"cell={self.cell!r}, source={self.source!r})"
        )
