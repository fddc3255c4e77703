"""Spectrum, SpectrumSeries, IVCurve and Transient: validation, units, ordering."""

import warnings
from datetime import datetime

import numpy as np
import pytest

from mgbayes.data import DataWarning, IVCurve, Spectrum, SpectrumSeries, Transient
from mgbayes.errors import DataError

FREQ = np.logspace(5, -1, 13)


def rc_arc(frequency, r0=20.0, r=500.0, c=2e-6):
    """R0 + R || C: a capacitive arc, negative imaginary part."""
    return r0 + r / (1 + 2j * np.pi * frequency * r * c)


def spectrum(**changes):
    fields = {"frequency": FREQ, "impedance": rc_arc(FREQ)}
    fields.update(changes)
    return Spectrum(**fields)


# --- Spectrum ---------------------------------------------------------------------------


def test_spectrum_coerces_copies_and_freezes_arrays():
    freq = list(FREQ)
    s = spectrum(frequency=freq)
    assert s.frequency.dtype == np.float64 and s.impedance.dtype == np.complex128
    assert not s.frequency.flags.writeable and not s.impedance.flags.writeable
    freq[0] = 1.0
    assert s.frequency[0] == FREQ[0]
    with pytest.raises(ValueError):
        s.impedance[0] = 0


def test_spectrum_properties():
    s = spectrum()
    assert s.n_points == len(s) == 13
    np.testing.assert_allclose(s.omega, 2 * np.pi * FREQ)
    assert s.impedance_unit == "Ohm"
    np.testing.assert_array_equal(s.impedance_area, s.impedance)
    a = s.with_(area_cm2=1.13)
    assert a.impedance_unit == "Ohm cm2"
    np.testing.assert_allclose(a.impedance_area, s.impedance * 1.13)
    assert s.area_cm2 is None  # with_ returns a copy


def test_spectrum_sorted_keeps_pairs():
    order = np.array([3, 0, 7, 1, 12, 5, 2, 4, 6, 8, 9, 10, 11])
    s = spectrum(frequency=FREQ[order], impedance=rc_arc(FREQ)[order])
    up = s.sorted(descending=False)
    assert np.all(np.diff(up.frequency) > 0)
    np.testing.assert_allclose(up.impedance, rc_arc(up.frequency))
    assert np.all(np.diff(s.sorted().frequency) < 0)
    np.testing.assert_array_equal(s.frequency, FREQ[order])  # file order kept


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"frequency": np.r_[FREQ[:4], np.nan, FREQ[5:]]}, ["array input", "frequency[4]", "nan", "not finite"]),
        ({"frequency": np.r_[FREQ[:2], np.inf, FREQ[3:]]}, ["frequency[2]", "inf"]),
        ({"impedance": np.r_[rc_arc(FREQ)[:6], complex(1, np.nan), rc_arc(FREQ)[7:]]}, ["impedance[6]", "not finite"]),
        ({"frequency": np.r_[FREQ[:12], 0.0]}, ["frequency[12]", "0.0", "not positive"]),
        ({"frequency": np.r_[-1.0, FREQ[1:]]}, ["frequency[0]", "-1.0", "not positive"]),
        ({"frequency": np.r_[FREQ[:5], FREQ[4], FREQ[6:]]}, ["appears 2 times", "[4, 5]", "SpectrumSeries"]),
        ({"frequency": FREQ[:4], "impedance": rc_arc(FREQ[:4])}, ["at least 5 points", "got 4"]),
        ({"frequency": FREQ[:12]}, ["differ in length", "frequency has 12", "impedance has 13"]),
        ({"area_cm2": 0.0}, ["area_cm2 = 0.0", "positive"]),
        ({"area_cm2": -1.13}, ["area_cm2 = -1.13"]),
        ({"area_cm2": float("nan")}, ["area_cm2 = nan"]),
        ({"time_h": float("nan")}, ["time_h"]),
    ],
)
def test_spectrum_rejects_bad_input(changes, words):
    with pytest.raises(DataError) as err:
        spectrum(**changes)
    for word in words:
        assert word in str(err.value)


def test_spectrum_error_names_source():
    with pytest.raises(DataError, match=r"^cell7\.mpt: frequency\[1\]"):
        spectrum(frequency=np.r_[FREQ[0], np.nan, FREQ[2:]], source="cell7.mpt")


def test_spectrum_rejects_2d_arrays():
    with pytest.raises(DataError, match="one-dimensional"):
        spectrum(frequency=FREQ.reshape(1, -1))


def test_flipped_sign_warns():
    with pytest.warns(DataWarning, match="sign convention looks flipped.*flip_imag"):
        spectrum(impedance=rc_arc(FREQ).conjugate())


