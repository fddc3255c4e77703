"""Which measurement would decide? Candidate designs ranked for hypotheses an experiment cannot tell apart.

For an experiment whose comparison leaves hypotheses tied ("indistinguishable
from best"; when none are, the best and the runner-up), each candidate
measurement is tried by simulation: parameters from each tied hypothesis's
posterior on the study's data, data simulated at the candidate's design,
the tied hypotheses fitted and compared by the rule of ``mgbayes run``
(:func:`mgbayes.calibrate.decide`). A candidate is better the more often
it makes the verdict decisive for the hypothesis that generated the data
(``p_decisive``) and the larger the expected ELPD margin of the generator
over the best other hypothesis (``expected_elpd_diff``).

Candidates: the experiment as measured, the defaults for impedance series
(the frequency range a decade further down, a decade further up, twice the
duration at the same spacing) and any declared in the study file::

    [[experiment]]
    name = "ocv_drift"
    ...
    [[experiment.design]]
    name = "down to 1 mHz, half the noise"
    f_min = 1e-3          # Hz; also f_max, per_decade (points per decade)
    noise = 0.5           # factor on the fitted noise level
    [[experiment.design]]
    name = "80 h"
    duration_h = 80       # spectra at the same spacing; or spectra = N over the same span;
                          # both: N spectra spread over duration_h
    [[experiment.design]]
    name = "currents to 30 mA cm-2"
    current_factor = 3    # I-V and transients: every current density times this

The prior of every hypothesis stays the one of the study's data, so only the
measurement changes.
"""

import dataclasses
import time
import tomllib
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from . import calibrate, compare, report
from .errors import HypothesisError

COLUMNS = ["experiment", "candidate", "generator", "p_decisive", "expected_elpd_diff", "p_wrong", "p_unreliable",
           "replicates"]
DESIGN_KEYS = {"name", "f_min", "f_max", "per_decade", "duration_h", "spectra", "noise", "current_factor"}
AS_MEASURED = "as measured"


# -- candidate designs --------------------------------------------------------------------------

def extend_frequency(frequency, *, f_min=None, f_max=None, per_decade=None):
    """A log-spaced grid (descending) from ``f_max`` to ``f_min`` at the data's points per decade (or ``per_decade``)."""
    f = np.sort(np.asarray(frequency, dtype=float))[::-1]
    density = per_decade or ((f.size - 1) / np.log10(f[0] / f[-1]) if f.size > 1 else 10.0)
    top, bottom = f_max or f[0], f_min or f[-1]
    n = int(round(np.log10(top / bottom) * density)) + 1
    return np.logspace(np.log10(top), np.log10(bottom), max(n, 2))


def impedance_design(obs, *, frequency=None, times_h=None):
    """Observations of a spectra series at another frequency grid and/or other times (values zero)."""
    frequency = obs.frequency if frequency is None else np.asarray(frequency, dtype=float)
    times = obs.inputs["t"] if times_h is None else np.asarray(times_h, dtype=float)
    return dataclasses.replace(obs, values=np.zeros((times.size, frequency.size, 2)), frequency=frequency,
                               coords={**obs.coords, "time": times, "frequency": frequency},
                               inputs={**obs.inputs, "t": times},
                               # a planned measurement has no measured time per point: each spectrum at its time
                               extra={k: v for k, v in obs.extra.items() if k != "sweep_time_h"})


def candidate(obs, spec, where):
    """``(obs, noise_factor)`` of one declared candidate (a dict of :data:`DESIGN_KEYS`)."""
    unknown = set(spec) - DESIGN_KEYS
    if unknown or "name" not in spec:
        raise HypothesisError(f"{where}: design candidate {spec!r}: needs a name and keys from {sorted(DESIGN_KEYS)}")
    for key, value in spec.items():
        if key != "name" and (not isinstance(value, (int, float)) or not value > 0):
            raise HypothesisError(f"{where}: design candidate {spec['name']!r}: {key} = {value!r}; "
                                  "expected a positive number")
    frequency_keys, time_keys = {"f_min", "f_max", "per_decade"} & set(spec), {"duration_h", "spectra"} & set(spec)
    if (frequency_keys or time_keys) and obs.kind != "impedance":
        raise HypothesisError(f"{where}: design candidate {spec['name']!r}: {sorted(frequency_keys | time_keys)} "
                              f"apply to impedance series, not to {obs.kind} data")
    if "current_factor" in spec and obs.kind == "impedance":
        raise HypothesisError(f"{where}: design candidate {spec['name']!r}: current_factor applies to I-V and "
                              "transient data, not to impedance")
    if "cell" in obs.pointwise_dims:
        raise HypothesisError(f"{where}: design candidates for many-cell experiments are not supported")
    out = obs
    if frequency_keys or time_keys:
        frequency = extend_frequency(obs.frequency, f_min=spec.get("f_min"), f_max=spec.get("f_max"),
                                     per_decade=spec.get("per_decade")) if frequency_keys else None
        out = impedance_design(obs, frequency=frequency, times_h=_times(obs.inputs["t"], spec) if time_keys else None)
    if "current_factor" in spec:
        out = dataclasses.replace(out, inputs={**out.inputs, "j": out.inputs["j"] * float(spec["current_factor"])})
    return out, float(spec.get("noise", 1.0))


