"""Studies of many cells: one data file per cell, the same hypotheses on each.

An experiment of a study names a folder or a glob of data files and,
optionally, a CSV table of per-cell metadata beside them::

    [[experiment]]
    name = "electrolytes"
    data = "cells/*.mpt"          # a glob, or a folder ("cells")
    cells = "cells/cells.csv"     # columns file, cell[, area_cm2, electrolyte, temperature_C, ...]
    hypotheses = "../ocv_drift"
    pooling = "both"              # "none": independent fits per cell; "partial": one
                                  # hierarchical model of all cells; "both"

Independent fits: each (cell, hypothesis) pair is fitted on its own, in parallel
(:func:`mgbayes.parallel.map_fits`), with its own seed derived from the
study seed, the cell name and the hypothesis name, so results do not depend
on where or in which order the fits ran.

Partial pooling (impedance data): the cells' spectra series, on a common
frequency and time grid, are stacked into one model with a ``cell`` dim;
parameters named in a hypothesis's ``[hierarchy]`` table (e.g. the drift
law's ``R_ct_0`` and ``R_ct_rate``) vary by cell around a group mean,
all others are shared, so a weakly informative cell borrows strength from
the others. The independent fits of such a hypothesis ignore its
``[hierarchy]`` table (I–V and transient files keep theirs: they may hold
several cells each). Pooled results are labelled ``NAME (pooled)``.

Hypotheses are compared twice: within every cell (LOO at the experiment's
unit) and over all cells with the *cell* as LOO unit: a cell's ELPD is the
sum of its observations' LOO ELPD, and standard errors of differences come
from the scatter between cells. :func:`wins_table` counts how often each
hypothesis wins.
"""

import dataclasses
import glob
import time
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from . import compare, inference, parallel
from .diagnostics import ConvergenceWarning
from .errors import HypothesisError
from .files import check_name

#: Values of an experiment's ``pooling`` key.
POOLING = ("none", "partial", "both")
POOLED = " (pooled)"


@dataclass
class Cell:
    """One cell of a many-cell experiment: its data file and metadata."""

    name: str
    path: Path
    area_cm2: float | None = None
    metadata: dict = field(default_factory=dict)


@dataclass
class CellResults:
    """Fits and comparisons of a many-cell experiment."""

    cells: list
    fits: dict  # cell name → {hypothesis name → DataTree} (empty without independent fits)
    per_cell: dict  # cell name → Comparison
    comparison: compare.Comparison  # cell as LOO unit
    wins: pd.DataFrame
    pooled: dict = field(default_factory=dict)  # hypothesis name → DataTree of the hierarchical model


def is_pattern(text):
    """True when a ``data`` entry is a glob rather than one file name."""
    return any(c in str(text) for c in "*?[")


def read_cells(data, table=None, *, base=".", area_cm2=None, where="study"):
    """The cells of ``data`` (a folder or a glob), with metadata from ``table``.

    Parameters
    ----------
    data : str
        Folder or glob pattern, relative to ``base``.
    table : str, optional
        CSV file (relative to ``base``) with columns ``file`` (the data
        file's name or path relative to the table) and ``cell``; optional
        ``area_cm2`` and any other metadata columns. Without it, a cell is
        named after its file's stem.
    area_cm2 : float, optional
        Area of cells that the table gives none for.
    where : str
        Prefix of error messages (the study file and experiment).

    Returns
    -------
    list of Cell
        Sorted by file name.
    """
    base = Path(base)
    files = _files(base / data, where)
    table_path = (base / table).resolve() if table else None
    files = [f for f in files if f != table_path]
    if not files:
        raise HypothesisError(f"{where}: no data files match {data!r} in {base}")
    if table_path is None:
        cells = [Cell(f.stem, f, area_cm2) for f in files]
    else:
        cells = _with_table(files, table_path, area_cm2, where)
    names = [check_name(c.name, what="cell name", where=where) for c in cells]
    if len(set(names)) != len(names):
        raise HypothesisError(f"{where}: cell names must be unique, got {names}")
    return cells


