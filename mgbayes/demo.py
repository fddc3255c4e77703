"""The shipped demo data: synthetic spectra with the paper's numbers.

The paper's raw data (Zenodo 10.5281/zenodo.18746519) cannot be reached
from here, so ``data/demo/`` holds spectra simulated from the
charge-transfer hypothesis with the numbers the paper reports for a Mg‖Mg
cell at OCV (docs/physics.md): the cell arc grows linearly from 40 to
400 kΩ·cm² in 20 h with a capacitance of about 17 µF·cm². They are labelled
synthetic in every file and report. ``python -m mgbayes.demo`` remakes them
byte for byte.
"""

from pathlib import Path

import numpy as np

from . import hypotheses, io, resources, simulate

DEMO_DIR = resources.data_dir() / "demo"
STUDY = resources.models_dir() / "studies" / "paper.toml"

#: 12 mm discs (docs/physics.md, measured numbers)
AREA_CM2 = np.pi * 0.6**2
#: The cell arc is two electrode arcs in series: R_cell = 2 R_ct and
#: C_cell = C_dl / 2, so the paper's 40 -> 400 kOhm cm2 and 17 uF cm2 of the
#: cell arc are R_ct 20 -> 200 kOhm cm2 and C_dl 34 uF cm2 per electrode.
OCV_PARAMETERS = {
    "R_el": 40.0,             # Ohm cm2, electrolyte (per cell)
    "R_ct_0": 2.0e4,          # Ohm cm2 per electrode at t = 0
    "R_ct_rate": 0.45,        # 1/h: 2e4 (1 + 0.45 * 20) = 2e5 at 20 h
    "CPE_dl_P": 0.92,
}
OCV_SEED = 20260225
OCV_NOISE = 0.01              # 1 % of |Z| on Re and Im
OCV_TIMES_H = np.linspace(0.5, 20.0, 40)


def cpe_T_for(C, R, P):
    """CPE coefficient giving capacitance ``C`` with ``R`` by Eq. 1 (T = C^P R^(P-1))."""
    return C**P * R ** (P - 1)


def ocv_parameters():
    """All parameters of the demo's generating (charge-transfer) hypothesis."""
    p = dict(OCV_PARAMETERS)
    # 34 uF cm2 per electrode at the mid-series resistance (1.1e5 Ohm cm2)
    p["CPE_dl_T"] = cpe_T_for(34e-6, 1.1e5, p["CPE_dl_P"])
    return p


def make_ocv_demo(out_dir=DEMO_DIR):
    """Simulate the OCV drift series and write it as EC-Lab .mpt and long CSV."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    h = hypotheses.load(hypotheses.MODELS_DIR / "ocv_drift" / "charge_transfer.toml")
    series = simulate.spectra(h, ocv_parameters(), times_h=OCV_TIMES_H, area_cm2=AREA_CM2,
                              symmetric=True, noise=OCV_NOISE, seed=OCV_SEED, source="synthetic demo")
    io.write_mpt(series, out_dir / "ocv_drift_MgMg.mpt")
    io.write_long_csv(series, out_dir / "ocv_drift_MgMg.csv")
    return series


if __name__ == "__main__":
    make_ocv_demo()
