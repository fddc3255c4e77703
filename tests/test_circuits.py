"""Elements against independent complex formulas; circuits, parser errors, gradients."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from mgbayes.circuits import Circuit
from mgbayes.elements import ELEMENTS
from mgbayes.errors import CircuitError

FREQ = np.logspace(-2, 6, 41)
W = 2 * np.pi * FREQ

# Independent complex-number formulas (textbook forms, numpy complex arithmetic).
REFERENCE = {
    "R1": ({"R1": 120.0}, lambda p: p["R1"] + 0 * W),
    "C1": ({"C1": 2e-6}, lambda p: 1 / (1j * W * p["C1"])),
    "L1": ({"L1": 3e-7}, lambda p: 1j * W * p["L1"]),
    "CPE1": ({"CPE1_T": 1e-5, "CPE1_P": 0.83}, lambda p: 1 / (p["CPE1_T"] * (1j * W) ** p["CPE1_P"])),
    "Q1": ({"Q1_T": 3e-6, "Q1_P": 0.95}, lambda p: 1 / (p["Q1_T"] * (1j * W) ** p["Q1_P"])),
    "W1": ({"W1": 50.0}, lambda p: np.sqrt(2) * p["W1"] / np.sqrt(1j * W)),
    "Wo1": (
        {"Wo1_R": 80.0, "Wo1_T": 0.7},
        lambda p: p["Wo1_R"] / np.tanh(np.sqrt(1j * W * p["Wo1_T"])) / np.sqrt(1j * W * p["Wo1_T"]),
    ),
    "Ws1": (
        {"Ws1_R": 80.0, "Ws1_T": 0.7},
        lambda p: p["Ws1_R"] * np.tanh(np.sqrt(1j * W * p["Ws1_T"])) / np.sqrt(1j * W * p["Ws1_T"]),
    ),
    "G1": ({"G1_R": 40.0, "G1_T": 1e-3}, lambda p: p["G1_R"] / np.sqrt(1 + 1j * W * p["G1_T"])),
}


def test_every_registered_element_has_a_reference():
    tested = {name.rstrip("1") for name in REFERENCE}
    assert set(ELEMENTS) == tested


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_element_matches_complex_formula(name):
    params, formula = REFERENCE[name]
    z = Circuit(name).impedance(FREQ, **params)
    np.testing.assert_allclose(z, formula(params), rtol=1e-10, atol=1e-300)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_element_in_parallel_matches_complex_formula(name):
    """A parallel branch uses the element's own admittance where it states one: the same impedance."""
    params, formula = REFERENCE[name]
    other = {"R9": 75.0}
    z = Circuit(f"p({name},R9)").impedance(FREQ, **params, **other)
    np.testing.assert_allclose(z, 1 / (1 / formula(params) + 1 / other["R9"]), rtol=1e-10, atol=1e-300)


def test_stated_admittances_invert_the_impedance():
    stated = {k.prefix for k in ELEMENTS.values() if k.admittance is not None}
    assert stated == {"R", "C", "L", "CPE"}
    for name, (params, formula) in REFERENCE.items():
        kind = ELEMENTS[name.rstrip("1")]
        if kind.admittance is not None:
            g, b = kind.admittance(W, *(params[n] for n in kind.parameter_names(name)))
            np.testing.assert_allclose(g + 1j * b, 1 / formula(params), rtol=1e-12)


def test_admittance_needs_a_registered_element_once():
    from mgbayes.elements import admittance
    with pytest.raises(CircuitError, match="unknown element type 'K'"):
        admittance("K")(lambda omega, K: (K, 0 * omega))
    with pytest.raises(CircuitError, match="registered twice"):
        admittance("CPE")(lambda omega, T, P: (T, P))


def test_diffusion_elements_stay_finite_at_extreme_frequency():
    z = Circuit("Wo1-Ws1").impedance([1e-9, 1e9], Wo1_R=1, Wo1_T=100, Ws1_R=1, Ws1_T=100)
    assert np.all(np.isfinite(z))
    # open Warburg at very low frequency: capacitive, Z ~ R/(jωτ) + R/3
    w = 2 * np.pi * 1e-9
    np.testing.assert_allclose(z[0].imag, -1 / (w * 100), rtol=1e-6)


def test_randles_circuit_matches_complex_arithmetic():
    p = {"R0": 5.0, "R1": 100.0, "CPE1_T": 2e-5, "CPE1_P": 0.9, "W1": 30.0}
    z = Circuit("R0-p(R1-W1,CPE1)").impedance(FREQ, **p)
    zf = p["R1"] + np.sqrt(2) * p["W1"] / np.sqrt(1j * W)
    zq = 1 / (p["CPE1_T"] * (1j * W) ** p["CPE1_P"])
    np.testing.assert_allclose(z, p["R0"] + 1 / (1 / zf + 1 / zq), rtol=1e-12)


