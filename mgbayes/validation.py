"""Checks on measured spectra before they are fitted.

:func:`kramers_kronig` is the linear Kramers–Kronig test of Schönleber,
Klotz and Ivers-Tiffée (Electrochim. Acta 131, 20, 2014), as in
impedance.py's ``linKK`` and pyimpspec: a chain of ``M`` Voigt (RC)
elements with fixed, log-spaced time constants, in series with ``R0``, an
inductance ``L`` and optionally a capacitance, is fitted by linear least
squares weighted by ``1/|Z|``. Such a chain is Kramers–Kronig compliant by
construction, so a spectrum it cannot reproduce within the noise is not
causal, linear and stationary (drift during the sweep, a nonlinear
response, instrument artefacts). ``M`` grows until ``mu``, one minus the
ratio of negative to positive resistances, falls below ``c`` — the onset of
over-fitting.

One change to the published search: it starts at ``min_rc``, by default
four RC elements per decade of frequency (time constants at most 1/4 decade
apart). On coarser grids a single ideal RC arc — a dummy cell, or any
narrow time-constant distribution — cannot be reproduced: the fit
oscillates between positive and negative resistances, ``mu`` drops, and the
plain Schönleber search stops there with residuals of 20–50 % on valid
data (the ZPlot dummy-cell files in the shared data do this). With four per
decade a single ideal RC anywhere in the band is reproduced to about
0.3 % at worst, so a 1 % threshold has room for noise. On most measured
spectra ``mu`` is already below ``c`` there, so ``n_rc = min_rc``: the grid
density, as in Boukamp's original test, rather than ``mu``, sets the
flexibility, and ``mu`` only adds elements to very smooth spectra.
``min_rc=1`` restores the published search.

A process that extends below the lowest measured frequency (diffusion, a
blocking electrode) leaves low-frequency residuals like those of drift. A
series capacitance (``capacitance=True``) absorbs the former but only part
of the latter: a spectrum that passes only with it is valid if such a
low-frequency process is physically expected, and suspect otherwise.
"""

from dataclasses import dataclass

import numpy as np

from .errors import DataError


def check_spectrum(frequency, impedance):
    """Return ``frequency`` and ``impedance`` as 1-D float and complex arrays.

    Parameters
    ----------
    frequency : array_like
        Frequencies in Hz, all positive and finite.
    impedance : array_like of complex
        ``Z = Re + 1j Im`` at each frequency, finite (capacitive arcs have
        ``Im < 0``).

    Raises
    ------
    DataError
        If the shapes differ, fewer than 3 points are given, a value is not
        finite, a frequency is not positive or the impedance is not complex.
    """
    f = np.asarray(frequency, dtype=float)
    Z = np.asarray(impedance)
    if f.ndim != 1 or Z.shape != f.shape:
        raise DataError(f"frequency and impedance must be 1-D of equal length; got shapes {f.shape} and {Z.shape}.")
    if f.size < 3:
        raise DataError(f"a spectrum needs at least 3 points; got {f.size}.")
    if not np.iscomplexobj(Z):
        raise DataError("impedance must be complex (Re + 1j*Im); got a real array.")
    if not (np.all(np.isfinite(f)) and np.all(np.isfinite(Z))):
        raise DataError("frequency and impedance must be finite; remove NaN/inf points first.")
    if np.any(f <= 0):
        raise DataError(f"frequencies must be positive; got minimum {f.min()!r} Hz.")
    return f, Z.astype(complex)


