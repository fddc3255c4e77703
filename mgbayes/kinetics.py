"""Current–overpotential laws for the plating hypotheses (docs/physics.md).

Each law is written once with ``xp = namespace(...)`` and runs on NumPy
arrays (simulation, least squares) and on PyTensor tensors (NUTS, with
gradients). Arguments broadcast against each other.

Conventions
-----------
Current density ``j`` is in mA cm-2 and overpotential ``eta`` in V, both as
magnitudes (> 0) of the process studied (plating or stripping); the laws
are odd in their argument where that is meaningful, so negative values give
the reverse direction. Temperatures are in K.

Laws
----
=====================================  =========================================
tunnelling through a thin film         ``j = G0 (eta + gamma eta**3)`` (Simmons,
                                       intermediate voltage), its exact inverse,
                                       and the full rectangular-barrier form
Butler–Volmer                          ``j = j0 (exp(a_a f eta) - exp(-a_c f eta))``
multistep charge transfer with onset   ``eta = eta_on + b asinh(j / (2 j_ref)) / ln 10``
mass transport                         ``eta = -(RT/nF) ln(1 - j / j_lim)``
=====================================  =========================================

Overpotentials of processes in series add: :func:`series`.
"""

import numpy as np

from .backend import namespace
from .constants import E_CHARGE, F, H_PLANCK, M_ELECTRON, N_MG, R_GAS, T_ROOM

#: Units of the keyword arguments of the laws below (current density in mA cm-2, overpotential in V).
UNITS = {
    "G0": "mA cm-2 V-1", "gamma": "V-2", "eta_on": "V", "b": "V dec-1", "j_ref": "mA cm-2",
    "j0": "mA cm-2", "j_lim": "mA cm-2", "alpha": "1", "alpha_a": "1", "alpha_c": "1",
    "barrier_eV": "eV", "thickness_nm": "nm", "T": "K", "n": "1", "area_factor": "1",
}

_LN10 = np.log(10.0)
# 1 A m-2 = 0.1 mA cm-2.
_MA_CM2_PER_A_M2 = 0.1


def _thermal_factor(n, T):
    """``n F / (R T)`` in V^-1."""
    return n * F / (R_GAS * T)


# --- Electron tunnelling through a thin film (Simmons 1963) ---------------


def tunnelling_current(eta, *, G0, gamma):
    """Simmons intermediate-voltage tunnelling current, ``j = G0 (eta + gamma eta**3)``.

    Parameters
    ----------
    eta : float, array or tensor
        Voltage across the film (overpotential), V.
    G0 : float, array or tensor
        Low-bias conductance, mA cm-2 V-1.
    gamma : float, array or tensor
        Cubic coefficient, V-2 (>= 0); above ``eta ~ 1/sqrt(gamma)`` the
        current grows as ``eta**3``.

    Returns
    -------
    j : current density, mA cm-2.
    """
    return G0 * (eta + gamma * eta**3)


def tunnelling_overpotential(j, *, G0, gamma):
    """Overpotential that drives current ``j`` through a tunnelling film.

    The real root of ``gamma eta**3 + eta - j/G0 = 0``. With ``p = 1/gamma``
    and ``q = j/(G0 gamma)`` the depressed cubic ``eta**3 + p eta - q = 0``
    has ``p > 0`` and hence exactly one real root, written in the
    trigonometric (hyperbolic) form of Cardano's solution::

        eta = 2 sqrt(p/3) sinh(asinh(3 q / (2 p) sqrt(3/p)) / 3)
            = (2 / s) sinh(asinh(3 j s / (2 G0)) / 3),   s = sqrt(3 gamma)

    The second line has no cancellation, is smooth in ``j``, ``G0`` and
    ``gamma`` and tends to ``j / G0`` as ``gamma -> 0`` (``gamma = 0`` is
    handled exactly); at high current ``eta ~ (j / (G0 gamma))**(1/3)``.

    Parameters
    ----------
    j : float, array or tensor
        Current density, mA cm-2.
    G0 : float, array or tensor
        Low-bias conductance, mA cm-2 V-1.
    gamma : float, array or tensor
        Cubic coefficient, V-2 (>= 0).

    Returns
    -------
    eta : overpotential, V.
    """
    xp = namespace(j, G0, gamma)
    s = xp.sqrt(3 * gamma)
    positive = s > 0
    s_safe = xp.where(positive, s, 1.0)
    cubic_root = 2 / s_safe * xp.sinh(xp.arcsinh(1.5 * j * s_safe / G0) / 3)
    return xp.where(positive, cubic_root, j / G0)


