"""A study file → fits, comparisons, tables, figures and a report.

Only wiring lives here; the physics is in the hypotheses and the modules
they use. A study file (TOML; paths relative to the file)::

    title = "My cells"
    provenance = "measured"            # or "synthetic": shown in the report

    [sampler]                          # defaults for every experiment
    draws = 1000
    tune = 1000
    chains = 4
    seed = 1

    [[experiment]]
    name = "ocv_drift"
    data = "cell1.mpt"                 # any format mgbayes.io.read knows
    area_cm2 = 1.131                   # electrode area (values become Ohm cm2)
    symmetric = true                   # Mg||Mg: two electrodes in series
    hypotheses = "../ocv_drift"        # folder, file, or list of either
    information = []                   # prior files applied to every hypothesis
    unit = "point"                     # LOO unit: point | spectrum | cell | current, or "future" (leave-future-out)
    ohmic_spectrum = "cell_eis.mpt"    # I-V and transients: prior of R_u from this spectrum's high-frequency intercept
    max_refits = 5                     # exact refits for units with Pareto k > 0.7 (0: none)
    forecast = { min_spectra = 20, horizon = 1 }   # with unit = "future" (see mgbayes.forecast)

Many cells (see :mod:`mgbayes.cells`): ``data`` may be a folder or a glob
(``data = "cells/*.mpt"``), with ``cells = "cells.csv"`` giving per-cell
metadata (columns ``file, cell[, area_cm2, electrolyte, ...]``) and
``pooling = "none" | "partial" | "both"`` (independent fits per cell, one
hierarchical model of all cells, or both; compared with the cell as LOO
unit). Their fits run in parallel: a local process pool by default, a
Dask cluster with a top-level ``scheduler = "tcp://host:8786"`` (or
``"local"`` for a ``LocalCluster``), ``"serial"`` for none; ``workers``
sets the number of local workers. ``mgbayes run --scheduler/--workers``
override both.

I–V data (``kind = "iv"`` hypotheses) are read with :func:`mgbayes.io.read_iv`
(optionally ``process = "plating"`` selects rows), transients with
:func:`mgbayes.io.read_transients`.

A hypothesis's ``[hierarchy]`` (cell-to-cell scatter) is dropped, with a
notice in the log, when the experiment's data hold one cell.

Uncompensated resistance ``R_u`` (Ohm cm2) of I–V and transient
hypotheses: its prior is the hypothesis file's unless an ``information``
file sets one, or ``ohmic_spectrum`` names an impedance spectrum of the
same cell (read with ``area_cm2``): then ``R_u`` is lognormal around its
high-frequency intercept (:func:`ohmic_prior`). A study shares ``R_u``
between a plating and a stripping experiment of the same cells by giving
both the same spectrum or information file: the same prior, fitted
separately (no joint posterior).

Finished fits are reused when their inputs (data bytes, hypothesis text,
information priors, sampler settings, mgbayes source and numerical stack) are unchanged; every
output is written atomically.
"""

import hashlib
import json
import sys
import time
import tomllib
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import cache, cells, compare, forecast, hypotheses, inference, io
from .diagnostics import ConvergenceWarning
from .errors import HypothesisError

_STUDY_KEYS = {"title", "description", "provenance", "sampler", "experiment", "scheduler", "workers"}
_EXPERIMENT_KEYS = {"name", "data", "area_cm2", "symmetric", "hypotheses", "information", "unit", "forecast",
                    "process", "sampler", "provenance", "description", "max_refits", "cells", "pooling",
                    "ohmic_spectrum"}
_SAMPLER_KEYS = {"draws", "tune", "chains", "seed", "target_accept"}
QUICK = {"draws": 300, "tune": 400, "chains": 2}


@dataclass
class Experiment:
    """One experiment of a study: data, hypotheses and settings."""

    name: str
    data_path: Path
    hypothesis_paths: list
    information: dict
    unit: str = "point"
    forecast: dict = field(default_factory=dict)
    max_refits: int = 5
    area_cm2: float | None = None
    symmetric: bool = False
    process: str | None = None
    sampler: dict = field(default_factory=dict)
    provenance: str = "measured"
    description: str = ""
    cells: list | None = None  # many-cell experiments: list of mgbayes.cells.Cell
    pooling: str = "none"