@dataclass(frozen=True)
class KKResult:
    """Outcome of the linear Kramers–Kronig test.

    Attributes
    ----------
    frequency, impedance : ndarray
        The data tested (Hz, complex impedance).
    fitted : ndarray of complex
        Impedance of the fitted KK-compliant Voigt chain.
    n_rc : int
        Number of RC elements chosen.
    mu : float
        ``1 - sum|R_k < 0| / sum|R_k >= 0|`` at ``n_rc``.
    c : float
        The ``mu`` criterion used.
    min_rc : int
        Where the search for ``n_rc`` started.
    tau, resistances : ndarray
        Time constants (s) and fitted resistances of the RC elements.
    series_resistance : float
        Fitted ``R0``.
    inductance, capacitance : float or None
        Fitted series ``L`` and ``C`` (None when not part of the fit; the
        capacitance is ``inf`` if its inverse came out 0). Negative values
        are allowed by the linear fit and flag a poor description.
    residuals_real, residuals_imag : ndarray
        ``(Z - fitted) / |Z|``, real and imaginary parts.
    threshold : float
        Largest allowed ``|residual|`` (fraction of ``|Z|``).
    """

    frequency: np.ndarray
    impedance: np.ndarray
    fitted: np.ndarray
    n_rc: int
    mu: float
    c: float
    min_rc: int
    tau: np.ndarray
    resistances: np.ndarray
    series_resistance: float
    inductance: float | None
    capacitance: float | None
    residuals_real: np.ndarray
    residuals_imag: np.ndarray
    threshold: float

    @property
    def max_abs_residual(self):
        """Largest ``|residual|`` in the real or imaginary part (fraction of ``|Z|``)."""
        return float(max(np.max(np.abs(self.residuals_real)), np.max(np.abs(self.residuals_imag))))

    @property
    def passed(self):
        """True if every residual is below ``threshold`` in magnitude."""
        return self.max_abs_residual < self.threshold

    def summary(self):
        """One paragraph stating the verdict, the numbers behind it and the threshold."""
        worst = np.maximum(np.abs(self.residuals_real), np.abs(self.residuals_imag))
        above = worst >= self.threshold
        verdict = "PASSED" if self.passed else "FAILED"
        text = (
            f"Linear Kramers-Kronig test (lin-KK after Schönleber 2014): {verdict}. "
            f"{self.n_rc} RC elements (search from {self.min_rc}; mu = {self.mu:.3f}, c = {self.c:g}); "
            f"max |residual| = {100 * self.max_abs_residual:.3g} % of |Z| "
            f"(real {100 * np.max(np.abs(self.residuals_real)):.3g} %, "
            f"imaginary {100 * np.max(np.abs(self.residuals_imag)):.3g} %) "
            f"at {self.frequency[np.argmax(worst)]:.4g} Hz; "
            f"pass requires every |residual| < {100 * self.threshold:g} %."
        )
        if self.mu >= self.c:
            text += " mu never fell below c: the largest allowed number of RC elements was used."
        if above.any():
            f_bad = self.frequency[above]
            text += (
                f" {above.sum()} of {above.size} points exceed it ({f_bad.min():.3g}-{f_bad.max():.3g} Hz): "
                "the spectrum may have drifted during the sweep, be nonlinear or carry instrument artefacts."
            )
            low_band = f_bad.max() < np.sqrt(self.frequency.min() * self.frequency.max())
            if low_band and self.capacitance is None:
                text += (
                    " The deviation is confined to low frequencies, where a process extending below the"
                    " measured band looks the same: compare with capacitance=True."
                )
        return text


def _time_constants(omega, n_rc):
    """``n_rc`` time constants log-spaced from ``1/omega_max`` to ``1/omega_min``."""
    lo, hi = np.log10(1 / omega.max()), np.log10(1 / omega.min())
    if n_rc == 1:
        return np.array([10 ** ((lo + hi) / 2)])
    return np.logspace(lo, hi, n_rc)


def _design_matrix(omega, tau, capacitance, inductance):
    """Complex columns: R0, the RC elements, then L and 1/C when asked."""
    columns = [np.ones_like(omega, dtype=complex)]
    columns += [1 / (1 + 1j * omega * t) for t in tau]
    if inductance:
        columns.append(1j * omega)
    if capacitance:
        columns.append(-1j / omega)  # coefficient is 1/C
    return np.stack(columns, axis=1)


