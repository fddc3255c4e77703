"""Circuit elements: one decorated function each, returning ``(re, im)``.

Every element is written once with real arithmetic, so the same code runs on
NumPy arrays and on PyTensor tensors (PyTensor cannot differentiate through
complex numbers). Angular frequency ``omega`` is in rad/s; parameters
broadcast against it, so a parameter of shape ``(n_time, 1)`` and
``omega`` of shape ``(n_frequency,)`` give ``(n_time, n_frequency)``.

Parameter names
---------------
A one-parameter element's parameter is named after the element (``R_ct``,
``C1``, ``L0``, ``W1``). Elements with several parameters get suffixes:

===========  ===========================================  =====================
type         impedance                                    parameters
===========  ===========================================  =====================
``R``        R                                            ``R`` [Ohm]
``C``        1 / (jωC)                                    ``C`` [F]
``L``        jωL                                          ``L`` [H]
``CPE``/Q    1 / (T (jω)^P)                               ``_T`` [F s^(P-1)], ``_P`` [1]
``W``        σ (1 − j) / √ω (semi-infinite Warburg)       ``W`` [Ohm s^-1/2]
``Wo``       R coth(√(jωτ)) / √(jωτ) (finite space)       ``_R`` [Ohm], ``_T`` [s]
``Ws``       R tanh(√(jωτ)) / √(jωτ) (finite length)      ``_R`` [Ohm], ``_T`` [s]
``G``        R / √(1 + jωτ) (Gerischer)                   ``_R`` [Ohm], ``_T`` [s]
===========  ===========================================  =====================

Units are per cell when fitting raw impedance, or per area (Ohm·cm²,
F·cm⁻²) when fitting area-normalised impedance.

A new element is one decorated function::

    @element("K", Param("R", "Ohm", guess=_guess_resistance), ...)
    def k(omega, R, ...):
        xp = namespace(omega, R)
        return re, im

An element may also state its admittance Y = 1/Z in closed form
(:func:`admittance`). Branches in parallel add admittances, so a closed
form spares the divisions of 1/Z at every point: for the OCV hypotheses
(two R‖CPE arcs, 40 spectra × 78 frequencies) the compiled log density and
gradient took 230 µs instead of 397 µs per evaluation (benchmarks/README.md).
"""

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from .backend import namespace
from .errors import CircuitError

#: Registered element types by prefix, e.g. ``ELEMENTS["CPE"]``.
ELEMENTS = {}

# Beyond this, tanh/coth(x(1+j)) equal ±1 to double precision; clipping keeps
# sinh/cosh finite (and their gradients) without changing the value.
_X_CLIP = 20.0


@dataclass(frozen=True)
class Param:
    """Declaration of one element parameter.

    Parameters
    ----------
    suffix : str
        Appended to the element name (``"T"`` gives ``CPE_dl_T``); ``""``
        for one-parameter elements, whose parameter is the element name.
    unit : str
        Unit of the parameter when impedance is in Ohm.
    lower, upper : float
        Bounds; ``upper=inf`` for positive quantities.
    guess : callable
        ``guess(frequency, impedance) -> float``: a characteristic value from
        the data, the centre of the default prior and of least-squares starts.
    log_sd : float
        Default prior width for positive parameters: standard deviation of
        the log-normal prior around ``guess`` (natural log units).
    """

    suffix: str
    unit: str
    lower: float = 0.0
    upper: float = np.inf
    guess: Callable = None
    log_sd: float = 3.0


@dataclass(frozen=True)
class ElementType:
    """A registered element type: its prefix, parameters, impedance and (when stated) admittance."""

    prefix: str
    params: tuple
    function: Callable
    description: str
    admittance: Callable = None

    def parameter_names(self, name):
        """Full parameter names for an element called ``name``."""
        return [name if not p.suffix else f"{name}_{p.suffix}" for p in self.params]


def element(prefix, *params, aliases=()):
    """Register ``function(omega, *params) -> (re, im)`` as element ``prefix``."""

    def register(function):
        kind = ElementType(prefix, tuple(params), function, (function.__doc__ or "").strip())
        for key in (prefix, *aliases):
            if key in ELEMENTS:
                raise CircuitError(f"element type {key!r} is registered twice")
            ELEMENTS[key] = kind
        return function

    return register


def admittance(prefix):
    """Register ``function(omega, *params) -> (re, im)`` as the admittance 1/Z of element ``prefix`` (and its aliases).

    Optional: without it, a parallel branch inverts the element's impedance.
    """

    def register(function):
        kind = ELEMENTS.get(prefix)
        if kind is None:
            raise CircuitError(f"admittance for unknown element type {prefix!r}; register the element first")
        if kind.admittance is not None:
            raise CircuitError(f"element type {prefix!r} has its admittance registered twice")
        with_admittance = replace(kind, admittance=function)
        for key, value in list(ELEMENTS.items()):
            if value is kind:
                ELEMENTS[key] = with_admittance
        return function

    return register


# --- data-based characteristic values (centres of default priors) -----------

def _scale(impedance):
    return float(np.max(np.abs(impedance)))


def _omega_mid(frequency):
    return float(2 * np.pi * np.sqrt(np.min(frequency) * np.max(frequency)))


def _guess_resistance(frequency, impedance):
    return 0.5 * _scale(impedance)


