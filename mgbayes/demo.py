"""The shipped demo data: synthetic spectra with the paper's numbers.

The paper's raw data (Zenodo 10.5281/zenodo.18746519) cannot be reached
from here, so ``data/demo/`` holds spectra simulated from the
charge-transfer hypothesis with the numbers the paper reports for a Mg‖Mg
cell at OCV (PHYSICS.md): the cell arc grows linearly from 40 to
400 kΩ·cm² in 20 h with a capacitance of about 17 µF·cm². They are labelled
synthetic in every file and report. The stripping transients are simulated
from the time-controlled activation hypothesis with an error model unlike the
likelihood's (heavy tails and a drifting reference). ``python -m mgbayes.demo``
remakes them byte for byte.
"""

from pathlib import Path

import numpy as np

from . import hypotheses, io, simulate

DEMO_DIR = Path(__file__).resolve().parent.parent / "data" / "demo"
STUDY = Path(__file__).resolve().parent.parent / "models" / "studies" / "paper.toml"

#: 12 mm discs (PHYSICS.md table)
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




# --- Stripping transients ------------------------------------------------------------

#: Generating values (models/stripping_activation/time_controlled.toml): activation after
#: 0.9 h for a typical cell, scattering between cells (0.63-1.15 h here; the paper reports
#: 0.5-1.5 h); 470 mV of film overpotential before (plus R_u j); Butler-Volmer charge transfer and
#: 12 Ohm cm2 of uncompensated resistance after (73, 112, 165 and 280 mV at 0.3, 1, 3 and
#: 10 mA cm-2; the paper: 94, 84, 150, 310 mV).
STRIPPING_PARAMETERS = {
    "t_act_h_mu": 0.9, "t_act_h_sd": 0.35, "t_act_h_z": np.array([0.3, -1.0, 0.7, -0.4]),
    "width_h": 0.03,
    "eta_pre": 0.47,
    "j0": 0.02, "alpha": 0.5, "R_u": 12.0,
}
STRIPPING_CURRENTS = (0.3, 1.0, 3.0, 10.0)   # mA cm-2, one fresh cell each
STRIPPING_SEED = 2026
#: Error model (not the likelihood's independent Gaussian): Student-t noise with 4
#: degrees of freedom and scale 5 mV, plus a slowly wandering reference (AR(1) with
#: a correlation time of 20 points, 30 min, and a stationary sd of 5 mV).
STRIPPING_NOISE = {"t_scale_V": 0.005, "t_dof": 4.0, "drift_sd_V": 0.005, "drift_points": 20.0}


def stripping_noise(rng, points, *, t_scale_V, t_dof, drift_sd_V, drift_points):
    """Heavy-tailed noise plus a slow AR(1) reference drift for one transient, V."""
    phi = np.exp(-1.0 / drift_points)
    drift = np.empty(points)
    drift[0] = rng.normal(0.0, drift_sd_V)
    innovations = rng.normal(0.0, drift_sd_V * np.sqrt(1 - phi**2), points)
    for k in range(1, points):
        drift[k] = phi * drift[k - 1] + innovations[k]
    return t_scale_V * rng.standard_t(t_dof, points) + drift


def make_stripping_demo(path=DEMO_DIR / "stripping_transients.csv"):
    """Simulate the stripping transients (3 h, 120 points each) and write them as CSV."""
    from .data import Transient

    h = hypotheses.load(hypotheses.MODELS_DIR / "stripping_activation" / "time_controlled.toml")
    clean = simulate.transients(h, STRIPPING_PARAMETERS, current_densities_mA_cm2=STRIPPING_CURRENTS,
                                duration_h=3.0, points=120, noise_V=0.0, seed=0, cell="synthetic")
    rng = np.random.default_rng(STRIPPING_SEED)
    noisy = [Transient(time_s=tr.time_s, current_density_mA_cm2=tr.current_density_mA_cm2, cell=f"cell{k + 1}",
                       process="stripping", source="synthetic demo",
                       overpotential_V=tr.overpotential_V + stripping_noise(rng, tr.n_points, **STRIPPING_NOISE))
             for k, tr in enumerate(clean)]
    io.write_transients(noisy, path)
    return noisy


if __name__ == "__main__":
    make_ocv_demo()
    make_stripping_demo()
