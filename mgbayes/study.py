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
    information = []                   # prior files ([priors], hard [bounds]) applied to every hypothesis
    unit = "spectrum"                  # LOO unit: point | spectrum | cell, or "future" (leave-future-out);
                                       # | current; default: spectrum for spectra series, point otherwise
    ohmic_spectrum = "cell_eis.mpt"    # I-V and transients: prior of R_u from this spectrum's high-frequency intercept
    truth = "charge_transfer"          # synthetic data: the hypothesis that generated them (named in verdicts)
    stated = "numbers.toml"            # numbers stated elsewhere, compared with the posterior ("Tensions")
    max_refits = 5                     # exact refits for units with Pareto k > 0.7 (0: none)
    decimal = ","                      # decimal separator of the data (default: detected per file)
    forecast = { min_spectra = 20, horizon = 1 }   # with unit = "future" (see mgbayes.forecast)

Outside evidence as data: each ``[[experiment.evidence]]`` table is
another experiment fitted jointly with every hypothesis (one model, two
likelihoods); its ``shares`` are the hypothesis's own quantities, its other
parameters its own (shared by name between evidence tables), and only the
experiment's own data enter LOO (see :class:`mgbayes.inference.Evidence`)::

    [[experiment.evidence]]
    name = "polysulfide_Mg"
    data = "polysulfide_Mg.csv"
    area_cm2 = 1.131
    symmetric = true
    hypothesis = "../ocv_drift_info/polysulfide_Mg.toml"
    shares = ["R_e"]

An experiment with ``information`` or ``evidence`` is also compared on its
data alone (the spectra-only fits are reused from another experiment of
the study when it has them), so the report shows what the outside
information changed.

Many cells (see :mod:`mgbayes.cells`): ``data`` may be a folder or a glob
(``data = "cells/*.mpt"``), with ``cells = "cells.csv"`` giving per-cell
metadata (columns ``file, cell[, area_cm2, electrolyte, ...]``) and
``pooling = "none" | "partial" | "both"`` (independent fits per cell, one
hierarchical model of all cells, or both; compared with the cell as LOO
unit). Their fits run in parallel: a local process pool by default, a
Dask cluster with a top-level ``scheduler = "tcp://host:8786"`` (or
``"local"`` for a ``LocalCluster``), ``"serial"`` for none; ``workers``
sets the number of local workers. ``mgbayes run --scheduler/--workers``
override both. A remote scheduler must be trusted (its results are
unpickled): a study file's ``tcp://`` address is used only when
``--scheduler`` names it too.

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

import dataclasses
import hashlib
import json
import sys
import time
import tomllib
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import cache, cells, compare, forecast, hypotheses, inference, io, parallel
from .diagnostics import ConvergenceWarning
from .errors import HypothesisError
from .files import check_name, check_writable, lock
from .observations import observe

_STUDY_KEYS = {"title", "description", "provenance", "sampler", "experiment", "scheduler", "workers"}
_EXPERIMENT_KEYS = {"name", "data", "area_cm2", "symmetric", "hypotheses", "information", "unit", "forecast",
                    "process", "sampler", "provenance", "description", "max_refits", "cells", "pooling", "decimal",
                    "design",  # design: candidate measurements for `mgbayes design` (read by mgbayes.design)
                    *("spectra", "time_h", "frequency_Hz"),  # selection keys, see _selection
                    "kk", "kk_threshold",  # Kramers-Kronig pre-check, see mgbayes.kk
                    "evidence", "truth", "stated", "ohmic_spectrum"}
_EVIDENCE_KEYS = {"name", "data", "hypothesis", "area_cm2", "symmetric", "shares"}
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
    decimal: str | None = None  # decimal separator of the data files (None: detected per file)
    selection: dict = field(default_factory=dict)  # SpectrumSeries.select keywords: index, time_h, frequency_Hz
    kk: str = "flag"  # failing spectra: "flag" (report), "exclude" (not fitted) or "off"
    kk_threshold: float = 0.05  # mgbayes.kk.THRESHOLD
    evidence: list = field(default_factory=list)  # dicts: name, data_path, hypothesis_path, area_cm2, symmetric, shares
    bounds: dict = field(default_factory=dict)  # hard bounds from information files: name -> {"lower"/"upper": value}
    truth: str | None = None   # synthetic data: the hypothesis that generated them
    stated: dict = field(default_factory=dict)  # quantity -> {"range": (lo, hi), "text": ...}


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
    table = read_toml(path, "study file")
    unknown = set(table) - _STUDY_KEYS
    if unknown:
        raise HypothesisError(f"{path}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_STUDY_KEYS)}")
    if not table.get("experiment"):
        raise HypothesisError(f"{path}: no [[experiment]] tables")
    if not isinstance(table["experiment"], list) or not all(isinstance(e, dict) for e in table["experiment"]):
        raise HypothesisError(f"{path}: experiment = {table['experiment']!r}; experiments are [[experiment]] tables "
                              "(name, data, hypotheses, ...), see models/studies/paper.toml")
    if not isinstance(table.get("sampler", {}), dict):
        raise HypothesisError(f"{path}: sampler = {table['sampler']!r}; expected a [sampler] table")
    if table.get("scheduler") is not None and not isinstance(table["scheduler"], str):
        raise HypothesisError(f"{path}: scheduler = {table['scheduler']!r}; expected 'processes', 'serial', 'local' "
                              "or a trusted Dask scheduler address")
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


