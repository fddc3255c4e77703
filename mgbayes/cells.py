"""Comparison of many cells: within every cell and over all cells (the cell as LOO unit).

A many-cell experiment of a study (its file format and :class:`Cell`, the
cells read from a folder or a glob with a metadata table, are in
:mod:`mgbayes.studyfile`) fits every hypothesis to every cell on its own and,
with ``pooling = "partial"`` or ``"both"``, one hierarchical model of all
cells (:mod:`mgbayes.fits`: one task per fit, each with its own seed derived
from the study seed, the cell name and the hypothesis name, so results do
not depend on where or in which order the fits ran).

Partial pooling (impedance data): the cells' spectra series, on a common
frequency and time grid, are stacked into one model with a ``cell`` dim;
parameters named in a hypothesis's ``[hierarchy]`` table (e.g. the drift
law's ``R_ct_0`` and ``R_ct_rate``) vary by cell around a group mean,
all others are shared. The independent fits of such a hypothesis ignore its
``[hierarchy]`` table (I–V and transient files keep theirs: they may hold
several cells each). Pooled results are labelled ``NAME (pooled)``
(:data:`POOLED`).

Hypotheses are compared twice, here: within every cell (LOO at the
experiment's unit) and over all cells with the *cell* as LOO unit: a cell's
ELPD is the sum of its observations' LOO ELPD, and standard errors of
differences come from the scatter between cells. :func:`wins_table` counts
how often each hypothesis wins.
"""

import dataclasses
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from . import compare
from .errors import HypothesisError
from .fits import POOLED
from .studyfile import Cell, read_cells  # noqa: F401 - the cells of a study file, importable from here as before


@dataclass
class CellResults:
    """Fits and comparisons of a many-cell experiment."""

    cells: list
    fits: dict  # cell name → {hypothesis name → DataTree} (empty without independent fits)
    per_cell: dict  # cell name → Comparison
    comparison: compare.Comparison  # cell as LOO unit
    wins: pd.DataFrame
    pooled: dict = field(default_factory=dict)  # hypothesis name → DataTree of the hierarchical model


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