@dataclass
class Study:
    """A parsed study file."""

    path: Path
    title: str
    experiments: list
    provenance: str = "measured"
    description: str = ""
    scheduler: str | None = None
    workers: int | None = None


def load_study(path):
    """Read and check a study file; errors name the file and key."""
    path = Path(path)
    if not path.is_file():
        raise HypothesisError(f"study file {path} does not exist")
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise HypothesisError(f"{path}: not valid TOML: {err}") from None
    unknown = set(table) - _STUDY_KEYS
    if unknown:
        raise HypothesisError(f"{path}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_STUDY_KEYS)}")
    if not table.get("experiment"):
        raise HypothesisError(f"{path}: no [[experiment]] tables")
    defaults = _sampler(table.get("sampler", {}), f"{path} [sampler]")
    provenance = table.get("provenance", "measured")
    experiments = [_experiment(e, path, defaults, provenance, k) for k, e in enumerate(table["experiment"])]
    names = [e.name for e in experiments]
    if len(set(names)) != len(names):
        raise HypothesisError(f"{path}: experiment names must be unique, got {names}")
    workers = table.get("workers")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise HypothesisError(f"{path}: workers = {workers!r}; expected a positive integer")
    return Study(path, table.get("title", path.stem), experiments, provenance, table.get("description", ""),
                 scheduler=table.get("scheduler"), workers=workers)


def _sampler(table, where, base=None):
    unknown = set(table) - _SAMPLER_KEYS
    if unknown:
        raise HypothesisError(f"{where}: unknown sampler key(s) {sorted(unknown)}; allowed: {sorted(_SAMPLER_KEYS)}")
    return {"draws": 1000, "tune": 1000, "chains": 4, "seed": 1, "target_accept": 0.9, **(base or {}), **table}


def _experiment(table, path, defaults, provenance, k):
    where = f"{path} [experiment {k + 1}]"
    unknown = set(table) - _EXPERIMENT_KEYS
    if unknown:
        raise HypothesisError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_EXPERIMENT_KEYS)}")
    for key in ("name", "data", "hypotheses"):
        if key not in table:
            raise HypothesisError(f"{where}: missing key {key!r}")
    base = path.parent
    data_path = (base / table["data"]).resolve()
    many = "cells" in table or cells.is_pattern(table["data"]) or data_path.is_dir()
    if not many and not data_path.is_file():
        raise HypothesisError(f"{where}: data file {data_path} does not exist")
    pooling = table.get("pooling", "none")
    if pooling not in ("none", "partial", "both"):
        raise HypothesisError(f"{where}: pooling = {pooling!r}; use 'none', 'partial' or 'both'")
    cell_list = (cells.read_cells(table["data"], table.get("cells"), base=base, area_cm2=table.get("area_cm2"), where=where)
                 if many else None)
    entries = table["hypotheses"] if isinstance(table["hypotheses"], list) else [table["hypotheses"]]
    files = []
    for entry in entries:
        p = (base / entry).resolve()
        if p.is_dir():
            files += sorted(p.glob("*.toml"))
        elif p.is_file():
            files.append(p)
        else:
            raise HypothesisError(f"{where}: hypothesis path {p} does not exist")
    if len(files) < 1:
        raise HypothesisError(f"{where}: no hypothesis files found in {entries}")
    information = {}
    for entry in table.get("information", []):
        p = (base / entry).resolve()
        if not p.is_file():
            raise HypothesisError(f"{where}: information file {p} does not exist")
        information.update(tomllib.loads(p.read_text(encoding="utf-8")).get("priors", {}))
    if "ohmic_spectrum" in table:
        spectrum = (base / table["ohmic_spectrum"]).resolve()
        if not spectrum.is_file():
            raise HypothesisError(f"{where}: ohmic_spectrum file {spectrum} does not exist")
        information.setdefault("R_u", ohmic_prior(spectrum, area_cm2=table.get("area_cm2"), where=where))
    unit = table.get("unit", "point")
    if unit not in ("point", "spectrum", "cell", "current", "future"):
        raise HypothesisError(f"{where}: unit = {unit!r}; use 'point', 'spectrum', 'cell', 'current' or 'future'")
    options = table.get("forecast", {})
    if not isinstance(options, dict) or set(options) - forecast.OPTIONS:
        raise HypothesisError(f"{where}: forecast = {options!r}; a table with keys from {sorted(forecast.OPTIONS)}")
    if options and unit != "future":
        raise HypothesisError(f"{where}: forecast options need unit = \"future\" (got unit = {unit!r})")
    if unit == "future" and cell_list is not None:
        raise HypothesisError(f"{where}: unit = \"future\" is for one spectra series; many-cell experiments "
                              "compare with the cell as LOO unit")
    return Experiment(
        name=table["name"], data_path=data_path, hypothesis_paths=files, information=information, unit=unit,
        forecast=dict(options),
        max_refits=int(table.get("max_refits", 5)),
        area_cm2=table.get("area_cm2"), symmetric=bool(table.get("symmetric", False)), process=table.get("process"),
        sampler=_sampler(table.get("sampler", {}), where, defaults), provenance=table.get("provenance", provenance),
        description=table.get("description", ""), cells=cell_list, pooling=pooling,
    )