def read_toml(path, what):
    """The table of a TOML file (:func:`mgbayes.hypotheses.read_toml`, which names the file in every error)."""
    return hypotheses.read_toml(path, what)[1]


def _sampler(table, where, base=None):
    if not isinstance(table, dict):
        raise HypothesisError(f"{where}: sampler = {table!r}; expected a table such as {{ draws = 1000, chains = 4 }}")
    unknown = set(table) - _SAMPLER_KEYS
    if unknown:
        raise HypothesisError(f"{where}: unknown sampler key(s) {sorted(unknown)}; allowed: {sorted(_SAMPLER_KEYS)}")
    for key, lowest in (("draws", 1), ("tune", 0), ("chains", 1), ("seed", 0)):
        value = table.get(key, lowest)
        if not isinstance(value, int) or isinstance(value, bool) or value < lowest:
            raise HypothesisError(f"{where}: {key} = {value!r}; expected a whole number >= {lowest} (no quotes)")
    accept = table.get("target_accept", 0.9)
    if not isinstance(accept, (int, float)) or isinstance(accept, bool) or not 0 < accept < 1:
        raise HypothesisError(f"{where}: target_accept = {accept!r}; expected a number between 0 and 1, e.g. 0.9")
    return {"draws": 1000, "tune": 1000, "chains": 4, "seed": 1, "target_accept": 0.9, **(base or {}), **table}


def _experiment(table, path, defaults, provenance, k):
    where = f"{path} [experiment {k + 1}]"
    unknown = set(table) - _EXPERIMENT_KEYS
    if unknown:
        raise HypothesisError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_EXPERIMENT_KEYS)}")
    for key in ("name", "data", "hypotheses"):
        if key not in table:
            raise HypothesisError(f"{where}: missing key {key!r}")
    check_name(table["name"], what="experiment name", where=where)
    _check_types(table, where)
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
    information, bounds = {}, {}
    for entry in table.get("information", []):
        p = (base / entry).resolve()
        if not p.is_file():
            raise HypothesisError(f"{where}: information file {p} does not exist")
        info = read_toml(p, "information file")
        priors = info.get("priors", {})
        if not isinstance(priors, dict):
            raise HypothesisError(f"{p}: priors = {priors!r}; expected a [priors] table of name = {{ dist = ... }}")
        information.update(priors)
        bounds.update({k: _bound(v, f"{p} [bounds.{k}]") for k, v in info.get("bounds", {}).items()})
    if "ohmic_spectrum" in table:
        spectrum = (base / table["ohmic_spectrum"]).resolve()
        if not spectrum.is_file():
            raise HypothesisError(f"{where}: ohmic_spectrum file {spectrum} does not exist")
        information.setdefault("R_u", ohmic_prior(spectrum, area_cm2=table.get("area_cm2"), where=where))
    unit = table.get("unit") or _default_unit(files, cell_list)
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
    truth = table.get("truth")
    if truth is not None and truth not in _names(files):
        raise HypothesisError(f"{where}: truth = {truth!r} is not one of the experiment's hypotheses {_names(files)}")
    return Experiment(
        name=table["name"], data_path=data_path, hypothesis_paths=files, information=information, unit=unit,
        evidence=[_evidence(e, base, f"{where} [evidence {i + 1}]") for i, e in enumerate(table.get("evidence", []))],
        bounds=bounds, truth=truth, stated=_stated(table["stated"], base, where) if "stated" in table else {},
        forecast=dict(options),
        max_refits=int(table.get("max_refits", 5)),
        area_cm2=table.get("area_cm2"), symmetric=bool(table.get("symmetric", False)), process=table.get("process"),
        sampler=_sampler(table.get("sampler", {}), where, defaults), provenance=table.get("provenance", provenance),
        description=table.get("description", ""), cells=cell_list, pooling=pooling, decimal=table.get("decimal"),
        selection=_selection(table, where), **_kk_options(table, where),
    )