def test_physical_names_and_parameter_order():
    c = Circuit("R_el-p(R_ct,CPE_dl)")
    assert c.parameter_names == ["R_el", "R_ct", "CPE_dl_T", "CPE_dl_P"]
    assert c.units()["CPE_dl_T"] == "F s^(P-1)"
    assert str(c) == "R_el-p(R_ct,CPE_dl)"


def test_impedance_py_syntax_with_spaces_and_nesting():
    c = Circuit("R0 - p(R1, C1) - p(R2-Wo1, CPE2) - L0")
    assert c.parameter_names == ["R0", "R1", "C1", "R2", "Wo1_R", "Wo1_T", "CPE2_T", "CPE2_P", "L0"]


def test_parameters_broadcast_over_time():
    c = Circuit("R0-p(R1,C1)")
    r1 = np.array([[100.0], [200.0], [400.0]])
    z = c.impedance(FREQ, R0=1.0, R1=r1, C1=1e-6)
    assert z.shape == (3, FREQ.size)
    np.testing.assert_allclose(z[2], c.impedance(FREQ, R0=1.0, R1=400.0, C1=1e-6))


@pytest.mark.parametrize(
    "text, position, fragment",
    [
        ("R1-p(R2", 7, "expected ')'"),
        ("X1", 0, "unknown element 'X1'"),
        ("Rct", 0, "unknown element 'Rct'"),
        ("R1-p(R1,C1)", 5, "used twice"),
        ("", None, "empty circuit"),
        ("R1--C1", 3, "expected an element"),
        ("R1-p(C1)", 3, "at least two branches"),
        ("R1-C1)", 5, "expected '-' or end"),
        ("R1+C1", 2, "unexpected character '+'"),
    ],
)
def test_bad_strings_name_position(text, position, fragment):
    with pytest.raises(CircuitError) as err:
        Circuit(text)
    assert fragment in str(err.value)
    if position is not None:
        assert f"position {position}" in str(err.value)


def test_missing_or_unknown_parameters():
    with pytest.raises(CircuitError, match="missing \\['C1'\\]"):
        Circuit("R1-C1").impedance(FREQ, R1=1.0)
    with pytest.raises(CircuitError, match="unknown \\['R9'\\]"):
        Circuit("R1-C1").impedance(FREQ, R1=1.0, C1=1.0, R9=2.0)


CIRCUITS = {
    "R0-p(R1,C1)": {"R0": 10.0, "R1": 1e3, "C1": 1e-6},
    "R_el-p(R_ct,CPE_dl)": {"R_el": 10.0, "R_ct": 1e3, "CPE_dl_T": 1e-5, "CPE_dl_P": 0.85},
    "R0-p(R1,CPE1)-p(R2-Wo1,C2)-L0": {
        "R0": 3.0, "R1": 50.0, "CPE1_T": 1e-4, "CPE1_P": 0.7, "R2": 20.0,
        "Wo1_R": 30.0, "Wo1_T": 0.05, "C2": 1e-3, "L0": 1e-6,
    },
    "p(R1,G1)-Ws1-W1": {"R1": 100.0, "G1_R": 40.0, "G1_T": 1e-3, "Ws1_R": 10.0, "Ws1_T": 0.2, "W1": 5.0},
}


@pytest.mark.parametrize("text", sorted(CIRCUITS))
def test_pytensor_gradient_matches_finite_differences(text):
    circuit, values = Circuit(text), CIRCUITS[text]
    names = circuit.parameter_names
    # differentiate w.r.t. log-parameters so every step is relative
    theta = pt.vector("theta")
    params = {n: pt.exp(theta[i]) for i, n in enumerate(names)}
    re, im = circuit.tensor(FREQ, params)
    scale = np.abs(circuit.impedance(FREQ, **values))
    loss = pt.sum((re / scale) ** 2 + (im / scale) ** 2 + pt.sin(re / scale) * (im / scale))
    f = pytensor.function([theta], loss)
    g = pytensor.function([theta], pt.grad(loss, theta))
    x0 = np.log([values[n] for n in names])
    h = 1e-6
    numeric = np.array([(f(x0 + h * e) - f(x0 - h * e)) / (2 * h) for e in np.eye(len(x0))])
    np.testing.assert_allclose(g(x0), numeric, rtol=1e-5, atol=1e-7)
    # and the tensor graph gives the same impedance as NumPy
    fz = pytensor.function([theta], [re, im])
    zr, zi = fz(x0)
    np.testing.assert_allclose(zr + 1j * zi, circuit.impedance(FREQ, **values), rtol=1e-12)


def test_guesses_are_positive_and_named():
    c = Circuit("R0-p(R1,CPE1)")
    z = c.impedance(FREQ, R0=10, R1=1e3, CPE1_T=1e-5, CPE1_P=0.9)
    g = c.guesses(FREQ, z)
    assert list(g) == c.parameter_names and all(v > 0 for v in g.values())
