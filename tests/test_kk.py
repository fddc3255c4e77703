"""Kramers-Kronig checks per spectrum before fitting (mgbayes.kk) and the study keys kk / kk_threshold."""

import numpy as np
import pytest

from mgbayes import hypotheses, io, kk, simulate, study
from mgbayes.data import SpectrumSeries
from mgbayes.errors import DataError, HypothesisError
from tests.studies import CT, TRUTH


@pytest.fixture(scope="module")
def series():
    """Five valid spectra with 1 % noise, and spectrum 2 drifting during its sweep (Re Z grows by 30 % as f falls)."""
    good = simulate.spectra(hypotheses.load(CT), TRUTH, times_h=[0.5, 2, 5, 10, 20],
                            frequency=simulate.frequency_grid(1e5, 0.05, 6), area_cm2=1.131, seed=5)  # 1 % noise
    spectra = list(good)
    s = spectra[2]
    drift = np.linspace(1.0, 1.3, s.n_points)  # the sweep runs from high to low frequency
    spectra[2] = s.with_(impedance=s.impedance.real * drift + 1j * s.impedance.imag)
    return SpectrumSeries(spectra, source="five spectra")


def test_each_spectrum_gets_residuals_and_a_flag(series):
    frame = kk.table(series, kk.check(series))
    assert list(frame.spectrum) == [0, 1, 2, 3, 4] and list(frame.time_h) == [0.5, 2, 5, 10, 20]
    assert list(frame.passed) == [True, True, False, True, True]
    assert frame.loc[2, "max_residual_re_pct"] > 5 > frame.drop(2)[["max_residual_re_pct", "max_residual_im_pct"]].max().max()
    text = kk.summary(frame)
    assert "4 of 5 spectra pass" in text and "[2]" in text


def test_exclude_failed_leaves_the_drifting_spectrum_out(series):
    frame = kk.table(series, kk.check(series))
    kept = kk.exclude_failed(series, frame)
    assert list(kept.time_h) == [0.5, 2, 10, 20]
    frame["passed"] = False
    with pytest.raises(DataError, match="kk_threshold"):
        kk.exclude_failed(series, frame)


def test_study_keys_flag_or_exclude(series, tmp_path):
    io.write_mpt(series, tmp_path / "cell.mpt")
    base = f'[[experiment]]\nname = "ocv"\ndata = "cell.mpt"\nhypotheses = "{CT}"\narea_cm2 = 1.131\n'
    (tmp_path / "flag.toml").write_text(base)
    (tmp_path / "exclude.toml").write_text(base + 'kk = "exclude"\nkk_threshold = 0.05\n')
    flagged = study.load_study(tmp_path / "flag.toml").experiments[0]
    assert flagged.kk == "flag" and len(study.load_data(flagged, "impedance")) == 5
    excluded = study.load_study(tmp_path / "exclude.toml").experiments[0]
    assert list(study.load_data(excluded, "impedance").time_h) == pytest.approx([0.5, 2, 10, 20])
    assert list(study.kk_table(excluded).passed) == [True, True, False, True, True]  # the table shows all
    (tmp_path / "bad.toml").write_text(base + 'kk = "drop"\n')
    with pytest.raises(HypothesisError, match="kk = 'drop'"):
        study.load_study(tmp_path / "bad.toml")
