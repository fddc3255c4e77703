"""Rank hypotheses by PSIS-LOO and say plainly what the data can tell apart.

The LOO unit is a choice: ``"point"`` (one frequency point of one spectrum,
Re and Im together; one I–V point), ``"spectrum"`` (a whole spectrum left
out), ``"cell"`` (all points of one cell, for I–V sets and transients) or
``"current"`` (all points at one applied current density: does a law
predict a current that was not measured?).

Verdict rule (stated in every report): the best hypothesis is *preferred*
over another when its ELPD exceeds the other's by more than
:data:`DIFF_MIN` and by more than :data:`SE_FACTOR` standard errors of the
difference; otherwise the two are *indistinguishable* with these data.
Pareto-k above :data:`K_BAD` marks observations where PSIS is unreliable;
with ``refit=`` (:func:`refitter`) these are recomputed by exact refits.

Outside evidence of a joint fit (``[[experiment.evidence]]``) is scored
with the experiment's own data: each outside point is one more LOO unit
(:func:`evidence_unit_index` says why a point), so a hypothesis that
misfits those data, or inflates their noise to absorb a misfit, pays for
it in the ELPD.

Units with high Pareto k are refitted exactly by :func:`arviz.reloo` through
:class:`Refits`, the ArviZ ``SamplingWrapper`` that leave-future-out
(:mod:`mgbayes.forecast`) uses too.

The verdict of a whole comparison (:func:`decide`) is *unreliable*, with
the reasons, whenever a fit it rests on is not converged or LOO is not
reliable; only then the rule above decides between *preferred* and
*indistinguishable*. Weights are pseudo-BMA+ (Bayesian-bootstrap
pseudo-BMA, Yao et al. 2018), shown only with a *preferred* verdict.
"""

import dataclasses
import warnings
from dataclasses import dataclass, field

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr
from arviz_stats.loo.wrapper import SamplingWrapper

from . import psis
from .errors import SamplingError

DIFF_MIN = 4.0
SE_FACTOR = 2.0
K_BAD = 0.7
#: Default NUTS settings of a refit (exact LOO, leave-future-out): it gives one unit's log predictive
#: density, the log of a mean over draws, and is checked like any fit. A study's exact LOO refits take the
#: study's settings up to these (:func:`mgbayes.study.refit_settings`); its LFO refits take the study's.
REFIT = {"draws": 500, "tune": 700, "chains": 2}
VERDICTS = ("preferred", "indistinguishable", "unreliable")
RULE = (f"preferred when the ELPD difference exceeds {DIFF_MIN:g} and {SE_FACTOR:g}× its standard "
        f"error; otherwise indistinguishable (PSIS-LOO; Pareto k > {K_BAD} flagged); unreliable whenever a fit "
        f"is not converged (R-hat > 1.01, more than a handful of divergences, low ESS, chains in different modes) "
        f"or Pareto k > {K_BAD} remains")


class ParetoKWarning(UserWarning):
    """PSIS-LOO is unreliable for some observations (high Pareto k)."""


def unit_loglik(idata, unit="point"):
    """Pointwise log-likelihood DataArray summed to the LOO ``unit``.

    A joint fit with outside evidence (an ``evidence_log_likelihood``
    group) scores those data too: each outside point is one more unit,
    after the units of the hypothesis's own data, along one dimension
    ``unit`` (labelled e.g. ``"spectrum 3"``, ``"polysulfide_Mg point 0"``),
    whatever ``unit`` is (see :func:`evidence_unit_index` for why).
    """
    ll = _own_unit_loglik(idata, unit)
    if "evidence_log_likelihood" not in idata.children:
        return ll
    parts = [_along_unit(ll, unit + " {}")]
    for name, ev in idata["evidence_log_likelihood"].to_dataset().data_vars.items():
        parts.append(_along_unit(ev, name + " point {}"))
    return xr.concat(parts, dim="unit")


def _along_unit(ll, label):
    """``ll`` (chain, draw, ...) flattened (C order) to (chain, draw, unit).

    Units are labelled ``label.format(i)``, or numbered 0, 1, ... when ``label`` is None.
    """
    flat = ll.transpose("chain", "draw", ...).values.reshape(ll.sizes["chain"], ll.sizes["draw"], -1)
    n = flat.shape[-1]
    return xr.DataArray(flat, dims=("chain", "draw", "unit"),
                        coords={"chain": ll.chain, "draw": ll.draw,
                                "unit": np.arange(n) if label is None else [label.format(i) for i in range(n)]})


