"""Kinetic laws: inverses against brentq, limits, NumPy vs PyTensor, gradients."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.gradient import verify_grad
from scipy.optimize import brentq

from mgbayes import kinetics as kin
from mgbayes.constants import E_CHARGE, F, H_PLANCK, M_ELECTRON, R_GAS, T_ROOM

F_RT2 = 2 * F / (R_GAS * T_ROOM)  # n F / R T for Mg2+, 1/V


def _solve(forward, target, hi=10.0):
    """Root of forward(eta) = target on [0, hi] by bracketing, to ~1e-15 V."""
    return brentq(lambda eta: forward(eta) - target, 0.0, hi, xtol=1e-15, rtol=1e-14, maxiter=500)


# --- tunnelling --------------------------------------------------------------

TUNNEL_CASES = [
    (1.0, 0.5, 0.0),
    (0.3, 2.0, 3.0),
    (10.0, 2.0, 3.0),
    (5.0, 0.1, 50.0),
    (0.01, 1.0, 1e-12),  # gamma -> 0: root is j/G0
    (2.0, 1e-3, 1e3),  # high bias: eta ~ (j/(G0 gamma))^(1/3)
]


@pytest.mark.parametrize("j, G0, gamma", TUNNEL_CASES)
def test_tunnelling_overpotential_is_the_root_of_the_cubic(j, G0, gamma):
    expected = _solve(lambda e: kin.tunnelling_current(e, G0=G0, gamma=gamma), j, hi=j / G0 + 1)
    eta = kin.tunnelling_overpotential(j, G0=G0, gamma=gamma)
    assert eta == pytest.approx(expected, rel=1e-10, abs=1e-14)


def test_tunnelling_overpotential_limits():
    j = np.array([1e-3, 1.0, 1e3])
    np.testing.assert_allclose(kin.tunnelling_overpotential(j, G0=2.0, gamma=0.0), j / 2.0, rtol=1e-15)
    # Continuous through gamma = 0 (no 0/0 in the stable form).
    np.testing.assert_allclose(kin.tunnelling_overpotential(j, G0=2.0, gamma=1e-30), j / 2.0, rtol=1e-12)
    big = kin.tunnelling_overpotential(1e9, G0=1.0, gamma=4.0)
    assert big == pytest.approx((1e9 / 4.0) ** (1 / 3), rel=1e-5)
    # Odd: negative current gives the reverse overpotential.
    assert kin.tunnelling_overpotential(-3.0, G0=1.0, gamma=2.0) == pytest.approx(
        -kin.tunnelling_overpotential(3.0, G0=1.0, gamma=2.0)
    )


def test_tunnelling_overpotential_gradient_matches_implicit_derivative():
    # gamma eta^3 + eta = j/G0  =>  d eta/d j = 1/(G0 (1 + 3 gamma eta^2)),
    # d eta/d gamma = -eta^3 / (1 + 3 gamma eta^2), d eta/d G0 = -j/(G0^2 (1 + 3 gamma eta^2)).
    j, G0, gamma = pt.dscalars("j", "G0", "gamma")
    eta = kin.tunnelling_overpotential(j, G0=G0, gamma=gamma)
    fn = pytensor.function([j, G0, gamma], [eta, *pt.grad(eta, [j, G0, gamma])])
    for jv, G0v, gv in [(3.0, 1.5, 2.0), (0.4, 1.0, 1e-8), (100.0, 0.2, 30.0)]:
        e, dj, dG0, dg = fn(jv, G0v, gv)
        denom = 1 + 3 * gv * e**2
        assert dj == pytest.approx(1 / (G0v * denom), rel=1e-7)
        assert dG0 == pytest.approx(-jv / (G0v**2 * denom), rel=1e-7)
        assert dg == pytest.approx(-(e**3) / denom, rel=1e-6)


# --- full Simmons expression ------------------------------------------------------


def _A(thickness_nm):
    return 4 * np.pi * thickness_nm * 1e-9 * np.sqrt(2 * M_ELECTRON) / H_PLANCK


@pytest.mark.parametrize("barrier_eV, thickness_nm", [(1.0, 1.0), (2.5, 1.5), (0.6, 2.0)])
def test_simmons_small_bias_is_linear_with_the_textbook_conductance(barrier_eV, thickness_nm):
    G0, _ = kin.simmons_cubic_parameters(barrier_eV=barrier_eV, thickness_nm=thickness_nm)
    V = 1e-5
    # Numerical slope at zero bias (central difference; the law is odd in V).
    slope = (kin.simmons_full_current(V, barrier_eV=barrier_eV, thickness_nm=thickness_nm)
             - kin.simmons_full_current(-V, barrier_eV=barrier_eV, thickness_nm=thickness_nm)) / (2 * V)
    assert slope == pytest.approx(G0, rel=1e-6)
    assert kin.simmons_full_current(0.0, barrier_eV=barrier_eV, thickness_nm=thickness_nm) == 0.0
    # Textbook low-bias law for a thick barrier, J = (e/h)^2 sqrt(2 m phi)/d V exp(-A sqrt(phi)),
    # in mA cm-2 (x 0.1 from A m-2); the exact slope differs by the factor (1 - 2/a).
    phi = barrier_eV * E_CHARGE
    a = _A(thickness_nm) * np.sqrt(phi)
    textbook = 0.1 * (E_CHARGE / H_PLANCK) ** 2 * np.sqrt(2 * M_ELECTRON * phi) / (thickness_nm * 1e-9) * np.exp(-a)
    assert G0 == pytest.approx(textbook * (1 - 2 / a), rel=1e-9)


@pytest.mark.parametrize("barrier_eV, thickness_nm", [(1.0, 1.0), (2.5, 1.5), (0.6, 2.0)])
def test_simmons_cubic_coefficient_matches_the_full_expression(barrier_eV, thickness_nm):
    kw = dict(barrier_eV=barrier_eV, thickness_nm=thickness_nm, area_factor=0.3)
    G0, gamma = kin.simmons_cubic_parameters(**kw)

    def ratio(V):  # (J / (G0 V) - 1) / V^2 = gamma + O(V^2)
        return (kin.simmons_full_current(V, **kw) / (G0 * V) - 1) / V**2

    V = 2e-3
    richardson = (4 * ratio(V) - ratio(2 * V)) / 3
    assert gamma == pytest.approx(richardson, rel=1e-5)
    # Leading term (A e)^2 / (96 phi) for a thick barrier, correction O(1/a).
    phi = barrier_eV * E_CHARGE
    a = _A(thickness_nm) * np.sqrt(phi)
    leading = (_A(thickness_nm) * E_CHARGE) ** 2 / (96 * phi)
    assert abs(gamma / leading - 1) < 2 / a
    # The cubic law misses the full form by O(V^5): relative error ~ V^4.
    error = lambda V: kin.tunnelling_current(V, G0=G0, gamma=gamma) / kin.simmons_full_current(V, **kw) - 1
    V = 0.05 * barrier_eV
    assert 14 < error(V) / error(V / 2) < 18
    assert abs(error(2 * V)) < 0.01


# --- charge transfer ------------------------------------------------------------


@pytest.mark.parametrize("j, j0, alpha", [(0.3, 1e-3, 0.5), (10.0, 0.05, 0.3), (1e-4, 1.0, 0.7), (3.0, 3.0, 0.5)])
def test_bv_overpotential_inverts_symmetric_butler_volmer(j, j0, alpha):
    forward = lambda eta: kin.butler_volmer_current(eta, j0=j0, alpha_a=alpha, alpha_c=alpha)
    assert kin.bv_overpotential(j, j0=j0, alpha=alpha) == pytest.approx(_solve(forward, j), rel=1e-10)


def test_butler_volmer_limits():
    j0, aa, ac = 0.02, 0.3, 0.7
    eta = 1e-9
    lin = kin.butler_volmer_current(eta, j0=j0, alpha_a=aa, alpha_c=ac)
    assert lin == pytest.approx(j0 * (aa + ac) * F_RT2 * eta, rel=1e-6)
    eta = 0.6
    tafel = kin.butler_volmer_current(eta, j0=j0, alpha_a=aa, alpha_c=ac)
    assert tafel == pytest.approx(j0 * np.exp(aa * F_RT2 * eta), rel=1e-8)
    # Reverse direction uses the other coefficient.
    assert kin.butler_volmer_current(-eta, j0=j0, alpha_a=aa, alpha_c=ac) == pytest.approx(
        -j0 * np.exp(ac * F_RT2 * eta), rel=1e-8
    )


@pytest.mark.parametrize("j", [1e-4, 0.3, 1.0, 3.0, 10.0, 1e3])
def test_onset_tafel_inverse_against_brentq(j):
    kw = dict(eta_on=0.45, b=0.04, j_ref=0.05)
    forward = lambda eta: kin.onset_tafel_current(eta, **kw)
    assert kin.onset_tafel_overpotential(j, **kw) == pytest.approx(_solve(forward, j), rel=1e-10)


def test_onset_tafel_shape():
    kw = dict(eta_on=0.45, b=0.04, j_ref=0.05)
    assert kin.onset_tafel_overpotential(0.0, **kw) == pytest.approx(0.45)
    j = np.array([10.0, 100.0, 1000.0])  # >> j_ref: asinh(x) = ln(2x) + O(1/x^2)
    eta = kin.onset_tafel_overpotential(j, **kw)
    np.testing.assert_allclose(np.diff(eta), 0.04, rtol=1e-4)  # b per decade
    np.testing.assert_allclose(eta, 0.45 + 0.04 * np.log10(j / 0.05), atol=1e-6)  # Tafel line
    # Little current below the onset.
    assert kin.onset_tafel_current(0.40, **kw) < 0
    assert kin.onset_tafel_current(0.45 + 0.02, **kw) < 0.1 * kin.onset_tafel_current(0.45 + 0.08, **kw)


# --- mass transport ----------------------------------------------------------------


@pytest.mark.parametrize("j", [1e-6, 0.5, 5.0, 9.9, 9.99999])
def test_mass_transport_against_brentq(j):
    j_lim = 10.0
    # Nernst with a linear concentration profile: c_s/c_b = exp(-nF eta/RT) = 1 - j/j_lim.
    forward = lambda eta: j_lim * (1 - np.exp(-F_RT2 * eta))
    assert kin.mass_transport_overpotential(j, j_lim=j_lim) == pytest.approx(_solve(forward, j, hi=5), rel=1e-9)
    assert kin.mass_transport_current(kin.mass_transport_overpotential(j, j_lim=j_lim), j_lim=j_lim) == pytest.approx(j, rel=1e-9)


def test_mass_transport_beyond_the_limit_is_infinite_on_both_backends():
    j = np.array([1.0, 10.0, 12.0])
    eta = kin.mass_transport_overpotential(j, j_lim=10.0)
    assert np.isfinite(eta[0]) and np.isposinf(eta[1:]).all()
    jt, jl = pt.dvector("j"), pt.dscalar("j_lim")
    eta_t = kin.mass_transport_overpotential(jt, j_lim=jl)
    fn = pytensor.function([jt, jl], [eta_t, pt.grad(eta_t[0] + eta_t[2], jl)])
    value, grad = fn(j, 10.0)
    np.testing.assert_array_equal(value, eta)
    assert np.isfinite(grad)  # the infinite branch does not poison the gradient


def test_series_adds_overpotentials_with_broadcasting():
    j = np.array([0.3, 1.0, 3.0, 10.0])
    tun = kin.tunnelling_overpotential(j, G0=2.0, gamma=5.0)
    mt = kin.mass_transport_overpotential(j, j_lim=np.array([[20.0], [40.0]]))
    total = kin.series(tun, mt)
    assert total.shape == (2, 4)
    np.testing.assert_allclose(total, tun + mt)
    assert kin.series(tun) is tun
    with pytest.raises(TypeError):
        kin.series()


# --- both backends, gradients ----------------------------------------------------------

# (function, argument names, values): the first argument is positional.
LAWS = [
    (kin.tunnelling_current, ["eta", "G0", "gamma"], [0.4, 2.0, 3.0]),
    (kin.tunnelling_overpotential, ["j", "G0", "gamma"], [3.0, 2.0, 3.0]),
    (kin.tunnelling_overpotential, ["j", "G0", "gamma"], [3.0, 2.0, 1e-9]),
    (kin.simmons_full_current, ["eta", "barrier_eV", "thickness_nm", "area_factor"], [0.3, 1.2, 1.0, 0.5]),
    (kin.butler_volmer_current, ["eta", "j0", "alpha_a", "alpha_c"], [0.05, 0.2, 0.4, 0.6]),
    (kin.bv_overpotential, ["j", "j0", "alpha"], [3.0, 0.1, 0.5]),
    (kin.onset_tafel_overpotential, ["j", "eta_on", "b", "j_ref"], [3.0, 0.45, 0.04, 0.05]),
    (kin.onset_tafel_current, ["eta", "eta_on", "b", "j_ref"], [0.5, 0.45, 0.04, 0.05]),
    (kin.mass_transport_overpotential, ["j", "j_lim"], [3.0, 10.0]),
    (kin.mass_transport_current, ["eta", "j_lim"], [0.01, 10.0]),
    (kin.simmons_overpotential, ["j", "barrier_eV", "thickness_nm"], [3.0, 0.12, 7.5]),
    (kin.poole_frenkel_current, ["eta", "G_film", "thickness_nm", "permittivity"], [0.3, 0.1, 8.0, 6.0]),
    (kin.poole_frenkel_overpotential, ["j", "G_film", "thickness_nm", "permittivity"], [3.0, 0.1, 8.0, 6.0]),
    (kin.tafel_overpotential, ["j", "eta_1", "alpha"], [3.0, 0.55, 0.7]),
    (kin.koutecky_levich_overpotential, ["j", "eta_1", "alpha", "j_L"], [3.0, 0.55, 0.7, 12.0]),
    (kin.two_channel_overpotential, ["j", "eta_on", "j_ref", "alpha", "j_L", "eta_side", "alpha_side"],
     [3.0, 0.5, 0.3, 0.8, 4.0, 0.78, 0.5]),
    (kin.lambert_w, ["z"], [5.0]),
]


def _call(law, names, args):
    return law(args[0], **dict(zip(names[1:], args[1:])))


@pytest.mark.parametrize("law, names, values", LAWS, ids=lambda x: getattr(x, "__name__", None))
def test_pytensor_matches_numpy(law, names, values):
    # A vector first argument (a curve) and scalar parameters.
    first = np.array([0.5, 1.0, 1.5]) * values[0]
    symbols = [pt.dvector(names[0])] + [pt.dscalar(n) for n in names[1:]]
    fn = pytensor.function(symbols, _call(law, names, symbols))
    np.testing.assert_allclose(fn(first, *values[1:]), _call(law, names, [first, *values[1:]]), rtol=1e-12)


@pytest.mark.parametrize("law, names, values", LAWS, ids=lambda x: getattr(x, "__name__", None))
def test_gradients_match_finite_differences(law, names, values):
    point = [np.asarray(v, dtype="float64") for v in values]
    # Small relative steps: simmons_full_current varies on the scale of 1e-2 nm.
    verify_grad(lambda *args: _call(law, names, args), point, rng=np.random.default_rng(1), eps=1e-7, rel_tol=1e-5, abs_tol=1e-8)


def test_verify_grad_would_catch_a_wrong_gradient():
    # Guard that the gradient check above can fail: a law with a broken gradient.
    from pytensor.gradient import disconnected_grad

    broken = lambda j, G0: j / disconnected_grad(G0)
    with pytest.raises(Exception):
        verify_grad(broken, [np.asarray(3.0), np.asarray(2.0)], rng=np.random.default_rng(1), eps=1e-7)


# --- laws from film physics and current balance ------------------------------------------

SIMMONS = [(0.3, 0.12, 7.0), (3.0, 0.2, 8.0), (10.0, 0.1, 10.0), (1.0, 1.0, 2.0)]


@pytest.mark.parametrize("j, barrier, d", SIMMONS)
def test_simmons_overpotential_is_the_root_of_the_cubic_from_physics(j, barrier, d):
    G0, gamma = kin.simmons_cubic_parameters(barrier_eV=barrier, thickness_nm=d)
    np.testing.assert_allclose(np.exp(kin.simmons_log_conductance(barrier_eV=barrier, thickness_nm=d)), G0, rtol=1e-12)
    np.testing.assert_allclose(kin.simmons_gamma(barrier_eV=barrier, thickness_nm=d), gamma, rtol=1e-12)
    eta = kin.simmons_overpotential(j, barrier_eV=barrier, thickness_nm=d)
    expected = brentq(lambda e: kin.tunnelling_current(e, G0=G0, gamma=gamma) - j, 0.0, 1e3, xtol=1e-14, rtol=1e-13)
    assert eta == pytest.approx(expected, rel=1e-9)


def test_simmons_thick_film_needs_a_low_barrier():
    """7 nm at 1 eV: R_e ~ 1e22 Ohm cm2 and an absurd voltage; ~0.1 eV passes mA at < 1 V."""
    R_e = 1e3 * np.exp(-kin.simmons_log_conductance(barrier_eV=1.0, thickness_nm=7.0))  # Ohm cm2
    assert R_e > 1e20
    assert kin.simmons_overpotential(1.0, barrier_eV=1.0, thickness_nm=7.0) > 1e3
    assert np.isfinite(kin.simmons_overpotential(1.0, barrier_eV=4.0, thickness_nm=10.0))
    assert kin.simmons_overpotential(1.0, barrier_eV=0.12, thickness_nm=7.0) < 1.0


@pytest.mark.parametrize("j", [1e-3, 0.3, 3.0, 30.0])
def test_poole_frenkel_overpotential_against_brentq(j):
    kw = dict(G_film=0.1, thickness_nm=8.0, permittivity=6.0)
    eta = kin.poole_frenkel_overpotential(j, **kw)
    assert eta == pytest.approx(_solve(lambda e: kin.poole_frenkel_current(e, **kw), j, hi=50.0), rel=1e-9)
    # c from physics: (e / kT) sqrt(e / (pi eps eps0 d))
    c = E_CHARGE / (R_GAS / 6.02214076e23 * T_ROOM) * np.sqrt(E_CHARGE / (np.pi * 6.0 * 8.854e-12 * 8e-9))
    assert kin.poole_frenkel_coefficient(thickness_nm=8.0, permittivity=6.0) == pytest.approx(c, rel=1e-12)


def test_lambert_w_against_scipy():
    from scipy.special import lambertw

    z = np.concatenate([[0.0, 5e-324], np.logspace(-300, 300, 60001)])
    np.testing.assert_allclose(kin.lambert_w(z), lambertw(z).real, rtol=1e-15, atol=0)
    symbol = pt.dvector("z")
    on_pytensor = pytensor.function([symbol], kin.lambert_w(symbol))(z)
    np.testing.assert_allclose(on_pytensor, lambertw(z).real, rtol=1e-15, atol=0)


def test_tafel_slope_has_the_physical_minimum():
    assert 1000 * kin.tafel_slope(1.0) == pytest.approx(29.58, abs=0.01)  # 2.303 RT / 2F
    assert kin.tafel_overpotential(10.0, eta_1=0.5, alpha=1.0) - 0.5 == pytest.approx(kin.tafel_slope(1.0))


@pytest.mark.parametrize("j", [0.3, 3.0, 9.0, 9.999])
def test_koutecky_levich_against_brentq(j):
    kw = dict(eta_1=0.55, alpha=0.6, j_L=10.0)
    f = 0.6 * F_RT2

    def current(eta):  # 1/j = 1/j_k + 1/j_L
        j_k = np.exp(f * (eta - 0.55))
        return 1 / (1 / j_k + 1 / 10.0)

    eta = kin.koutecky_levich_overpotential(j, **kw)
    assert eta == pytest.approx(_solve(current, j, hi=3.0), rel=1e-9)
    assert np.isposinf(kin.koutecky_levich_overpotential(10.0, **kw))


TWO = dict(eta_on=0.5, j_ref=0.3, alpha=0.8, j_L=4.0, eta_side=0.78, alpha_side=0.5)


def _two_channel_current(eta, eta_on, j_ref, alpha, j_L, eta_side, alpha_side):
    j_k = 2 * j_ref * np.sinh(max(alpha * F_RT2 * (eta - eta_on), 0.0))
    return j_k * j_L / (j_k + j_L) + np.exp(alpha_side * F_RT2 * (eta - eta_side))


@pytest.mark.parametrize("j", [1e-3, 0.3, 3.0, 3.99, 4.0, 10.0, 100.0])
def test_two_channel_is_the_root_of_the_current_balance(j):
    eta = kin.two_channel_overpotential(j, **TWO)
    assert eta == pytest.approx(_solve(lambda e: _two_channel_current(e, **TWO), j, hi=3.0), abs=1e-12)
    side = kin.two_channel_side_fraction(j, **TWO)
    assert 0 <= side <= 1


def test_two_channel_limits():
    j = np.array([0.3, 1.0, 3.0, 10.0, 30.0])
    eta = kin.two_channel_overpotential(j, **TWO)
    # far below j_L and the side onset: the onset law of Mg
    b = kin.tafel_slope(0.8)
    assert eta[0] == pytest.approx(kin.onset_tafel_overpotential(0.3, eta_on=0.5, b=b, j_ref=0.3), abs=2e-3)
    # above j_L the second process carries the excess: the jump
    assert eta[3] - eta[2] > 0.2
    side = kin.two_channel_side_fraction(j, **TWO)
    assert side[0] < 1e-3 and side[-1] == pytest.approx((30 - 4) / 30, rel=1e-3)
    # the solution is smooth and increasing on both backends
    assert np.all(np.diff(eta) > 0)
    jt = pt.dvector("j")
    fn = pytensor.function([jt], kin.two_channel_overpotential(jt, **TWO))
    np.testing.assert_allclose(fn(j), eta, rtol=1e-9)  # compiled log1p/exp round differently


def test_sand_time():
    # tau = pi D (n F c)^2 / (4 j^2): D = 1e-5 cm2/s, c = 0.4 M, j = 10 mA cm-2
    tau_s = np.pi * 1e-5 * (2 * F * 0.4e-3) ** 2 / (4 * 0.01**2)
    assert kin.sand_time_h(10.0, D_cm2_s=1e-5, c_M=0.4) == pytest.approx(tau_s / 3600, rel=1e-12)
    assert kin.sand_time_h(1.0, D_cm2_s=1e-5, c_M=0.4) == pytest.approx(100 * tau_s / 3600, rel=1e-12)
