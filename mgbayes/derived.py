"""Physical quantities derived from fitted parameters.

Every function is plain arithmetic, so it works element-wise on Python
floats, NumPy arrays, xarray DataArrays of posterior draws (dims such as
``(chain, draw)`` are kept) and PyTensor tensors (for ``pm.Deterministic``).

Inputs that must be positive are checked on numbers and arrays, and a
:class:`~mgbayes.errors.DataError` names the argument; NaN draws are passed
through unchecked, and symbolic tensors are not checked.

Units
-----
Impedance parameters are used in whatever consistent units come in; with
area-normalised fits (R in Ohm cm2, CPE ``T`` in F s^(P-1) cm-2) the
capacitance comes out in F cm-2, which is the unit the thickness and
permittivity functions take. Thicknesses are in metres (multiply by 1e9 for
nm).
"""

import numpy as np

from .backend import is_tensor, namespace
from .constants import EPS0
from .errors import DataError

# 1 F cm-2 = 1e4 F m-2.
_CM2_PER_M2 = 1e4


def _check_positive(name, value, *, upper=None):
    """Raise DataError if a numeric ``value`` has entries <= 0 (or > upper)."""
    if is_tensor(value):
        return
    array = np.asarray(value, dtype=float)
    bad = array <= 0 if upper is None else (array <= 0) | (array > upper)
    if np.any(bad):
        allowed = "positive" if upper is None else f"in (0, {upper:g}]"
        shown = array[bad].ravel()[0]
        raise DataError(
            f"{name} must be {allowed}; got {np.count_nonzero(bad)} value(s) "
            f"outside that range, e.g. {shown!r}."
        )


def cpe_capacitance(R, T, P):
    """Equivalent capacitance of an R‖CPE arc (Hsu–Mansfeld, docs/physics.md, Eq. 1).

    ``C = T**(1/P) * R**((1 - P)/P)``; for ``P = 1`` it is ``T``.

    Parameters
    ----------
    R : float, array_like or DataArray
        Resistance in parallel with the CPE, e.g. in Ohm cm2.
    T : float, array_like or DataArray
        CPE coefficient, ``Z_CPE = 1 / (T (j omega)**P)``, e.g. in
        F s^(P-1) cm-2.
    P : float, array_like or DataArray
        CPE exponent, in (0, 1].

    Returns
    -------
    C : same type as the inputs
        Capacitance; F cm-2 for the units above (F for Ohm and F s^(P-1)).
    """
    _check_positive("R", R)
    _check_positive("T", T)
    _check_positive("P", P, upper=1.0)
    return T ** (1 / P) * R ** ((1 - P) / P)


def cpe_coefficient(C, R, P):
    """CPE coefficient of an R‖CPE arc whose capacitance is ``C``: :func:`cpe_capacitance` solved for ``T``.

    ``T = C**P * R**(P - 1)``, evaluated as ``exp(P log C + (P - 1) log R)``:
    one exponential per point instead of two powers, which matters where
    ``R`` drifts and ``T`` is evaluated at every measured point (the OCV
    hypotheses keep ``C`` constant while ``R(t)`` changes).

    Parameters
    ----------
    C : float, array_like, DataArray or tensor
        Capacitance, e.g. in F cm-2.
    R, P : float, array_like, DataArray or tensor
        As in :func:`cpe_capacitance`.

    Returns
    -------
    T : same type as the inputs
        CPE coefficient, F s^(P-1) cm-2 for the units above.
    """
    _check_positive("C", C)
    _check_positive("R", R)
    _check_positive("P", P, upper=1.0)
    xp = namespace(C, R, P)
    return xp.exp(P * xp.log(C) + (P - 1) * xp.log(R))


def peak_frequency(R, T, P):
    """Frequency of the top of an R‖CPE arc, ``1 / (2 pi (R T)**(1/P))``.

    Parameters
    ----------
    R, T, P : float, array_like or DataArray
        As in :func:`cpe_capacitance`; ``R T`` must be in s^P (Ohm cm2 with
        F s^(P-1) cm-2, or Ohm with F s^(P-1)).

    Returns
    -------
    f_peak : same type as the inputs
        Frequency in Hz where ``-Im Z`` of the arc is largest.
    """
    _check_positive("R", R)
    _check_positive("T", T)
    _check_positive("P", P, upper=1.0)
    return 1 / (2 * np.pi * (R * T) ** (1 / P))


def time_constant(R, C):
    """Time constant ``R C`` of an RC arc, in s for Ohm and F (or Ohm cm2 and F cm-2).

    For an R‖CPE arc pass ``C = cpe_capacitance(R, T, P)``: then
    ``R C = (R T)**(1/P) = 1 / (2 pi f_peak)``.
    """
    _check_positive("R", R)
    _check_positive("C", C)
    return R * C


def parallel(*resistances):
    """Resistance of resistors in parallel, ``1 / sum(1 / R_i)``.

    Used for a surface film whose ionic and electronic paths conduct side
    by side: ``R_film = parallel(R_ion, R_e)``. An infinite resistance (an
    insulating path) drops out.

    Parameters
    ----------
    *resistances : float, array_like or DataArray
        Two or more positive resistances in the same unit.
    """
    if len(resistances) < 2:
        raise DataError(f"parallel() needs at least two resistances; got {len(resistances)}.")
    conductance = 0
    for i, R in enumerate(resistances, start=1):
        _check_positive(f"resistance {i}", R)
        conductance = conductance + 1 / R
    return 1 / conductance


def thickness_from_capacitance(C, *, permittivity):
    """Thickness of a parallel-plate dielectric layer, ``d = eps eps0 / C``.

    Parameters
    ----------
    C : float, array_like or DataArray
        Area-specific capacitance in F cm-2 (e.g. 17e-6 for 17 µF cm-2).
    permittivity : float, array_like or DataArray
        Relative permittivity of the layer [1].

    Returns
    -------
    d : same type as the inputs
        Thickness in metres (1e-9 m = 1 nm). With ``permittivity=10`` and
        17 µF cm-2 it is about 0.5 nm.
    """
    _check_positive("C", C)
    _check_positive("permittivity", permittivity)
    return permittivity * EPS0 / (C * _CM2_PER_M2)


def permittivity_from_capacitance(C, *, thickness):
    """Relative permittivity of a layer of known thickness, ``eps = C d / eps0``.

    Parameters
    ----------
    C : float, array_like or DataArray
        Area-specific capacitance in F cm-2.
    thickness : float, array_like or DataArray
        Layer thickness in metres.

    Returns
    -------
    permittivity : same type as the inputs
        Relative permittivity [1].
    """
    _check_positive("C", C)
    _check_positive("thickness", thickness)
    return C * _CM2_PER_M2 * thickness / EPS0


def capacitance_from_thickness(thickness, *, permittivity):
    """Area-specific capacitance of a dielectric layer, ``C = eps eps0 / d``.

    Parameters
    ----------
    thickness : float, array_like or DataArray
        Layer thickness in metres.
    permittivity : float, array_like or DataArray
        Relative permittivity [1].

    Returns
    -------
    C : same type as the inputs
        Capacitance in F cm-2 (a 7 nm film with eps = 10 gives about
        1.3 µF cm-2).
    """
    _check_positive("thickness", thickness)
    _check_positive("permittivity", permittivity)
    return permittivity * EPS0 / thickness / _CM2_PER_M2