def _check_types(table, where):
    """Types of an experiment's keys, before any of them is used."""
    def paths(value):
        return isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))

    checks = {
        "data": (lambda v: isinstance(v, str), "a file, folder or glob in quotes, e.g. \"cell1.mpt\""),
        "hypotheses": (paths, "a folder or file in quotes, or a list of them"),
        "information": (lambda v: isinstance(v, list) and paths(v), "a list of prior files, e.g. [\"bounds.toml\"]"),
        "cells": (lambda v: isinstance(v, str), "a CSV file in quotes"),
        "area_cm2": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < float("inf"),
                     "a positive number in cm2, e.g. 1.131"),
        "symmetric": (lambda v: isinstance(v, bool), "true or false"),
        "max_refits": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "a whole number >= 0"),
        "process": (lambda v: isinstance(v, str), "a process name in quotes, e.g. \"plating\""),
        "unit": (lambda v: isinstance(v, str), "'point', 'spectrum', 'cell', 'current' or 'future'"),
        "decimal": (lambda v: v in (".", ","), "\".\" or \",\" (the data's decimal separator)"),
    }
    for key, (ok, expected) in checks.items():
        if key in table and not ok(table[key]):
            raise HypothesisError(f"{where}: {key} = {table[key]!r}; expected {expected}")


def _kk_options(table, where):
    from . import kk

    action = table.get("kk", "flag")
    if action not in kk.ACTIONS:
        raise HypothesisError(f"{where}: kk = {action!r}; use one of {', '.join(map(repr, kk.ACTIONS))}")
    threshold = table.get("kk_threshold", kk.THRESHOLD)
    if not isinstance(threshold, (int, float)) or not 0 < threshold < 1:
        raise HypothesisError(f"{where}: kk_threshold = {threshold!r}; a fraction of |Z| such as 0.01 (1 %)")
    return {"kk": action, "kk_threshold": float(threshold)}


def _selection(table, where):
    """The part of the spectra to fit: ``spectra = [0, 5, 9]``, ``time_h = [0, 20]``, ``frequency_Hz = [0.1, 1e5]``."""
    selection = {}
    for key, name in (("spectra", "index"), ("time_h", "time_h"), ("frequency_Hz", "frequency_Hz")):
        if key not in table:
            continue
        value = table[key]
        pair = key != "spectra"
        ok = isinstance(value, list) and all(isinstance(v, int if not pair else (int, float)) for v in value)
        if not ok or (pair and len(value) != 2) or not value:
            example = "[0, 5, 9]" if not pair else ("[0, 20]" if key == "time_h" else "[0.1, 1e5]")
            raise HypothesisError(f"{where}: {key} = {value!r}; expected a list such as {key} = {example}")
        selection[name] = value
    return selection


def select(data, selection, where):
    """Apply an experiment's selection keys to impedance data (a Spectrum or a SpectrumSeries)."""
    from .data import Spectrum

    if not selection:
        return data
    if isinstance(data, Spectrum) and set(selection) - {"frequency_Hz"}:
        raise HypothesisError(f"{where}: spectra / time_h select spectra of a series, but the file holds one "
                              "spectrum; remove those keys")
    return data.select(**selection)


def _names(files):
    return [tomllib.loads(f.read_text(encoding="utf-8")).get("name", f.stem) for f in files]


def _default_unit(files, cell_list):
    """LOO unit when the study names none: whole spectra for a drift series (its points are correlated)."""
    kind = tomllib.loads(files[0].read_text(encoding="utf-8")).get("kind", "impedance")
    return "spectrum" if kind == "impedance" and cell_list is None else "point"


def _bound(spec, where):
    """A hard bound ``{ upper = x }`` and/or ``{ lower = x }`` (positive numbers)."""
    if not isinstance(spec, dict) or not spec or set(spec) - {"lower", "upper"} or not all(
            isinstance(v, (int, float)) and v > 0 for v in spec.values()):
        raise HypothesisError(f"{where}: expected {{ upper = value }} and/or {{ lower = value }} (positive), got {spec!r}")
    return {k: float(v) for k, v in spec.items()}


