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
Simmons tunnelling from the film       ``simmons_overpotential(j, barrier_eV, thickness_nm)``
Poole–Frenkel (hopping) conduction     ``j = G_film eta exp(c sqrt(eta))``, ``c`` from
                                       thickness and permittivity
Tafel (plating, η >> RT/F)             ``eta = eta_1 + ln(j / 1 mA cm-2) / (alpha f)``
Koutecký–Levich                        ``1/j = 1/j_k(eta) + 1/j_L``
two channels (Mg saturating at j_L,    ``j = j_Mg(eta) + j_side(eta)``, solved for
a second process with its own onset)   ``eta`` by bisection (implicit gradient);
                                       Mg follows the onset law
Sand time                              ``tau = pi D (n F c)**2 / (4 j**2)``
=====================================  =========================================

Transfer coefficients ``alpha`` lie in (0, 1), so every Tafel slope
``b = ln 10 R T / (alpha n F)`` is at least 29.6 mV/decade for n = 2.

Overpotentials of processes in series add: :func:`series`.
"""

import numba
import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key

from .backend import namespace
from .constants import E_CHARGE, F, H_PLANCK, M_ELECTRON, N_MG, R_GAS, T_ROOM

K_BOLTZMANN = R_GAS / 6.02214076e23  # J/K, consistent with R_GAS

#: Units of the keyword arguments of the laws below (current density in mA cm-2, overpotential in V).
UNITS = {
    "G0": "mA cm-2 V-1", "gamma": "V-2", "eta_on": "V", "b": "V dec-1", "j_ref": "mA cm-2",
    "j0": "mA cm-2", "j_lim": "mA cm-2", "j_L": "mA cm-2", "alpha": "1", "alpha_a": "1", "alpha_c": "1",
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


# --- Laws parametrised by physics (plating on a filmed electrode) ----------


def _asinh_of_exp(log_x, xp):
    """``asinh(exp(log_x))`` without overflow for large ``log_x``."""
    small = xp.minimum(log_x, 20.0)
    return xp.where(log_x > 20.0, log_x + np.log(2.0) + 0.25 * xp.exp(-2 * xp.maximum(log_x, 20.0)),
                    xp.arcsinh(xp.exp(small)))


def simmons_log_conductance(*, barrier_eV, thickness_nm):
    """Natural log of the zero-bias Simmons conductance ``G0`` (mA cm-2 V-1).

    The same ``G0`` as :func:`simmons_cubic_parameters`, in log form so that
    films of 7–10 nm (``G0`` ~ 1e-30 and less) stay finite. The bracket
    ``a/2 - 1`` is floored (the expansion needs ``a > 4``; ``a`` is ~70 for
    7 nm and 1 eV).
    """
    xp = namespace(barrier_eV, thickness_nm)
    d = thickness_nm * 1e-9
    A = 4 * np.pi * d * np.sqrt(2 * M_ELECTRON) / H_PLANCK
    a = xp.maximum(A * xp.sqrt(barrier_eV * E_CHARGE), 4.0)
    prefactor = E_CHARGE**2 / (2 * np.pi * H_PLANCK) * _MA_CM2_PER_A_M2
    return np.log(prefactor) - 2 * xp.log(d) - a + xp.log(a / 2 - 1)


def simmons_gamma(*, barrier_eV, thickness_nm):
    """Cubic coefficient ``gamma`` (V-2) of the Simmons law, as :func:`simmons_cubic_parameters`."""
    xp = namespace(barrier_eV, thickness_nm)
    d = thickness_nm * 1e-9
    A = 4 * np.pi * d * np.sqrt(2 * M_ELECTRON) / H_PLANCK
    u2 = barrier_eV * E_CHARGE
    a = xp.maximum(A * xp.sqrt(u2), 4.0)
    return E_CHARGE**2 / 96 * A**2 / u2 * (a**2 - 3 * a - 3) / (a**2 - 2 * a)


def simmons_overpotential(j, *, barrier_eV, thickness_nm):
    """Voltage across a film of ``thickness_nm`` with barrier ``barrier_eV`` that tunnels ``j``.

    :func:`tunnelling_overpotential` with ``G0`` and ``gamma`` from the
    film's physics (:func:`simmons_log_conductance`, :func:`simmons_gamma`),
    evaluated in log form: ``eta = (2/s) sinh(asinh(3 j s / (2 G0)) / 3)``,
    ``s = sqrt(3 gamma)``. A 7 nm film with a 1 eV barrier needs
    astronomically large voltages for 1 mA cm-2; a barrier of ~0.1 eV passes
    it at a fraction of a volt.

    Parameters
    ----------
    j : float, array or tensor
        Current density, mA cm-2 (> 0).
    barrier_eV : float, array or tensor
        Barrier height, eV.
    thickness_nm : float, array or tensor
        Film thickness, nm.

    Returns
    -------
    eta : overpotential, V.
    """
    xp = namespace(j, barrier_eV, thickness_nm)
    s = xp.sqrt(3 * simmons_gamma(barrier_eV=barrier_eV, thickness_nm=thickness_nm))
    log_x = xp.log(1.5 * j * s) - simmons_log_conductance(barrier_eV=barrier_eV, thickness_nm=thickness_nm)
    return 2 / s * xp.sinh(_asinh_of_exp(log_x, xp) / 3)


def poole_frenkel_coefficient(*, thickness_nm, permittivity, T=T_ROOM):
    """``c`` (V^-1/2) of the Poole–Frenkel law: barrier lowering ``(e/kT) sqrt(e eta / (pi eps eps0 d))``."""
    xp = namespace(thickness_nm, permittivity)
    from .constants import EPS0

    return E_CHARGE / (K_BOLTZMANN * T) * xp.sqrt(E_CHARGE / (np.pi * permittivity * EPS0 * thickness_nm * 1e-9))


def poole_frenkel_current(eta, *, G_film, thickness_nm, permittivity, T=T_ROOM):
    """Poole–Frenkel (field-assisted hopping) current, ``j = G_film eta exp(c sqrt(eta))``.

    Electrons hop between traps in the film; the field ``eta / d`` lowers
    each trap's barrier by ``sqrt(e E / (pi eps eps0))``. ``G_film`` is the
    low-field conductance (trap depth, density and mobility lumped),
    ``c`` is :func:`poole_frenkel_coefficient` (about 12 V^-1/2 for 8 nm and
    eps = 8). ``ln(j / eta)`` is linear in ``sqrt(eta)``.

    Parameters
    ----------
    eta : float, array or tensor
        Voltage across the film, V (>= 0).
    G_film : float, array or tensor
        Low-field conductance, mA cm-2 V-1.
    thickness_nm, permittivity : float, array or tensor
        Film thickness (nm) and its high-frequency relative permittivity.
    """
    xp = namespace(eta, G_film, thickness_nm, permittivity)
    c = poole_frenkel_coefficient(thickness_nm=thickness_nm, permittivity=permittivity, T=T)
    return G_film * eta * xp.exp(c * xp.sqrt(eta))


def lambert_w(z):
    """Principal branch of the Lambert W function for ``z >= 0`` (``w exp(w) = z``).

    The value comes from :func:`halley_lambert_w` (on PyTensor through the
    small Op :class:`LambertW`, compiled by Numba, without a gradient); one
    Newton step with a frozen derivative then gives the exact gradient,
    ``dW/dz = W / (z (1 + W))`` (implicit differentiation), and leaves the
    value unchanged to rounding.
    """
    xp = namespace(z)
    z = xp.maximum(z, 0.0)
    frozen = _frozen(xp)
    w0 = halley_lambert_w(z) if xp is np else frozen(LambertW()(z))
    ew = xp.exp(w0)
    return w0 - (w0 * ew - z) / frozen(ew * (1 + w0))


#: Halley steps after Winitzki's start: its 2 % error becomes 1e-5, 1e-15, then rounding.
HALLEY_STEPS = 3


def halley_lambert_w(z):
    """W(z) for ``z >= 0`` (NumPy, or Numba on scalars): Winitzki's start and :data:`HALLEY_STEPS` Halley steps.

    The start ``L (1 - ln(1 + L) / (2 + L))``, ``L = ln(1 + z)``, is within 2 %
    for every ``z >= 0``; each Halley step cubes the error, so the result is
    within 4e-16 of :func:`scipy.special.lambertw` from 0 to 1e300.
    """
    log_1z = np.log1p(z)
    w = log_1z * (1 - np.log1p(log_1z) / (2 + log_1z))
    for _ in range(HALLEY_STEPS):
        ew = np.exp(w)
        f = w * ew - z
        w = w - f / (ew * (w + 1) - (w + 2) * f / (2 * w + 2))
    return w


class LambertW(Op):
    """Values of W(z) (no gradient: :func:`lambert_w` adds it by implicit differentiation)."""

    __props__ = ()

    def make_node(self, z):
        z = pt.as_tensor_variable(z)
        return Apply(self, [z], [z.type()])

    def perform(self, node, inputs, outputs):
        outputs[0][0] = np.asarray(halley_lambert_w(inputs[0]), dtype=node.outputs[0].dtype)

    def connection_pattern(self, node):
        return [[False]]  # the value carries no gradient; lambert_w adds the exact one

    def pullback(self, inputs, outputs, output_grads):
        return [DisconnectedType()()]


@register_funcify_default_op_cache_key(LambertW)
def _numba_lambert_w(op, node=None, **kwargs):
    """The same iteration compiled by Numba, so the model's compiled density calls no Python."""
    scalar = numba.njit(halley_lambert_w)

    @numba.njit
    def lambert_w_values(z):
        flat = np.ravel(z)
        out = np.empty(flat.shape, dtype=np.float64)
        for i in range(flat.size):
            out[i] = scalar(flat[i])
        return out.reshape(z.shape)

    return lambert_w_values


