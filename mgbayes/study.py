"""Run a study: fits, comparisons, tables, figures and a report (the one place that knows them all).

The study file is read by :mod:`mgbayes.studyfile` (its format is described
there), fits are made by :mod:`mgbayes.fits`, compared by
:mod:`mgbayes.compare` / :mod:`mgbayes.forecast` (many cells:
:mod:`mgbayes.cells`), and written by :mod:`mgbayes.outputs`.

Finished fits are reused when their inputs (data bytes, hypothesis text,
information priors, sampler settings, mgbayes source and numerical stack)
are unchanged; every output is written atomically.
"""

import warnings
from pathlib import Path

from . import cells, compare, fits, forecast, inference, kk, outputs, parallel
from .diagnostics import ConvergenceWarning
from .errors import HypothesisError
from .files import check_writable, lock
from .outputs import summary  # noqa: F401 - the one-screen summary, importable from here as before
# The study file's names, importable from here as before (calibrate, design, notebooks and tests use them).
from .studyfile import (QUICK, Cell, Experiment, Study, for_data, kk_table, load_data,  # noqa: F401
                        load_evidence, load_hypotheses, load_study, ohmic_prior, read_toml, select, spectra_only)


def run(study_path, out_dir, *, quick=False, log=print, command="", scheduler=None, workers=None):
    """Run a whole study and write every output to ``out_dir``.

    ``scheduler`` and ``workers`` (for the fits of many-cell experiments)
    override the study file's; see :func:`mgbayes.parallel.map_fits`.

    A study file may name a remote (``tcp://``) scheduler only when the
    command line names it too: results from it are unpickled, so it must be
    trusted. One run at a time writes to ``out_dir`` (see
    :func:`mgbayes.files.lock`).

    Returns
    -------
    dict
        Experiment name → :class:`mgbayes.compare.Comparison`.
    """
    study = load_study(study_path)
    out_dir = Path(out_dir)
    if scheduler is None and parallel.is_remote(study.scheduler):
        raise HypothesisError(f"{study.path}: scheduler = {study.scheduler!r} is a remote Dask scheduler; results come back "
                              "unpickled, so only a trusted one may be used: allow it with --scheduler on the command line")
    check_writable(out_dir)  # a read-only or full folder fails now, not after hours of sampling
    with lock(out_dir, log=log):
        return _run(study, out_dir, quick=quick, log=log, command=command, scheduler=scheduler or study.scheduler,
                    workers=workers or study.workers)


def _run(study, out_dir, *, quick, log, command, scheduler, workers):
    comparisons, results, datas, many = {}, {}, {}, {}
    twins = {e.name: spectra_only(study, e) for e in study.experiments if e.information or e.evidence or e.bounds}
    study.experiments += [t for t in twins.values() if t not in study.experiments]
    options = {"quick": quick, "scheduler": scheduler, "workers": workers, "log": log}
    for experiment in study.experiments:
        if experiment.cells is not None:
            result = run_cells(experiment, out_dir, **options)
            many[experiment.name], comparisons[experiment.name] = result, result.comparison
            results[experiment.name] = {f"{c}/{h}": r for c, rs in result.fits.items() for h, r in rs.items()}
            results[experiment.name].update({f"pooled/{h}": r for h, r in result.pooled.items()})
            datas[experiment.name] = None
            continue
        log(f"{experiment.name}: {len(experiment.hypothesis_paths)} hypotheses on {experiment.data_path.name}")
        hyps, data = prepare(experiment, log=log)
        results[experiment.name], datas[experiment.name] = fit_all(experiment, out_dir, hyps, data, quick=quick, log=log)
        if len(hyps) >= 2:
            comparison = _compare(experiment, hyps, results[experiment.name], data, quick, log)
            comparison.experiment = comparison.table["experiment"] = experiment.name  # the study's experiment
            comparison.truth = experiment.truth
            comparisons[experiment.name] = comparison
    for name, twin in twins.items():
        if name in comparisons and twin.name in comparisons:
            comparisons[name].spectra_only = twin.name
    for experiment in study.experiments:
        if experiment.evidence and any(e["shares"] for e in experiment.evidence):
            log(f"{experiment.name}: the outside data alone ...")
            task = fits.evidence_task(experiment, quick=quick)
            fitted = fits.run([task], out_dir, label=experiment.name, scheduler="serial", log=log)
            results[fits.evidence_key(experiment.name)] = {task.name.split("/", 1)[1]: fitted[task.name]}
    outputs.write_all(study, out_dir, results, datas, comparisons, quick=quick, command=command, log=log,
                      cell_results=many)
    return comparisons


def prepare(experiment, *, log=print):
    """``(hypotheses, data)`` of a single experiment, as they will be fitted, checked before any sampling.

    Every hypothesis's derived quantities are checked on the data, and the
    spectra's Kramers-Kronig summary is logged.
    """
    hyps = load_hypotheses(experiment)
    data = load_data(experiment, hyps[0].kind)
    hyps = for_data(hyps, data, log=log)
    for h in hyps:
        inference.check_derived(h, data)
    if hyps[0].kind == "impedance" and experiment.kk != "off":
        log(f"  {experiment.name}: {kk.summary(kk_table(experiment))}"
            + (" Failing spectra are left out (kk = \"exclude\")." if experiment.kk == "exclude" else ""))
    return hyps, data