def _times(t, spec):
    """Spectrum times for ``duration_h`` (same spacing), ``spectra`` (same span), or both (``spectra`` over ``duration_h``)."""
    t = np.asarray(t, dtype=float)
    if "spectra" in spec and "duration_h" in spec:
        return np.linspace(t[0], t[0] + float(spec["duration_h"]), int(spec["spectra"]))
    if "spectra" in spec:
        return np.linspace(t[0], t[-1], int(spec["spectra"]))
    step = float(np.median(np.diff(t))) if t.size > 1 else 1.0
    return t[0] + step * np.arange(int(round(float(spec["duration_h"]) / step)))


def defaults(obs):
    """Default candidates: for impedance series a decade further each way and twice the duration."""
    if obs.kind != "impedance" or "cell" in obs.pointwise_dims:
        return []
    f = obs.frequency
    out = [{"name": "f_min / 10", "f_min": float(f.min()) / 10, "f_max": float(f.max())},
           {"name": "f_max x 10", "f_max": float(f.max()) * 10, "f_min": float(f.min())}]
    t = obs.inputs["t"]
    if t.size > 1:
        step = float(np.median(np.diff(t)))
        out.append({"name": "double duration", "duration_h": 2 * t.size * step})
    return out


def declared(study_path, experiment_name):
    """The ``[[experiment.design]]`` tables of an experiment in the study file."""
    table = tomllib.loads(Path(study_path).read_text(encoding="utf-8"))
    for e in table.get("experiment", []):
        if e.get("name") == experiment_name:
            specs = e.get("design", [])
            if not isinstance(specs, list) or not all(isinstance(s, dict) for s in specs):
                raise HypothesisError(f"{study_path} [experiment {experiment_name!r}]: design must be a list of "
                                      "[[experiment.design]] tables")
            return specs
    return []


def candidates(study_path, experiment_name, obs, *, only=None):
    """Name → ``(obs, noise_factor)``: as measured, the defaults, then the declared candidates.

    ``only`` keeps the named ones (and "as measured", the baseline); an
    unknown name is a one-line error listing the known ones.
    """
    where = f"{study_path} [experiment {experiment_name!r}]"
    out = {AS_MEASURED: (obs, 1.0)}
    for spec in defaults(obs) + declared(study_path, experiment_name):
        if spec["name"] in out:
            raise HypothesisError(f"{where}: design candidate name {spec['name']!r} is used twice")
        out[spec["name"]] = candidate(obs, spec, where)
    if only:
        unknown = [n for n in only if n not in out]
        if unknown:
            raise HypothesisError(f"{where}: no design candidate named {unknown[0]!r}; known: {list(out)}")
        out = {k: v for k, v in out.items() if k == AS_MEASURED or k in only}
    return out


# -- which hypotheses are tied -----------------------------------------------------------------

def tied(comparison):
    """Hypotheses the comparison cannot tell apart from the best (with it); else the best and the runner-up.

    A row whose fit is flagged unreliable still counts by its ELPD difference.
    """
    table = comparison.table
    names = [table.hypothesis.iloc[0]] + list(
        table.hypothesis[table.verdict.str.startswith("indistinguishable from best")])
    return names if len(names) > 1 else list(table.hypothesis.iloc[:2])


def between(names, hypotheses, where):
    """Check the hypotheses named by ``--between`` (at least two, all of the experiment); returns them."""
    known = [h.name for h in hypotheses]
    unknown = [n for n in names if n not in known]
    if unknown or len(set(names)) < 2:
        raise HypothesisError(f"{where}: --between {' '.join(names)}: name two or more of its hypotheses {known}")
    return list(dict.fromkeys(names))


# -- the command ---------------------------------------------------------------------------------

