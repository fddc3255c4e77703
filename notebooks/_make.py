"""Write the worked-analysis notebooks from their cells (run: python notebooks/_make.py [--execute]).

Keeping the cells here keeps the notebooks diff-friendly; the .ipynb files
are what users open, saved with their outputs by ``--execute`` (a Jupyter
kernel, ``pip install -e '.[notebooks]'``), and tests/test_notebooks.py
checks their cells against this file and runs them top to bottom.
"""

import json
from pathlib import Path

HERE = Path(__file__).parent

SETUP = '''import os
from pathlib import Path

import numpy as np
import mgbayes
from mgbayes import compare, hypotheses, inference, io, kk, plots, report, resources, validation
from mgbayes.demo import AREA_CM2, DEMO_DIR
from mgbayes.hypotheses import MODELS_DIR

# In Jupyter, show mgbayes's figures (Matplotlib Figure objects, made without pyplot) inline.
try:
    get_ipython().run_line_magic('matplotlib', 'inline')
except NameError:  # plain Python
    pass

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
    ("md", "# What limits the plating overpotential?\n\nThe paper reports a plating overpotential of ≈ 550 mV at 0.3, 1 and 3 mA·cm⁻² and ≈ 800 mV at 10 mA·cm⁻². Five hypotheses, each a file in `models/plating_iv/` and each with the uncompensated resistance R_u·j in series: electrons **tunnelling** through the 7–10 nm film (Simmons, from its thickness and barrier height), **hopping** through it (Poole–Frenkel), **multistep charge transfer with an onset**, Tafel kinetics with a **limiting current** (Koutecký–Levich), and Mg deposition saturating at a limiting current while a **second process** carries the excess (two channels).\n\n**Data:** summary values read from the paper (`data/paper/`, see its README), not raw data: one row per current density, with an assumed spread of 30 mV as a known sd."),
    ("code", SETUP),
    ("code", "curve = io.read_iv(resources.data_dir() / 'paper' / 'plating_iv.csv').select(process='plating')\nprint(curve.current_density_mA_cm2, curve.overpotential_V, curve.sd_V)"),
    ("code", "hyps = hypotheses.load_folder(MODELS_DIR / 'plating_iv')\nfor h in hyps:\n    print(f'{h.name}: {h.physics}')"),
    ("code", "fits = {h.name: inference.fit(h, curve, random_seed=2, **SAMPLER) for h in hyps}\n# does a law predict a current density it has not seen? leave one current out (n = 4)\nranking = compare.compare(fits, unit='current')\nprint(ranking)"),
    ("code", "print('paper'.ljust(22), np.round(1000 * curve.overpotential_V), '± ', np.round(1000 * curve.sd_V), 'mV')\nfor name, fit in fits.items():\n    median = fit['posterior_predictive']['eta'].median(('chain', 'draw')).values\n    print(f'{name:22s}', np.round(1000 * median), 'mV (posterior-predictive median)')"),
    ("md", "Conduction through the film (tunnelling or hopping) makes its voltage grow at least as j^(1/3): it cannot stay flat over a decade of current, whatever the film. A flat overpotential needs a reaction that is fast once past its onset (a current scale j_ref above the applied currents); in the Tafel region instead it would rise by at least 29.6 mV per decade (n = 2), plus R_u·j. The jump at 10 mA·cm⁻² then needs Mg deposition to saturate: in the two-channel hypothesis a second process carries the excess. With four values of ±30 mV several laws predict the left-out currents about equally well; the verdict column says which the data can and cannot tell apart, and the Pareto-k column how far PSIS-LOO can be trusted (`mgbayes run` refits exactly where it cannot)."),
    ("code", "fig = plots.iv(curve, fits)\nfig"),
]

TEMPLATE = '''name = "{name}"
family = "ssb_cycling"
title = "{title}"
physics = "{physics}"

[circuit]
series = "R_s"
electrode = "p(R_int,CPE_int)-CPE_d"
electrodes = 1

[drift]
R_int = "{law}"

[noise]
model = "proportional"
'''

STUDY = '''title = "Interfacial growth of an all-solid-state cell"
provenance = "measured"

[sampler]
{sampler}
seed = 4

