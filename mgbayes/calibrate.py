"""How often is the verdict right? Calibration of a study's comparisons by simulation.

For each experiment and each of its hypotheses as the *generator*:
draw parameter sets from the generator's posterior on the study's data (or
its prior), simulate data at the experiment's own design (frequencies,
times, currents, cells) with the generator's noise model, fit every
hypothesis to each simulated set and apply the comparison rule of
``mgbayes run`` (:mod:`mgbayes.compare`) with diagnostic gating
(:func:`decide`). The counts of right, wrong, indistinguishable and
unreliable verdicts form a confusion matrix per experiment; a wrong
hypothesis called "preferred" is a *false preference*, reported with its
binomial (Clopper–Pearson) interval beside the rule's nominal rate
(:data:`NOMINAL`). Replicates drawn from the prior also give
simulation-based calibration of every sampled parameter (:mod:`mgbayes.sbc`).

Speed: each (hypothesis, design) is compiled once per process
(:func:`compiled`); simulated data go into the compiled density as a
``pm.Data`` input (:func:`mgbayes.inference.set_observed`). Every fit makes
the same mode search as a real fit (all its random starts); the truth is
never used. With parameters from the posterior the search begins where
the hypothesis's own fit to the study's data ended (:func:`warm_start`),
else at the prior's typical values. Replicates run on the process pool (or Dask) of
:func:`mgbayes.parallel.map_fits`; each fit's result is kept on disk under
the replicate's seed, so an interrupted run resumes where it stopped.

Deviation from ``mgbayes run``: no exact refits of high-Pareto-k units
(each would compile a new model); a replicate where PSIS-LOO is unreliable
for any hypothesis counts as "unreliable" instead.
"""

import hashlib
import json
import pickle
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.stats

from . import cache, compare, diagnostics, files, fits, inference, sbc, study
from .errors import HypothesisError, MgbayesError
from .observations import observe

VERDICTS = ("preferred", "indistinguishable", "unreliable")
OUTCOMES = ("chose the generator", "chose another", "indistinguishable", "unreliable")
#: The rule's nominal false-preference rate: a one-sided normal tail beyond SE_FACTOR standard errors.
NOMINAL = float(scipy.stats.norm.sf(compare.SE_FACTOR))
COLUMNS = ["experiment", "generator", "replicate", "best", "verdict", "elpd_diff", "dse"]


# -- the verdict of one comparison ----------------------------------------------------------

def fit_failed(idata):
    """True when a fit cannot carry a verdict: the convergence gate of ``mgbayes run``.

    The same test as :func:`mgbayes.compare.decide` applies to every fit
    (:func:`mgbayes.diagnostics.verdict_problems`: R-hat, divergences, ESS,
    chains in one mode, no better mode left behind).
    """
    return bool(diagnostics.verdict_problems(idata))


def decide(comparison, failed):
    """``(best, verdict, elpd_diff, dse)`` of a comparison, with diagnostic gating.

    ``verdict`` is "unreliable" when a fit clearly failed (``failed``:
    hypothesis name → bool, see :func:`fit_failed`) or the best hypothesis
    has units with Pareto k above :data:`mgbayes.compare.K_BAD` (PSIS
    over-estimates the ELPD where k is high, so high k in a hypothesis
    ranked below only makes it look better than it is); else "preferred" when the best
    hypothesis beats the runner-up by the rule
    (:func:`mgbayes.compare.distinguishable`), else "indistinguishable".
    ``elpd_diff`` and ``dse`` are the runner-up's.

    The convergence gate is that of :func:`mgbayes.compare.decide`. Its
    Pareto-k gate differs in one way, because calibration makes no exact
    refits (``mgbayes run`` refits up to ``max_refits`` high-k units and
    then gates on any hypothesis): here only the best hypothesis's k counts.
    """
    table = comparison.table
    best, runner_up = table.iloc[0], table.iloc[1]
    if any(failed.values()) or int(best.n_bad_k) > 0:
        verdict = "unreliable"
    elif compare.distinguishable(runner_up.elpd_diff, runner_up.dse):
        verdict = "preferred"
    else:
        verdict = "indistinguishable"
    return str(best.hypothesis), verdict, float(runner_up.elpd_diff), float(runner_up.dse)


