"""Small I–V studies on disk for the calibration and design tests (cheap models: a dozen points, two parameters)."""

import numpy as np

from mgbayes import hypotheses, io, simulate

J = np.geomspace(0.3, 10.0, 30)  # mA cm-2
NOISE = """
[noise]
model = "absolute"
sigma = { dist = "lognormal", median = 0.005, sd_log = 0.3 }
"""
OHMIC = """name = "ohmic"
family = "iv"
kind = "iv"
physics = "A resistive film: eta = R j."
[response]
overpotential = "R * j"
[priors]
R = { dist = "lognormal", median = 0.05, sd_log = 0.5 }
""" + NOISE
TAFEL = """name = "tafel"
family = "iv"
kind = "iv"
physics = "Charge transfer: eta = b arcsinh(j / j0)."
[response]
overpotential = "b * arcsinh(j / j0)"
[priors]
b = { dist = "lognormal", median = 0.05, sd_log = 0.5 }
j0 = { dist = "uniform", lower = 0.1, upper = 1.0 }  # bounded: j0 >> j would make the law linear, i.e. ohmic
""" + NOISE
OFFSET = """name = "ohmic_offset"
family = "iv"
kind = "iv"
physics = "A resistive film and a small offset of the reference: eta = eta0 + R j."
[response]
overpotential = "eta0 + R * j"
[priors]
R = { dist = "lognormal", median = 0.05, sd_log = 0.5 }
eta0 = { dist = "normal", mu = 0.0, sigma = 0.002 }
""" + NOISE


def write_iv_study(root, files, *, truth=None, generator=OHMIC, seed=2, draws=300, tune=300, extra=""):
    """Write ``iv.csv`` (simulated from ``generator`` at ``truth``), ``hyp/*.toml`` and ``study.toml``; returns the study path."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "hyp").mkdir(exist_ok=True)
    for text in files:
        name = text.split('"')[1]
        (root / "hyp" / f"{name}.toml").write_text(text)
    h = hypotheses.from_table(__import__("tomllib").loads(generator))
    curve = simulate.iv_curve(h, truth or {"R": 0.05}, current_density_mA_cm2=J, noise_V=0.005, seed=seed)
    io.write_iv(curve, root / "iv.csv")
    (root / "study.toml").write_text(f"""
title = "Small I-V study"
provenance = "synthetic"
[sampler]
draws = {draws}
tune = {tune}
chains = 2
seed = 7
[[experiment]]
name = "iv"
data = "iv.csv"
hypotheses = "hyp"
max_refits = 0
{extra}""")
    return root / "study.toml"