def _guess_capacitance(frequency, impedance):
    return 1.0 / (_omega_mid(frequency) * _scale(impedance))


def _guess_inductance(frequency, impedance):
    return 1e-3 * _scale(impedance) / (2 * np.pi * np.max(frequency))


def _guess_warburg(frequency, impedance):
    return _scale(impedance) * np.sqrt(_omega_mid(frequency))


def _guess_time(frequency, impedance):
    return 1.0 / _omega_mid(frequency)


def _guess_cpe_exponent(frequency, impedance):
    return 0.9


# --- complex helpers in real arithmetic --------------------------------------

def _tanh_diag(x, xp):
    """tanh(x (1 + j)) as (re, im) for x >= 0."""
    x = xp.minimum(x, _X_CLIP)
    d = 2 * (xp.sinh(x) ** 2 + xp.cos(x) ** 2)
    return xp.sinh(2 * x) / d, xp.sin(2 * x) / d


def _coth_diag(x, xp):
    """coth(x (1 + j)) as (re, im) for x > 0."""
    x = xp.minimum(x, _X_CLIP)
    d = 2 * (xp.sinh(x) ** 2 + xp.sin(x) ** 2)
    return xp.sinh(2 * x) / d, -xp.sin(2 * x) / d


def _divide_by_diag(re, im, x):
    """(re + j im) / (x (1 + j))."""
    return (re + im) / (2 * x), (im - re) / (2 * x)


def _finite_warburg(omega, R, T, hyperbolic):
    """R f(s) / s with s = √(jωτ) = x (1 + j) and f = tanh or coth (as ``hyperbolic``)."""
    xp = namespace(omega, R, T)
    x = xp.sqrt(omega * T / 2)
    re, im = _divide_by_diag(*hyperbolic(x, xp), x)
    return R * re, R * im


# --- elements -----------------------------------------------------------------

@element("R", Param("", "Ohm", guess=_guess_resistance))
def resistor(omega, R):
    """Resistor: Z = R."""
    return R + 0 * omega, 0 * omega * R


@admittance("R")
def resistor_admittance(omega, R):
    """Resistor: Y = 1 / R."""
    return 1.0 / R + 0 * omega, 0 * omega * R


@element("C", Param("", "F", guess=_guess_capacitance))
def capacitor(omega, C):
    """Capacitor: Z = 1 / (jωC)."""
    return 0 * omega * C, -1.0 / (omega * C)


@admittance("C")
def capacitor_admittance(omega, C):
    """Capacitor: Y = jωC."""
    return 0 * omega * C, omega * C


@element("L", Param("", "H", guess=_guess_inductance))
def inductor(omega, L):
    """Inductor: Z = jωL."""
    return 0 * omega * L, omega * L


@admittance("L")
def inductor_admittance(omega, L):
    """Inductor: Y = 1 / (jωL)."""
    return 0 * omega * L, -1.0 / (omega * L)


@element(
    "CPE",
    Param("T", "F s^(P-1)", guess=_guess_capacitance),
    Param("P", "1", lower=0.0, upper=1.0, guess=_guess_cpe_exponent),
    aliases=("Q",),
)
def cpe(omega, T, P):
    """Constant-phase element: Z = 1 / (T (jω)^P), 0 < P <= 1 (P = 1: capacitor)."""
    xp = namespace(omega, T, P)
    magnitude = omega ** (-P) / T
    angle = P * np.pi / 2
    return magnitude * xp.cos(angle), -magnitude * xp.sin(angle)


@admittance("CPE")
def cpe_admittance(omega, T, P):
    """Constant-phase element: Y = T (jω)^P."""
    xp = namespace(omega, T, P)
    magnitude = T * omega**P
    angle = P * np.pi / 2
    return magnitude * xp.cos(angle), magnitude * xp.sin(angle)


@element("W", Param("", "Ohm s^-1/2", guess=_guess_warburg))
def warburg(omega, W):
    """Semi-infinite Warburg: Z = σ (1 − j) / √ω with σ = ``W``."""
    xp = namespace(omega, W)
    part = W / xp.sqrt(omega)
    return part, -part


@element(
    "Wo",
    Param("R", "Ohm", guess=_guess_resistance),
    Param("T", "s", guess=_guess_time),
)
def warburg_open(omega, R, T):
    """Finite-space (open, reflective) Warburg: Z = R coth(√(jωτ)) / √(jωτ)."""
    return _finite_warburg(omega, R, T, _coth_diag)


@element(
    "Ws",
    Param("R", "Ohm", guess=_guess_resistance),
    Param("T", "s", guess=_guess_time),
)
def warburg_short(omega, R, T):
    """Finite-length (short, transmissive) Warburg: Z = R tanh(√(jωτ)) / √(jωτ)."""
    return _finite_warburg(omega, R, T, _tanh_diag)


@element(
    "G",
    Param("R", "Ohm", guess=_guess_resistance),
    Param("T", "s", guess=_guess_time),
)
def gerischer(omega, R, T):
    """Gerischer: Z = R / √(1 + jωτ)."""
    xp = namespace(omega, R, T)
    y = omega * T
    modulus = xp.sqrt(1 + y**2)
    re = xp.sqrt((modulus + 1) / 2)
    im = xp.sqrt(y**2 / (2 * (modulus + 1)))  # = sqrt((modulus - 1) / 2), stable
    return R * re / modulus, -R * im / modulus
