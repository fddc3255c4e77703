"""The EC-Lab .mpr reader on real BioLogic GEIS series (shipped in notebooks/data with their MIT licence)."""

from pathlib import Path

import numpy as np
import pytest

import mgbayes

DATA = Path(__file__).resolve().parents[1] / "notebooks" / "data" / "ssb-ceracharge"


@pytest.mark.parametrize("name, n_spectra", [("Cell001_Form_20uA_25T_30RH_Cycle1to10_01_GEIS_CA1.mpr", 10),
                                             ("Cell001_Cyc_20uA_25T_30RH_Cycle11to100_01_GEIS_CA1.mpr", 9)])
def test_real_geis_series(name, n_spectra):
    series = mgbayes.read(DATA / name)
    assert isinstance(series, mgbayes.SpectrumSeries) and len(series) == n_spectra
    assert series.has_common_grid and series.frequency.size == 36
    assert series.frequency.max() == pytest.approx(1e4, rel=1e-3) and series.frequency.min() == pytest.approx(9.31e-3, rel=1e-2)
    assert np.all(np.diff(series.time_h) > 0)  # spectra in time order, hours apart
    z = series.impedance
    assert np.all(np.isfinite(z)) and np.mean(z.imag < 0) > 0.8  # capacitive: Im Z < 0 in the usual sign
    assert np.all(np.abs(z[:, -1]) > np.abs(z[:, 0]))  # |Z| larger at low frequency
    assert (DATA / "LICENSE").read_text().startswith("MIT License")


def test_formation_collapse_and_cycling_growth():
    """The authors' description: impedance collapses in the first cycles, then grows with cycling."""
    formation = mgbayes.read(DATA / "Cell001_Form_20uA_25T_30RH_Cycle1to10_01_GEIS_CA1.mpr")
    cycling = mgbayes.read(DATA / "Cell001_Cyc_20uA_25T_30RH_Cycle11to100_01_GEIS_CA1.mpr")
    low_f = np.abs(formation.impedance[:, -1])
    assert low_f[0] > 10 * low_f[4]
    assert np.all(np.diff(np.abs(cycling.impedance[:, -1])) > 0)
