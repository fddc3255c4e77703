"""The shipped demo: data remade to the last digits, its realistic error model, and the paper study's OCV experiments."""

import re

import numpy as np
import pytest

from mgbayes import demo, hypotheses, simulate, study
from mgbayes.errors import HypothesisError
from mgbayes.hypotheses import MODELS_DIR
from tests.studies import write_demo_ocv_study


def _fields(path):
    """The file's fields, numbers as floats: (texts, numbers)."""
    texts, numbers = [], []
    for field in re.split(rb"[\t,\r\n]+", path.read_bytes()):
        try:
            numbers.append(float(field))
        except ValueError:
            texts.append(field)
    return texts, np.array(numbers)


def test_demo_files_are_remade_to_the_last_digits(tmp_path):
    """The shipped demo data are what the generators make: the same text, numbers to 1e-12 relative.

    Byte for byte held on one numerical stack; NumPy 2.5's transcendental functions move the last
    digit of about one value in six (e.g. 5.407824545341279 for 5.40782454534128).
    """
    demo.make_ocv_demo(tmp_path)
    demo.make_polysulfide_demo(tmp_path)
    for name in ("ocv_drift_MgMg.mpt", "ocv_drift_MgMg.csv", "polysulfide_GC.csv", "polysulfide_Mg.csv"):
        (made_text, made), (shipped_text, shipped) = _fields(tmp_path / name), _fields(demo.DEMO_DIR / name)
        assert made_text == shipped_text and made.shape == shipped.shape, name
        np.testing.assert_allclose(made, shipped, rtol=1e-12, atol=0, err_msg=name)


def test_demo_truth_is_the_papers_full_picture():
    h = hypotheses.load(MODELS_DIR / "ocv_drift" / f"{demo.OCV_TRUTH}.toml")
    resolved = h.resolve({k: np.asarray(v) for k, v in demo.ocv_parameters().items()}, {"t": np.array([0.0, 20.0])})
    # the growing charge-transfer arc: cell arc 40 -> 400 kOhm cm2
    np.testing.assert_allclose(2 * resolved["R_ct"], [4e4, 4e5])
    # the small constant film arc: R_film ~ R_e = 2 kOhm cm2, C ~ 1 uF cm-2, near 100 Hz
    assert float(resolved["R_film"]) == pytest.approx(2e3, rel=0.01)
    assert float(resolved["C_film"]) == pytest.approx(1.0e-6, rel=0.02)
    f_peak = float(h.derive(resolved)["f_peak_film"])
    assert 50 < f_peak < 150
    assert float(resolved["R_ion"]) == pytest.approx(1e6, rel=1e-6)


def test_sweep_drift_moves_the_late_low_frequency_points_only():
    h = hypotheses.load(MODELS_DIR / "ocv_drift" / "charge_transfer.toml")
    f = simulate.frequency_grid()
    kwargs = dict(times_h=[5.0], frequency=f, area_cm2=demo.AREA_CM2, noise=0.0)
    still = simulate.spectra(h, demo.ocv_parameters(), **kwargs).impedance_area[0]
    moving = simulate.spectra(h, demo.ocv_parameters(), sweep_drift=True, **kwargs).impedance_area[0]
    np.testing.assert_allclose(moving[:40], still[:40], rtol=1e-6)  # the first half of the points takes milliseconds
    t_last = simulate.sweep_times_h(f, 5.0)[-1]
    assert 3.0 / 60 < t_last - 5.0 < 5.0 / 60  # a sweep takes about four minutes
    p = demo.OCV_PARAMETERS
    # at 20 mHz the arc is nearly at its DC value: it has grown with R_ct over the sweep
    growth = (moving[-1].real - still[-1].real) / (2 * p["R_ct_0"] * p["R_ct_rate"] * (t_last - 5.0))
    assert 0.5 < growth < 1.0


def test_floor_and_proportional_noise_have_the_stated_size():
    h = hypotheses.load(MODELS_DIR / "ocv_drift" / "charge_transfer.toml")
    f = np.array([1e6, 1e5, 1e4, 10.0, 1.0])
    kwargs = dict(times_h=np.zeros(2000), frequency=f, area_cm2=1.0)
    exact = simulate.spectra(h, demo.ocv_parameters(), noise=0.0, **kwargs).impedance_area
    noisy = simulate.spectra(h, demo.ocv_parameters(), noise=0.005, floor_ohm=0.5, seed=1, **kwargs).impedance_area
    sd = (noisy - exact).real.std(axis=0)
    expected = np.sqrt(0.5**2 + (0.005 * np.abs(exact[0])) ** 2)
    np.testing.assert_allclose(sd, expected, rtol=0.06)
    assert sd[0] > 1.5 * 0.005 * abs(exact[0, 0])  # at 1 MHz the floor dominates: not proportional noise


def test_paper_study_names_truth_unit_evidence_and_stated_numbers():
    s = study.load_study(demo.STUDY)
    ocv = {e.name: e for e in s.experiments if e.name.startswith("ocv")}
    assert set(ocv) == {"ocv_drift", "ocv_drift_with_Re"}
    for e in ocv.values():
        assert e.truth == demo.OCV_TRUTH and e.unit == "spectrum" and not e.information
        assert {"eps_film_flat", "thickness_nm_eps10", "R_ion", "R_e"} <= set(e.stated)
    assert not ocv["ocv_drift"].evidence
    evidence = {d["name"]: d for d in ocv["ocv_drift_with_Re"].evidence}
    assert evidence["polysulfide_Mg"]["shares"] == ("R_e",) and evidence["polysulfide_GC"]["shares"] == ()
    # the with-R_e experiment is compared against the spectra-only one of the same study
    assert study.spectra_only(s, ocv["ocv_drift_with_Re"]) is ocv["ocv_drift"]


def test_every_experiment_on_simulated_demo_data_names_the_hypothesis_that_made_them():
    s = study.load_study(demo.STUDY)
    simulated = [e for e in s.experiments if demo.DEMO_DIR.resolve() in e.data_path.parents]
    assert {e.name for e in simulated} == {"ocv_drift", "ocv_drift_with_Re", "stripping_activation"}
    truth = {e.name: e.truth for e in simulated}
    assert truth == {"ocv_drift": demo.OCV_TRUTH, "ocv_drift_with_Re": demo.OCV_TRUTH,
                     "stripping_activation": demo.STRIPPING_TRUTH}


def test_drift_series_are_compared_per_spectrum_unless_asked(tmp_path):
    assert study.load_study(write_demo_ocv_study(tmp_path, "")).experiments[0].unit == "spectrum"
    assert study.load_study(write_demo_ocv_study(tmp_path, 'unit = "point"')).experiments[0].unit == "point"


def test_truth_must_name_a_hypothesis(tmp_path):
    with pytest.raises(HypothesisError, match="truth = 'tunnelling' is not one of"):
        study.load_study(write_demo_ocv_study(tmp_path, 'truth = "tunnelling"'))


def test_stated_numbers_need_a_range(tmp_path):
    (tmp_path / "n.toml").write_text('[stated.R_e]\nvalue = 2000.0\n')
    with pytest.raises(HypothesisError, match=r"\[stated.R_e\]: expected range"):
        study.load_study(write_demo_ocv_study(tmp_path, f'stated = "{tmp_path / "n.toml"}"'))