def simmons_full_current(eta, *, barrier_eV, thickness_nm, area_factor=1.0):
    """Tunnelling current through a rectangular barrier, Simmons (1963).

    The general formula with the mean barrier height of a rectangular
    barrier at intermediate voltage, ``phi -/+ e V / 2``::

        J = e / (2 pi h d**2) * [ (phi - eV/2) exp(-A sqrt(phi - eV/2))
                                - (phi + eV/2) exp(-A sqrt(phi + eV/2)) ],
        A = 4 pi d sqrt(2 m) / h

    (image forces neglected, effective mass = free electron mass). Valid for
    ``e eta < phi``; the barrier height seen by the electrons is clipped at
    zero so the expression stays finite beyond. Its expansion to third order
    in ``eta`` is :func:`tunnelling_current` with the parameters of
    :func:`simmons_cubic_parameters`.

    Parameters
    ----------
    eta : float, array or tensor
        Voltage across the film, V.
    barrier_eV : float, array or tensor
        Barrier height ``phi``, eV.
    thickness_nm : float, array or tensor
        Barrier (film) thickness ``d``, nm.
    area_factor : float, array or tensor
        Fraction of the geometric area that tunnels (or a roughness factor),
        multiplies the current.

    Returns
    -------
    j : current density per geometric area, mA cm-2.
    """
    xp = namespace(eta, barrier_eV, thickness_nm, area_factor)
    d = thickness_nm * 1e-9
    A = 4 * np.pi * d * np.sqrt(2 * M_ELECTRON) / H_PLANCK
    half_bias = E_CHARGE * eta / 2
    phi = barrier_eV * E_CHARGE
    low = xp.maximum(phi - half_bias, 0.0)
    high = xp.maximum(phi + half_bias, 0.0)
    bracket = low * xp.exp(-A * xp.sqrt(low)) - high * xp.exp(-A * xp.sqrt(high))
    J = E_CHARGE / (2 * np.pi * H_PLANCK * d**2) * bracket
    return area_factor * J * _MA_CM2_PER_A_M2


def simmons_cubic_parameters(*, barrier_eV, thickness_nm, area_factor=1.0):
    """``G0`` and ``gamma`` of the cubic law that match :func:`simmons_full_current`.

    Exact Taylor coefficients of the full rectangular-barrier expression at
    zero bias. With ``u = sqrt(phi)`` and ``a = A u``::

        G0    = e**2 / (2 pi h d**2) exp(-a) (a/2 - 1)
        gamma = (A e)**2 / (96 phi) (a**2 - 3 a - 3) / (a**2 - 2 a)

    For a thick barrier (``a >> 1``) ``gamma -> (A e)**2 / (96 phi)``,
    Simmons's leading term. Meaningful for ``a > 2`` (``a`` is about 10 for
    1 nm and 1 eV, and grows as ``d sqrt(phi)``).

    Parameters
    ----------
    barrier_eV, thickness_nm, area_factor
        As in :func:`simmons_full_current`.

    Returns
    -------
    G0 : low-bias conductance, mA cm-2 V-1.
    gamma : cubic coefficient, V-2.
    """
    xp = namespace(barrier_eV, thickness_nm, area_factor)
    d = thickness_nm * 1e-9
    A = 4 * np.pi * d * np.sqrt(2 * M_ELECTRON) / H_PLANCK
    u2 = barrier_eV * E_CHARGE
    a = A * xp.sqrt(u2)
    G0 = E_CHARGE**2 / (2 * np.pi * H_PLANCK * d**2) * xp.exp(-a) * (a / 2 - 1)
    gamma = E_CHARGE**2 / 96 * A**2 / u2 * (a**2 - 3 * a - 3) / (a**2 - 2 * a)
    return area_factor * G0 * _MA_CM2_PER_A_M2, gamma


# --- Charge transfer ------------------------------------------------------


def butler_volmer_current(eta, *, j0, alpha_a, alpha_c, n=N_MG, T=T_ROOM):
    """Butler–Volmer current, ``j = j0 (exp(alpha_a f eta) - exp(-alpha_c f eta))``.

    ``f = n F / (R T)``. Signed: ``eta > 0`` drives the reaction whose
    transfer coefficient is ``alpha_a``. For plating magnitudes pass the
    cathodic coefficient as ``alpha_a`` (``|j| = j0 (exp(alpha_c f |eta|) -
    exp(-alpha_a f |eta|))``).

    Parameters
    ----------
    eta : float, array or tensor
        Overpotential, V.
    j0 : float, array or tensor
        Exchange current density, mA cm-2.
    alpha_a, alpha_c : float, array or tensor
        Transfer coefficients of the forward and reverse directions.
    n : int
        Electrons transferred (2 for Mg2+).
    T : float
        Temperature, K.

    Returns
    -------
    j : current density, mA cm-2.
    """
    xp = namespace(eta, j0, alpha_a, alpha_c)
    f = _thermal_factor(n, T)
    return j0 * (xp.exp(alpha_a * f * eta) - xp.exp(-alpha_c * f * eta))


