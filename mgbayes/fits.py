"""Fits of a study: one task type, reused by key, run through :func:`mgbayes.parallel.map_fits`.

Every fit a study makes is a :class:`Task`: the hypothesis, the data (or
the experiments to read them from, where the fit runs), the sampler
settings with the fit's own seed, the key (a hash of every input) and the
file it is saved to. A single experiment's fits, the fits of each cell of a
many-cell experiment, the hierarchical (pooled) fits of all cells and the fit
of outside evidence alone are all built here and all run by :func:`run`:

- a task whose key matches a saved fit is not fitted again (the key is read
  from the file's attributes without loading the file);
- the others run through :func:`mgbayes.parallel.map_fits` (serially, on a
  process pool or on Dask), are labelled with the key and saved atomically.

Refits inside a comparison (exact LOO, leave-future-out) belong to
:mod:`mgbayes.compare` and :mod:`mgbayes.forecast`.
"""

import dataclasses
import hashlib
import json
import sys
import time
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import cache, inference, parallel
from .diagnostics import ConvergenceWarning
from .studyfile import QUICK, Experiment, load_data, load_evidence

#: Label of the hierarchical model of all cells (seeds and table rows): ``NAME (pooled)``.
POOLED = " (pooled)"


@dataclass
class Task:
    """One fit to make: what it depends on and where it is saved.

    Attributes
    ----------
    name : str
        Label in logs and the key of :func:`mgbayes.parallel.map_fits`
        (``EXPERIMENT/HYPOTHESIS``, ``EXPERIMENT/CELL/HYPOTHESIS``, ...).
    key : str or None
        Hash of every input (:func:`fit_key`); None: neither saved nor reused.
    hypothesis : mgbayes.hypotheses.Hypothesis
    data : object
        The data; or an :class:`~mgbayes.studyfile.Experiment` (or a dict of
        them, one per cell) read where the fit runs.
    settings : dict
        ``draws``, ``tune``, ``chains``, ``seed`` (this fit's own), ``target_accept`` and
        ``until_converged``.
    path : Path or None
        Where the result is saved.
    cores : int or None
        Chains run in parallel (None) or one after another (1: the
        parallelism is over fits).
    attrs : dict
        Added to the result's attributes.
    """

    name: str
    key: str | None
    hypothesis: object
    data: object
    settings: dict
    path: Path | None = None
    cores: int | None = None
    attrs: dict = field(default_factory=dict)

    def job(self):
        """``(function, kwargs)`` for :func:`mgbayes.parallel.map_fits`."""
        return fit, {"task": self}


def settings(experiment, quick=False):
    """The sampler settings of an experiment's fits (its own, or :data:`mgbayes.studyfile.QUICK` ones)."""
    return {**experiment.sampler, **(QUICK if quick else {})}


def cell_seed(seed, cell, hypothesis):
    """Seed of one (cell, hypothesis) fit, derived from the study ``seed`` and both names."""
    entropy = [int(seed), zlib.crc32(str(cell).encode()), zlib.crc32(str(hypothesis).encode())]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0] % 2**31)


def fit_key(experiment, hypothesis, sampler):
    """Hash of everything a fit depends on (reuse it when unchanged)."""
    h = hashlib.sha256()
    h.update(experiment.data_path.read_bytes())
    h.update(hypothesis.text.encode())
    for e in experiment.evidence:  # joint fits depend on the outside data and its model too
        h.update(e["data_path"].read_bytes())
        h.update(e["hypothesis_path"].read_bytes())
        h.update(json.dumps([e["name"], e["area_cm2"], e["symmetric"], list(e["shares"])]).encode())
    h.update(json.dumps({"priors": {k: v.describe() for k, v in hypothesis.priors.items()}, "bounds": hypothesis.bounds,
                         "sampler": sampler, "area": experiment.area_cm2, "symmetric": experiment.symmetric,
                         "process": experiment.process, "code": cache.code_version(),
                         **({"decimal": experiment.decimal} if experiment.decimal else {}),
                         **({"selection": experiment.selection} if experiment.selection else {}),
                         **({"kk": experiment.kk_threshold} if experiment.kk == "exclude" else {})}, sort_keys=True).encode())
    return h.hexdigest()


def evidence_key(name):
    """Key in a study's fits of the fit of experiment ``name``'s outside data alone."""
    return f"{name} (outside data alone)"


# --- the tasks of a study ---------------------------------------------------------------