def rank(rows):
    """``design.csv`` rows from replicate rows (one per experiment, candidate, generator)."""
    frame = pd.DataFrame(rows)
    out = []
    for (experiment, name, generator), g in frame.groupby(["experiment", "candidate", "generator"], sort=False):
        margin = [r["elpd"][generator] - max(v for k, v in r["elpd"].items() if k != generator)
                  for r in g.to_dict("records")]
        right = (g.verdict == "preferred") & (g.best == generator)
        wrong = (g.verdict == "preferred") & (g.best != generator)
        out.append({"experiment": experiment, "candidate": name, "generator": generator,
                    "p_decisive": float(right.mean()), "expected_elpd_diff": float(np.mean(margin)),
                    "p_wrong": float(wrong.mean()), "p_unreliable": float((g.verdict == "unreliable").mean()),
                    "replicates": len(g)})
    return pd.DataFrame(out, columns=COLUMNS)


def conclusion(table, hypotheses):
    """Sentences: the candidate that most often decides over all generators, then per generator.

    Candidates are ranked by the mean over generators of ``p_decisive``, then
    of ``expected_elpd_diff``. Per generator the best candidate is named with
    its count; a generator that no candidate makes decisive is said so (for a
    hypothesis nested in another, "indistinguishable" is the right verdict on
    its own data: PSIS-LOO's penalty for an unneeded parameter is far below
    the rule's threshold of :data:`mgbayes.compare.DIFF_MIN`).
    """
    mean = table.groupby("candidate", sort=False).agg(p=("p_decisive", "mean"), wrong=("p_wrong", "max"),
                                                      margin=("expected_elpd_diff", "mean"))
    best = mean.sort_values(["p", "margin"], ascending=False).iloc[0]
    base = mean.loc[AS_MEASURED] if AS_MEASURED in mean.index else None
    names = " from ".join(f"'{h}'" for h in hypotheses)
    if best.p == 0:
        top = mean.sort_values("margin", ascending=False).iloc[0]
        return (f"No candidate separates {names}: none made the verdict decisive for the right hypothesis in "
                f"{int(table.replicates.min())} simulated data set(s) per generator. The largest expected ELPD margin "
                f"of the generator, {top.margin:.1f}, comes from '{top.name}'; try more replicates, or declare "
                "stronger candidates in the study file ([[experiment.design]], e.g. a lower noise level). "
                + " ".join(_per_generator(table)))
    text = (f"To separate {names}, measure '{best.name}': the verdict is decisive for the right hypothesis in "
            f"{best.p:.0%} of simulated data sets on average over the generators (expected ELPD margin "
            f"{best.margin:.1f}; wrong preferences at most {best.wrong:.0%})")
    if base is not None and best.name != AS_MEASURED:
        text += f", against {base.p:.0%} as measured"
    return text + ". " + " ".join(_per_generator(table))


def _per_generator(table):
    """One sentence per generator: its best candidate, or that none decides."""
    out = []
    for generator, g in table.groupby("generator", sort=False):
        top = g.sort_values(["p_decisive", "expected_elpd_diff"], ascending=False).iloc[0]
        n = int(top.replicates)
        if top.p_decisive > 0:
            out.append(f"Data from '{generator}': '{top.candidate}' decides in {round(top.p_decisive * n)} of {n} "
                       f"(ELPD margin {top.expected_elpd_diff:.1f}).")
        else:
            out.append(f"Data from '{generator}': no candidate makes the verdict decisive (largest ELPD margin "
                       f"{g.expected_elpd_diff.max():.1f}, under '{g.loc[g.expected_elpd_diff.idxmax(), 'candidate']}').")
    unreliable = table.p_unreliable.mean() if "p_unreliable" in table else 0.0
    if unreliable >= 0.5:
        out.append(f"{unreliable:.0%} of the simulated comparisons were 'unreliable' (a fit failed the convergence "
                   "gate of mgbayes run): no measurement makes the verdict decisive while a hypothesis cannot be "
                   "fitted reliably; see the fits' diagnostics first.")
    return out


def plot(table, *, title=""):
    """p_decisive per candidate (bars per generator) with 95 % Clopper–Pearson intervals."""
    from matplotlib.figure import Figure

    from .plots import PALETTE, style

    names = list(dict.fromkeys(table.candidate))
    generators = list(dict.fromkeys(table.generator))
    width = 0.8 / len(generators)
    with style():
        fig = Figure(figsize=(max(4.0, 1.2 * len(names) + 1.5), 3.0), layout="constrained")
        ax = fig.subplots()
        for k, g in enumerate(generators):
            rows = table[table.generator == g].set_index("candidate").reindex(names)
            x = np.arange(len(names)) + (k - (len(generators) - 1) / 2) * width
            p, n = rows.p_decisive.to_numpy(), rows.replicates.to_numpy()
            ci = np.array([calibrate.interval(round(pi * ni), ni) for pi, ni in zip(p, n)])
            ax.bar(x, p, width, color=PALETTE[k % len(PALETTE)], label=f"data from {g}")
            ax.errorbar(x, p, yerr=[p - ci[:, 0], ci[:, 1] - p], fmt="none", color="#333333", lw=0.8, capsize=2)
        ax.set_xticks(range(len(names)), names, rotation=20, ha="right")
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("P(verdict decisive and right)")
        ax.legend(frameon=False, fontsize=8)
        ax.set_title(title)
    return fig


