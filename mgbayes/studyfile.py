"""The study file: what to fit to which data (read, checked, resolved).

This module reads a study file into :class:`Study` and :class:`Experiment`
objects, reads an experiment's data and loads its hypotheses (information
priors, hard bounds and outside evidence applied once, here). It knows no
fit, comparison or output: :mod:`mgbayes.fits` makes the fits and
:func:`mgbayes.study.run` wires everything. A study file (TOML; paths relative to the file)::

    title = "My cells"
    provenance = "measured"            # or "synthetic": shown in the report

    [sampler]                          # defaults for every experiment
    draws = 1000                       # per chain, at most: a fit stops once its convergence checks pass
                                       # (twice as many where only R-hat or ESS still fall short)
    tune = 500
    chains = 4
    seed = 1
    until_converged = true             # false: every fit makes all its draws

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
unit). Their fits run in parallel, as do the fits of all single
experiments together (each with its chains one after another): a local
process pool by default, a Dask cluster with a top-level
``scheduler = "tcp://host:8786"`` (or ``"local"`` for a ``LocalCluster``),
``"serial"`` for none (fits one after another, each with its chains in
parallel; the same draws); ``workers`` sets the number of local workers. ``mgbayes run --scheduler/--workers``
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
import glob
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import forecast, hypotheses, inference, io, kk
from .data import Spectrum
from .errors import HypothesisError
from .files import check_name
from .observations import observe

_STUDY_KEYS = {"title", "description", "provenance", "sampler", "experiment", "scheduler", "workers"}
_EXPERIMENT_KEYS = {"name", "data", "area_cm2", "symmetric", "hypotheses", "information", "unit", "forecast",
                    "process", "sampler", "provenance", "description", "max_refits", "cells", "pooling", "decimal",
                    "design",  # design: candidate measurements for `mgbayes design` (read by mgbayes.design)
                    *("spectra", "time_h", "frequency_Hz"),  # selection keys, see _selection
                    "kk", "kk_threshold",  # Kramers-Kronig pre-check, see mgbayes.kk
                    "evidence", "truth", "stated", "ohmic_spectrum"}
_EVIDENCE_KEYS = {"name", "data", "hypothesis", "area_cm2", "symmetric", "shares"}
_SAMPLER_KEYS = {"draws", "tune", "chains", "seed", "target_accept", "until_converged"}
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
    cells: list | None = None  # many-cell experiments: list of Cell
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
    if not isinstance(table.get("until_converged", True), bool):
        raise HypothesisError(f"{where}: until_converged = {table['until_converged']!r}; expected true or false "
                              "(true: stop once every convergence check passes, draws being the most per chain)")
    return {"draws": 1000, "tune": inference.TUNE, "chains": 4, "seed": 1, "target_accept": 0.9, "until_converged": True,
            **(base or {}), **table}


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
    many = "cells" in table or is_pattern(table["data"]) or data_path.is_dir()
    if not many and not data_path.is_file():
        raise HypothesisError(f"{where}: data file {data_path} does not exist")
    pooling = table.get("pooling", "none")
    if pooling not in ("none", "partial", "both"):
        raise HypothesisError(f"{where}: pooling = {pooling!r}; use 'none', 'partial' or 'both'")
    cell_list = (read_cells(table["data"], table.get("cells"), base=base, area_cm2=table.get("area_cm2"), where=where)
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
    data = read_spectra(experiment)
    if experiment.kk == "exclude":
        data = kk.exclude_failed(data, kk_table(experiment, data), where=f"experiment {experiment.name!r}")
    return data


def read_spectra(experiment):
    """The experiment's spectra as selected by its keys, before any Kramers-Kronig exclusion."""
    with io.decimal_separator(experiment.decimal):
        data = io.read(experiment.data_path, area_cm2=experiment.area_cm2, symmetric=experiment.symmetric)
    return select(data, experiment.selection, f"experiment {experiment.name!r}")


def kk_table(experiment, data=None):
    """Linear Kramers-Kronig test of each selected spectrum (:func:`mgbayes.kk.table`); None if ``kk = "off"``.

    ``data``: the spectra, if already read (before any exclusion).
    """
    if experiment.kk == "off":
        return None
    data = read_spectra(experiment) if data is None else data
    return kk.table(data, kk.check(data, threshold=experiment.kk_threshold))


def load_hypotheses(experiment):
    """The experiment's hypotheses, each file read once, with its information priors, bounds and evidence applied."""
    out = [hypotheses.load(p, information=experiment.information) for p in experiment.hypothesis_paths]
    evidence = load_evidence(experiment) if experiment.evidence else ()
    for h in out:
        inference.check_evidence(h, evidence)
        h.evidence = evidence
        own = set(h.free_parameters()) | set(h.transform) | set(h.drift)
        h.bounds = {k: v for k, v in experiment.bounds.items() if k in own}
    families = {h.family for h in out}
    if len(families) > 1:
        raise HypothesisError(f"experiment {experiment.name!r}: hypotheses of different families {sorted(families)} "
                              "cannot be compared; give the experiment hypotheses of one family")
    return out


def for_data(hyps, data, *, log=None):
    """The hypotheses as fitted to ``data``: ``[hierarchy]`` dropped (with a notice) when it holds one cell."""
    n_cells = len(observe(data).coords.get("cell", ()))
    out = []
    for h in hyps:
        h, notice = hypotheses.for_cells(h, n_cells)
        if notice and log:
            log(f"  notice: {notice}")
        out.append(h)
    return out


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


@dataclass
class Cell:
    """One cell of a many-cell experiment: its data file and metadata."""

    name: str
    path: Path
    area_cm2: float | None = None
    metadata: dict = field(default_factory=dict)


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
