"""Derived quantities against independent computations and the paper's numbers."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
import xarray as xr
from scipy.optimize import minimize_scalar

from mgbayes.constants import EPS0
from mgbayes.derived import (
    capacitance_from_thickness,
    cpe_capacitance,
    cpe_coefficient,
    parallel,
    peak_frequency,
    permittivity_from_capacitance,
    thickness_from_capacitance,
    time_constant,
)
from mgbayes.errors import DataError


def _peak_of_r_cpe(R, T, P):
    """Frequency of max -Im Z of R‖CPE, found numerically on the complex formula."""

    def minus_imag(log_f):
        z_cpe = 1 / (T * (2j * np.pi * 10**log_f) ** P)
        return (R * z_cpe / (R + z_cpe)).imag  # -(-Im Z)

    result = minimize_scalar(minus_imag, bounds=(-8, 8), method="bounded", options={"xatol": 1e-10})
    return 10**result.x


@pytest.mark.parametrize("R, T, P", [(4e4, 2e-5, 0.9), (120.0, 5e-6, 0.75), (1e6, 1.7e-5, 1.0)])
def test_peak_frequency_and_capacitance_match_the_arc_top(R, T, P):
    f_peak = _peak_of_r_cpe(R, T, P)
    assert peak_frequency(R, T, P) == pytest.approx(f_peak, rel=1e-6)
    # At the top of an RC-like arc omega R C = 1: this defines the Hsu-Mansfeld C.
    assert cpe_capacitance(R, T, P) == pytest.approx(1 / (2 * np.pi * f_peak * R), rel=1e-6)


def test_ideal_capacitor_limit_and_time_constant_identity():
    assert cpe_capacitance(300.0, 2e-5, 1.0) == pytest.approx(2e-5)
    R, T, P = 4e4, 2e-5, 0.85
    C = cpe_capacitance(R, T, P)
    assert time_constant(R, C) == pytest.approx(1 / (2 * np.pi * peak_frequency(R, T, P)))
    assert time_constant(R, C) == pytest.approx((R * T) ** (1 / P))


@pytest.mark.parametrize("R, T, P", [(4e4, 2e-5, 0.9), (120.0, 5e-6, 0.75), (1e6, 1.7e-5, 1.0)])
def test_cpe_coefficient_inverts_the_capacitance(R, T, P):
    C = cpe_capacitance(R, T, P)
    assert cpe_coefficient(C, R, P) == pytest.approx(T, rel=1e-12)
    assert cpe_coefficient(C, R, P) == pytest.approx(C**P * R ** (P - 1), rel=1e-12)
    Cs, Rs, Ps = pt.dscalar("C"), pt.dscalar("R"), pt.dscalar("P")
    assert pytensor.function([Cs, Rs, Ps], cpe_coefficient(Cs, Rs, Ps))(C, R, P) == pytest.approx(T, rel=1e-12)
    draws = cpe_coefficient(_draws(C, 0), _draws(R, 1), P)
    assert draws.dims == ("chain", "draw")
    with pytest.raises(DataError, match="C must be positive"):
        cpe_coefficient(-C, R, P)


def test_paper_thickness_from_mg_and_li_capacitance():
    # docs/physics.md: eps = 10 gives 0.5 nm (Mg, 17 uF/cm2) and 2 nm (Li, 4 uF/cm2).
    assert thickness_from_capacitance(17e-6, permittivity=10) * 1e9 == pytest.approx(0.52, abs=0.01)
    assert thickness_from_capacitance(4e-6, permittivity=10) * 1e9 == pytest.approx(2.2, abs=0.05)


def test_paper_tension_permittivity_from_tem_thickness():
    # 17-36 uF/cm2 with 7-10 nm gives eps ~ 130-400 (docs/physics.md).
    assert permittivity_from_capacitance(17e-6, thickness=7e-9) == pytest.approx(134, rel=0.01)
    assert permittivity_from_capacitance(36e-6, thickness=10e-9) == pytest.approx(407, rel=0.01)
    # ...and eps 4.8-6.9 would need ~0.6 uF/cm2.
    assert capacitance_from_thickness(7e-9, permittivity=4.8) == pytest.approx(0.61e-6, rel=0.01)


def test_thickness_permittivity_capacitance_round_trip():
    C = capacitance_from_thickness(8e-9, permittivity=6.0)
    assert C == pytest.approx(6.0 * EPS0 / 8e-9 * 1e-4)
    assert thickness_from_capacitance(C, permittivity=6.0) == pytest.approx(8e-9)
    assert permittivity_from_capacitance(C, thickness=8e-9) == pytest.approx(6.0)


def test_parallel_film_paths():
    assert parallel(3.0, 6.0) == pytest.approx(2.0)
    assert parallel(4e5, np.inf) == pytest.approx(4e5)  # insulating electronic path
    assert parallel(2.0, 2.0, 2.0) == pytest.approx(2 / 3)
    # Electronic path of a few kOhm cm2 caps the film resistance (docs/physics.md).
    assert parallel(4e5, 4e3) < 4e3


def _draws(values, seed):
    rng = np.random.default_rng(seed)
    data = np.asarray(values) * np.exp(0.05 * rng.standard_normal((4, 250)))
    return xr.DataArray(data, dims=("chain", "draw"), coords={"chain": range(4), "draw": range(250)})


def test_posterior_draws_keep_dims_and_match_numpy():
    R, T = _draws(4e4, 0), _draws(2e-5, 1)
    P = xr.DataArray(np.clip(_draws(0.9, 2).values, 0, 1), dims=("chain", "draw"))
    C = cpe_capacitance(R, T, P)
    assert isinstance(C, xr.DataArray) and C.dims == ("chain", "draw")
    np.testing.assert_allclose(C.values, cpe_capacitance(R.values, T.values, P.values))
    d = thickness_from_capacitance(C, permittivity=10)
    assert d.dims == ("chain", "draw")
    f = peak_frequency(R, T, P)
    np.testing.assert_allclose(f.values, 1 / (2 * np.pi * time_constant(R, C).values))
    assert parallel(R, _draws(4e3, 3)).dims == ("chain", "draw")


def test_pytensor_inputs_give_the_same_numbers():
    R, T, P = pt.dscalar("R"), pt.dscalar("T"), pt.dscalar("P")
    fn = pytensor.function([R, T, P], [cpe_capacitance(R, T, P), peak_frequency(R, T, P)])
    C, f = fn(4e4, 2e-5, 0.9)
    assert C == pytest.approx(cpe_capacitance(4e4, 2e-5, 0.9))
    assert f == pytest.approx(peak_frequency(4e4, 2e-5, 0.9))


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: cpe_capacitance(-1.0, 2e-5, 0.9), "R"),
        (lambda: cpe_capacitance(1.0, 0.0, 0.9), "T"),
        (lambda: cpe_capacitance(1.0, 2e-5, 1.2), "P"),
        (lambda: peak_frequency(1.0, 2e-5, np.array([0.9, -0.1])), "P"),
        (lambda: thickness_from_capacitance(np.array([1e-5, 0.0]), permittivity=10), "C"),
        (lambda: thickness_from_capacitance(1e-5, permittivity=-3), "permittivity"),
        (lambda: permittivity_from_capacitance(1e-5, thickness=0), "thickness"),
        (lambda: parallel(1.0, -2.0), "resistance 2"),
        (lambda: cpe_capacitance(_draws(-1.0, 0), 2e-5, 0.9), "R"),
    ],
)
def test_non_positive_inputs_name_the_argument(call, name):
    with pytest.raises(DataError, match=f"^{name} must be"):
        call()


def test_parallel_needs_two():
    with pytest.raises(DataError, match="at least two"):
        parallel(3.0)