def outcome(row):
    """The confusion-matrix column of one calibration row (see :data:`OUTCOMES`)."""
    if row["verdict"] == "preferred":
        return OUTCOMES[0] if row["best"] == row["generator"] else OUTCOMES[1]
    return row["verdict"]


# -- parameters and data --------------------------------------------------------------------------

def seed_of(seed, *names):
    """A seed derived from ``seed`` and names/numbers, the same wherever it is computed."""
    entropy = [int(seed)] + [zlib.crc32(str(n).encode()) for n in names]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0] % 2**31)


def prior_draw(hypothesis, priors, obs, rng):
    """One parameter set drawn from the prior table: name → array with a leading axis of one draw.

    Hierarchical offsets (``X_z``) get one value per cell of ``obs``.
    """
    n_cells = len(obs.coords.get("cell", [0]))
    out = {}
    for name, prior in priors.items():
        size = (1, n_cells) if name.endswith("_z") and name[:-2] in hypothesis.hierarchy else (1, 1)
        out[name] = np.asarray(prior.sample(rng, size), dtype=float)
    return out


def posterior_draws(idata, priors, n, rng):
    """``n`` parameter sets drawn at random (without replacement where possible) from a fit's posterior."""
    posterior = idata["posterior"].to_dataset()
    values = inference.posterior_values(posterior, [k for k, p in priors.items() if not p.is_fixed])
    total = next(iter(values.values())).shape[0]
    picks = rng.choice(total, size=n, replace=n > total)
    fixed = {k: np.full((1, 1), p.args["value"], dtype=float) for k, p in priors.items() if p.is_fixed}
    return [{**{k: v[i:i + 1] for k, v in values.items()}, **fixed} for i in picks]


def simulate(hypothesis, obs, parameters, priors, rng, *, noise_factor=1.0):
    """Observed values in the layout of ``obs`` from ``parameters`` with the hypothesis's own noise model.

    The mean is the hypothesis's forward model (the code NUTS samples); the
    noise is its likelihood's (proportional, absolute or Student-t), scaled
    by ``noise_factor``.
    """
    values = {k: v for k, v in parameters.items() if not k.startswith("noise_") and not priors[k].is_fixed}
    fixed = {k: np.asarray(p.args["value"]) for k, p in priors.items() if p.is_fixed and not k.startswith("noise_")}
    noise = {k: v for k, v in parameters.items() if k.startswith("noise_")}
    with np.errstate(all="ignore"):
        _, mu, sigma, nu = inference.likelihood_terms(hypothesis, obs, values, fixed, noise)
        eps = rng.standard_normal(mu.shape) if nu is None else rng.standard_t(nu, mu.shape)
        y = np.asarray(mu + noise_factor * sigma * eps, dtype=float)[0]
    return y


def check_simulates(hypothesis, obs, priors, experiment, rng):
    """Raise a one-line :class:`HypothesisError` unless the hypothesis simulates finite data from its prior."""
    try:
        y = simulate(hypothesis, obs, prior_draw(hypothesis, priors, obs, rng), priors, rng)
    except (MgbayesError, KeyError, ValueError, TypeError) as err:
        raise HypothesisError(f"experiment {experiment!r}: hypothesis {hypothesis.name!r} ({hypothesis.path}) "
                              f"cannot simulate data: {type(err).__name__}: {err}") from None
    if y.shape != obs.values.shape or not np.all(np.isfinite(y)):
        raise HypothesisError(f"experiment {experiment!r}: hypothesis {hypothesis.name!r} ({hypothesis.path}) "
                              "cannot simulate data: its forward model gives non-finite values at a prior draw; "
                              "check its formulas and priors")


# -- fitting a replicate ------------------------------------------------------------------------

_COMPILED = {}


def compiled(hypothesis, obs, priors):
    """``(model, obs)`` of ``hypothesis`` on the design of ``obs``, built once per process.

    The observed values are a ``pm.Data`` input; the log density is compiled
    (or loaded from the disk cache) on first use and reused for every replicate.
    """
    key = cache.fingerprint(repr(hypothesis), priors, {k: v for k, v in vars(obs).items() if k != "values"},
                            obs.values.shape)
    if key not in _COMPILED:
        model, design = inference.build_model(hypothesis, obs, priors=priors, mutable=True)
        inference.set_observed(model, design, obs.values)  # compiles the density now
        _COMPILED[key] = (model, design)
    return _COMPILED[key]