def _files(target, where):
    if is_pattern(target):
        return sorted(Path(p).resolve() for p in glob.glob(str(target)) if Path(p).is_file())
    if target.is_dir():
        return sorted(p.resolve() for p in target.iterdir() if p.is_file() and not p.name.startswith("."))
    raise HypothesisError(f"{where}: data {target} is neither a folder nor a glob of files")


def _with_table(files, table_path, area_cm2, where):
    if not table_path.is_file():
        raise HypothesisError(f"{where}: cell table {table_path} does not exist")
    try:
        frame = pd.read_csv(table_path)
    except (ValueError, pd.errors.ParserError) as err:
        raise HypothesisError(f"{table_path}: not a readable CSV table: {err}") from None
    missing = {"file", "cell"} - set(frame.columns)
    if missing:
        raise HypothesisError(f"{table_path}: missing column(s) {sorted(missing)}; need file, cell[, area_cm2, ...]")
    by_path = {(table_path.parent / str(f)).resolve(): row for f, row in zip(frame["file"], frame.to_dict("records"))}
    unknown = [str(p) for p in by_path if p not in files]
    if unknown:
        raise HypothesisError(f"{table_path}: file(s) {unknown} are not among the experiment's data files")
    cells = []
    for f in files:
        row = by_path.get(f)
        if row is None:
            raise HypothesisError(f"{table_path}: no row for data file {f.name}")
        area = row.pop("area_cm2", None)
        area = area_cm2 if area is None or pd.isna(area) else float(area)
        meta = {k: v for k, v in row.items() if k not in ("file", "cell")}
        cells.append(Cell(str(row["cell"]), f, area, meta))
    return cells


def cell_seed(seed, cell, hypothesis):
    """Seed of one (cell, hypothesis) fit, derived from the study ``seed`` and both names."""
    entropy = [int(seed), zlib.crc32(str(cell).encode()), zlib.crc32(str(hypothesis).encode())]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0] % 2**31)


def fit_task(experiment, cell, hypothesis, sampler):
    """``(fit_one, kwargs)`` for one (cell, hypothesis) pair, with the pair's own seed."""
    cell_experiment = dataclasses.replace(experiment, data_path=cell.path, area_cm2=cell.area_cm2, cells=None)
    own = {**sampler, "seed": cell_seed(sampler["seed"], cell.name, hypothesis.name)}
    return fit_one, {"experiment": cell_experiment, "hypothesis": hypothesis, "sampler": own, "cell": cell.name}


def fit_one(*, experiment, hypothesis, sampler, cell):
    """Fit one hypothesis to one cell (run in a worker process); returns the DataTree.

    Chains run one after another (``cores=1``): the parallelism is over cells.
    """
    from . import study

    data = study.load_data(experiment, hypothesis.kind)
    if hypothesis.hierarchy and hypothesis.kind == "impedance":  # one spectra series: no scatter between cells
        hypothesis = dataclasses.replace(hypothesis, hierarchy={})
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # reported in the convergence table
        idata = inference.fit(hypothesis, data, draws=sampler["draws"], tune=sampler["tune"], chains=sampler["chains"],
                              cores=1, random_seed=sampler["seed"], target_accept=sampler["target_accept"])
    idata.attrs.update({"cell": cell, "fit_seconds": time.perf_counter() - start})
    return idata