def _frozen(xp):
    """Identity that stops gradients on PyTensor, identity on NumPy."""
    if xp is np:
        return lambda x: x
    from pytensor.gradient import disconnected_grad

    return lambda x: disconnected_grad(xp.as_tensor_variable(x))


def poole_frenkel_overpotential(j, *, G_film, thickness_nm, permittivity, T=T_ROOM):
    """Inverse of :func:`poole_frenkel_current`: ``eta = u**2``, ``u = (2/c) W((c/2) sqrt(j/G_film))``.

    With ``u = sqrt(eta)``, ``j = G u**2 exp(c u)`` gives
    ``(c u / 2) exp(c u / 2) = (c / 2) sqrt(j / G)``, solved by :func:`lambert_w`.
    """
    xp = namespace(j, G_film, thickness_nm, permittivity)
    c = poole_frenkel_coefficient(thickness_nm=thickness_nm, permittivity=permittivity, T=T)
    u = 2 / c * lambert_w(c / 2 * xp.sqrt(j / G_film))
    return u**2


def tafel_overpotential(j, *, eta_1, alpha, n=N_MG, T=T_ROOM):
    """Tafel line of a plating reaction, ``eta = eta_1 + ln(j / 1 mA cm-2) / (alpha f)``.

    ``eta_1`` is the overpotential at which 1 mA cm-2 flows: below it the
    current falls tenfold every ``b = ln 10 / (alpha f)`` (the onset), above
    it rises as fast. Valid where ``eta >> RT/F`` (the back reaction is
    negligible), as for plating at hundreds of mV. ``alpha`` in (0, 1):
    ``b >= 29.6 mV/decade`` for n = 2.

    Parameters
    ----------
    j : float, array or tensor
        Current density, mA cm-2 (> 0).
    eta_1 : float, array or tensor
        Overpotential at 1 mA cm-2, V.
    alpha : float, array or tensor
        Transfer coefficient, in (0, 1).
    """
    xp = namespace(j, eta_1, alpha)
    return eta_1 + xp.log(j) / (alpha * _thermal_factor(n, T))