def fit_all(experiment, out_dir, hyps=None, data=None, *, quick=False, log=print):
    """Fit (or reuse) every hypothesis of a single experiment; returns ``({name: DataTree}, data)``.

    A fit is reused when a finished one with the same inputs exists, in this
    experiment or another of the study (e.g. a hypothesis that the extra
    information does not touch). Chains run in parallel within each fit.
    """
    if hyps is None:
        hyps, data = prepare(experiment, log=log)
    tasks = fits.experiment_tasks(experiment, hyps, data, out_dir, quick=quick)
    done = fits.run(tasks, out_dir, label=experiment.name, scheduler="serial", retries=0, log=log)
    return {h.name: done[t.name] for h, t in zip(hyps, tasks)}, data


def run_cells(experiment, out_dir, *, quick=False, scheduler=None, workers=None, log=print):
    """Fit and compare a many-cell experiment; returns :class:`mgbayes.cells.CellResults`.

    Independent fits per cell and the hierarchical model of all cells run
    in parallel (:func:`mgbayes.parallel.map_fits`), each with its own seed.
    """
    log(f"{experiment.name}: {len(experiment.hypothesis_paths)} hypotheses on {len(experiment.cells)} cells "
        f"(pooling: {experiment.pooling})")
    hyps = load_hypotheses(experiment)
    options = {"scheduler": scheduler, "workers": workers, "log": log}
    per_cell = {c.name: {} for c in experiment.cells}
    if experiment.pooling in ("none", "both"):
        tasks = fits.cell_tasks(experiment, hyps, out_dir, quick=quick)
        done = fits.run(tasks, out_dir, label=experiment.name, **options)
        for task in tasks:
            per_cell[task.attrs["cell"]][task.hypothesis.name] = done[task.name]
    else:
        per_cell = {}
    pooled = {}
    if experiment.pooling in ("partial", "both"):
        if hyps[0].kind != "impedance":
            raise HypothesisError(f"experiment {experiment.name!r}: partial pooling is implemented for impedance "
                                  f"spectra series, not {hyps[0].kind} data")
        tasks = fits.pooled_tasks(experiment, hyps, out_dir, quick=quick)
        done = fits.run(tasks, out_dir, label=f"{experiment.name} (hierarchical, all {len(experiment.cells)} cells)",
                        **options)
        pooled = {h.name: done[t.name] for h, t in zip(hyps, tasks)}
    by_cell, comparison, wins = cells.compare_cells(experiment, per_cell, pooled)
    return cells.CellResults(experiment.cells, per_cell, by_cell, comparison, wins, pooled)


def _compare(experiment, hyps, results, data, quick, log):
    """Compare by LOO, refitting exactly where Pareto k is high (up to ``max_refits`` units), or by LFO.

    ``hyps`` are the hypotheses as fitted (:func:`prepare`).
    """
    sampler = fits.settings(experiment, quick)
    if experiment.unit == "future":
        log(f"  {experiment.name}: leave-future-out, refitting on the earlier spectra where needed ...")
        try:
            return _logging_refit_problems(
                forecast.compare_lfo, log, hyps, data, results, draws=sampler["draws"],
                tune=sampler["tune"], chains=sampler["chains"], random_seed=sampler["seed"], **experiment.forecast)
        except ValueError as err:
            raise HypothesisError(f"experiment {experiment.name!r}: {err}") from None
    refit = None
    if experiment.max_refits > 0:
        inner = compare.refitter(hyps, data, unit=experiment.unit, max_refits=experiment.max_refits,
                                 random_seed=sampler["seed"], **refit_settings(sampler))

        def refit(name, mask):
            log(f"  {experiment.name}/{name}: {int(mask.sum())} unit(s) with Pareto k > {compare.K_BAD}: "
                + ("exact refits ..." if int(mask.sum()) <= experiment.max_refits
                   else f"more than max_refits = {experiment.max_refits}, PSIS values kept and flagged"))
            return _logging_refit_problems(inner, log, name, mask)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", compare.ParetoKWarning)  # the verdict text carries it
        return compare.compare(results, unit=experiment.unit, refit=refit)


def refit_settings(sampler):
    """NUTS settings of an exact LOO refit: the fit's own, at most :data:`mgbayes.compare.REFIT` of each.

    The default study's 4 x 1000 tripled the time of a demo whose joint
    fits had outside spectra with high Pareto k, for no better refit.
    """
    return {k: min(int(sampler[k]), v) for k, v in compare.REFIT.items()}


def _logging_refit_problems(function, log, *args, **kwargs):
    """Run ``function``; refits whose chains clearly failed are logged by name, other warnings dropped."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # recorded, not shown: sampler chatter from dozens of refits
        result = function(*args, **kwargs)
    for w in caught:
        if issubclass(w.category, ConvergenceWarning):
            log(f"    refit problem: {w.message}")
    return result