def experiment_tasks(experiment, hyps, data, out_dir, *, quick=False):
    """One task per hypothesis of a single experiment (data already read; chains in parallel)."""
    sampler = settings(experiment, quick)
    return [Task(f"{experiment.name}/{h.name}", fit_key(experiment, h, sampler), h, data, sampler,
                 path=Path(out_dir) / "fits" / experiment.name / f"{h.name}.nc",
                 attrs={"quick": int(quick), "provenance": experiment.provenance})
            for h in hyps]


def _cell_experiment(experiment, cell):
    return dataclasses.replace(experiment, data_path=cell.path, area_cm2=cell.area_cm2, cells=None)


def cell_task(experiment, cell, hypothesis, sampler, out_dir=None, *, quick=False):
    """The task of one (cell, hypothesis) pair, with the pair's own seed; its data are read where it runs.

    A hypothesis's ``[hierarchy]`` is dropped for impedance data (one
    spectra series: no scatter between cells).
    """
    own = {**sampler, "seed": cell_seed(sampler["seed"], cell.name, hypothesis.name)}
    source = _cell_experiment(experiment, cell)
    fitted = (dataclasses.replace(hypothesis, hierarchy={}) if hypothesis.hierarchy and hypothesis.kind == "impedance"
              else hypothesis)
    return Task(f"{experiment.name}/{cell.name}/{hypothesis.name}", fit_key(source, hypothesis, own), fitted, source,
                own, path=Path(out_dir or ".") / "fits" / experiment.name / cell.name / f"{hypothesis.name}.nc", cores=1,
                attrs={"cell": cell.name, "quick": int(quick), "provenance": experiment.provenance,
                       **{f"cell_{k}": _attr(v) for k, v in cell.metadata.items()}})


def cell_tasks(experiment, hyps, out_dir, *, quick=False):
    """Tasks of every (cell, hypothesis) pair of a many-cell experiment."""
    sampler = settings(experiment, quick)
    return [cell_task(experiment, cell, h, sampler, out_dir, quick=quick) for cell in experiment.cells for h in hyps]


def pooled_tasks(experiment, hyps, out_dir, *, quick=False):
    """Tasks of the hierarchical model of all cells, one per hypothesis (seeds derived like the per-cell ones)."""
    sampler = settings(experiment, quick)
    tasks = []
    for h in hyps:
        own = {**sampler, "seed": cell_seed(sampler["seed"], POOLED.strip(), h.name)}
        digest = hashlib.sha256()
        for c in experiment.cells:
            digest.update(c.name.encode())
            digest.update(fit_key(_cell_experiment(experiment, c), h, own).encode())
        tasks.append(Task(f"{experiment.name}/pooled/{h.name}", digest.hexdigest(), h,
                          {c.name: _cell_experiment(experiment, c) for c in experiment.cells}, own,
                          path=Path(out_dir) / "fits" / experiment.name / "pooled" / f"{h.name}.nc", cores=1,
                          attrs={"pooling": "partial", "quick": int(quick), "provenance": experiment.provenance}))
    return tasks


def evidence_task(experiment, *, quick=False):
    """The fit of an experiment's outside evidence without its own data: what it says about the shared quantities.

    The evidence that shares quantities is the main model; the others join
    it, sharing the parameters they name alike. Not saved (no key).
    """
    evidence = load_evidence(experiment)
    main = next(ev for ev in evidence if ev.shares)
    names = set(main.hypothesis.free_parameters())
    main.hypothesis.evidence = tuple(
        inference.Evidence(ev.name, ev.hypothesis, ev.observations,
                           tuple(sorted(names & set(ev.hypothesis.free_parameters()))))
        for ev in evidence if ev is not main)
    return Task(f"{experiment.name}/{main.name}", None, main.hypothesis, main.observations, settings(experiment, quick))


def _attr(value):
    return value if isinstance(value, (int, float, str)) else str(value)


# --- running them -----------------------------------------------------------------------


def fit(*, task):
    """Make one fit (in this process or a worker); returns the DataTree, labelled with the task's key."""
    data = task.data
    if isinstance(data, Experiment):
        data = load_data(data, task.hypothesis.kind)
    elif isinstance(data, dict) and data and all(isinstance(v, Experiment) for v in data.values()):
        data = {name: load_data(e, task.hypothesis.kind) for name, e in data.items()}
    s = task.settings
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # reported in the log and the convergence table
        idata = inference.fit(task.hypothesis, data, draws=s["draws"], tune=s["tune"], chains=s["chains"],
                              cores=task.cores, random_seed=s["seed"], target_accept=s["target_accept"],
                              until_converged=s.get("until_converged", True),
                              progressbar=task.cores is None and sys.stderr.isatty())
    idata.attrs.update({**task.attrs, "fit_seconds": time.perf_counter() - start,
                        **({"input_hash": task.key} if task.key else {})})
    return idata