def test_usual_sign_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spectrum()
        # an inductive tail on a few points is normal and must not warn
        z = rc_arc(FREQ) + 1j * 2 * np.pi * FREQ * 1e-3
        assert np.mean(z.imag > 0) < 0.8
        spectrum(impedance=z)


# --- SpectrumSeries ---------------------------------------------------------------------


def series(times=(0.0, 1.0, 2.0), **kwargs):
    spectra = [spectrum(time_h=t, impedance=rc_arc(FREQ, r=100 * (k + 1))) for k, t in enumerate(times)]
    return SpectrumSeries(spectra, **kwargs)


def test_series_sorted_by_time():
    s = series(times=(2.0, 0.0, 1.0))
    np.testing.assert_array_equal(s.time_h, [0.0, 1.0, 2.0])
    assert s.impedance.shape == (3, 13)
    # the spectrum given first (r=100) had time 2.0, so it is now last
    np.testing.assert_allclose(s.impedance[2], rc_arc(FREQ, r=100))
    np.testing.assert_array_equal(s.frequency, FREQ)


def test_series_sequence_protocol():
    s = series()
    assert len(s) == 3
    assert isinstance(s[0], Spectrum) and s[-1].time_h == 2.0
    assert isinstance(s[1:], SpectrumSeries) and len(s[1:]) == 2
    assert [x.time_h for x in s] == [0.0, 1.0, 2.0]
    assert s.spectra == tuple(s)


def test_series_without_times_keeps_order():
    s = SpectrumSeries([spectrum(impedance=rc_arc(FREQ, r=r)) for r in (300, 100, 200)])
    assert np.all(np.isnan(s.time_h))
    np.testing.assert_allclose(s.impedance[0], rc_arc(FREQ, r=300))


def test_series_rejects_mixed_times_and_empty():
    with pytest.raises(DataError, match="spectrum 1 has no time_h"):
        SpectrumSeries([spectrum(time_h=0.0), spectrum()])
    with pytest.raises(DataError, match="at least one spectrum"):
        SpectrumSeries([], source="x.csv")
    with pytest.raises(DataError, match="item 0 is a ndarray"):
        SpectrumSeries([FREQ])


def test_series_common_grid_error_names_spectrum():
    other = spectrum(time_h=5.0, frequency=FREQ[:-1], impedance=rc_arc(FREQ[:-1]))
    s = SpectrumSeries([*series(), other], source="drift.csv")
    assert not s.has_common_grid
    for attribute in ("frequency", "impedance", "impedance_area"):
        pattern = r"drift\.csv: spectrum 3 .*resample onto a common grid or fit spectra separately"
        with pytest.raises(DataError, match=pattern):
            getattr(s, attribute)


def test_series_grid_tolerates_tiny_differences():
    jittered = spectrum(time_h=3.0, frequency=FREQ * (1 + 1e-9))
    assert SpectrumSeries([*series(), jittered]).has_common_grid
    shifted = spectrum(time_h=3.0, frequency=FREQ * 1.001)
    assert not SpectrumSeries([*series(), shifted]).has_common_grid


def test_series_area_and_symmetric():
    s = series()
    assert s.area_cm2 is None and s.symmetric is False and s.impedance_unit == "Ohm"
    t = s.with_(area_cm2=1.13, symmetric=True)
    assert t.area_cm2 == 1.13 and t.symmetric is True and t.impedance_unit == "Ohm cm2"
    np.testing.assert_allclose(t.impedance_area, s.impedance * 1.13)
    mixed = SpectrumSeries([s[0], s[1].with_(area_cm2=2.0)])
    with pytest.raises(DataError, match=r"spectrum 1 has area_cm2=2.0 .*with_\(area_cm2=...\)"):
        _ = mixed.area_cm2


# --- IVCurve ----------------------------------------------------------------------------


def iv(**changes):
    fields = {
        "current_density_mA_cm2": [0.3, 1.0, 3.0, 0.3, 1.0],
        "overpotential_V": [0.55, 0.56, 0.58, 0.094, 0.084],
        "cell": ["A", "A", "B", "A", "B"],
        "process": ["plating", "plating", "plating", "stripping", "stripping"],
    }
    fields.update(changes)
    return IVCurve(**fields)


def test_ivcurve_select_and_cells():
    curve = iv()
    assert curve.cells == ("A", "B") and len(curve) == 5
    plating = curve.select(process="plating")
    np.testing.assert_array_equal(plating.current_density_mA_cm2, [0.3, 1.0, 3.0])
    assert plating.cells == ("A", "B")
    assert curve.select(process="stripping", cell="B").overpotential_V.tolist() == [0.084]
    with pytest.raises(DataError, match="no points with process='plating', cell='C'"):
        curve.select(process="plating", cell="C")