[[experiment]]
name = "ssb_cycling"
data = "{data}"
hypotheses = "hypotheses"
unit = "point"
frequency_Hz = [0.005, 1.1e4]
{spectra}
max_refits = 0
'''

BYOD = [
    ("md", "# Your own time series: from a potentiostat file to a ranked set of hypotheses\n\n"
           "A real measurement, not a demo: galvanostatic EIS of a commercial all-solid-state cell (TDK CeraCharge), "
           "recorded by a BioLogic potentiostat during formation and then every ~10 cycles, as EC-Lab `.mpr` files "
           "(`notebooks/data/ssb-ceracharge/`, MIT licence, see its README). The question a user of such data asks: "
           "**does the interfacial resistance keep growing with time, or does it level off?**\n\n"
           "The steps: read the files, check every spectrum with the Kramers–Kronig test, pick the part to fit, "
           "write each hypothesis as a small TOML file, fit and rank them, read the results with ArviZ, and run "
           "the same analysis as a study file that writes a report."),
    ("code", SETUP + "\n\nimport arviz as az\n\n"
             "# the data beside this notebook (or, run from elsewhere, in the repository's notebooks/ folder)\n"
             "DATA = Path('data', 'ssb-ceracharge')\n"
             "if not DATA.is_dir():\n"
             "    DATA = Path(mgbayes.__file__).resolve().parents[1] / 'notebooks' / 'data' / 'ssb-ceracharge'\n"
             "TEMPLATE = " + repr(TEMPLATE) + "\nSTUDY = " + repr(STUDY)),
    ("code", "formation = mgbayes.read(DATA / 'Cell001_Form_20uA_25T_30RH_Cycle1to10_01_GEIS_CA1.mpr')\n"
             "cycling = mgbayes.read(DATA / 'Cell001_Cyc_20uA_25T_30RH_Cycle11to100_01_GEIS_CA1.mpr')\n"
             "print(formation)\nprint(cycling)\nprint('cycling spectra at', cycling.time_h.round(0), 'h')"),
    ("md", "## 1. Is every spectrum fit to be fitted? Linear Kramers–Kronig test\n"
           "A spectrum that changed while it was measured cannot be explained by any circuit. `mgbayes.kk` tests "
           "each one (Schönleber et al. 2014) and flags those whose residuals exceed 5 % of |Z|."),
    ("code", "kk.table(formation, kk.check(formation))"),
    ("md", "The first formation spectrum fails: the cell's impedance was collapsing while it was measured "
           "(the first cycles), so it was not stationary. The cycling spectra all pass:"),
    ("code", "checked = kk.table(cycling, kk.check(cycling))\nprint(kk.summary(checked))\n"
             "fig = plots.kk_residuals(cycling)\nfig"),
    ("md", "## 2. Choose the part to fit\nSeries select spectra by position (`series[[0, 2, 4]]`), by time and "
           "by frequency. Here: every cycling spectrum at every frequency up to 10 kHz. In a study file the same "
           "selection is `spectra = [...]`, `time_h = [low, high]`, `frequency_Hz = [low, high]`."),
    ("code", "series = cycling.select(frequency_Hz=(0.005, 1.1e4))\nif QUICK:\n    series = series[[0, 4, 8]]\n"
             "fig = plots.nyquist(series, times='all')\nfig"),
    ("md", "## 3. Write the hypotheses\nA depressed arc (the interface: `R_int` ‖ `CPE_int`) after the bulk "
           "resistance `R_s`, then a low-frequency tail (`CPE_d`). The two hypotheses differ only in how `R_int` "
           "changes with time: linearly, or saturating towards a final value. Each is one TOML file; priors the "
           "file does not state are centred on the data. The drift laws and their parameters are tabulated in "
           "`docs/physics.md`."),
    ("code", "WORK = Path('my_cell_study')\n(WORK / 'hypotheses').mkdir(parents=True, exist_ok=True)\n"
             "for name, law, title, physics in [\n"
             "    ('linear_growth', 'linear', 'Interface keeps growing',\n"
             "     'R_int grows in proportion to time (a layer thickening at a constant rate).'),\n"
             "    ('levelling_off', 'saturating', 'Interface levels off',\n"
             "     'R_int approaches a final value (a layer that stops growing).'),\n"
             "]:\n"
             "    text = TEMPLATE.format(name=name, law=law, title=title, physics=physics)\n"
             "    (WORK / 'hypotheses' / f'{name}.toml').write_text(text)\n"
             "hyps = [mgbayes.load(p) for p in sorted((WORK / 'hypotheses').glob('*.toml'))]\n"
             "for h in hyps:\n    print(h.name, h.free_parameters())\n"
             "print((WORK / 'hypotheses' / 'levelling_off.toml').read_text())"),
    ("md", "## 4. Fit and rank\nBy PSIS-LOO, one frequency point (Re and Im) at a time. A whole spectrum "
           "(`unit='spectrum'`) would ask how well each drift law predicts a spectrum it has not seen, but with "
           "nine spectra leaving one out moves the posterior too far for importance sampling: the Pareto k "
           "column says so, and a study then needs exact refits (`max_refits`)."),
    ("code", "fits = {h.name: mgbayes.fit(h, series, seed=4, **SAMPLER) for h in hyps}\n"
             "for result in fits.values():\n    print(result.attrs['diagnostics'])\n"
             "ranking = mgbayes.compare(fits)\nprint(ranking)"),
    ("code", "mgbayes.summary(fits['levelling_off'])"),
    ("code", "fig = plots.drift(fits, quantities=['R_int'])\nfig"),
    ("code", "fig = plots.residuals(fits[ranking.table.hypothesis.iloc[0]])\nfig"),
    ("md", "## 5. Read the results with ArviZ\nA result is an `xarray.DataTree` with the groups ArviZ expects "
           "(prior and posterior, their predictive draws, the pointwise log-likelihood, the data), and every "
           "variable carries its unit."),
    ("code", "result = fits['levelling_off']\nprint(list(result.children))\n"
             "names = ['R_s', 'R_int_0', 'R_int_inf', 'R_int_tau', 'noise_sigma']\n"
             "print({name: result['posterior'][name].attrs['unit'] for name in names})\n"
             "az.summary(result, var_names=names)"),
    ("code", "pc = az.plot_prior_posterior(result, var_names=['R_int_0', 'R_int_inf', 'R_int_tau'])\n"
             "pit = mgbayes.loo_pit(result)['Z']\n"
             "print('LOO-PIT mean', round(float(pit.mean()), 3), '(0.5 for a calibrated model)')"),
    ("md", "## 6. The same analysis as a study file\nA study file names the data, the selection, the hypotheses "
           "and the sampler; `mgbayes run` (or `mgbayes.run`) fits, compares (with exact refits where PSIS-LOO "
           "is unreliable, unless `max_refits = 0`) and writes tables, figures, `report.html` and one NetCDF "
           "result per fit."),
    ("code", "data = (DATA / 'Cell001_Cyc_20uA_25T_30RH_Cycle11to100_01_GEIS_CA1.mpr').resolve().as_posix()\n"
             "sampler = '\\n'.join(f'{k} = {v}' for k, v in SAMPLER.items())\n"
             "spectra = 'spectra = [0, 4, 8]' if QUICK else ''\n"
             "(WORK / 'study.toml').write_text(STUDY.format(sampler=sampler, data=data, spectra=spectra))\n"
             "comparisons = mgbayes.run(WORK / 'study.toml', out=WORK / 'results', log=lambda line: None)\n"
             "print(comparisons['ssb_cycling'].verdict)\n"
             "print(sorted(p.name for p in (WORK / 'results').iterdir()))"),
    ("code", "saved = az.from_netcdf(WORK / 'results' / 'fits' / 'ssb_cycling' / 'levelling_off.nc')\naz.loo(saved)"),
]

STUDY_TEXT = "\n".join([
    "study_file = STUDY",
    "if QUICK:",
    "    series = io.read(DEMO_DIR / 'ocv_drift_MgMg.mpt', area_cm2=AREA_CM2, symmetric=True)[::10]",
    "    io.write_mpt(series, OUT / 'ocv.mpt')",
    "    study_file = OUT / 'study.toml'",
    "    study_file.write_text('\\n'.join([",
    "        'title = \"OCV drift, every tenth spectrum\"', 'provenance = \"synthetic\"',",
    "        '[sampler]', 'draws = 300', 'tune = 300', 'chains = 2', 'seed = 1',",
    "        '[[experiment]]', 'name = \"ocv_drift\"', 'data = \"ocv.mpt\"', f'area_cm2 = {AREA_CM2}', 'symmetric = true',",
    "        f'hypotheses = \"{(MODELS_DIR / \"ocv_drift\").as_posix()}\"']))",
    "print(study_file)",
])

CALIBRATION = [
    ("md", "# How often is the verdict right, and which measurement would decide?\n\nA comparison of hypotheses ends in a verdict: one is *preferred*, or the data cannot tell them apart. How often is that verdict right on data like ours? Here each OCV hypothesis in turn generates data sets at the experiment's own design (times, frequencies, electrode area), with parameters drawn from its posterior on the demo spectra and its own noise model; every hypothesis is fitted to each set and the rule of `mgbayes run` decides. Then `mgbayes design` asks which further measurement would separate the hypotheses the spectra leave tied.\n\n**Data:** the demo spectra are *synthetic* (`mgbayes/demo.py`). The same runs from the command line: `mgbayes calibrate models/studies/paper.toml --experiment ocv_drift` and `mgbayes design models/studies/paper.toml --experiment ocv_drift`."),
    ("code", SETUP + "\nimport tempfile\nfrom mgbayes import calibrate, design\nfrom mgbayes.demo import STUDY\n\nREPLICATES = 1 if QUICK else 20\nOUT = Path(tempfile.mkdtemp(prefix='calibration_'))"),
    ("md", "The study: the demo's OCV experiment alone. With `QUICK` (the tests) it uses every tenth spectrum and one replicate, so the notebook runs in minutes; numbers from that reduced run only show the workflow."),
    ("code", STUDY_TEXT),
    ("md", "## 1. Calibration: verdicts on data from each hypothesis"),
    ("code", "rows = calibrate.run(study_file, OUT / 'calibration', experiment='ocv_drift', replicates=REPLICATES, quick=QUICK,\n                     log=lambda line: None)\nrows"),
    ("md", "The confusion matrix: rows are the hypothesis that generated the data, columns what the rule concluded. A paper reports the diagonal (how often the right hypothesis is preferred), the *indistinguishable* share (how often the experiment cannot decide), the *unreliable* share (failed fits or untrustworthy PSIS-LOO), and the **false-preference rate** with its 95 % interval: how often a wrong hypothesis was called preferred, beside the rule's nominal rate."),
    ("code", "table = calibrate.confusion(rows)\nprint(calibrate.summary_text('ocv_drift', table))\ntable"),
    ("code", "fig = calibrate.plot_confusion(table, title='OCV drift: verdicts on simulated data')\nfig"),
    ("md", "## 2. Design: which measurement would separate `charge_transfer` from `mixed`?\nThe two differ only in whether the film's ionic path drifts too. The spectra see the film as R_ion ‖ R_e, so a drift of R_ion shows only in proportion to the film's ionic share of conductance, and a linear drift shows more the longer it runs. Candidates: the experiment as measured, the frequency range a decade further down or up, twice the duration (the defaults), and those the study file declares (`[[experiment.design]]` in `models/studies/paper.toml`: 80 h with 40 spectra, a quarter of the noise). `hypotheses=` names the pair to separate (by default, the ones the spectra leave tied); `only=` keeps some candidates (with `QUICK`, one, so the notebook runs in minutes). On the full demo run (benchmarks/README.md) neither the longer measurement nor the lower noise made the verdict decisive: the spectra put the film's ionic share of conductance near 0.4 %, so the ionic drift hides behind R_e at open circuit; a current the film must carry ionically (plating or stripping as the cell ages) is what would separate the two, once the hypotheses state how they respond to it."),
    ("code", "ranking = design.run(study_file, OUT / 'design', experiment='ocv_drift', replicates=REPLICATES, quick=QUICK,\n                     hypotheses=['charge_transfer', 'mixed'], only=['f_min / 10'] if QUICK else None,\n                     log=lambda line: None)\nranking.sort_values(['p_decisive', 'expected_elpd_diff'], ascending=False)"),
    ("code", "print(design.conclusion(ranking, list(dict.fromkeys(ranking.generator))))\nfig = design.plot(ranking, title='OCV drift: which measurement decides?')\nfig"),
    ("md", "Read as a paper would: *p_decisive* is the share of simulated data sets on which the rule preferred the hypothesis that generated them, *expected_elpd_diff* its mean ELPD margin over the best other one. The error bars come from the number of replicates: a ranking from two replicates is a sketch, and about twenty are needed before one quotes a rate."),
]


NOTEBOOKS = (("01_ocv_drift", OCV), ("02_plating_iv", PLATING), ("03_your_own_time_series", BYOD),
             ("04_calibration", CALIBRATION))


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


def execute(path, timeout=3600):
    """Run a notebook in its folder with a Jupyter kernel and save it with its outputs (needs the notebooks extra)."""
    import nbclient
    import nbformat

    book = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(book, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.write(book, path)


if __name__ == "__main__":
    import sys

    for name, cells in NOTEBOOKS:
        path = HERE / f"{name}.ipynb"
        path.write_text(json.dumps(notebook(cells), indent=1, ensure_ascii=False) + "\n")
        if "--execute" in sys.argv[1:]:  # saved outputs: pip install -e '.[notebooks]'
            print(f"executing {path.name} ...", flush=True)
            execute(path)