#: Relative spread (sd of log) of the R_u prior around a spectrum's high-frequency intercept.
OHMIC_SD_LOG = 0.3


def ohmic_prior(path, *, area_cm2=None, where="study"):
    """Prior table of ``R_u`` (Ohm cm2) from an impedance spectrum's high-frequency intercept.

    The intercept is Re Z where |Im Z| is smallest among the highest decade
    of frequencies (the series resistance before the first arc), times the
    area; the prior is lognormal around it with ``sd_log`` =
    :data:`OHMIC_SD_LOG` (the intercept is read, not fitted).
    """
    import numpy as np

    if not area_cm2:
        raise HypothesisError(f"{where}: ohmic_spectrum {path} needs area_cm2 (R_u is in Ohm cm2)")
    data = io.read(path, area_cm2=area_cm2)
    spectrum = data.spectra[0] if hasattr(data, "spectra") else data
    z = spectrum.impedance_area
    f = np.asarray(spectrum.frequency)
    top = f >= f.max() / 10
    k = np.flatnonzero(top)[np.argmin(np.abs(z.imag[top]))]
    r = float(z.real[k])
    if not np.isfinite(r) or r <= 0:
        raise HypothesisError(f"{where}: ohmic_spectrum {path}: high-frequency intercept Re Z = {r}; "
                              "need a positive series resistance")
    return {"dist": "lognormal", "median": r, "sd_log": OHMIC_SD_LOG}


def load_data(experiment, kind):
    """Read an experiment's data file for hypotheses of ``kind``."""
    path = experiment.data_path
    if kind == "iv":
        curve = io.read_iv(path)
        return curve.select(process=experiment.process) if experiment.process else curve
    if kind == "transient":
        return io.read_transients(path, area_cm2=experiment.area_cm2) if path.suffix == ".mpt" else io.read_transients(path)
    return io.read(path, area_cm2=experiment.area_cm2, symmetric=experiment.symmetric)


def load_hypotheses(experiment):
    """The experiment's hypotheses, with its information priors applied where they fit."""
    out = []
    for p in experiment.hypothesis_paths:
        h = hypotheses.load(p)
        names = set(h.free_parameters()) | set(h.drift) | set(h.hierarchy)
        extra = {k: v for k, v in experiment.information.items() if k in names}
        out.append(hypotheses.load(p, priors=extra) if extra else h)
    kinds = {h.experiment for h in out}
    if len(kinds) > 1:
        raise HypothesisError(f"experiment {experiment.name!r}: hypotheses explain different experiments {sorted(kinds)}")
    return out