def _fit_voigt(omega, Z, tau, capacitance, inductance):
    """Weighted linear least squares of the Voigt chain; returns (coefficients, fitted Z)."""
    A = _design_matrix(omega, tau, capacitance, inductance)
    weight = 1 / np.abs(Z)
    real_system = np.vstack([A.real * weight[:, None], A.imag * weight[:, None]])
    target = np.concatenate([Z.real * weight, Z.imag * weight])
    scale = np.linalg.norm(real_system, axis=0)  # columns span many decades (omega L)
    coefficients = np.linalg.lstsq(real_system / scale, target, rcond=None)[0] / scale
    return coefficients, A @ coefficients


def _mu(resistances):
    positive = resistances[resistances >= 0].sum()
    negative = -resistances[resistances < 0].sum()
    return 1.0 - negative / positive if positive > 0 else -np.inf


def _default_min_rc(frequency):
    """Four RC elements per decade of frequency, plus one."""
    return int(np.ceil(4 * np.log10(frequency.max() / frequency.min()))) + 1


def kramers_kronig(frequency, impedance, *, threshold=0.01, c=0.85, min_rc=None, max_rc=None,
                   capacitance=False, inductance=True):
    """Linear Kramers–Kronig test of an impedance spectrum.

    Parameters
    ----------
    frequency : array_like
        Frequencies in Hz.
    impedance : array_like of complex
        Measured impedance, ``Re + 1j Im`` (``Im < 0`` for capacitive arcs).
    threshold : float
        Pass if every residual ``|Z - fit| / |Z|`` (real and imaginary
        parts separately) is below this fraction; 0.01 = 1 %.
    c : float
        ``mu`` criterion: the number of RC elements grows until ``mu < c``.
    min_rc : int, optional
        Number of RC elements the search starts from; default three per
        decade of frequency plus one (see the module notes); 1 gives
        Schönleber's original search.
    max_rc : int, optional
        Largest number of RC elements tried; default ``max(50, min_rc)``.
    capacitance : bool
        Add a series capacitance (for blocking electrodes, whose impedance
        diverges at low frequency).
    inductance : bool
        Add a series inductance (cables; the high-frequency tail of most
        real spectra).

    Returns
    -------
    KKResult
    """
    f, Z = check_spectrum(frequency, impedance)
    omega = 2 * np.pi * f
    if min_rc is None:
        min_rc = _default_min_rc(f)
    if max_rc is None:
        max_rc = max(50, min_rc)
    if not 1 <= min_rc <= max_rc:
        raise DataError(f"need 1 <= min_rc <= max_rc; got min_rc={min_rc}, max_rc={max_rc}.")
    for n_rc in range(min_rc, max_rc + 1):
        tau = _time_constants(omega, n_rc)
        coefficients, fitted = _fit_voigt(omega, Z, tau, capacitance, inductance)
        resistances = coefficients[1 : n_rc + 1]
        mu = _mu(resistances)
        if mu < c:
            break
    extra = list(coefficients[n_rc + 1 :])
    L = float(extra.pop(0)) if inductance else None
    C = (np.inf if extra[0] == 0 else 1 / float(extra[0])) if capacitance else None
    residual = (Z - fitted) / np.abs(Z)
    return KKResult(
        frequency=f, impedance=Z, fitted=fitted, n_rc=n_rc, mu=float(mu), c=c, min_rc=min_rc, tau=tau,
        resistances=resistances, series_resistance=float(coefficients[0]), inductance=L, capacitance=C,
        residuals_real=residual.real, residuals_imag=residual.imag, threshold=threshold,
    )


def kramers_kronig_spectrum(spectrum, **options):
    """:func:`kramers_kronig` on any object with ``.frequency`` (Hz) and complex ``.impedance``.

    ``options`` are those of :func:`kramers_kronig`.
    """
    try:
        frequency, impedance = spectrum.frequency, spectrum.impedance
    except AttributeError as error:
        raise TypeError(
            f"expected a spectrum with .frequency and .impedance attributes; got {type(spectrum).__name__}"
        ) from error
    return kramers_kronig(frequency, impedance, **options)