def tafel_slope(alpha, *, n=N_MG, T=T_ROOM):
    """Tafel slope ``b = ln 10 R T / (alpha n F)``, V per decade."""
    return _LN10 / (alpha * _thermal_factor(n, T))


def koutecky_levich_overpotential(j, *, eta_1, alpha, j_L, n=N_MG, T=T_ROOM):
    """Tafel kinetics and a limiting current combined, ``1/j = 1/j_k(eta) + 1/j_L``.

    The kinetic current needed is ``j_k = j j_L / (j_L - j)``, so
    ``eta = tafel_overpotential(j_k)`` = the Tafel line plus
    ``-ln(1 - j/j_L) / (alpha f)``. Smooth below ``j_L``; no overpotential
    can carry ``j >= j_L`` (``+inf`` there, with a finite gradient): a model
    samples ``j_L`` above the largest applied current (``j_L = max(j) + dj``).
    """
    xp = namespace(j, eta_1, alpha, j_L)
    below = j < j_L
    deficit = xp.where(below, 1 - j / j_L, 1.0)
    eta = tafel_overpotential(j, eta_1=eta_1, alpha=alpha, n=n, T=T) - xp.log(deficit) / (alpha * _thermal_factor(n, T))
    return xp.where(below, eta, np.inf)


def _logaddexp(a, b, xp):
    top = xp.maximum(a, b)
    return top + xp.log1p(xp.exp(-xp.abs(a - b)))