def for_data(hyps, data, *, log=None):
    """The hypotheses as fitted to ``data``: ``[hierarchy]`` dropped (with a notice) when it holds one cell."""
    from .observations import observe

    n_cells = len(observe(data).coords.get("cell", ()))
    out = []
    for h in hyps:
        h, notice = hypotheses.for_cells(h, n_cells)
        if notice and log:
            log(f"  notice: {notice}")
        out.append(h)
    return out


def fit_key(experiment, hypothesis, sampler):
    """Hash of everything a fit depends on (reuse it when unchanged)."""
    h = hashlib.sha256()
    h.update(experiment.data_path.read_bytes())
    h.update(hypothesis.text.encode())
    h.update(json.dumps({"priors": {k: v.describe() for k, v in hypothesis.priors.items()},
                         "sampler": sampler, "area": experiment.area_cm2, "symmetric": experiment.symmetric,
                         "process": experiment.process, "code": cache.code_version()}, sort_keys=True).encode())
    return h.hexdigest()


def _cached(out_dir, key):
    """A finished fit anywhere under ``out_dir/fits`` whose inputs hash to ``key``."""
    for path in sorted((Path(out_dir) / "fits").glob("*/*.nc")):
        tree = inference.load(path)
        if tree.attrs.get("input_hash") == key:
            return path, tree
    return None, None


def fit_all(experiment, out_dir, *, quick=False, log=print):
    """Fit (or reuse) every hypothesis of an experiment; returns name → DataTree.

    A fit is reused when a finished one with the same inputs exists, in this
    experiment or another of the study (e.g. a hypothesis that the extra
    information does not touch).
    """
    sampler = {**experiment.sampler, **(QUICK if quick else {})}
    hyps = load_hypotheses(experiment)
    data = load_data(experiment, hyps[0].kind)
    hyps = for_data(hyps, data, log=log)
    results = {}
    for h in hyps:
        path = Path(out_dir) / "fits" / experiment.name / f"{h.name}.nc"
        key = fit_key(experiment, h, sampler)
        found, cached = _cached(out_dir, key)
        if cached is not None:
            log(f"  {experiment.name}/{h.name}: inputs unchanged, reusing {found}")
            if found != path:
                inference.save(cached, path)
            results[h.name] = cached
            continue
        log(f"  {experiment.name}/{h.name}: sampling {sampler['chains']} chains × {sampler['draws']} draws"
            f" ({sampler['tune']} tuning) ...")
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # reported below and in the report
            idata = inference.fit(h, data, draws=sampler["draws"], tune=sampler["tune"], chains=sampler["chains"],
                                  random_seed=sampler["seed"], target_accept=sampler["target_accept"],
                                  progressbar=sys.stderr.isatty())
        idata.attrs.update({"input_hash": key, "quick": int(quick), "fit_seconds": time.perf_counter() - start,
                            "provenance": experiment.provenance})
        inference.save(idata, path)
        log(f"    done in {time.perf_counter() - start:.1f} s — {idata.attrs['diagnostics']}")
        results[h.name] = idata
    return results, data


def run(study_path, out_dir, *, quick=False, log=print, command="", scheduler=None, workers=None):
    """Run a whole study and write every output to ``out_dir``.

    ``scheduler`` and ``workers`` (for the fits of many-cell experiments)
    override the study file's; see :func:`mgbayes.parallel.map_fits`.

    Returns
    -------
    dict
        Experiment name → :class:`mgbayes.compare.Comparison`.
    """
    from . import outputs

    study = load_study(study_path)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    comparisons, fits, datas, many = {}, {}, {}, {}
    scheduler = scheduler or study.scheduler
    workers = workers or study.workers
    for experiment in study.experiments:
        if experiment.cells is not None:
            result = cells.run_experiment(experiment, out_dir, quick=quick, scheduler=scheduler, workers=workers, log=log)
            many[experiment.name], comparisons[experiment.name] = result, result.comparison
            fits[experiment.name] = {f"{c}/{h}": r for c, rs in result.fits.items() for h, r in rs.items()}
            fits[experiment.name].update({f"pooled/{h}": r for h, r in result.pooled.items()})
            datas[experiment.name] = None
            continue
        log(f"{experiment.name}: {len(experiment.hypothesis_paths)} hypotheses on {experiment.data_path.name}")
        results, data = fit_all(experiment, out_dir, quick=quick, log=log)
        fits[experiment.name], datas[experiment.name] = results, data
        if len(results) >= 2:
            comparison = _compare(experiment, results, data, quick, log)
            comparison.experiment = comparison.table["experiment"] = experiment.name  # not the hypotheses' kind
            comparisons[experiment.name] = comparison
    outputs.write_all(study, out_dir, fits, datas, comparisons, quick=quick, command=command, log=log,
                      cell_results=many)
    return comparisons