def _own_unit_loglik(idata, unit):
    """:func:`unit_loglik` of the hypothesis's own data only."""
    name = _observed_name(idata)
    ll = idata["log_likelihood"][name]
    if "part" in ll.dims:  # Re and Im of one frequency point are one observation
        ll = ll.sum("part")
    if unit == "point":
        return ll
    if unit == "spectrum":
        if "frequency" not in ll.dims:
            raise ValueError("unit='spectrum' needs impedance results (a frequency dimension)")
        return ll.sum("frequency")
    if unit == "cell" and "cell" in ll.dims:
        return ll.sum([d for d in ll.dims if d not in ("chain", "draw", "cell")])
    if unit == "cell":
        cell_index = idata["constant_data"]["cell_index"].values
        cells = idata["posterior"].coords["cell"].values if "cell" in idata["posterior"].coords else np.unique(cell_index)
        parts = [ll.isel(point=np.flatnonzero(cell_index == k)).sum("point") for k in range(len(cells))]
        return xr.concat(parts, dim="cell").assign_coords(cell=np.asarray(cells, dtype=str))
    if unit == "current":  # all points at one applied current density (I-V sets, transients)
        j = idata["constant_data"]["j"].values
        levels = list(dict.fromkeys(j.tolist()))
        parts = [ll.isel(point=np.flatnonzero(j == level)).sum("point") for level in levels]
        return xr.concat(parts, dim="current").assign_coords(current=np.asarray(levels, dtype=float))
    raise ValueError(f"unknown LOO unit {unit!r}; use 'point', 'spectrum', 'cell' or 'current'")


def _observed_name(idata):
    return next(iter(idata["log_likelihood"].data_vars))


def loo(idata, *, unit="point"):
    """PSIS-LOO of one result at the chosen unit (pointwise values kept).

    Computed by :func:`mgbayes.psis.loo`, ArviZ's estimator vectorised over
    observations, with ``r_eff`` from the sampled parameters.
    """
    ll = unit_loglik(idata, unit)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return psis.loo(ll, r_eff=psis.relative_ess(idata["posterior"].to_dataset()))
        except ValueError as err:
            raise SamplingError(
                f"PSIS-LOO failed for {idata.attrs.get('hypothesis', 'a result')} ({err}): its draws are degenerate. "
                f"Convergence: {idata.attrs.get('diagnostics', 'unknown')}. Refit with more tuning or a higher target_accept."
            ) from None


def bad_units(elpd, k_bad=K_BAD):
    """Boolean DataArray of units whose Pareto k exceeds ``k_bad``."""
    return elpd.pareto_k > k_bad


def replace_units(elpd, values, mask):
    """ELPDData with ``elpd_i`` replaced where ``mask`` (exact refits) and totals recomputed."""
    elpd_i = elpd.elpd_i.copy()
    elpd_i.values[np.asarray(mask)] = np.asarray(values)
    n = elpd_i.size
    total = float(elpd_i.sum())
    se = float(np.sqrt(n * np.var(elpd_i.values)))
    k = elpd.pareto_k.copy()
    k.values[np.asarray(mask)] = 0.0  # exact, no longer an importance-sampling estimate
    return dataclasses.replace(elpd, elpd=total, se=se, elpd_i=elpd_i, pareto_k=k, warning=False)


@dataclass
class Comparison:
    """Result of :func:`compare`: the table, the verdict and the LOO objects."""

    experiment: str
    unit: str
    table: pd.DataFrame
    verdict: str
    loo: dict = field(default_factory=dict)
    refits: dict = field(default_factory=dict)
    rule: str = RULE
    decision: str = ""
    reasons: list = field(default_factory=list)
    truth: str | None = None          # synthetic data: the hypothesis that generated them
    spectra_only: str | None = None   # with outside information: the experiment compared on its data alone
    refit_problems: dict = field(default_factory=dict)  # hypothesis → refits whose chains clearly failed
    trusted: list = field(default_factory=list)  # when unreliable: the hypotheses whose fits and LOO can carry a verdict
    trusted_decision: str = ""  # ... and the verdict among them alone (see :func:`among_trusted`)

    @property
    def method(self):
        """How the hypotheses were cross-validated, in words, with the number of units."""
        n = int(self.table["n"].iloc[0]) if "n" in self.table and len(self.table) else 0
        if self.unit == "future":
            return f"leave-future-out (forecast), n = {n} {plural('forecast origin')}"
        return f"LOO unit: {self.unit}, {count(n, self.unit, self.n_outside)}"

    @property
    def n_outside(self):
        """How many of the units are outside evidence of a joint fit (see :func:`unit_loglik`)."""
        return outside_units(next(iter(self.loo.values()), None), self.unit)

    def __str__(self):
        cols = ["rank", "elpd_loo", "se", "elpd_diff", "dse", "weight", "n_bad_k", "verdict"]
        return f"{self.experiment} ({self.method})\n{self.table[cols].to_string()}\n{self.verdict}\nRule: {self.rule}"


