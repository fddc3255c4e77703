"""The shipped demo data: synthetic spectra with the paper's numbers.

The paper's raw data (Zenodo 10.5281/zenodo.18746519) cannot be reached
from here, so ``data/demo/`` holds spectra simulated from the paper's own
picture of a Mg electrode at open circuit (docs/physics.md; ``charge_transfer``
in ``models/ocv_drift``): a charge-transfer arc that grows linearly from 40
to 400 kΩ·cm² (cell) in 20 h with about 17 µF·cm², *and* the small constant
arc of the compact film (electronic resistance about 2 kΩ·cm², ionic
resistance about 1 MΩ·cm², about 1 µF·cm², near 100 Hz); and the two
polysulfide cells (GC‖GC and Mg‖Mg in 100 mM Li₂S₈) whose difference
measures the film's electronic resistance.

The errors are those of a real measurement, not of any likelihood we fit:
an instrument floor plus a proportional term, and a cell that keeps drifting
while each sweep runs (every point at its own time). They are labelled
synthetic in every file and report. The stripping transients are simulated
from the time-controlled activation hypothesis with an error model unlike the
likelihood's (heavy tails and a drifting reference). ``python -m mgbayes.demo`` remakes them
byte for byte.
"""

from pathlib import Path

import numpy as np

from . import hypotheses, io, resources, simulate

DEMO_DIR = resources.data_dir() / "demo"
STUDY = resources.models_dir() / "studies" / "paper.toml"
INFO_DIR = hypotheses.MODELS_DIR / "ocv_drift_info"

#: 12 mm discs (docs/physics.md, measured numbers)
AREA_CM2 = np.pi * 0.6**2
#: glassy-carbon discs of the polysulfide GC||GC cell (paper, Experimental)
GC_AREA_CM2 = 2.0
#: The hypothesis that generates the OCV series (the study's ``truth``).
OCV_TRUTH = "charge_transfer"
#: Per electrode (Ohm cm2, F cm-2). The cell arc is two electrode arcs in
#: series: the paper's 40 -> 400 kOhm cm2 and 17 uF cm2 of the cell arc are
#: R_ct 20 -> 200 kOhm cm2 and C_dl 34 uF cm2 per electrode. The film: R_e
#: 2 kOhm cm2 (the polysulfide cells differ by 4 kOhm cm2), R_ion 1 MOhm cm2
#: (the paper's corrosion estimate), so R_film_0 = R_ion || R_e and
#: ln_Rion_Re = ln(R_ion / R_e);
#: C_film = 1.2 x 8 eps0 / 8.5 nm = 1.0 uF cm-2, its arc peaks near 80 Hz.
OCV_PARAMETERS = {
    "R_el": 40.0,             # Ohm cm2, electrolyte (per cell)
    "R_film_0": 1 / (1 / 2.0e3 + 1 / 1.0e6),   # R_ion || R_e
    "ln_Rion_Re": float(np.log(1.0e6 / 2.0e3)),
    "thickness_nm": 8.5,
    "permittivity": 8.0,
    "roughness": 1.2,
    "CPE_film_P": 0.95,
    "R_ct_0": 2.0e4,          # Ohm cm2 per electrode at t = 0
    "R_ct_rate": 0.45,        # 1/h: 2e4 (1 + 0.45 * 20) = 2e5 at 20 h
    "C_dl": 34e-6,
    "CPE_dl_P": 0.92,
}
#: Polysulfide cells (per electrode): a polysulfide arc of 2.5 kOhm cm2
#: (5 kOhm cm2 per cell, "several kOhm cm2") peaking near 5 Hz on carbon; on
#: the pre-passivated Mg the same arc (5 % larger: disproportionation) behind
#: the film's R_e and capacitance. The cells differ by 2 R_e ~ 4 kOhm cm2.
POLYSULFIDE_PARAMETERS = {
    "polysulfide_GC": {"R_el_GC": 120.0, "R_ps": 2.5e3, "C_ps": 12e-6, "CPE_ps_P": 0.9},
    "polysulfide_Mg": {"R_el_Mg": 150.0, "R_e": 2.0e3, "ps_shift": 1.05, "C_fps": 1.0e-6,
                       "CPE_fps_P": 0.95, "R_ps": 2.5e3, "C_ps": 12e-6, "CPE_ps_P": 0.9},
}
POLYSULFIDE_AREA = {"polysulfide_GC": GC_AREA_CM2, "polysulfide_Mg": AREA_CM2}
OCV_SEED = 20260225
#: The error model of the demo: sd of Re and Im = sqrt(floor^2 + (p |Z|)^2), points at their own time.
OCV_NOISE = 0.005             # 0.5 % of |Z|
FLOOR_OHM = 0.05              # instrument floor, Ohm per cell
OCV_TIMES_H = np.linspace(0.5, 20.0, 40)


def ocv_parameters():
    """All parameters of the demo's generating hypothesis (:data:`OCV_TRUTH`)."""
    return dict(OCV_PARAMETERS)


def error_model():
    """Keyword arguments of :func:`mgbayes.simulate.spectra` for the demo's realistic errors."""
    return {"noise": OCV_NOISE, "floor_ohm": FLOOR_OHM, "sweep_drift": True}


def make_ocv_demo(out_dir=DEMO_DIR):
    """Simulate the OCV drift series and write it as EC-Lab .mpt and long CSV."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    h = hypotheses.load(hypotheses.MODELS_DIR / "ocv_drift" / f"{OCV_TRUTH}.toml")
    series = simulate.spectra(h, ocv_parameters(), times_h=OCV_TIMES_H, area_cm2=AREA_CM2, symmetric=True,
                              seed=OCV_SEED, source="synthetic demo", **error_model())
    io.write_mpt(series, out_dir / "ocv_drift_MgMg.mpt")
    io.write_long_csv(series, out_dir / "ocv_drift_MgMg.csv")
    return series


def make_polysulfide_demo(out_dir=DEMO_DIR):
    """Simulate one spectrum of each polysulfide cell and write ``polysulfide_{GC,Mg}.csv``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = {}
    for k, (name, params) in enumerate(POLYSULFIDE_PARAMETERS.items()):
        h = hypotheses.load(INFO_DIR / f"{name}.toml")
        out[name] = simulate.spectra(h, params, times_h=[0.0], area_cm2=POLYSULFIDE_AREA[name], symmetric=True,
                                     noise=OCV_NOISE, floor_ohm=FLOOR_OHM, seed=OCV_SEED + 1 + k,
                                     source="synthetic demo")
        io.write_long_csv(out[name], out_dir / f"{name}.csv")
    return out



# --- Stripping transients ------------------------------------------------------------

#: The hypothesis that generates the stripping transients (the study's ``truth``).
STRIPPING_TRUTH = "time_controlled"
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

    h = hypotheses.load(hypotheses.MODELS_DIR / "stripping_activation" / f"{STRIPPING_TRUTH}.toml")
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
    make_polysulfide_demo()
    make_stripping_demo()