def test_ivcurve_scalar_labels_broadcast():
    curve = iv(cell="7", process="stripping")
    assert curve.cells == ("7",) and set(curve.process) == {"stripping"}


@pytest.mark.parametrize(
    ("changes", "pattern"),
    [
        ({"current_density_mA_cm2": [0.3, np.nan, 3.0, 0.3, 1.0]}, r"current_density_mA_cm2\[1\] = nan"),
        ({"overpotential_V": [0.55, -0.56, 0.58, 0.094, 0.084]}, r"overpotential_V\[1\] = -0.56 is not positive"),
        ({"current_density_mA_cm2": [0.0, 1.0, 3.0, 0.3, 1.0]}, r"current_density_mA_cm2\[0\] = 0.0"),
        ({"cell": ["A", "B"]}, "differ in length"),
        ({"process": ["plating", "plating", "dissolution", "stripping", "stripping"]}, "unknown process 'dissolution'"),
        ({"current_density_mA_cm2": [], "overpotential_V": [], "cell": [], "process": []}, "at least one point"),
    ],
)
def test_ivcurve_rejects_bad_input(changes, pattern):
    with pytest.raises(DataError, match=pattern):
        iv(**changes)


# --- Transient --------------------------------------------------------------------------


def test_transient_valid():
    tr = Transient([0, 60, 120], [0.5, 0.3, 0.05], 1.0, cell=3, process="stripping")
    assert tr.cell == "3" and tr.n_points == 3 and not tr.time_s.flags.writeable
    assert tr.with_(process="plating").process == "plating"


@pytest.mark.parametrize(
    ("args", "kwargs", "pattern"),
    [
        (([0, 60, 60], [0.5, 0.3, 0.05], 1.0), {}, r"time_s\[2\] = 60.0 does not increase"),
        (([0, 60, 120], [0.5, np.nan, 0.05], 1.0), {}, r"overpotential_V\[1\] = nan"),
        (([0, 60, 120], [0.5, 0.3], 1.0), {}, "differ in length"),
        (([0], [0.5], 1.0), {}, "at least 2 points"),
        (([0, 60], [0.5, 0.3], -1.0), {}, "positive magnitude"),
        (([0, 60], [0.5, 0.3], 1.0), {"process": "etching"}, "unknown process"),
    ],
)
def test_transient_rejects_bad_input(args, kwargs, pattern):
    with pytest.raises(DataError, match=pattern):
        Transient(*args, source="t.csv", **kwargs)


def test_timestamp_is_kept():
    when = datetime(2024, 3, 14, 9, 30)
    assert spectrum(timestamp=when).timestamp == when


def test_drift_law_sees_each_point_at_its_own_time():
    """Truth from simulate's own per-point evaluation (each point at its time in the sweep), noise free."""
    import pytensor.tensor as pt

    from mgbayes import hypotheses, simulate
    from mgbayes.observations import observe

    h = hypotheses.from_table({
        "name": "fast_drift", "experiment": "ocv", "kind": "impedance", "physics": "an arc that grows fast",
        "circuit": {"series": "R0", "electrode": "p(R1,C1)"},
        "drift": {"R1": {"law": "linear"}},
        "priors": {"R0": {"dist": "lognormal", "median": 10.0, "sd_log": 1.0},
                   "R1_0": {"dist": "lognormal", "median": 100.0, "sd_log": 1.0},
                   "R1_rate": {"dist": "lognormal", "median": 100.0, "sd_log": 1.0},
                   "C1": {"dist": "lognormal", "median": 1e-4, "sd_log": 1.0}},
    })
    truth = {"R0": 10.0, "R1_0": 100.0, "R1_rate": 400.0, "C1": 1e-4}  # Ohm, Ohm, Ohm per hour, F
    frequency = simulate.frequency_grid(1e4, 0.01, 4)
    series = simulate.spectra(h, truth, times_h=[0.0, 1.0, 2.0], frequency=frequency, noise=0.0, sweep_drift=True)
    timed = SpectrumSeries([s.with_(sweep_time_h=simulate.sweep_times_h(frequency, 0.0)) for s in series])
    assert timed.sweep_time_h.shape == (3, frequency.size)
    values = {k: np.array([[v]]) for k, v in truth.items()}  # one draw
    for obs, exact in ((observe(timed), True), (observe(series), False)):
        mu = obs.predict(h, h.resolve(values, dict(obs.inputs)))[0]
        assert np.allclose(mu, obs.values, rtol=1e-9) == exact
        # the PyTensor model's mean is the same
        tensors = {k: pt.as_tensor_variable(float(v)) for k, v in truth.items()}
        inputs = {k: pt.as_tensor_variable(v) for k, v in obs.inputs.items()}
        np.testing.assert_allclose(obs.predict(h, h.resolve(tensors, inputs)).eval(), mu, rtol=1e-9)