def fit_cells(experiment, out_dir, *, quick=False, scheduler=None, workers=None, retries=1, log=print):
    """Fit (or reuse) every hypothesis on every cell; returns cell → {hypothesis → DataTree}.

    Fits are saved to ``out_dir/fits/EXPERIMENT/CELL/HYPOTHESIS.nc`` and
    reused while their inputs (data, hypothesis, seed, ...) are unchanged.
    """
    from . import study

    sampler = {**experiment.sampler, **(study.QUICK if quick else {})}
    hyps = study.load_hypotheses(experiment)
    results, tasks, keys = {c.name: {} for c in experiment.cells}, {}, {}
    for cell in experiment.cells:
        for h in hyps:
            task = fit_task(experiment, cell, h, sampler)
            key = study.fit_key(task[1]["experiment"], h, task[1]["sampler"])
            path = _fit_path(out_dir, experiment, cell, h)
            if (cached := inference.load_or_none(path, log=log)) is not None and cached.attrs.get("input_hash") == key:
                results[cell.name][h.name] = cached
                continue
            name = f"{cell.name}/{h.name}"
            keys[name] = (cell, h, key, path)
            tasks[name] = task
    reused = len(experiment.cells) * len(hyps) - len(tasks)
    if reused:
        log(f"  {experiment.name}: {reused} fit(s) with unchanged inputs reused")
    if tasks:
        log(f"  {experiment.name}: {len(tasks)} fit(s), {sampler['chains']} chains × {sampler['draws']} draws "
            f"({sampler['tune']} tuning) each, scheduler: {scheduler or 'processes'} ...")
    done = parallel.map_fits(tasks, scheduler=scheduler, workers=workers, retries=retries, log=log)
    for name, idata in done.items():
        cell, h, key, path = keys[name]
        idata.attrs.update({"input_hash": key, "quick": int(quick), "provenance": experiment.provenance,
                            **{f"cell_{k}": _attr(v) for k, v in cell.metadata.items()}})
        inference.save(idata, path)
        results[cell.name][h.name] = idata
    return {c: {h.name: results[c][h.name] for h in hyps} for c in results}


def fit_pooled(*, experiment, hypothesis, sampler):
    """Fit one hypothesis to all cells at once (partial pooling); returns the DataTree."""
    from . import study

    if hypothesis.kind != "impedance":
        raise HypothesisError(f"experiment {experiment.name!r}: partial pooling is implemented for impedance "
                              f"spectra series, not {hypothesis.kind} data")
    data = {c.name: study.load_data(dataclasses.replace(experiment, data_path=c.path, area_cm2=c.area_cm2), "impedance")
            for c in experiment.cells}
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        idata = inference.fit(hypothesis, data, draws=sampler["draws"], tune=sampler["tune"], chains=sampler["chains"],
                              cores=1, random_seed=sampler["seed"], target_accept=sampler["target_accept"])
    idata.attrs.update({"pooling": "partial", "fit_seconds": time.perf_counter() - start})
    return idata


def pooled_tasks(experiment, hyps, sampler):
    """``{hypothesis name: (fit_pooled, kwargs)}`` with seeds derived like the per-cell ones."""
    return {h.name: (fit_pooled, {"experiment": experiment, "hypothesis": h,
                                  "sampler": {**sampler, "seed": cell_seed(sampler["seed"], "(pooled)", h.name)}})
            for h in hyps}


def fit_all_pooled(experiment, out_dir, *, quick=False, scheduler=None, workers=None, log=print):
    """Fit (or reuse) the hierarchical model of every hypothesis; returns hypothesis name → DataTree."""
    import hashlib

    from . import study

    sampler = {**experiment.sampler, **(study.QUICK if quick else {})}
    hyps = study.load_hypotheses(experiment)
    tasks, out, keys = pooled_tasks(experiment, hyps, sampler), {}, {}
    for h in hyps:
        digest = hashlib.sha256()
        for c in experiment.cells:
            digest.update(c.name.encode())
            digest.update(study.fit_key(dataclasses.replace(experiment, data_path=c.path, area_cm2=c.area_cm2), h,
                                        tasks[h.name][1]["sampler"]).encode())
        key, path = digest.hexdigest(), Path(out_dir) / "fits" / experiment.name / "pooled" / f"{h.name}.nc"
        if (cached := inference.load_or_none(path, log=log)) is not None and cached.attrs.get("input_hash") == key:
            log(f"  {experiment.name}/pooled/{h.name}: inputs unchanged, reusing {path}")
            out[h.name] = cached
            del tasks[h.name]
        keys[h.name] = (key, path)
    if tasks:
        log(f"  {experiment.name}: {len(tasks)} hierarchical fit(s) of all {len(experiment.cells)} cells ...")
    for name, idata in parallel.map_fits(tasks, scheduler=scheduler, workers=workers, log=log).items():
        key, path = keys[name]
        idata.attrs.update({"input_hash": key, "quick": int(quick), "provenance": experiment.provenance})
        inference.save(idata, path)
        out[name] = idata
    return {h.name: out[h.name] for h in hyps}


