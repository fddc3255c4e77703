"""Write the worked-analysis notebooks from their cells (run: python notebooks/_make.py).

Keeping the cells here keeps the notebooks diff-friendly; the .ipynb files
are what users open, and tests/test_notebooks.py runs them top to bottom.
"""

import json
from pathlib import Path

HERE = Path(__file__).parent

SETUP = '''import os
from pathlib import Path

import numpy as np
import mgbayes
from mgbayes import compare, hypotheses, inference, io, plots, report, validation
from mgbayes.demo import AREA_CM2, DEMO_DIR
from mgbayes.hypotheses import MODELS_DIR

# Tests run the notebooks with fewer draws (MGBAYES_NOTEBOOK_QUICK=1); a real analysis uses the defaults.
QUICK = os.environ.get("MGBAYES_NOTEBOOK_QUICK") == "1"
SAMPLER = dict(draws=200, tune=300, chains=2) if QUICK else dict(draws=1000, tune=1000, chains=4)
SAMPLER'''

OCV = [
    ("md", "# Why does the OCV impedance arc of Mg grow?\n\nThe paper (Drvarič Talian et al., *Faraday Discuss.* 2026) argues by hand that the growth of the arc of a Mg‖Mg cell at open circuit, from ~40 to ~400 kΩ·cm² in 20 h at a constant ~17 µF·cm², is set by **charge transfer losing reaction sites**, not by the film becoming less conductive as on Li. Here the argument is a computation: three hypotheses, each a file in `models/ocv_drift/`, are sampled with NUTS and ranked by PSIS-LOO.\n\n**Data:** the demo spectra are *synthetic*, simulated from the paper's own picture (`charge_transfer`: the growing charge-transfer arc and the small constant film arc) with the paper's numbers and realistic errors that no fitted likelihood has (`data/demo/README.md`), because the raw data on Zenodo cannot be reached from here."),
    ("code", SETUP),
    ("code", "series = io.read(DEMO_DIR / 'ocv_drift_MgMg.mpt', area_cm2=AREA_CM2, symmetric=True)\nif QUICK:\n    series = series[::10]\nprint(series, series.frequency.size, 'frequencies,', series.time_h[[0, -1]], 'h')"),
    ("md", "## 1. Are the spectra valid? Linear Kramers–Kronig test on the first and last spectrum"),
    ("code", "for spectrum in (series[0], series[-1]):\n    print(validation.kramers_kronig_spectrum(spectrum).summary())"),
    ("md", "## 2. The hypotheses\nThe three files hold the same parts, the film (its resistance R_film_0 = R_ion ‖ R_e, the electronic fraction f_e of its conductance, its capacitance roughness × ε ε₀ / d with the compact layer's 7–10 nm) and charge transfer with the double layer (R_ct, C_dl), with the same priors; they differ only in what drifts."),
    ("code", "hyps = hypotheses.load_folder(MODELS_DIR / 'ocv_drift')\nfor h in hyps:\n    print(f'{h.name}: {h.title}\\n   {h.physics}\\n   free parameters: {h.free_parameters()}\\n')"),
    ("md", "## 3. Spectra alone"),
    ("code", "from mgbayes import sensitivity\n\nfits = {h.name: inference.fit(h, series, random_seed=1, **SAMPLER) for h in hyps}\nspectra_only = compare.compare(fits, unit='spectrum')\nprint(spectra_only)\n# the spectra see two arcs; which one drifts is what the priors allow: parameters in the far tails of theirs\nfor name, fit in fits.items():\n    print(name, sensitivity.conflicts(fit).query('conflict').parameter.tolist())"),
    ("md", "## 4. Adding the polysulfide experiment as data: the GC‖GC and Mg‖Mg cells share the film's electronic resistance R_e with every hypothesis"),
    ("code", "from mgbayes import study\nfrom mgbayes.demo import STUDY\n\nexperiment = next(e for e in study.load_study(STUDY).experiments if e.name == 'ocv_drift_with_Re')\nfits_re = {h.name: inference.fit(h, series, random_seed=1, **SAMPLER) for h in study.load_hypotheses(experiment)}\nwith_re = compare.compare(fits_re, unit='spectrum')\nprint(with_re)"),
    ("md", "## 5. What the winning hypothesis says, with uncertainty\nThe double-layer capacitance by Eq. 1, the film's electronic resistance from the joint fit, and the thickness and permittivity its capacitance implies, beside the paper's 0.5 nm and ε 4.8–6.9."),
    ("code", "best = fits_re[with_re.table.hypothesis.iloc[0]]\ntable = report.parameter_table(best)\ntable[table.parameter.isin(['R_el', 'R_ct_0', 'R_ct_rate', 'C_dl', 'R_e', 'thickness_nm_eps10', 'eps_film_flat'])]"),
    ("code", "fig = plots.drift(fits)\nfig"),
    ("code", "fig = plots.nyquist(best)\nfig"),
    ("code", "fig = plots.comparison(with_re.table)\nfig"),
]