def run(study_path, out_dir, *, replicates=10, experiment=None, scheduler=None, workers=None, quick=False,
        sampler=None, only=None, hypotheses=None, log=print, command=""):
    """Rank candidate measurements for every experiment (or one); writes ``design.csv``, figures and a report.

    ``only`` names the candidates to try (besides "as measured"); default all.
    ``hypotheses`` names the ones to separate; default those the study's data
    leave tied (:func:`tied`).

    Returns
    -------
    pandas.DataFrame
        The ``design.csv`` table.
    """
    from . import plots, study

    if not isinstance(replicates, (int, np.integer)) or replicates < 1:
        raise HypothesisError(f"--replicates {replicates!r}: need a positive whole number of replicates")
    study_obj = study.load_study(study_path)
    experiments = calibrate.select(study_obj, experiment)
    prepared = [(e, *calibrate.prepare(e)) for e in experiments]
    plans = [(e, hyps, obs, priors, candidates(study_obj.path, e.name, obs, only=only)) for e, hyps, obs, priors in prepared]
    # every check before the first fit: the hypotheses named to separate, per experiment
    named = {e.name: between(hypotheses, hyps, f"{study_obj.path} [experiment {e.name!r}]")
             for e, hyps, *_ in plans} if hypotheses else {}
    out_dir = Path(out_dir)
    scheduler = scheduler or study_obj.scheduler
    workers = workers or study_obj.workers
    tables, sections, tasks, labels, context = [], [], {}, {}, []
    for exp, hyps, obs, priors, options in plans:
        log(f"{exp.name}: fitting the hypotheses to the study's data")
        fits, _ = study.fit_all(exp, out_dir, quick=quick, log=log)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            comparison = compare.compare(fits, unit=exp.unit)
        names = named.get(exp.name) or tied(comparison)
        subset = [h for h in hyps if h.name in names]
        log(f"{exp.name}: {comparison.verdict}")
        log(f"{exp.name}: {len(options)} candidate(s) × {len(names)} generators × {replicates} replicate(s) for "
            f"{', '.join(names)}")
        settings = calibrate.sampler_settings(exp, quick=quick, overrides=sampler)
        for label, (design_obs, noise) in options.items():
            folder = (out_dir / "design" / exp.name /
                      calibrate.settings_key(exp, subset, priors, design_obs, settings, "posterior", f"{label} {noise}"))
            own = calibrate.tasks_for(exp, subset, design_obs, priors, replicates=replicates, source="posterior",
                                      sampler=settings, folder=folder, fits=fits, seed=exp.sampler["seed"],
                                      noise_factor=noise, label=f"{label}: ")
            tasks.update(own)
            labels.update(dict.fromkeys(own, label))
        context.append((exp, names, comparison))
    done = dict(zip(tasks, calibrate.run_tasks(tasks, scheduler=scheduler, workers=workers, log=log)))
    for exp, names, comparison in context:
        rows = [{**row, "candidate": labels[name]} for name, row in done.items() if row["experiment"] == exp.name]
        table = rank(rows)
        tables.append(table)
        sentence = conclusion(table, names)
        log(f"{exp.name}: {sentence}")
        figure = plots.save(plot(table, title=f"{exp.name}: which measurement decides?"),
                            out_dir / "figures" / f"design_{exp.name}")
        sections.append({"heading": f"{exp.name}: which measurement would decide?", "text": "\n\n".join([
            f"On the study's data: {comparison.verdict}",
            f"Candidates were tried on {replicates} data set(s) per tied hypothesis, simulated from its posterior "
            "at the candidate's design; p_decisive is the share where the rule preferred the hypothesis that "
            "generated the data, expected_elpd_diff its mean ELPD margin over the best other one.", sentence]),
            "tables": [("Candidates ranked", table.sort_values(["p_decisive", "expected_elpd_diff"], ascending=False))],
            "figures": [(figure[0], "P(decisive and right) per candidate and generator, 95 % intervals")]})
    frame = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=COLUMNS)
    report.write_atomic(out_dir / "design.csv", frame.to_csv(index=False))
    report.write_report(out_dir, title=f"Design: {study_obj.title}", sections=sections,
                        provenance={"command": command, "study": str(study_obj.path), "data": study_obj.provenance,
                                    "written": time.strftime("%Y-%m-%d %H:%M:%S")})
    return frame