def _fit_path(out_dir, experiment, cell, h):
    return Path(out_dir) / "fits" / experiment.name / cell.name / f"{h.name}.nc"


def _attr(value):
    return value if isinstance(value, (int, float, str)) else str(value)


def compare_cells(experiment, fits, pooled=None):
    """Compare within every cell and over all cells (cell as LOO unit).

    Independent fits (``fits``: cell → {hypothesis → DataTree}) and
    hierarchical ones (``pooled``: hypothesis → DataTree, labelled
    ``NAME (pooled)``) are ranked together: within a cell by the LOO ELPD of
    its observations, over all cells by each cell's summed ELPD.

    Returns
    -------
    tuple
        ``(per_cell, comparison, wins)``: cell → Comparison, the cell-unit
        Comparison, and :func:`wins_table`.
    """
    unit = experiment.unit if experiment.unit != "cell" else "point"
    names = [c.name for c in experiment.cells]
    loos = {}
    for h in (next(iter(fits.values())) if fits else {}):
        loos[h] = {c: _flat(compare.loo(fits[c][h], unit=unit)) for c in names}
    for h, idata in (pooled or {}).items():
        whole = compare.loo(idata, unit=unit)
        loos[h + POOLED] = {c: _flat(whole, cell=c) for c in names}
    # the fits each hypothesis's ELPD rests on, one per cell (the pooled model once for every cell)
    fitted = {h: [fits[c][h] for c in names] for h in (next(iter(fits.values())) if fits else {})}
    fitted.update({h + POOLED: [idata] * len(names) for h, idata in (pooled or {}).items()})
    if len(loos) < 2:
        raise HypothesisError(f"experiment {experiment.name!r}: comparing needs at least two hypotheses or pooling = 'both'")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", compare.ParetoKWarning)  # flagged in the tables
        per_cell = {c: compare.combine({h: l[c] for h, l in loos.items()}, experiment=experiment.name, unit=unit,
                                       fits={h: fitted[h][k] for h in loos}) for k, c in enumerate(names)}
        comparison = compare.combine({h: cell_loo([l[c] for c in names], names) for h, l in loos.items()},
                                     experiment=experiment.name, unit="cell", fits=fitted)
    return per_cell, comparison, wins_table(per_cell)


def _flat(elpd, cell=None):
    """ELPD data with a flat ``unit`` axis (of ``cell`` only, for stacked cells) so that results compare."""
    elpd_i, k = (elpd.elpd_i, elpd.pareto_k) if cell is None else (elpd.elpd_i.sel(cell=cell), elpd.pareto_k.sel(cell=cell))
    elpd_i, k = elpd_i.values.ravel(), k.values.ravel()
    n = elpd_i.size
    return dataclasses.replace(
        elpd, elpd=float(elpd_i.sum()), se=float(np.sqrt(n * np.var(elpd_i))), n_data_points=n,
        elpd_i=xr.DataArray(elpd_i, dims="unit"), pareto_k=xr.DataArray(k, dims="unit"),
        warning=bool(np.any(k > compare.K_BAD)), log_weights=None, p_loo_i=None, n_eff_i=None,
        influence_pareto_k=None, approx_posterior=False,
    )


