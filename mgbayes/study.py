"""Run a study: fits, comparisons, tables, figures and a report (the one place that knows them all).

The study file is read by :mod:`mgbayes.studyfile` (its format is described
there), fits are made by :mod:`mgbayes.fits`, compared by
:mod:`mgbayes.compare` / :mod:`mgbayes.forecast` (many cells:
:mod:`mgbayes.cells`), and written by :mod:`mgbayes.outputs`.

Finished fits are reused when their inputs (data bytes, hypothesis text,
information priors, sampler settings, mgbayes source and numerical stack)
are unchanged; every output is written atomically.
"""

import dataclasses
import warnings
from pathlib import Path

from . import cells, compare, fits, forecast, inference, kk, outputs, parallel
from .diagnostics import ConvergenceWarning
from .errors import HypothesisError
from .files import check_writable, lock
from .observations import observe
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
    singles = [e for e in study.experiments if e.cells is None]
    figures = {}

    def compare_fitted(experiment, hyps, data, fitted, *, alone):
        """Compare an experiment's hypotheses and draw its figures while the other experiments' fits go on.

        Exact refits run their chains one after another beside the fits
        still sampling in the pool, in parallel once no fit is left (``alone``).
        """
        if len(hyps) >= 2:
            cores = None if alone or scheduler == "serial" else 1
            comparison = _compare(experiment, hyps, fitted, data, quick, log, cores=cores)
            comparison.experiment = comparison.table["experiment"] = experiment.name  # the study's experiment
            comparison.truth = experiment.truth
            comparisons[experiment.name] = comparison
        figures[experiment.name] = outputs.experiment_figures(experiment, fitted, data, comparisons.get(experiment.name),
                                                              out_dir)

    fitted, prepared = fit_experiments(singles, out_dir, **options, then=compare_fitted)
    results.update(fitted)  # the single experiments' fits and their outside data alone
    datas.update({name: data for name, (_, data) in prepared.items()})
    for name, twin in twins.items():
        if name in comparisons and twin.name in comparisons:
            comparisons[name].spectra_only = twin.name
    order = [e.name for e in study.experiments] + [k for k in fitted if k not in prepared]  # then outside data alone
    results = {k: results[k] for k in order}
    datas = {k: datas[k] for k in order if k in datas}
    comparisons = {k: comparisons[k] for k in order if k in comparisons}
    outputs.write_all(study, out_dir, results, datas, comparisons, quick=quick, command=command, log=log,
                      cell_results=many, figures=figures)
    return comparisons


