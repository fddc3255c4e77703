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
with ``refit=True`` these are recomputed by exact leave-one-out refits.

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

from . import psis
from .errors import SamplingError

DIFF_MIN = 4.0
SE_FACTOR = 2.0
K_BAD = 0.7
VERDICTS = ("preferred", "indistinguishable", "unreliable")
RULE = (f"preferred when the ELPD difference exceeds {DIFF_MIN:g} and {SE_FACTOR:g}× its standard "
        f"error; otherwise indistinguishable (PSIS-LOO; Pareto k > {K_BAD} flagged); unreliable whenever a fit "
        f"is not converged (R-hat > 1.01, more than a handful of divergences, low ESS, chains in different modes) "
        f"or Pareto k > {K_BAD} remains")


class ParetoKWarning(UserWarning):
    """PSIS-LOO is unreliable for some observations (high Pareto k)."""


def unit_loglik(idata, unit="point"):
    """Pointwise log-likelihood DataArray summed to the LOO ``unit``."""
    name = idata.attrs.get("hypothesis") and _observed_name(idata)
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

    @property
    def method(self):
        """How the hypotheses were cross-validated, in words, with the number of units."""
        n = int(self.table["n"].iloc[0]) if "n" in self.table and len(self.table) else 0
        if self.unit == "future":
            return f"leave-future-out (forecast), n = {n} {plural('forecast origin')}"
        return f"LOO unit: {self.unit}, n = {n} {plural(self.unit)}"

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
        ``refit(name, mask) -> array or None`` returning exact ELPD
        contributions of the units in ``mask`` (see :func:`refitter`); called
        for hypotheses with Pareto k > 0.7, whose units are then no longer
        flagged. Without it, high k is reported and warned about.
    method : str
        Weighting method of :func:`arviz.compare`: pseudo-BMA+ (``"BB-pseudo-BMA"``) by default.

    Returns
    -------
    Comparison
    """
    if len(results) < 2:
        raise ValueError("compare needs at least two hypotheses")
    experiments = {r.attrs.get("experiment", "") for r in results.values()}
    if len(experiments) > 1:
        raise ValueError(f"results explain different experiments {sorted(experiments)}")
    loos, refits = {}, {}
    for name, idata in results.items():
        elpd = loo(idata, unit=unit)
        mask = bad_units(elpd)
        if bool(mask.any()) and refit is not None:
            values = refit(name, mask.values)
            if values is not None:
                elpd = replace_units(elpd, values, mask.values)
                refits[name] = int(mask.sum())
        loos[name] = elpd
    return combine(loos, experiment=experiments.pop(), unit=unit, refits=refits, method=method,
                   label=next(iter(results.values())).attrs.get("experiment", ""), fits=results)


def combine(loos, *, experiment, unit, refits=None, method="BB-pseudo-BMA", label=None, rule=RULE, fits=None):
    """A :class:`Comparison` from ready LOO results (hypothesis name → ELPD data).

    Used by :func:`compare`, and for LOO results assembled elsewhere (e.g.
    per-cell sums in :mod:`mgbayes.cells`). ``fits`` (hypothesis name →
    DataTree, or a list of them) are the fits the comparison rests on; their
    convergence gates the verdict (:func:`decide`). ``method`` is the
    weighting of :func:`arviz.compare` (pseudo-BMA+ by default).
    """
    refits = refits or {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = az.compare(loos, round_to="none")
        weights = az.compare(loos, method=method, round_to="none")["weight"] if method != "stacking" else None
    if weights is not None:
        table["weight"] = weights.reindex(table.index)
    table = _tidy(table, loos, experiment, refits)
    table["n"] = [int(loos[h].n_data_points) for h in table.hypothesis]
    table["unit"] = "forecast origin" if unit == "future" else unit
    flagged = table[table.n_bad_k > 0]
    if len(flagged):
        msg = "; ".join(f"{h}: {n} of {loos[h].n_data_points} units with Pareto k > {K_BAD}"
                        for h, n in zip(flagged.hypothesis, flagged.n_bad_k))
        warnings.warn(f"PSIS-LOO unreliable for some observations ({msg}); pass refit= for exact refits "
                      "or use a coarser unit", ParetoKWarning, stacklevel=3)
    comparison = Comparison(experiment if label is None else label, unit, table, "", loos, refits, rule)
    comparison.reasons = reasons(fits or {}, comparison)
    comparison.decision = decide(fits or {}, comparison)
    for h, problems in _fit_problems(fits or {}).items():
        rows = table.hypothesis == h  # what the ELPD says, then why it cannot be trusted
        table.loc[rows, "verdict"] = table.loc[rows, "verdict"] + "; unreliable: " + ", ".join(problems)
    if comparison.decision != "preferred":
        table["weight"] = np.nan  # no weights where the data cannot tell the hypotheses apart, or cannot be trusted
    comparison.verdict = verdict(table, decision=comparison.decision, reasons=comparison.reasons)
    return comparison


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
    out = [f"fit of '{h}' not converged ({'; '.join(p)})" for h, p in _fit_problems(fits).items()]
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
    if reasons(fits, comparison):
        return "unreliable"
    rest = comparison.table.iloc[1:]
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
        parts.append(f"(ELPD over n = {int(best.n)} {plural(best.unit)}.)")
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


def exact_loo(hypothesis, data, *, unit="point", units, draws=500, tune=700, chains=2, random_seed=None):
    """Exact leave-one-unit-out ELPD for the given units, by refitting without each.

    For every unit ``k`` in ``units`` the model is refitted with that unit's
    observations excluded from the likelihood, and its contribution is the
    log of the posterior-mean predictive density of the left-out data,
    ``log mean_s p(y_k | theta_s)``.

    Returns
    -------
    numpy.ndarray
        One ELPD value per unit, in the order given.
    """
    from scipy.special import logsumexp

    from . import diagnostics, inference, sampler
    from .observations import observe

    obs = observe(data)
    index = unit_index(obs, unit)
    rng = np.random.default_rng(random_seed)
    priors = inference.priors_for(hypothesis, obs)
    out, model = [], None
    for k in units:
        exclude = index == k
        if model is None:
            model, _ = inference.build_model(hypothesis, obs, exclude=exclude)
        else:  # the same compiled density, another unit left out
            inference.set_excluded(model, exclude)
        idata = sampler.sample(model, draws=draws, tune=tune, chains=chains, rng=rng)
        diagnostics.warn_if_failed(idata, f"{hypothesis.name}, exact LOO refit without {unit} {k}")
        posterior = idata["posterior"].to_dataset()
        ll, _ = inference.evaluate_draws(hypothesis, obs, inference.draw_values(hypothesis, obs, posterior, priors))
        ll = ll[:, exclude].sum(axis=1)
        out.append(float(logsumexp(ll) - np.log(ll.size)))
    return np.array(out)


def refitter(hypotheses, data, *, unit, max_refits=12, **fit_kwargs):
    """A ``refit`` callable for :func:`compare` that runs :func:`exact_loo`.

    Refits at most ``max_refits`` units per hypothesis; with more high-k
    units than that it returns ``None`` and the PSIS values stand (flagged).
    """
    by_name = {h.name: h for h in hypotheses}

    def refit(name, mask):
        units = np.flatnonzero(np.asarray(mask))
        if units.size > max_refits:
            return None
        return exact_loo(by_name[name], data, unit=unit, units=units, **fit_kwargs)

    return refit