def warm_start(idata):
    """Where a real fit of this hypothesis found its posterior: its highest-density draw (name → value).

    Replicate fits start their mode search here instead of at the prior's
    typical values: the same search as ``mgbayes run`` (every random start
    included), begun where a user's own fit to the study's data ended,
    never at a replicate's true parameters.
    """
    posterior = idata["posterior"].to_dataset()
    lp = idata["sample_stats"]["lp"].values.ravel()
    best = int(np.argmax(np.where(np.isfinite(lp), lp, -np.inf)))
    chain, draw = divmod(best, posterior.sizes["draw"])
    return {k: np.asarray(v.values[chain, draw]) for k, v in posterior.data_vars.items()
            if v.dims[:2] == ("chain", "draw")}


def fit_replicate(hypothesis, obs, priors, values, *, sampler, seed, start=None):
    """Fit ``hypothesis`` to simulated ``values`` on the design of ``obs``; returns the DataTree.

    The same fit as ``mgbayes run`` makes (mode search, NUTS, one retry when
    the chains clearly failed), chains one after another (``cores=1``);
    ``start`` (from :func:`warm_start`) is where the mode search begins.
    The result is ``light`` (:func:`mgbayes.inference.fit`): what LOO, the
    verdict's gate and SBC ranks read, without predictive or derived groups.
    """
    model, design = compiled(hypothesis, obs, priors)
    for rv in model.free_RVs:  # the same start for every replicate of this hypothesis in this process
        model.set_initval(rv, None if start is None or rv.name not in start else start[rv.name])
    observed = inference.set_observed(model, design, values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence is judged by decide(), not printed per replicate
        return inference.fit(hypothesis, None, model=(model, observed), draws=sampler["draws"], tune=sampler["tune"],
                             chains=sampler["chains"], cores=1, random_seed=seed,
                             target_accept=sampler.get("target_accept", 0.9),
                             until_converged=sampler.get("until_converged", True), light=True)


def summarise_fit(idata, unit, truth=None):
    """What calibration keeps of a fit: LOO, failure flag, diagnostics and (SBC) ranks of ``truth``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        elpd = compare.loo(idata, unit=unit)
    ranks = sbc.ranks(truth, idata["posterior"].to_dataset()) if truth is not None else None
    return {"loo": elpd, "failed": fit_failed(idata), "diagnostics": idata.attrs["diagnostics"], "ranks": ranks}


def replicate(*, experiment, generator, index, parameters, hypotheses, priors, obs, unit, sampler, seed, folder,
              sbc_ranks=False, noise_factor=1.0, starts=None):
    """One replicate (run in a worker): simulate from ``generator``, fit every hypothesis, decide.

    Each fit's summary is written to ``folder`` under the replicate's seed
    and reused when found, so an interrupted replicate resumes. Returns the
    calibration row (a dict, see :data:`COLUMNS`) with ``ranks`` (SBC ranks
    of the generator's own fit, when ``sbc_ranks``), ``seconds`` (wall) and
    ``fit_cpu_seconds`` (processor time of each hypothesis's fit and LOO in
    this process, where the chains run: the cost per fit whatever the load).
    """
    start = time.perf_counter()
    cpu = {}
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    by_name = {h.name: h for h in hypotheses}
    rng = np.random.default_rng(seed)
    values = simulate(by_name[generator], obs, parameters, priors[generator], rng, noise_factor=noise_factor)
    if not np.all(np.isfinite(values)):
        raise HypothesisError(f"experiment {experiment!r}: hypothesis {generator!r} simulated non-finite data "
                              f"at replicate {index}")
    truth = {k: np.squeeze(v[0]) for k, v in parameters.items()} if sbc_ranks else None
    fits = {}
    for h in hypotheses:
        path = folder / f"{generator}-{index:04d}-{seed}-{h.name}.pkl"
        if path.is_file():
            with open(path, "rb") as f:
                fits[h.name] = pickle.load(f)
            continue
        began = time.process_time()
        idata = fit_replicate(h, obs, priors[h.name], values, sampler=sampler, seed=seed_of(seed, h.name),
                              start=(starts or {}).get(h.name))
        fits[h.name] = summarise_fit(idata, unit, truth if h.name == generator else None)
        cpu[h.name] = time.process_time() - began
        files.write_atomic(path, pickle.dumps(fits[h.name], protocol=pickle.HIGHEST_PROTOCOL))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        comparison = compare.combine({n: f["loo"] for n, f in fits.items()}, experiment=experiment, unit=unit)
    best, verdict, diff, dse = decide(comparison, {n: f["failed"] for n, f in fits.items()})
    return {"experiment": experiment, "generator": generator, "replicate": index, "best": best, "verdict": verdict,
            "elpd_diff": diff, "dse": dse, "seed": seed, "ranks": fits[generator]["ranks"],
            "elpd": {n: float(f["loo"].elpd) for n, f in fits.items()},
            "seconds": time.perf_counter() - start, "fit_cpu_seconds": cpu}


def simulation_based_calibration(hypothesis, obs, priors, *, replicates, sampler, seed, fitted=None,
                                 fitted_priors=None, experiment=""):
    """SBC ranks of ``hypothesis`` on the design of ``obs``, one replicate after another.

    Each replicate draws parameters from the prior, simulates data with the
    hypothesis's own likelihood and fits ``fitted`` (default: the same
    hypothesis; another one, e.g. with a wrong likelihood, shows what a
    miscalibration looks like). Returns a frame ``experiment, hypothesis,
    replicate, parameter, rank`` for :func:`mgbayes.sbc.uniformity`.
    """
    fitted = fitted or hypothesis
    rows = []
    for k in range(replicates):
        rng = np.random.default_rng(seed_of(seed, hypothesis.name, k))
        truth = prior_draw(hypothesis, priors, obs, rng)
        values = simulate(hypothesis, obs, truth, priors, rng)
        idata = fit_replicate(fitted, obs, fitted_priors or priors, values, sampler=sampler,
                              seed=seed_of(seed, hypothesis.name, k, "fit"))
        ranks = sbc.ranks({n: np.squeeze(v[0]) for n, v in truth.items()}, idata["posterior"].to_dataset())
        rows += [{"experiment": experiment, "hypothesis": fitted.name, "replicate": k, "parameter": p, "rank": r}
                 for p, r in ranks.items()]
    return pd.DataFrame(rows)


# -- an experiment ready to calibrate ------------------------------------------------------------

def prepare(experiment):
    """``(hypotheses, obs, priors)`` of a study experiment, checked for calibration.

    Priors are those of the study's data (``mgbayes run``'s), held fixed for
    every replicate, so one compiled density serves them all.
    """
    if experiment.cells is not None:
        raise HypothesisError(f"experiment {experiment.name!r}: calibration of many-cell experiments is not "
                              "supported; calibrate one cell's experiment instead")
    if experiment.unit == "future":
        raise HypothesisError(f"experiment {experiment.name!r}: calibration uses LOO; unit = \"future\" "
                              "(leave-future-out) is not supported")
    hyps = study.load_hypotheses(experiment)
    if len(hyps) < 2:
        raise HypothesisError(f"experiment {experiment.name!r}: calibration needs at least two hypotheses, "
                              f"found {len(hyps)} in {[str(p) for p in experiment.hypothesis_paths]}")
    obs = observe(study.load_data(experiment, hyps[0].kind))
    priors = {h.name: inference.priors_for(h, obs) for h in hyps}
    rng = np.random.default_rng(0)
    for h in hyps:
        check_simulates(h, obs, priors[h.name], experiment.name, rng)
    return hyps, obs, priors


def select(study_obj, name=None):
    """The experiments to calibrate: all, or the one called ``name`` (one-line error if unknown)."""
    if name is None:
        return list(study_obj.experiments)
    found = [e for e in study_obj.experiments if e.name == name]
    if not found:
        raise HypothesisError(f"{study_obj.path}: no experiment named {name!r}; "
                              f"known: {[e.name for e in study_obj.experiments]}")
    return found


def settings_key(experiment, hypotheses, priors, obs, sampler, source, extra=""):
    """Hash of everything a replicate's result depends on (its folder name, for resuming)."""
    h = hashlib.sha256()
    h.update(cache.fingerprint(experiment.name, [x.text for x in hypotheses], priors, vars(obs),
                               experiment.unit, sampler, source, extra).encode())
    return h.hexdigest()[:16]