def compare(results, *, unit="point", refit=None, method="BB-pseudo-BMA"):
    """Rank hypotheses fitted to the same data.

    Parameters
    ----------
    results : dict
        Hypothesis name → DataTree from :func:`mgbayes.inference.fit`.
    unit : {"point", "spectrum", "cell"}
        What one left-out observation is.
    refit : callable, optional
        ``refit(name, mask)`` for hypotheses with units of Pareto k > 0.7
        (``mask``): a :class:`Refits` (see :func:`refitter`), with which
        those units are refitted exactly by :func:`arviz.reloo`, or an array
        of their exact ELPD values, or None (PSIS values kept, flagged).
        Refitted units are then no longer flagged; refits whose chains
        clearly failed make the verdict unreliable. Without it, high k is
        reported and warned about.
    method : str
        Weighting method of :func:`arviz.compare`: pseudo-BMA+ (``"BB-pseudo-BMA"``) by default.

    Returns
    -------
    Comparison
    """
    if len(results) < 2:
        raise ValueError("compare needs at least two hypotheses")
    experiments = {family(r) for r in results.values()}
    if len(experiments) > 1:
        raise ValueError(f"results explain different experiments {sorted(experiments)}")
    loos, refits, problems = {}, {}, {}
    for name, idata in results.items():
        elpd = loo(idata, unit=unit)
        mask = bad_units(elpd)
        if bool(mask.any()) and refit is not None:
            how = refit(name, mask.values)
            if isinstance(how, SamplingWrapper):
                elpd = reloo(how, idata, elpd, unit=unit)
                if how.problems:
                    problems[name] = how.problems
            elif how is not None:
                elpd = replace_units(elpd, how, mask.values)
            if how is not None:
                refits[name] = int(mask.sum())
        loos[name] = elpd
    return combine(loos, experiment=experiments.pop(), unit=unit, refits=refits, method=method,
                   label=family(next(iter(results.values()))), fits=results,
                   refit_problems=problems)


def family(result):
    """The hypothesis family a result explains (``experiment`` in results saved before the key was renamed)."""
    return result.attrs.get("family", result.attrs.get("experiment", ""))