def _log_sinh(x, xp):
    """``log(sinh(x))`` for ``x > 0`` (``x`` floored at 1e-10: no current below the onset)."""
    x = xp.maximum(x, 1e-10)
    return x - np.log(2.0) + xp.log1p(-xp.exp(-2 * x))


def _two_channel_logs(eta, eta_on, j_ref, alpha, j_L, eta_side, alpha_side, f):
    """Logs of the kinetic Mg current, the Mg current (Koutecký–Levich saturated), the side current and their sum."""
    xp = namespace(eta, eta_on, j_ref, alpha, j_L, eta_side, alpha_side)
    log_k = xp.log(2 * j_ref) + _log_sinh(alpha * f * (eta - eta_on), xp)
    log_L = xp.log(j_L)
    log_mg = log_k + log_L - _logaddexp(log_k, log_L, xp)
    log_side = alpha_side * f * (eta - eta_side)
    return log_k, log_mg, log_side, _logaddexp(log_mg, log_side, xp)


def two_channel_overpotential(j, *, eta_on, j_ref, alpha, j_L, eta_side, alpha_side, n=N_MG, T=T_ROOM,
                              iterations=32):
    """Overpotential at which Mg deposition and a second process together carry ``j``.

    Current balance ``j = j_Mg(eta) + j_side(eta)`` with
    ``j_Mg = j_k j_L / (j_k + j_L)`` (Koutecký–Levich: Mg deposition
    saturating at the limiting current ``j_L``), its kinetic current the
    onset law ``j_k = 2 j_ref sinh(alpha f (eta - eta_on))`` (none below the
    onset ``eta_on``, Tafel with slope ``ln 10 / (alpha f)`` above a few
    ``j_ref``; the inverse of :func:`onset_tafel_overpotential`), and
    ``j_side = exp(alpha_side f (eta - eta_side))``, a second reduction with
    its own onset (1 mA cm-2 at ``eta_side``). Below ``j_L`` and the side
    onset it is the onset law of Mg; above ``j_L`` the second process carries
    the excess. There is no wall: every ``j > 0`` has one finite ``eta``.

    The sum is increasing in ``eta``; the root is bracketed by the
    overpotentials at which either channel alone carries ``j`` and ``j/2``
    and found by bisection. On PyTensor the bisection carries no gradient
    and one Newton step with a frozen derivative gives the exact
    (implicit-function) gradient.

    Parameters
    ----------
    j : float, array or tensor
        Current density, mA cm-2 (> 0).
    eta_on, j_ref, alpha : float, array or tensor
        Mg deposition: onset overpotential (V), current scale of the onset law
        (mA cm-2) and transfer coefficient in (0, 1).
    j_L : float, array or tensor
        Limiting current of Mg deposition, mA cm-2.
    eta_side, alpha_side : float, array or tensor
        Second process: overpotential at 1 mA cm-2 (V) and transfer coefficient.

    Returns
    -------
    eta : overpotential, V.
    """
    xp = namespace(j, eta_on, j_ref, alpha, j_L, eta_side, alpha_side)
    f = _thermal_factor(n, T)
    frozen = _frozen(xp)
    log_j = xp.log(j)
    c = [frozen(v) for v in (eta_on, j_ref, alpha, j_L, eta_side, alpha_side)]

    def alone(log_target):  # the smaller overpotential at which one channel alone carries exp(log_target)
        side = c[4] + log_target / (c[5] * f)
        below = log_target < xp.log(c[3])
        deficit = xp.where(below, 1 - xp.exp(log_target) / c[3], 1.0)
        log_k = log_target - xp.log(deficit) - xp.log(2 * c[1])
        mg = xp.where(below, c[0] + _asinh_of_exp(log_k, xp) / (c[2] * f), np.inf)
        return xp.minimum(side, mg)

    hi = frozen(alone(log_j))
    lo = frozen(alone(log_j - np.log(2.0)))
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        above = _two_channel_logs(mid, *c, f)[3] > log_j
        hi = xp.where(above, mid, hi)
        lo = xp.where(above, lo, mid)
    root = frozen(0.5 * (lo + hi))
    log_total = _two_channel_logs(root, eta_on, j_ref, alpha, j_L, eta_side, alpha_side, f)[3]
    # d log(j_total) / d eta at the root, from the frozen parameters
    fk, fmg, fside, ftot = _two_channel_logs(root, *c, f)
    x = xp.maximum(c[2] * f * (root - c[0]), 1e-10)
    d_log_k = c[2] * f / xp.tanh(x)
    slope = (xp.exp(fmg - ftot) * d_log_k * xp.exp(xp.log(c[3]) - _logaddexp(fk, xp.log(c[3]), xp))
             + c[5] * f * xp.exp(fside - ftot))
    return root - (log_total - log_j) / frozen(slope)