def cell_loo(loos, cells):
    """ELPD data with one unit per cell: each cell's pointwise ELPD summed.

    The Pareto k of a cell is the largest of its observations'.
    """
    elpd_i = np.array([float(l.elpd_i.sum()) for l in loos])
    k = np.array([float(np.nanmax(l.pareto_k.values)) for l in loos])
    n = elpd_i.size
    return dataclasses.replace(
        loos[0], elpd=float(elpd_i.sum()), se=float(np.sqrt(n * np.var(elpd_i))), p=float(sum(l.p for l in loos)),
        n_data_points=n, elpd_i=xr.DataArray(elpd_i, dims="cell", coords={"cell": cells}),
        pareto_k=xr.DataArray(k, dims="cell", coords={"cell": cells}), warning=bool(np.any(k > compare.K_BAD)),
        log_weights=None, p_loo_i=None, n_eff_i=None, influence_pareto_k=None,
        good_k=loos[0].good_k, approx_posterior=False,
    )


def wins_table(per_cell):
    """How often each hypothesis is best across cells.

    Columns: ``hypothesis``, ``best`` (cells where it ranks first),
    ``preferred`` (first, distinguishable from every other by the stated
    rule, and resting on converged fits: :func:`mgbayes.compare.decide`), ``cells`` (the cells it is best in), ``share`` (best / all
    cells).
    """
    names = list(next(iter(per_cell.values())).table.hypothesis)
    rows = {h: {"hypothesis": h, "best": 0, "preferred": 0, "cells": []} for h in sorted(names)}
    for cell, c in per_cell.items():
        best = c.table.hypothesis.iloc[0]
        rows[best]["best"] += 1
        rows[best]["cells"].append(cell)
        if c.decision == "preferred":
            rows[best]["preferred"] += 1
    frame = pd.DataFrame(rows.values())
    frame["share"] = frame["best"] / len(per_cell)
    frame["cells"] = frame["cells"].map(", ".join)
    return frame.sort_values(["best", "preferred"], ascending=False, ignore_index=True)


def per_cell_table(per_cell, cells):
    """All per-cell comparison tables in one DataFrame, with a ``cell`` column and the cells' metadata."""
    meta = {c.name: c.metadata for c in cells}
    frames = []
    for cell, c in per_cell.items():
        df = c.table.copy()
        df.insert(1, "cell", cell)
        for k, v in meta.get(cell, {}).items():
            df[k] = v
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def group_table(params):
    """Across-cell summary of a per-cell parameter table: mean, sd, min and max of the cells' medians."""
    scalar = params[params["time_h"].isna()] if "time_h" in params else params
    scalar = scalar[scalar["cell"].notna()] if "cell" in scalar else scalar.iloc[0:0]  # independent fits only
    grouped = scalar.groupby(["hypothesis", "parameter", "unit"], sort=False)["median"]
    out = grouped.agg(cells="count", mean="mean", sd="std", min="min", max="max").reset_index()
    return out


def key_parameters(idata):
    """Free scalar parameters of a result (no noise, no derived or resolved quantities)."""
    posterior = idata["posterior"]
    return [v for v in posterior.data_vars if set(posterior[v].dims) == {"chain", "draw"}
            and not v.startswith("noise_") and "kind" not in posterior[v].attrs]


def run_experiment(experiment, out_dir, *, quick=False, scheduler=None, workers=None, log=print):
    """Fit and compare a many-cell experiment; returns :class:`CellResults`."""
    log(f"{experiment.name}: {len(experiment.hypothesis_paths)} hypotheses on {len(experiment.cells)} cells "
        f"(pooling: {experiment.pooling})")
    options = {"quick": quick, "scheduler": scheduler, "workers": workers, "log": log}
    fits = fit_cells(experiment, out_dir, **options) if experiment.pooling in ("none", "both") else {}
    pooled = fit_all_pooled(experiment, out_dir, **options) if experiment.pooling in ("partial", "both") else {}
    per_cell, comparison, wins = compare_cells(experiment, fits, pooled)
    return CellResults(experiment.cells, fits, per_cell, comparison, wins, pooled)