def _compare(experiment, results, data, quick, log):
    """Compare by LOO, refitting exactly where Pareto k is high (up to ``max_refits`` units), or by LFO."""
    sampler = {**experiment.sampler, **(QUICK if quick else {})}
    if experiment.unit == "future":
        log(f"  {experiment.name}: leave-future-out, refitting on the earlier spectra where needed ...")
        try:
            return _logging_refit_problems(
                forecast.compare_lfo, log, load_hypotheses(experiment), data, results, draws=sampler["draws"],
                tune=sampler["tune"], chains=sampler["chains"], random_seed=sampler["seed"], **experiment.forecast)
        except ValueError as err:
            raise HypothesisError(f"experiment {experiment.name!r}: {err}") from None
    refit = None
    if experiment.max_refits > 0:
        inner = compare.refitter(for_data(load_hypotheses(experiment), data), data, unit=experiment.unit,
                                 max_refits=experiment.max_refits, draws=sampler["draws"], tune=sampler["tune"],
                                 chains=sampler["chains"], random_seed=sampler["seed"])

        def refit(name, mask):
            log(f"  {experiment.name}/{name}: {int(mask.sum())} unit(s) with Pareto k > {compare.K_BAD}: "
                + ("exact refits ..." if int(mask.sum()) <= experiment.max_refits
                   else f"more than max_refits = {experiment.max_refits}, PSIS values kept and flagged"))
            return _logging_refit_problems(inner, log, name, mask)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", compare.ParetoKWarning)  # the verdict text carries it
        return compare.compare(results, unit=experiment.unit, refit=refit)


def _logging_refit_problems(function, log, *args, **kwargs):
    """Run ``function``; refits whose chains clearly failed are logged by name, other warnings dropped."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # recorded, not shown: sampler chatter from dozens of refits
        result = function(*args, **kwargs)
    for w in caught:
        if issubclass(w.category, ConvergenceWarning):
            log(f"    refit problem: {w.message}")
    return result


def comparison_frame(comparisons):
    """All comparison tables in one DataFrame (``experiment`` first)."""
    frames = [c.table for c in comparisons.values()]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def summary(comparisons, fits, out_dir, *, quick=False):
    """The one-screen summary printed at the end of a run."""
    lines = []
    if quick:
        lines.append("QUICK MODE: fewer draws than a publication run; use the full run for final numbers.")
    for name, c in comparisons.items():
        lines.append(f"[{name}] {c.method}")
        for row in c.table.itertuples():
            lines.append(f"  {row.rank}. {row.hypothesis:<28} elpd {row.elpd_loo:12.1f} ± {row.se:7.1f}"
                         f"  Δ {row.elpd_diff:9.1f} ± {row.dse:6.1f}  weight {row.weight:5.2f}  {row.verdict}")
        lines.append(f"  verdict: {c.verdict}")
    problems = [f"  {e}/{h}: {r.attrs['diagnostics']}" for e, rs in fits.items() for h, r in rs.items()
                if not int(r.attrs.get("converged", 1))]
    lines.append("convergence: " + ("all fits converged" if not problems else "PROBLEMS"))
    lines += problems
    lines.append(f"rule: {compare.RULE}")
    lines.append(f"outputs: {Path(out_dir).resolve()} (report.html, report.md, comparison.csv, parameters.csv, figures/, fits/)")
    return "\n".join(lines)