def retried(idata):
    """`` (sampled again with ...; first run: ...)`` for a fit sampled a second time (:func:`mgbayes.inference.fit`), else ``""``."""
    if not int(idata.attrs.get("retried", 0)):
        return ""
    return (f" (sampled again with target_accept {float(idata.attrs['target_accept']):.2f} and "
            f"{int(idata.attrs['tune'])} tuning; first run: {idata.attrs['first_run']})")


def saved_key(path, *, log=print):
    """The ``input_hash`` of a saved fit, read from its attributes alone; None (logged) when unreadable."""
    import netCDF4

    try:
        with netCDF4.Dataset(path) as ds:
            return str(ds.getncattr("input_hash")) if "input_hash" in ds.ncattrs() else None
    except Exception as err:  # noqa: BLE001 - any unreadable file is only a fit to redo
        log(f"  cannot read the saved fit {path} ({type(err).__name__}: {err}); it will be fitted again")
        return None


def cached(out_dir, key, log=print, *, path=None):
    """A finished fit whose inputs hash to ``key``: at ``path``, or anywhere under ``out_dir/fits/*/``.

    Returns ``(path, DataTree)`` or ``(None, None)``; only the matching file is loaded.
    """
    candidates = [Path(path)] if path is not None and Path(path).is_file() else []
    candidates += [p for p in sorted((Path(out_dir) / "fits").glob("*/*.nc")) if p not in candidates]
    for p in candidates:
        if saved_key(p, log=log) == key:
            tree = inference.load_or_none(p, log=log)
            if tree is not None:
                return p, tree
    return None, None


def run(tasks, out_dir, *, label, scheduler="serial", workers=None, retries=1, log=print, on_result=None):
    """Reuse or make every task's fit; returns ``{task name: DataTree}`` in the order of ``tasks``.

    A task with a key is reused when a saved fit has that key (copied to
    the task's path if found elsewhere); tasks with the same key are fitted
    once; the others run through :func:`mgbayes.parallel.map_fits` and are
    saved as they finish. ``on_result(task, DataTree)`` is called here for
    every task, reused ones first, the others as their fits arrive.
    """
    out, todo, twins = {}, [], {}
    for task in tasks:
        first = next((t for t in todo if task.key and t.key == task.key), None)
        if first is not None:  # the same inputs as a fit to make: made once
            log(f"  {task.name}: inputs the same as {first.name}'s, fitted once")
            twins.setdefault(first.name, []).append(task)
            continue
        found, tree = cached(out_dir, task.key, log, path=task.path) if task.key else (None, None)
        if tree is None:
            todo.append(task)
            continue
        log(f"  {task.name}: inputs unchanged, reusing {found}")
        if task.path is not None and found != task.path:
            inference.save(tree, task.path)
        out[task.name] = tree
    if len(tasks) > 1 and len(out):
        log(f"  {label}: {len(out)} fit(s) with unchanged inputs reused")
    for task in tasks:
        if task.name in out and on_result is not None:
            on_result(task, out[task.name])
    if todo:
        s = todo[0].settings
        stop = s.get("until_converged", True)
        draws = (f"at most {s['draws']} draws ({inference.DRAWS_MORE * s['draws']} where only R-hat or ESS fall short)"
                 if stop else f"{s['draws']} draws")
        log(f"  {label}: sampling {len(todo)} fit(s), {s['chains']} chains × {draws}, {s['tune']} tuning"
            f" each, scheduler: {scheduler or 'processes'} ...")
    by_name = {t.name: t for t in todo}

    def arrived(name, idata):
        task = by_name[name]
        sizes = idata["posterior"].sizes
        log(f"    {task.name}: {idata.attrs['fit_seconds']:.1f} s, {sizes['chain']} × {sizes['draw']} draws — "
            f"{idata.attrs['diagnostics']}{retried(idata)}")
        for t in [task, *twins.get(name, [])]:
            if t.path is not None:
                inference.save(idata, t.path)
            out[t.name] = idata
            if on_result is not None:
                on_result(t, idata)

    parallel.map_fits({t.name: t.job() for t in todo}, scheduler=scheduler, workers=workers, retries=retries,
                      log=log, on_result=arrived)
    return {t.name: out[t.name] for t in tasks}