def generator_draws(hypothesis, experiment, obs, priors, n, source, fits, rng):
    """``n`` parameter sets of ``hypothesis`` from its posterior on the study's data or its prior."""
    if source == "prior":
        return [prior_draw(hypothesis, priors, obs, rng) for _ in range(n)]
    return posterior_draws(fits[hypothesis.name], priors, n, rng)


def tasks_for(experiment, hypotheses, obs, priors, *, replicates, source, sampler, folder, fits, seed,
              noise_factor=1.0, generators=None, label=""):
    """Named replicate tasks for :func:`mgbayes.parallel.map_fits` (``label`` prefixes the names)."""
    tasks = {}
    starts = {h.name: warm_start(fits[h.name]) for h in hypotheses} if fits is not None else None
    for g in hypotheses:
        if generators is not None and g.name not in generators:
            continue
        rng = np.random.default_rng(seed_of(seed, experiment.name, g.name, source, label))
        draws = generator_draws(g, experiment, obs, priors[g.name], replicates, source, fits, rng)
        for k, parameters in enumerate(draws):
            own = seed_of(seed, experiment.name, g.name, k, label)
            tasks[f"{label}{experiment.name}/{g.name}/{k}"] = (replicate, {
                "experiment": experiment.name, "generator": g.name, "index": k, "parameters": parameters,
                "hypotheses": hypotheses, "priors": priors, "obs": obs, "unit": experiment.unit, "sampler": sampler,
                "seed": own, "folder": str(folder), "sbc_ranks": source == "prior", "noise_factor": noise_factor,
                "starts": starts})
    return tasks