PLATING = [
    ("md", "# What limits the plating overpotential?\n\nThe paper reports a plating overpotential of ≈ 550 mV at 0.3, 1 and 3 mA·cm⁻² and ≈ 800 mV at 10 mA·cm⁻². Tunnelling through the film (Simmons), multistep charge transfer with an onset, a mass-transport limit, or tunnelling and charge transfer in series?\n\n**Data:** summary values read from the paper (`data/paper/`, see its README), not raw data."),
    ("code", SETUP),
    ("code", "curve = io.read_iv(Path(mgbayes.__file__).parents[1] / 'data' / 'paper' / 'plating_iv.csv').select(process='plating')\nprint(curve.current_density_mA_cm2, curve.overpotential_V)"),
    ("code", "hyps = hypotheses.load_folder(MODELS_DIR / 'plating_iv')\nfor h in hyps:\n    print(f'{h.name}: {h.physics}')"),
    ("code", "fits = {h.name: inference.fit(h, curve, random_seed=2, **SAMPLER) for h in hyps}\nranking = compare.compare(fits)\nprint(ranking)"),
    ("md", "A tunnelling law j = G₀(η + γη³) needs η to grow with j; it cannot stay flat at 550 mV over a decade of current, and the ranking shows it. With a dozen points the Pareto-k column says how far PSIS-LOO can be trusted; `mgbayes run` refits exactly where it cannot."),
    ("code", "fig = plots.iv(curve, fits)\nfig"),
]

BYOD = [
    ("md", "# Bring your own data\n\nA real spectrum from a potentiostat file, here a ZPlot export of a physical dummy cell (resistor in series with a parallel resistor–capacitor) from `../shared/data/instrument-files`. Any format `mgbayes.io.read` knows works the same: EC-Lab `.mpt`/`.mpr`, Gamry `.DTA`, Autolab, CH Instruments, Parstat, VersaStudio, PowerSuite, CSV."),
    ("code", SETUP),
    ("code", "FILES = Path(mgbayes.__file__).resolve().parents[2] / 'shared' / 'data' / 'instrument-files'\nspectrum = io.read(FILES / 'Circuit1_EIS_1.z')\nprint(spectrum)"),
    ("code", "print(validation.kramers_kronig_spectrum(spectrum).summary())"),
    ("md", "Two candidate circuits: the true one and one with a needless extra arc. Default priors are centred on the data's scale."),
    ("code", "def circuit(text):\n    return hypotheses.from_table({'name': text, 'experiment': 'dummy cell', 'physics': 'equivalent circuit',\n                                  'circuit': {'electrode': text, 'electrodes': 1}})\n\nfits = {text: inference.fit(circuit(text), spectrum, random_seed=3, **SAMPLER)\n        for text in ('R0-p(R1,C1)', 'R0-p(R1,C1)-p(R2,C2)')}\nfor name, idata in fits.items():\n    print(idata.attrs['diagnostics'])"),
    ("code", "print(compare.compare(fits))"),
    ("code", "report.parameter_table(fits['R0-p(R1,C1)'])"),
    ("code", "from mgbayes import fitting\nfitting.least_squares('R0-p(R1,C1)', spectrum.frequency, spectrum.impedance)"),
    ("code", "fig = plots.nyquist(fits['R0-p(R1,C1)'])\nfig"),
]


def notebook(cells):
    return {
        "cells": [
            {"id": f"cell-{k}", "cell_type": "markdown", "metadata": {}, "source": text} if kind == "md" else
            {"id": f"cell-{k}", "cell_type": "code", "metadata": {}, "source": text, "outputs": [],
             "execution_count": None}
            for k, (kind, text) in enumerate(cells)
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                     "language_info": {"name": "python"}},
        "nbformat": 4, "nbformat_minor": 5,
    }


if __name__ == "__main__":
    for name, cells in (("01_ocv_drift", OCV), ("02_plating_iv", PLATING), ("03_bring_your_own_data", BYOD)):
        (HERE / f"{name}.ipynb").write_text(json.dumps(notebook(cells), indent=1, ensure_ascii=False) + "\n")