def _evidence(table, base, where):
    """One ``[[experiment.evidence]]`` table, checked (paths resolved)."""
    if not isinstance(table, dict) or set(table) - _EVIDENCE_KEYS or not {"name", "data", "hypothesis"} <= set(table):
        raise HypothesisError(f"{where}: expected keys name, data, hypothesis[, area_cm2, symmetric, shares]; "
                              f"got {sorted(table) if isinstance(table, dict) else table!r}")
    out = {"name": str(table["name"]), "data_path": (base / table["data"]).resolve(),
           "hypothesis_path": (base / table["hypothesis"]).resolve(), "area_cm2": table.get("area_cm2"),
           "symmetric": bool(table.get("symmetric", False)), "shares": tuple(table.get("shares", ()))}
    for key in ("data_path", "hypothesis_path"):
        if not out[key].is_file():
            raise HypothesisError(f"{where}: {key.split('_')[0]} file {out[key]} does not exist")
    return out


def _stated(entry, base, where):
    """Numbers stated elsewhere (``[stated.NAME] range = [lo, hi]``, ``text``) from a TOML file."""
    path = (base / entry).resolve()
    if not path.is_file():
        raise HypothesisError(f"{where}: stated file {path} does not exist")
    table = tomllib.loads(path.read_text(encoding="utf-8")).get("stated", {})
    out = {}
    for name, spec in table.items():
        lo_hi = spec.get("range") if isinstance(spec, dict) else None
        if not (isinstance(lo_hi, list) and len(lo_hi) == 2 and lo_hi[0] <= lo_hi[1]):
            raise HypothesisError(f"{path} [stated.{name}]: expected range = [low, high], got {spec!r}")
        out[name] = {"range": (float(lo_hi[0]), float(lo_hi[1])), "text": str(spec.get("text", ""))}
    return out


def load_evidence(experiment):
    """The experiment's outside evidence as :class:`mgbayes.inference.Evidence` objects."""
    out = []
    for e in experiment.evidence:
        data = io.read(e["data_path"], area_cm2=e["area_cm2"], symmetric=e["symmetric"])
        out.append(inference.Evidence(e["name"], hypotheses.load(e["hypothesis_path"]), observe(data), e["shares"]))
    return tuple(out)


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
    """Read an experiment's data file for hypotheses of ``kind`` (with its declared decimal separator)."""
    with io.decimal_separator(experiment.decimal):
        return _load_data(experiment, kind)


def _load_data(experiment, kind):
    path = experiment.data_path
    if kind == "iv":
        curve = io.read_iv(path)
        return curve.select(process=experiment.process) if experiment.process else curve
    if kind == "transient":
        return io.read_transients(path, area_cm2=experiment.area_cm2) if path.suffix == ".mpt" else io.read_transients(path)
    data = io.read(path, area_cm2=experiment.area_cm2, symmetric=experiment.symmetric)
    data = select(data, experiment.selection, f"experiment {experiment.name!r}")
    if experiment.kk == "exclude":
        from . import kk

        data = kk.exclude_failed(data, kk_table(experiment, data), where=f"experiment {experiment.name!r}")
    return data


def kk_table(experiment, data=None):
    """Linear Kramers-Kronig test of each selected spectrum (:func:`mgbayes.kk.table`); None if ``kk = "off"``.

    ``data``: the spectra, if already read (before any exclusion).
    """
    from . import kk

    if experiment.kk == "off":
        return None
    if data is None:
        data = select(io.read(experiment.data_path, area_cm2=experiment.area_cm2, symmetric=experiment.symmetric),
                      experiment.selection, f"experiment {experiment.name!r}")
    return kk.table(data, kk.check(data, threshold=experiment.kk_threshold))


def load_hypotheses(experiment):
    """The experiment's hypotheses, with its information priors applied where they fit."""
    out = []
    for p in experiment.hypothesis_paths:
        h = hypotheses.load(p)
        names = set(h.free_parameters()) | set(h.drift) | set(h.hierarchy)
        extra = {k: v for k, v in experiment.information.items() if k in names}
        out.append(hypotheses.load(p, priors=extra) if extra else h)
    evidence = load_evidence(experiment) if experiment.evidence else ()
    for h in out:
        inference.check_evidence(h, evidence)
        h.evidence = evidence
        own = set(h.free_parameters()) | set(h.transform) | set(h.drift)
        h.bounds = {k: v for k, v in experiment.bounds.items() if k in own}
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