def run_tasks(tasks, *, scheduler=None, workers=None, log=print):
    """Run replicate tasks, reusing finished ones (kept in each task's ``folder/rows``); returns rows in task order."""
    from . import parallel

    done, todo = {}, {}
    for name, task in tasks.items():
        path = _row_path(task[1])
        if path.is_file():
            with open(path, "rb") as f:
                done[name] = pickle.load(f)
        else:
            todo[name] = task
    if done:
        log(f"  {len(done)} replicate(s) finished before, reused")
    if todo:
        n_fits = sum(len(task[1]["hypotheses"]) for task in todo.values())
        log(f"  {len(todo)} replicate(s) to fit ({n_fits} fits), scheduler: {scheduler or 'processes'}")
        wrapped = {name: (_saving, {"task": task}) for name, task in todo.items()}
        done.update(parallel.map_fits(wrapped, scheduler=scheduler, workers=workers, log=log))
    return [done[name] for name in tasks]


def _row_path(kwargs):
    return Path(kwargs["folder"]) / "rows" / f"{kwargs['generator']}-{kwargs['index']:04d}-{kwargs['seed']}.pkl"


def _saving(*, task):
    """Run one replicate task and keep its row on disk (in the worker, so it survives an interruption)."""
    function, kwargs = task
    row = function(**kwargs)
    path = _row_path(kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    files.write_atomic(path, pickle.dumps(row))
    return row


# -- tables and figures ----------------------------------------------------------------------

def interval(k, n, prob=0.95):
    """Clopper–Pearson interval of a binomial proportion ``k / n``."""
    if n == 0:
        return (np.nan, np.nan)
    ci = scipy.stats.binomtest(int(k), int(n)).proportion_ci(confidence_level=prob, method="exact")
    return float(ci.low), float(ci.high)


def confusion(frame):
    """Confusion table of one experiment's rows: generator × :data:`OUTCOMES` counts, false preferences.

    Columns: ``generator``, the four outcomes, ``replicates``,
    ``false_preference`` (share of replicates where another hypothesis was
    preferred) and its 95 % Clopper–Pearson interval ``fp_low``, ``fp_high``;
    a last row ``all`` pools the generators.
    """
    frame = frame.assign(outcome=[outcome(r) for r in frame.to_dict("records")])
    rows = []
    groups = [(g, frame[frame.generator == g]) for g in dict.fromkeys(frame.generator)] + [("all", frame)]
    for generator, g in groups:
        counts = {o: int((g.outcome == o).sum()) for o in OUTCOMES}
        wrong = counts[OUTCOMES[1]]
        low, high = interval(wrong, len(g))
        rows.append({"generator": generator, **counts, "replicates": len(g),
                     "false_preference": wrong / len(g) if len(g) else np.nan, "fp_low": low, "fp_high": high})
    return pd.DataFrame(rows)


def plot_confusion(table, *, title=""):
    """Heat map of a :func:`confusion` table: share of replicates per outcome, counts written in."""
    from matplotlib.figure import Figure

    from .plots import style

    table = table[table.generator != "all"]
    counts = table[list(OUTCOMES)].to_numpy(dtype=float)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    with style():
        fig = Figure(figsize=(5.2, 0.55 * len(table) + 1.6), layout="constrained")
        ax = fig.subplots()
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1, aspect="auto")
        for i in range(share.shape[0]):
            for j in range(share.shape[1]):
                ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center",
                        color="white" if share[i, j] > 0.6 else "black")
        ax.set_xticks(range(len(OUTCOMES)), [o.replace(" the ", "\nthe ").replace(" another", "\nanother")
                                            for o in OUTCOMES])
        ax.set_yticks(range(len(table)), table.generator)
        ax.set_ylabel("generator")
        ax.set_title(title)
    return fig