def two_channel_side_fraction(j, *, eta_on, j_ref, alpha, j_L, eta_side, alpha_side, n=N_MG, T=T_ROOM):
    """Fraction of ``j`` carried by the second process in :func:`two_channel_overpotential`."""
    xp = namespace(j, eta_on, j_ref, alpha, j_L, eta_side, alpha_side)
    kw = dict(eta_on=eta_on, j_ref=j_ref, alpha=alpha, j_L=j_L, eta_side=eta_side, alpha_side=alpha_side)
    eta = two_channel_overpotential(j, **kw, n=n, T=T)
    log_side = _two_channel_logs(eta, *kw.values(), _thermal_factor(n, T))[2]
    return xp.exp(log_side) / j


def sand_time_h(j, *, D_cm2_s, c_M, n=N_MG):
    """Sand time of galvanostatic deposition, ``tau = pi D (n F c)**2 / (4 j**2)``, in hours.

    The time at which the reacting ion's surface concentration reaches zero
    under semi-infinite linear diffusion; after it another process must
    carry the current, and the overpotential jumps.

    Parameters
    ----------
    j : float, array or tensor
        Current density, mA cm-2.
    D_cm2_s : float, array or tensor
        Diffusion coefficient of the ion, cm2 s-1.
    c_M : float, array or tensor
        Bulk concentration, mol L-1.
    """
    j_A_cm2 = j * 1e-3
    c_mol_cm3 = c_M * 1e-3
    return np.pi * D_cm2_s * (n * F * c_mol_cm3) ** 2 / (4 * j_A_cm2**2) / 3600.0