def bv_overpotential(j, *, j0, alpha=0.5, n=N_MG, T=T_ROOM):
    """Inverse of the symmetric Butler–Volmer law, ``eta = asinh(j / (2 j0)) / (alpha f)``.

    Exact for ``alpha_a = alpha_c = alpha`` (then ``j = 2 j0 sinh(alpha f eta)``);
    linear (``eta = j / (2 alpha f j0)``) at small current and Tafel at large.

    Parameters
    ----------
    j : float, array or tensor
        Current density, mA cm-2.
    j0 : float, array or tensor
        Exchange current density, mA cm-2.
    alpha : float, array or tensor
        Transfer coefficient of both directions.
    n : int
        Electrons transferred.
    T : float
        Temperature, K.

    Returns
    -------
    eta : overpotential, V.
    """
    xp = namespace(j, j0, alpha)
    return xp.arcsinh(j / (2 * j0)) / (alpha * _thermal_factor(n, T))


def onset_tafel_overpotential(j, *, eta_on, b, j_ref):
    """Multistep charge transfer with an onset, ``eta = eta_on + b asinh(j / (2 j_ref)) / ln 10``.

    Above a few ``j_ref`` this is the Tafel line ``eta_on + b log10(j / j_ref)``
    (``asinh(x) -> ln(2 x)``). Unlike the bare logarithm it stays finite and
    smooth down to ``j = 0``, where ``eta = eta_on``: almost no current flows
    below the onset, and the slope never diverges. It is the exact inverse
    of :func:`onset_tafel_current`, a symmetric Butler–Volmer curve with
    ``alpha n F / (R T) = ln 10 / b`` shifted by ``eta_on``.

    Parameters
    ----------
    j : float, array or tensor
        Current density, mA cm-2.
    eta_on : float, array or tensor
        Onset overpotential, V.
    b : float, array or tensor
        Tafel slope, V per decade (small for a multistep mechanism).
    j_ref : float, array or tensor
        Current density at which the Tafel line reaches ``eta_on``, mA cm-2.

    Returns
    -------
    eta : overpotential, V.
    """
    xp = namespace(j, eta_on, b, j_ref)
    return eta_on + b * xp.arcsinh(j / (2 * j_ref)) / _LN10


def onset_tafel_current(eta, *, eta_on, b, j_ref):
    """Current of the onset law, ``j = 2 j_ref sinh(ln 10 (eta - eta_on) / b)``.

    Forward form of :func:`onset_tafel_overpotential` (same parameters);
    negative below the onset.
    """
    xp = namespace(eta, eta_on, b, j_ref)
    return 2 * j_ref * xp.sinh(_LN10 * (eta - eta_on) / b)


# --- Mass transport -------------------------------------------------------


def mass_transport_overpotential(j, *, j_lim, n=N_MG, T=T_ROOM):
    """Concentration overpotential, ``eta = -(R T / n F) ln(1 - j / j_lim)``.

    For ``j >= j_lim`` it returns ``+inf`` on both backends (with a zero,
    finite gradient), so a likelihood built on it is ``-inf`` there: a model
    should keep ``j_lim`` above the largest measured current, e.g. by
    parametrising ``j_lim = max(j) + excess`` with ``excess > 0``.

    Parameters
    ----------
    j : float, array or tensor
        Current density, mA cm-2 (>= 0).
    j_lim : float, array or tensor
        Limiting current density, mA cm-2.
    n : int
        Electrons transferred.
    T : float
        Temperature, K.

    Returns
    -------
    eta : overpotential, V.
    """
    xp = namespace(j, j_lim)
    below = j < j_lim
    ratio = xp.where(below, j / j_lim, 0.0)
    eta = -xp.log1p(-ratio) / _thermal_factor(n, T)
    return xp.where(below, eta, np.inf)


def mass_transport_current(eta, *, j_lim, n=N_MG, T=T_ROOM):
    """Current at concentration overpotential ``eta``, ``j = j_lim (1 - exp(-n F eta / R T))``."""
    xp = namespace(eta, j_lim)
    return -j_lim * xp.expm1(-eta * _thermal_factor(n, T))


def series(*etas):
    """Total overpotential of processes in series: the sum of their overpotentials.

    Example: ``series(tunnelling_overpotential(j, ...), mass_transport_overpotential(j, ...))``.
    """
    if not etas:
        raise TypeError("series() needs at least one overpotential")
    total = etas[0]
    for eta in etas[1:]:
        total = total + eta
    return total