def summary_text(experiment, table, nominal=NOMINAL):
    """One paragraph reading a confusion table as a paper would."""
    records = table.to_dict("records")
    parts = [f"data from '{r['generator']}' gave the right preference in {r[OUTCOMES[0]]} of {r['replicates']}, "
             f"a wrong one in {r[OUTCOMES[1]]}, indistinguishable in {r['indistinguishable']} and unreliable in "
             f"{r['unreliable']}" for r in records if r["generator"] != "all"]
    pooled = records[-1]
    return (f"{experiment}: " + "; ".join(parts) + ". "
            f"False-preference rate {pooled['false_preference']:.3f} (95 % interval {pooled['fp_low']:.3f}–"
            f"{pooled['fp_high']:.3f}; the rule's nominal rate is {nominal:.3f}).")


# -- the command --------------------------------------------------------------------------------

def sampler_settings(experiment, *, quick=False, overrides=None):
    """Replicate fits' sampler settings: the experiment's, ``mgbayes run --quick``'s with ``quick``, then ``overrides``."""
    return {**fits.settings(experiment, quick), **(overrides or {})}


def short_fits_note(experiment, settings):
    """A line for the log when replicate fits are shorter than the study's own, else None.

    The gate asks R-hat <= 1.01 of every sampled parameter; fewer chains and
    draws make R-hat noisier, so converged fits miss it more often and more
    replicates come out ``unreliable``. On the demo's OCV fits, 2-chain ×
    500-draw pieces of converged 4 × 1000 fits missed it in a third to a
    half of cases (benchmarks/README.md).
    """
    own = fits.settings(experiment)
    if settings["chains"] * settings["draws"] >= own["chains"] * own["draws"]:
        return None
    return (f"{experiment.name}: replicate fits of {settings['chains']} chains × {settings['draws']} draws, shorter "
            f"than the study's {own['chains']} × {own['draws']}: R-hat <= 1.01 is then missed more often by fits "
            "whose chains are fine, so expect more 'unreliable' verdicts than at the study's settings")