def _cached(out_dir, key, log=print):
    """A finished fit anywhere under ``out_dir/fits`` whose inputs hash to ``key`` (unreadable ones named and skipped)."""
    for path in sorted((Path(out_dir) / "fits").glob("*/*.nc")):
        if inference.saved_attrs(path).get("input_hash") not in (key, None):
            continue  # another fit: not loaded whole
        tree = inference.load_or_none(path, log=log)
        if tree is not None and tree.attrs.get("input_hash") == key:
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
    for h in hyps:  # every hypothesis's derived quantities, before the first one samples
        inference.check_derived(h, data)
    if hyps[0].kind == "impedance" and experiment.kk != "off":
        from . import kk

        log(f"  {experiment.name}: {kk.summary(kk_table(experiment))}"
            + (" Failing spectra are left out (kk = \"exclude\")." if experiment.kk == "exclude" else ""))
    results = {}
    for h in hyps:
        path = Path(out_dir) / "fits" / experiment.name / f"{h.name}.nc"
        key = fit_key(experiment, h, sampler)
        found, cached = _cached(out_dir, key, log)
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
    from . import outputs

    comparisons, fits, datas, many = {}, {}, {}, {}
    twins = {e.name: spectra_only(study, e) for e in study.experiments if e.information or e.evidence or e.bounds}
    study.experiments += [t for t in twins.values() if t not in study.experiments]
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
            comparison.truth = experiment.truth
            comparisons[experiment.name] = comparison
    for name, twin in twins.items():
        if name in comparisons and twin.name in comparisons:
            comparisons[name].spectra_only = twin.name
    for experiment in study.experiments:
        if experiment.evidence and any(e["shares"] for e in experiment.evidence):
            log(f"{experiment.name}: the outside data alone ...")
            fits[evidence_key(experiment.name)] = fit_evidence_alone(experiment, quick=quick, log=log)
    outputs.write_all(study, out_dir, fits, datas, comparisons, quick=quick, command=command, log=log,
                      cell_results=many)
    return comparisons


def evidence_key(name):
    """Key in a study's fits of the fit of experiment ``name``'s outside data alone."""
    return f"{name} (outside data alone)"


def fit_evidence_alone(experiment, *, quick=False, log=print):
    """Fit the outside evidence without the experiment's own data: what it says about the shared quantities.

    The evidence that shares quantities is the main model; the others join it,
    sharing the parameters they name alike. Returns ``{name: DataTree}``.
    """
    sampler = {**experiment.sampler, **(QUICK if quick else {})}
    evidence = load_evidence(experiment)
    main = next(ev for ev in evidence if ev.shares)
    names = set(main.hypothesis.free_parameters())
    main.hypothesis.evidence = tuple(
        inference.Evidence(ev.name, ev.hypothesis, ev.observations,
                           tuple(sorted(names & set(ev.hypothesis.free_parameters()))))
        for ev in evidence if ev is not main)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # reported in the convergence table
        idata = inference.fit(main.hypothesis, main.observations, draws=sampler["draws"], tune=sampler["tune"],
                              chains=sampler["chains"], random_seed=sampler["seed"],
                              target_accept=sampler["target_accept"])
    log(f"    {main.name}: {idata.attrs['diagnostics']}")
    return {main.name: idata}


def spectra_only(study, experiment):
    """The experiment on its own data without outside information: the study's own, or a new one.

    A new one is named ``<name>_spectra_only``; its fits are reused from
    any experiment of the study with the same inputs.
    """
    for e in study.experiments:
        if (e.data_path == experiment.data_path and e.hypothesis_paths == experiment.hypothesis_paths
                and not (e.information or e.evidence or e.bounds) and e.unit == experiment.unit and e.cells is None):
            return e
    return dataclasses.replace(experiment, name=f"{experiment.name}_spectra_only", information={}, evidence=[], bounds={},
                               description=f"The hypotheses of {experiment.name!r} on its data alone, "
                                           "without outside information.")


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
        lines.append(f"  verdict: {c.verdict}" + (f" [synthetic data generated by '{c.truth}']" if c.truth else ""))
        if c.spectra_only and c.spectra_only in comparisons:
            lines.append(f"  spectra only ({c.spectra_only}): {comparisons[c.spectra_only].verdict}")
    problems = [f"  {e}/{h}: {r.attrs['diagnostics']}" for e, rs in fits.items() for h, r in rs.items()
                if not int(r.attrs.get("converged", 1))]
    lines.append("convergence: " + ("all fits converged" if not problems else "PROBLEMS"))
    lines += problems
    lines.append(f"rule: {compare.RULE}")
    lines.append(f"outputs: {Path(out_dir).resolve()} (report.html, report.md, comparison.csv, parameters.csv, figures/, fits/)")
    return "\n".join(lines)