def fit_experiments(experiments, out_dir, *, quick=False, scheduler=None, workers=None, log=print, then=None):
    """Fit (or reuse) every hypothesis of several single experiments at once, and their outside data alone.

    All these fits are independent, so they run together through
    :func:`mgbayes.parallel.map_fits` (a process pool by default), each
    fit's chains one after another in its worker: while one fit compiles,
    searches its mode or evaluates its draws, another samples, and both
    cores stay busy. With ``scheduler="serial"`` the fits run one after
    another here, each with its chains in parallel. The draws are the same
    either way (every fit has its own seed). Fits with the same inputs
    (:func:`mgbayes.fits.fit_key`) are made once.

    The smallest experiments (fewest observed values) are fitted first, and
    ``then(experiment, hypotheses, data, {hypothesis: DataTree}, alone=False)``
    runs here as soon as all fits of an experiment are in, while the larger
    ones are still sampling: a comparison and its exact refits need not wait
    for every fit of the study. The experiment completed by the study's last
    fit gets ``alone=True`` after the pool has closed: nothing else runs then.

    Returns
    -------
    fitted : dict
        Experiment name → ``{hypothesis: DataTree}``; and, for experiments
        whose outside evidence shares quantities, :func:`mgbayes.fits.evidence_key`
        → ``{evidence hypothesis: DataTree}``.
    prepared : dict
        Experiment name → ``(hypotheses, data)`` as fitted (:func:`prepare`).
    """
    prepared, groups, by_name = {}, {}, {e.name: e for e in experiments}
    for experiment in experiments:
        log(f"{experiment.name}: {len(experiment.hypothesis_paths)} hypotheses on {experiment.data_path.name}")
        prepared[experiment.name] = hyps, data = prepare(experiment, log=log)
        groups[experiment.name] = fits.experiment_tasks(experiment, hyps, data, out_dir, quick=quick)
        if experiment.evidence and any(e["shares"] for e in experiment.evidence):
            groups[fits.evidence_key(experiment.name)] = [fits.evidence_task(experiment, quick=quick)]
    owner = {t.name: name for name, group in groups.items() for t in group}
    size = {name: _values(*prepared[name]) if name in prepared else 0 for name in groups}
    tasks = schedule(groups, size, workers=1 if scheduler == "serial" else workers or parallel.cpus())
    if scheduler != "serial":
        tasks = [dataclasses.replace(t, cores=1) for t in tasks]
    arrived, last = {name: {} for name in groups}, []

    def fitted(name):
        return {t.hypothesis.name if name in prepared else t.name.split("/", 1)[1]: arrived[name][t.name]
                for t in groups[name]}

    def collect(task, idata):
        name = owner[task.name]
        arrived[name][task.name] = idata
        if len(arrived[name]) == len(groups[name]) and name in prepared and then is not None:
            if sum(map(len, arrived.values())) == len(tasks):  # the study's last fit: compared once the pool is closed
                last.append(name)
            else:
                then(by_name[name], *prepared[name], fitted(name), alone=False)

    label = ", ".join(e.name for e in experiments)
    fits.run(tasks, out_dir, label=label, scheduler=scheduler, workers=workers, retries=0, log=log, on_result=collect)
    for name in last:
        then(by_name[name], *prepared[name], fitted(name), alone=True)
    return {name: fitted(name) for name in groups}, prepared


def _values(hyps, data):
    """Observed values of an experiment, its outside evidence included."""
    return observe(data).values.size + sum(ev.observations.values.size for ev in hyps[0].evidence)


def schedule(groups, size, *, workers):
    """The order in which the fits of several experiments (``groups``) are handed to ``workers`` workers.

    Experiments with the fewest observed values (``size``) come first, so
    their comparisons and figures can be made while the larger ones sample;
    within one, the costliest fits (observed values × free parameters)
    first. The ``workers - 1`` costliest fits of all start at once, so the
    longest fits do not start last and run alone at the end.
    """
    cost = {t.name: size[name] * len(t.hypothesis.free_parameters()) for name, group in groups.items() for t in group}
    by_size = [t for name in sorted(groups, key=size.get) for t in sorted(groups[name], key=lambda t: -cost[t.name])]
    first = sorted(by_size, key=lambda t: -cost[t.name])[:max(0, workers - 1)]
    started = {t.name for t in first}
    return first + [t for t in by_size if t.name not in started]


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
    information does not touch). The fits run one after another here, chains
    in parallel within each (for simulation studies, which parallelise over
    replicates; :func:`fit_experiments` is how a study fits).
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


def _compare(experiment, hyps, results, data, quick, log, *, cores=None):
    """Compare by LOO, refitting exactly where Pareto k is high (up to ``max_refits`` units), or by LFO.

    ``hyps`` are the hypotheses as fitted (:func:`prepare`); ``cores`` the
    refits' chains run on (None: in parallel; 1: one after another, the same draws).
    """
    sampler = fits.settings(experiment, quick)
    if experiment.unit == "future":
        log(f"  {experiment.name}: leave-future-out, refitting on the earlier spectra where needed ...")
        try:
            return _logging_refit_problems(
                forecast.compare_lfo, log, hyps, data, results, draws=sampler["draws"],
                tune=sampler["tune"], chains=sampler["chains"], random_seed=sampler["seed"], cores=cores,
                **experiment.forecast)
        except ValueError as err:
            raise HypothesisError(f"experiment {experiment.name!r}: {err}") from None
    refit = None
    if experiment.max_refits > 0:
        inner = compare.refitter(hyps, data, unit=experiment.unit, max_refits=experiment.max_refits,
                                 random_seed=sampler["seed"], cores=cores, **refit_settings(sampler))

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