def run(study_path, out_dir, *, replicates=20, experiment=None, source="posterior", scheduler=None, workers=None,
        quick=False, sampler=None, log=print, command=""):
    """Calibrate the verdicts of a study; write every output to ``out_dir``.

    Parameters
    ----------
    study_path : str or Path
        Study file (see :mod:`mgbayes.study`).
    out_dir : str or Path
        Output folder: ``calibration.csv``, ``confusion_EXPERIMENT.{csv,md,tex}``,
        ``figures/confusion_EXPERIMENT.png``, with ``source="prior"``
        ``sbc.csv`` and ``figures/sbc_EXPERIMENT_HYPOTHESIS.png``, and
        ``report.md``/``report.html``; ``calibration/`` keeps each fit's
        result for resuming, ``fits/`` the fits to the study's data.
    replicates : int
        Parameter sets per generator (at least 1).
    experiment : str, optional
        Calibrate only this experiment.
    source : {"posterior", "prior"}
        Where the generators' parameters come from.
    scheduler, workers
        Where the replicates run (see :func:`mgbayes.parallel.map_fits`).
    quick : bool
        Fewer draws for the study's own fits and the replicates (as ``mgbayes run --quick``).
    sampler : dict, optional
        Overrides of the replicate fits' sampler settings (draws, tune, chains, target_accept).

    Returns
    -------
    pandas.DataFrame
        The calibration rows.
    """
    if not isinstance(replicates, (int, np.integer)) or replicates < 1:
        raise HypothesisError(f"--replicates {replicates!r}: need a positive whole number of replicates")
    if source not in ("posterior", "prior"):
        raise HypothesisError(f"--from {source!r}: use 'posterior' or 'prior'")
    study_obj = study.load_study(study_path)
    experiments = select(study_obj, experiment)
    prepared = [(e, *prepare(e)) for e in experiments]  # every check before the first fit
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scheduler = scheduler or study_obj.scheduler
    workers = workers or study_obj.workers
    tasks = {}
    for exp, hyps, obs, priors in prepared:
        fits = None
        if source == "posterior":
            log(f"{exp.name}: fitting the hypotheses to the study's data (the generators' posteriors)")
            fits, _ = study.fit_all(exp, out_dir, quick=quick, log=log)
        settings = sampler_settings(exp, quick=quick, overrides=sampler)
        if note := short_fits_note(exp, settings):
            log(note)
        folder = out_dir / "calibration" / exp.name / settings_key(exp, hyps, priors, obs, settings, source)
        log(f"{exp.name}: {replicates} replicate(s) × {len(hyps)} generators × {len(hyps)} hypotheses, "
            f"{settings['chains']} chains × {settings['draws']} draws, parameters from the {source}")
        tasks.update(tasks_for(exp, hyps, obs, priors, replicates=replicates, source=source, sampler=settings,
                               folder=folder, fits=fits, seed=exp.sampler["seed"]))
    rows = run_tasks(tasks, scheduler=scheduler, workers=workers, log=log)  # one pool for all experiments
    write(rows, out_dir, study_obj, source=source, command=command, log=log)
    return pd.DataFrame(rows)[COLUMNS]


def write(rows, out_dir, study_obj, *, source, command="", log=print):
    """Write the calibration table, confusion tables and figures, SBC and the report."""
    from . import plots, report

    out_dir = Path(out_dir)
    frame = pd.DataFrame(rows)
    report.write_atomic(out_dir / "calibration.csv", frame[COLUMNS].to_csv(index=False))
    confusions, figures, sbc_tests, sbc_figures = {}, {}, None, {}
    for name, group in frame.groupby("experiment", sort=False):
        table = confusion(group)
        confusions[name] = table
        report.write_table(table, str(out_dir / f"confusion_{name}"))
        fig = plot_confusion(table, title=f"{name}: verdicts on simulated data")
        figures[name] = plots.save(fig, out_dir / "figures" / f"confusion_{name}")
        log(summary_text(name, table))
    if source == "prior":
        ranks = pd.DataFrame([{"experiment": r["experiment"], "hypothesis": r["generator"], "replicate": r["replicate"],
                               "parameter": p, "rank": k} for r in rows for p, k in (r["ranks"] or {}).items()])
        sbc_tests = sbc.uniformity(ranks)
        report.write_atomic(out_dir / "sbc.csv", sbc_tests.to_csv(index=False))
        report.write_atomic(out_dir / "sbc_ranks.csv", ranks.to_csv(index=False))
        for (e, h), group in ranks.groupby(["experiment", "hypothesis"], sort=False):
            tests = sbc_tests[(sbc_tests.experiment == e) & (sbc_tests.hypothesis == h)]
            fig = sbc.plot(group, tests, title=f"{e} / {h}: SBC rank histograms")
            sbc_figures[(e, h)] = plots.save(fig, out_dir / "figures" / f"sbc_{e}_{h}")
        flagged = sbc_tests[sbc_tests.flagged]
        log("SBC: " + ("no parameter flagged" if flagged.empty else "flagged " + ", ".join(
            f"{r.experiment}/{r.hypothesis}/{r.parameter} (p = {r.p_value:.2g})" for r in flagged.itertuples())))
    section = report.calibration_section(frame, confusions, figures, sbc_tests=sbc_tests, sbc_figures=sbc_figures,
                                         source=source, nominal=NOMINAL,
                                         summaries=[summary_text(n, t) for n, t in confusions.items()])
    report.write_report(out_dir, title=f"Calibration: {study_obj.title}", sections=[section],
                        provenance={"command": command, "study": str(study_obj.path),
                                    "data": study_obj.provenance, "parameters from": source,
                                    "written": time.strftime("%Y-%m-%d %H:%M:%S")})
    report.write_atomic(out_dir / "calibration.json", json.dumps(
        {name: t.to_dict("records") for name, t in confusions.items()}, indent=1, default=float))