def combine(loos, *, experiment, unit, refits=None, method="BB-pseudo-BMA", label=None, rule=RULE, fits=None,
            refit_problems=None):
    """A :class:`Comparison` from ready LOO results (hypothesis name → ELPD data).

    Used by :func:`compare`, and for LOO results assembled elsewhere (e.g.
    per-cell sums in :mod:`mgbayes.cells`). ``fits`` (hypothesis name →
    DataTree, or a list of them) are the fits the comparison rests on; their
    convergence gates the verdict (:func:`decide`). ``method`` is the
    weighting of :func:`arviz.compare` (pseudo-BMA+ by default);
    ``refit_problems`` (hypothesis name → texts) are refits that cannot
    be trusted (:attr:`Refits.problems`), which make the verdict unreliable.
    """
    refits = refits or {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = az.compare(loos, round_to="none")
        weights = az.compare(loos, method=method, round_to="none")["weight"] if method != "stacking" else None
    if weights is not None:
        table["weight"] = weights.reindex(table.index)
    table = _tidy(table, loos, experiment, refits)
    table["n_outside"] = [outside_units(loos[h], unit) for h in table.hypothesis]  # of the n units
    table["n"] = [int(loos[h].n_data_points) for h in table.hypothesis]
    table["unit"] = "forecast origin" if unit == "future" else unit
    flagged = table[table.n_bad_k > 0]
    if len(flagged):
        msg = "; ".join(f"{h}: {n} of {loos[h].n_data_points} units with Pareto k > {K_BAD}"
                        for h, n in zip(flagged.hypothesis, flagged.n_bad_k))
        warnings.warn(f"PSIS-LOO unreliable for some observations ({msg}); pass refit= for exact refits "
                      "or use a coarser unit", ParetoKWarning, stacklevel=3)
    comparison = Comparison(experiment if label is None else label, unit, table, "", loos, refits, rule,
                            refit_problems=refit_problems or {})
    fit_problems = _fit_problems(fits or {})  # convergence checks of every fit, once
    comparison.reasons = _reasons(fit_problems, comparison)
    comparison.decision = _decision(comparison.reasons, table)
    for h, problems in fit_problems.items():
        rows = table.hypothesis == h  # what the ELPD says, then why it cannot be trusted
        table.loc[rows, "verdict"] = table.loc[rows, "verdict"] + "; unreliable: " + ", ".join(problems)
    if comparison.decision != "preferred":
        table["weight"] = np.nan  # no weights where the data cannot tell the hypotheses apart, or cannot be trusted
    comparison.verdict = verdict(table, decision=comparison.decision, reasons=comparison.reasons)
    if comparison.decision == "unreliable":
        untrusted = set(fit_problems) | set(comparison.refit_problems) | set(table.hypothesis[table.n_bad_k > 0])
        comparison.trusted = [h for h in table.hypothesis if h not in untrusted]
        if len(comparison.trusted) >= 2:
            sub = among_trusted(comparison)
            comparison.trusted_decision = sub.decision
            names = ", ".join(f"'{h}'" for h in comparison.trusted)
            comparison.verdict += (f" Among the hypotheses whose fits can carry a verdict ({names}): "
                                   f"{sub.verdict[0].lower()}{sub.verdict[1:]}")
    return comparison


def among_trusted(comparison):
    """The comparison of :attr:`Comparison.trusted` alone, by the same rule.

    When one hypothesis's fit cannot be trusted, the rest can still be
    compared with each other: e.g. on the demo's OCV spectra the ``mixed``
    fit (divergent transitions where the film's drift hides behind a small
    ionic share) leaves ``charge_transfer`` against ``film``. Its verdict is
    about those hypotheses only, and is reported as such.
    """
    loos = {h: comparison.loo[h] for h in comparison.trusted}
    return combine(loos, experiment=comparison.experiment, unit=comparison.unit, rule=comparison.rule,
                   refits={h: n for h, n in comparison.refits.items() if h in loos})


def _fit_problems(fits):
    """Hypothesis name → the problems of its fit(s) that keep it from carrying a verdict (only those with some)."""
    from . import diagnostics

    out = {}
    for name, idatas in fits.items():
        idatas = list({id(i): i for i in (idatas if isinstance(idatas, (list, tuple)) else [idatas])}.values())
        problems = []
        for idata in idatas:
            where = f"{idata.attrs['cell']}: " if "cell" in idata.attrs and len(idatas) > 1 else ""
            problems += [where + p for p in diagnostics.verdict_problems(idata)]
        if problems:
            out[name] = problems
    return out


def reasons(fits, comparison):
    """Why the verdict of ``comparison`` cannot be trusted, in words (empty when it can); see :func:`decide`."""
    return _reasons(_fit_problems(fits), comparison)


def _reasons(fit_problems, comparison):
    """:func:`reasons`, from the fits' problems (:func:`_fit_problems`)."""
    out = [f"fit of '{h}' not converged ({'; '.join(p)})" for h, p in fit_problems.items()]
    kind = "leave-future-out" if comparison.unit == "future" else "exact LOO"
    out += [f"{kind} refits of '{h}' cannot be trusted ({'; '.join(p)})" for h, p in comparison.refit_problems.items()]
    table = comparison.table
    for h, n, k in zip(table.hypothesis, table.n_bad_k, table.pareto_k_max):
        if n > 0:
            out.append(f"PSIS-LOO of '{h}' unreliable ({n} of {comparison.loo[h].n_data_points} units with "
                       f"Pareto k > {K_BAD}, max {k:.2f}; pass refit= for exact refits or use a coarser unit)")
    return out


def decide(fits, comparison):
    """The verdict of a comparison: ``"preferred"``, ``"indistinguishable"`` or ``"unreliable"``.

    Parameters
    ----------
    fits : dict
        Hypothesis name → the DataTree it was fitted as (or a list of
        DataTrees, e.g. one per cell), for every hypothesis in ``comparison``.
    comparison : Comparison

    Returns
    -------
    str
        ``"unreliable"`` when any fit fails the convergence gate
        (:func:`mgbayes.diagnostics.verdict_problems`: R-hat <= 1.01, at most
        a handful of divergences, adequate ESS, chains in one mode, no better
        mode left behind) or any hypothesis keeps units with Pareto k >
        :data:`K_BAD` after refits (:func:`reasons` says which); otherwise
        ``"preferred"`` when the best hypothesis beats every other by the rule
        (:func:`distinguishable`), else ``"indistinguishable"``.
    """
    return _decision(reasons(fits, comparison), comparison.table)


def _decision(reasons, table):
    """:func:`decide`, from the :func:`reasons` and the comparison table."""
    if reasons:
        return "unreliable"
    rest = table.iloc[1:]
    if len(rest) and all(distinguishable(d, s) for d, s in zip(rest.elpd_diff, rest.dse)):
        return "preferred"
    return "indistinguishable"


def _tidy(table, loos, experiment, refits):
    table = table.copy()
    table.index.name = "hypothesis"
    df = pd.DataFrame({
        "experiment": experiment,
        "hypothesis": table.index,
        "rank": table["rank"].astype(int) + 1 if table["rank"].min() == 0 else table["rank"].astype(int),
        "elpd_loo": table["elpd"].astype(float),
        "se": table["se"].astype(float),
        "elpd_diff": (table["elpd"].max() - table["elpd"]).astype(float),  # >= 0: how much worse
        "dse": table["dse"].astype(float),
        "weight": table["weight"].astype(float),
        "p_loo": table["p"].astype(float),
        "pareto_k_max": [_k_max(loos[h]) for h in table.index],
        "n_bad_k": [int((loos[h].pareto_k > K_BAD).sum()) if loos[h].pareto_k is not None else 0 for h in table.index],
        "n_refit": [refits.get(h, 0) for h in table.index],
    }).reset_index(drop=True)
    df["verdict"] = [_row_verdict(r) for r in df.itertuples()]
    return df


def _k_max(elpd):
    """Largest Pareto k, NaN where none was estimated (exact refits, refit origins of LFO)."""
    k = elpd.pareto_k
    return float(np.nanmax(k.values)) if k is not None and np.isfinite(k.values).any() else float("nan")


def outside_units(elpd, unit):
    """How many units of ``elpd`` (:func:`loo` at ``unit``) are outside evidence of a joint fit (see :func:`unit_loglik`)."""
    if elpd is None or elpd.elpd_i is None or "unit" not in elpd.elpd_i.dims:
        return 0
    labels = [str(u) for u in elpd.elpd_i.unit.values]
    return sum(not u.startswith(f"{unit} ") for u in labels) if not labels[0].isdigit() else 0


def count(n, unit, outside=0):
    """``n = 40 spectra``, or with outside evidence ``n = 40 spectra + 156 points of outside evidence (one unit each)``."""
    if not outside:
        return f"n = {n} {plural(unit)}"
    return f"n = {n - outside} {plural(unit)} + {outside} {plural('point')} of outside evidence (one unit each)"


def plural(unit):
    """The plural of a LOO unit's name ("spectrum" → "spectra")."""
    return "spectra" if unit == "spectrum" else unit + "s"


def distinguishable(diff, dse):
    """True when an ELPD difference passes the stated rule."""
    return diff > DIFF_MIN and diff > SE_FACTOR * dse


def _row_verdict(row):
    if row.rank == 1:
        return "best"
    if distinguishable(row.elpd_diff, row.dse):
        return "worse than best"
    return "indistinguishable from best"


def verdict(table, *, decision=None, reasons=()):
    """Plain-words sentences from a comparison table (and, when given, the :func:`decide` verdict and its reasons)."""
    best = table.iloc[0]
    tied = [r for r in table.iloc[1:].itertuples() if not distinguishable(r.elpd_diff, r.dse)]
    worse = [r for r in table.iloc[1:].itertuples() if distinguishable(r.elpd_diff, r.dse)]
    parts = []
    if decision == "unreliable":
        parts.append("UNRELIABLE: " + "; ".join(reasons) + ". What the ELPDs alone would say:")
    if tied:
        names = ", ".join(f"'{r.hypothesis}' (Δelpd {r.elpd_diff:.1f} ± {r.dse:.1f})" for r in tied)
        parts.append(f"The data cannot tell '{best.hypothesis}' apart from {names}.")
    else:
        nxt = table.iloc[1]
        word = "ranks first" if decision == "unreliable" else "is preferred"
        parts.append(f"'{best.hypothesis}' {word}: the next best, '{nxt.hypothesis}', is "
                     f"{nxt.elpd_diff:.1f} ± {nxt.dse:.1f} elpd worse.")
    if worse:
        names = ", ".join(f"'{r.hypothesis}' (Δelpd {r.elpd_diff:.1f} ± {r.dse:.1f})" for r in worse)
        parts.append(f"Clearly worse: {names}.")
    if "n" in table:
        parts.append(f"(ELPD over {count(int(best.n), best.unit, int(best.get('n_outside', 0)))}.)")
    return " ".join(parts)


def unit_index(obs, unit):
    """Integer array over the pointwise dims of ``obs`` giving each observation's LOO unit.

    Units are numbered in the order :func:`unit_loglik` lays them out.
    """
    shape = tuple(len(obs.coords[d]) for d in obs.pointwise_dims)
    if "cell" in obs.pointwise_dims and unit in ("spectrum", "cell"):  # stacked cells: (cell, time, frequency)
        per = np.arange(shape[0])[:, None] if unit == "cell" else np.arange(shape[0] * shape[1]).reshape(shape[:2])
        return np.broadcast_to(per[:, :, None], shape)
    if unit == "point":
        return np.arange(int(np.prod(shape))).reshape(shape)
    if unit == "spectrum":
        return np.broadcast_to(np.arange(shape[0])[:, None], shape)
    if unit == "cell":
        return np.asarray(obs.cell_index)
    if unit == "current":
        j = np.asarray(obs.inputs["j"])
        levels = list(dict.fromkeys(j.tolist()))
        return np.array([levels.index(v) for v in j.tolist()])
    raise ValueError(f"unknown LOO unit {unit!r}")


def evidence_unit_index(obs):
    """Integer array over the pointwise dims of outside data ``obs`` giving each point's unit (from 0).

    As :func:`unit_loglik` counts them: every outside point is a unit,
    whatever the unit of the hypothesis's own data. An outside data set is
    another cell with parameters of its own (its electrolyte resistance, its
    polysulfide arc); left out whole, a spectrum or data set is predicted
    from the prior of those, a score dominated by a few draws (on the demo,
    standard errors of 370-2300 nats and Pareto k > 0.7 on every such unit,
    each needing an exact refit). Its points share no drift state, so each
    one left out asks what a leave-out of the hypothesis's own data asks:
    does the hypothesis, with what the rest says, predict this measurement.
    """
    shape = tuple(len(obs.coords[d]) for d in obs.pointwise_dims)
    return np.arange(int(np.prod(shape))).reshape(shape)


class Refits(SamplingWrapper):
    """Refits of a hypothesis with some LOO units left out: the one refit protocol of :func:`arviz.reloo`
    (exact LOO where Pareto k is high) and :func:`arviz.lfo_cv` (leave-future-out, :mod:`mgbayes.forecast`).

    Units are numbered as :func:`unit_loglik` lays them out: the units of the
    hypothesis's own data first (:func:`unit_index`), then those of each
    outside data set (:func:`evidence_unit_index`). A refit is the same model
    with the left-out observations taken out of its likelihood, sampled as
    every fit is (:func:`mgbayes.sampler.sample`); its score of a unit is
    the log-likelihood of that unit's observations at each refit draw.

    Parameters
    ----------
    hypothesis : Hypothesis
        With its outside evidence, if any.
    data : Observations or data
    unit : str
        The LOO unit.
    idata_orig : DataTree, optional
        The original fit's unit log-likelihood (``log_likelihood``), for :func:`arviz.reloo`.
    dim : str
        Name of the unit dimension of :meth:`log_likelihood__i` (``"time"`` for :func:`arviz.lfo_cv`).
    draws, tune, chains, rng
        Settings of the refits.
    cores : int, optional
        CPUs the refits' chains run on (None: one per chain; 1: one after
        another in this process, the same draws).
    forecast : int, optional
        Leave-future-out: a refit's ELPD estimate is its log-likelihood of
        the first ``forecast`` left-out units together (the forecast
        block; the later ones only form importance ratios, whose Pareto k
        :func:`arviz.lfo_cv` judges itself). None: each left-out unit's
        (exact LOO).

    Attributes
    ----------
    problems : list of str
        Refits that cannot be trusted: chains that clearly failed, or an
        ELPD estimate resting on a few draws (:meth:`_check_estimate`).
    """

    def __init__(self, hypothesis, data, *, unit, idata_orig=None, dim="unit", draws=REFIT["draws"],
                 tune=REFIT["tune"], chains=REFIT["chains"], rng=None, cores=None, forecast=None):
        from . import inference
        from .observations import observe

        super().__init__(model=hypothesis, idata_orig=idata_orig)
        self.hypothesis, self.unit, self.dim = hypothesis, unit, dim
        self.obs = data if hasattr(data, "pointwise_dims") else observe(data)
        self.index = unit_index(self.obs, unit)
        self.evidence_index, offset = {}, int(self.index.max()) + 1
        for ev in hypothesis.evidence:
            self.evidence_index[ev.name] = evidence_unit_index(ev.observations) + offset
            offset = int(self.evidence_index[ev.name].max()) + 1
        self.settings = {"draws": draws, "tune": tune, "chains": chains}
        if hypothesis.target_accept:  # the hypothesis's [sampler] floor, as in its fit
            self.settings["target_accept"] = hypothesis.target_accept
        self.cores = cores
        self.rng = rng if rng is not None else np.random.default_rng()
        self.priors = inference.priors_for(hypothesis, self.obs)
        self.forecast = forecast
        self.problems = []  # refits that cannot be trusted (see the class's Attributes)
        self._shared = None  # the one model every refit shares (see _model)

    def sel_observations(self, idx):
        """``((own mask, {outside data: mask}), units)``: what the units ``idx`` leave out of the likelihood."""
        idx = np.atleast_1d(np.asarray(idx, dtype=int))
        masks = np.isin(self.index, idx), {n: np.isin(ix, idx) for n, ix in self.evidence_index.items()}
        return masks, idx

    def sample(self, modified_observed_data):
        """One refit; sampled once more with smaller steps (as :func:`mgbayes.inference.fit` does) when it clearly failed."""
        from . import diagnostics, sampler

        own, outside = modified_observed_data
        model = self._model(own, outside)
        left = sorted({*np.unique(self.index[own]).tolist(),
                       *(k for n, m in outside.items() for k in np.unique(self.evidence_index[n][m]).tolist())})
        label = f"{self.hypothesis.name}, refit without {self.unit} unit(s) {left}"
        n_draws = self.settings["draws"] * self.settings["chains"]

        def converged(idata):  # a refit, like a fit, stops once more draws could change no check
            return diagnostics.check(idata, label).enough_draws(n_draws)
        # stopped once its divergences alone make it clearly failed (then sampled again anyway)
        limit = int(diagnostics.DIVERGENT_FAILED * n_draws)
        idata = sampler.sample(model, rng=self.rng, cores=self.cores, divergence_limit=limit, enough=converged,
                               **self.settings)
        report = None if idata is None else diagnostics.check(idata, label)
        if report is None or report.failed(n_draws):
            idata = sampler.sample(model, rng=self.rng, cores=self.cores, enough=converged,
                                   **sampler.retry_settings(self.settings, tune_min=0))
            report = diagnostics.warn_if_failed(idata, label)  # the whole diagnosis goes to the log
        if report.failed(n_draws):
            self.problems.append(f"without {self.unit} unit(s) {left}: R-hat {report.rhat_max:.3f}, "
                                 f"{report.divergences} divergent transitions")
        return idata

    def _model(self, own, outside):
        """The refit's model: the fit's, whose compiled density every refit shares; only the left-out masks change.

        The density is the one the fit compiled, loaded from disk
        (:func:`mgbayes.sampler.density`) when the fit ran in another process.
        """
        from . import inference

        if self._shared is None:
            self._shared = inference.build_model(self.hypothesis, self.obs)[0]
        inference.set_excluded(self._shared, own, outside)
        return self._shared

    def get_inference_data(self, fitted_model):
        return fitted_model

    def log_likelihood__i(self, excluded_obs, idata__i):
        """Log-likelihood of each left-out unit (all its observations together) at every refit draw."""
        from . import inference

        units = np.atleast_1d(np.asarray(excluded_obs, dtype=int))
        posterior = idata__i["posterior"].to_dataset()
        values, fixed, noise = inference.draw_values(self.hypothesis, self.obs, posterior, self.priors)
        ll, _ = inference.evaluate_draws(self.hypothesis, self.obs, (values, fixed, noise))
        out = np.stack([ll[:, self.index == k].sum(axis=1) for k in units], axis=-1)
        if self.hypothesis.evidence:
            resolved = self.hypothesis.resolve({**values, **fixed}, dict(self.obs.inputs),
                                               cell_index=self.obs.cell_index)
            outside = inference.evidence_loglik(self.hypothesis, posterior, resolved)
            for name, ix in self.evidence_index.items():
                out = out + np.stack([outside[name][:, ix == k].sum(axis=1) for k in units], axis=-1)
        self._check_estimate(units, out)
        coords = self.obs.coords["time"][units] if self.dim == "time" else units
        return xr.DataArray(out.reshape(posterior.sizes["chain"], posterior.sizes["draw"], units.size),
                            dims=("chain", "draw", self.dim), coords={self.dim: coords})

    def _check_estimate(self, units, loglik):
        """Add a problem for each left-out unit whose refit ELPD (its likelihood's mean over the draws) rests on a few.

        A refit's ELPD of a unit is log mean_s p(y_unit | theta_s): a Monte
        Carlo estimate whose variance is infinite, like an importance
        sampling estimate's, when the likelihood values have a heavy tail.
        That happens where the unit has parameters of its own that only its
        left-out data fix (a cell's activation time, drawn from the
        population in the refit): the whole sum is then carried by the few
        draws that happen to fall near them, and differs from refit to
        refit by tens of nats (the demo's stripping cells). The tail is
        judged as PSIS judges importance ratios, by its Pareto shape k; a
        unit with k above :data:`K_BAD` is a problem of the refit, so the
        verdict says it cannot be trusted.
        """
        loglik = loglik.reshape(loglik.shape[0], -1)
        where = "without {unit} unit(s) [{k}]"
        if self.forecast:  # one estimate: the forecast block
            loglik = loglik[:, :self.forecast].sum(axis=1, keepdims=True)
            units = [np.asarray(units)[:self.forecast].tolist()]
            where = "forecast of {unit} unit(s) {k} from the earlier ones"
        try:
            with np.errstate(all="ignore"):
                _, k = psis.psislw(loglik)
        except ValueError:  # too few draws for a tail, or a likelihood the same at every draw (its mean is exact)
            return
        for unit, k_unit, spread in zip(units, k, loglik.max(axis=0) - np.median(loglik, axis=0)):
            if not k_unit <= K_BAD:  # a tail too steep to fit (NaN) is the worst case
                how = (f"Pareto k {k_unit:.2f} > {K_BAD}" if np.isfinite(k_unit) else "Pareto k not estimable")
                self.problems.append(f"{where.format(unit=self.unit, k=unit)}: its ELPD rests on a few of the refit's "
                                     f"draws ({how}; its log-likelihood spans {spread:.0f} nats over them)")


def reloo(wrapper, idata, elpd, *, unit):
    """Exact refits of the units of ``elpd`` with Pareto k > :data:`K_BAD`, by :func:`arviz.reloo`.

    ``elpd`` is :func:`loo` of ``idata`` at ``unit``. ArviZ's ``reloo``
    takes one observation per refit; here an observation is a whole LOO unit
    (its log-likelihood summed over its points), laid out along one
    dimension, so the refit protocol is ArviZ's while the units stay ours.

    :func:`arviz.loo_moment_match` is not used: it needs the posterior's log
    density and each unit's log-likelihood at moved draws in the
    unconstrained space, and ours are a compiled NUTS density and a NumPy
    forward model on constrained values (with outside evidence); wiring them
    is the next step where exact refits are too slow.

    Returns
    -------
    ELPDData
        ``elpd`` with the refitted units' values replaced (their Pareto k set
        to 0, exact) and totals recomputed.
    """
    ll = _along_unit(unit_loglik(idata, unit), None)
    mask = bad_units(elpd).values.ravel()
    flat = dataclasses.replace(
        elpd, elpd_i=xr.DataArray(elpd.elpd_i.values.ravel(), dims="unit", coords={"unit": ll.unit}),
        pareto_k=xr.DataArray(elpd.pareto_k.values.ravel(), dims="unit", coords={"unit": ll.unit}),
        p_loo_i=None, log_weights=None)
    wrapper.idata_orig = xr.DataTree.from_dict({"log_likelihood": xr.Dataset({"unit_loglik": ll})})
    from .diagnostics import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Pareto.*")
        warnings.simplefilter("ignore", ConvergenceWarning)  # failed refits are in wrapper.problems: the verdict says so
        out = az.reloo(wrapper, loo_orig=flat, var_name="unit_loglik", k_threshold=K_BAD, pointwise=True)
    return replace_units(elpd, out.elpd_i.values[mask], bad_units(elpd).values)


def refitter(hypotheses, data, *, unit, max_refits=12, draws=REFIT["draws"], tune=REFIT["tune"],
             chains=REFIT["chains"], random_seed=None, cores=None):
    """A ``refit`` callable for :func:`compare`: ``refit(name, mask)`` returns a :class:`Refits` for :func:`reloo`.

    Refits at most ``max_refits`` units per hypothesis; with more high-k
    units than that it returns ``None`` and the PSIS values stand (flagged).
    ``cores``: see :class:`Refits`.
    """
    by_name = {h.name: h for h in hypotheses}
    rng = np.random.default_rng(random_seed)

    def refit(name, mask):
        if int(np.sum(mask)) > max_refits:
            return None
        return Refits(by_name[name], data, unit=unit, draws=draws, tune=tune, chains=chains, rng=rng, cores=cores)

    return refit
