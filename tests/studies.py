"""Studies on disk for tests: a small end-to-end one (one synthetic cell, a drifting and a constant hypothesis)
and a one-experiment study on the demo's OCV spectra."""

import shutil
from pathlib import Path

from mgbayes import demo, hypotheses, io, simulate
from mgbayes.hypotheses import MODELS_DIR

CT = Path(__file__).parent / "data" / "single_arc.toml"  # the single-arc model, named charge_transfer
TRUTH = {"R_el": 30.0, "R_ct_0": 2e4, "R_ct_rate": 0.45, "CPE_dl_T": 4e-5, "CPE_dl_P": 0.9}


def write_small_study(root, *, times_h, title, extra=""):
    """Write ``cell.mpt``, ``hyp/`` (charge_transfer and no_drift) and ``study.toml`` with experiment "ocv".

    ``extra`` is appended to the study file (more experiments). Returns the simulated series.
    """
    series = simulate.spectra(hypotheses.load(CT), TRUTH, times_h=times_h,
                              frequency=simulate.frequency_grid(1e5, 0.05, 4), area_cm2=1.131, seed=5)
    io.write_mpt(series, root / "cell.mpt")
    (root / "hyp").mkdir()
    shutil.copy(CT, root / "hyp" / "charge_transfer.toml")
    (root / "hyp" / "constant.toml").write_text(CT.read_text().replace('name = "charge_transfer"', 'name = "no_drift"')
                                                .replace('R_ct = "linear"', 'R_ct = "constant"'))
    (root / "study.toml").write_text(f"""
title = "{title}"
provenance = "synthetic"
[sampler]
draws = 200
tune = 300
chains = 2
seed = 3
[[experiment]]
name = "ocv"
data = "cell.mpt"
area_cm2 = 1.131
symmetric = true
hypotheses = "hyp"
{extra}""")
    return series


def write_demo_ocv_study(root, extra="", *, name="x"):
    """Write ``s.toml``: one experiment on the demo's OCV spectra with the shipped OCV hypotheses, plus ``extra`` lines."""
    path = Path(root) / "s.toml"
    path.write_text(f"""
[[experiment]]
name = "{name}"
data = "{demo.DEMO_DIR / 'ocv_drift_MgMg.csv'}"
area_cm2 = 1.131
symmetric = true
hypotheses = "{MODELS_DIR / 'ocv_drift'}"
{extra}
""")
    return path
