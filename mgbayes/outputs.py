"""Write a study's tables, figures and report (wiring of plots and report), and its one-screen summary."""

import math
import platform
from pathlib import Path

import pandas as pd

from . import __version__, cells, compare, kk, plots, report, sensitivity
from .fits import POOLED, evidence_key
from .studyfile import read_spectra

#: The one text that marks a quick run (report, tables' notes and the printed summary).
QUICK_NOTE = "QUICK MODE (--quick): fewer draws than a publication run; numbers are for a fast look only."


def write_all(study, out_dir, fits, datas, comparisons, *, quick=False, command="", log=print, cell_results=None,
              figures=None):
    """Tables (CSV, Markdown, LaTeX), figures (PNG, PDF) and report.md/.html.

    ``cell_results`` (experiment name → :class:`mgbayes.cells.CellResults`)
    adds, per many-cell experiment, the per-cell comparisons, the wins
    table, group-level summaries and a forest plot of the key parameters
    per cell. ``figures`` (experiment name → :func:`experiment_figures`)
    are figures already made; the others are made here.
    """
    cell_results = cell_results or {}
    out_dir = Path(out_dir)
    fig_dir = out_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    table = _comparison_table(comparisons, quick)
    report.write_table(table, out_dir / "comparison")
    params = _parameter_table(fits, quick)
    report.write_table(params, out_dir / "parameters")
    drift = _parameter_table(fits, quick, time_resolved=True)
    report.write_table(drift, out_dir / "parameters_time")
    convergence = report.convergence_table({f"{e}/{h}": r for e, rs in fits.items() for h, r in rs.items()})
    report.write_table(convergence, out_dir / "convergence")
    sections = [_intro(study, quick)]
    for experiment in study.experiments:
        name = experiment.name
        if name in cell_results:
            sections.append(_cell_section(experiment, cell_results[name], params, out_dir, fig_dir, quick))
            continue
        made = (figures or {}).get(name) or experiment_figures(experiment, fits[name], datas[name],
                                                               comparisons.get(name), out_dir)
        section = _section(experiment, comparisons.get(name), fits[name], list(made["figures"]), params, quick)
        checked = made["kk"]
        if checked is not None:
            section["text"] += "\n\n" + checked[0]
            section["tables"].append(checked[1])
            section["figures"].append(checked[2])
        sections.append(section)
        sections += sensitivity.report_sections(experiment, comparisons, fits, out_dir=out_dir,
                                                alone=fits.get(evidence_key(name)))
    sections.append(_conventions(fits))
    sections.append({"heading": "Convergence", "text": "Every fit is checked for R-hat, bulk and tail ESS, "
                     "divergences and E-BFMI; problems are listed by parameter.",
                     "tables": [convergence], "figures": []})
    provenance = {
        "command": command or "mgbayes",
        "study file": str(study.path),
        "data": study.provenance,
        "quick mode": "yes — " + QUICK_NOTE if quick else "no",
        "mgbayes": __version__,
        "python": platform.python_version(),
        "versions": next(iter(next(iter(fits.values())).values())).attrs.get("versions", ""),
        "comparison rule": compare.RULE,
    }
    title = study.title + (" [QUICK]" if quick else "")
    report.write_report(out_dir, title=title, sections=sections, provenance=provenance)
    log(summary(comparisons, fits, out_dir, quick=quick))


def _conventions(fits):
    """How the report's numbers relate to ArviZ 1.x's conventions, stated once."""
    draws = [r["posterior"].sizes["chain"] * r["posterior"].sizes["draw"] for rs in fits.values() for r in rs.values()]
    fewest = min(draws) if draws else 0
    arviz_k = min(1 - 1 / math.log10(fewest), 0.7) if fewest > 10 else float("nan")
    text = (f"Intervals are equal-tailed (central) {round(100 * report.PROB)} % credible intervals; ArviZ 1.x's "
            "default is equal-tailed 89 % (`rcParams['stats.ci_prob']`), so `arviz.summary` on the same results "
            "gives narrower intervals unless told `ci_prob=0.94`. "
            "`elpd_diff` has ArviZ's sign: the best hypothesis's ELPD minus this one's, so it is ≥ 0 and larger "
            f"means worse. Pareto k is flagged above {compare.K_BAD}; ArviZ 1.x's threshold depends on the number "
            f"of draws S, min(1 − 1/log10 S, 0.7), which is {arviz_k:.2f} for the fewest draws here (S = {fewest}), "
            "so ArviZ may flag a few more observations than this report. Results (`fits/*.nc`) are ArviZ-ready "
            "DataTrees: posterior and prior with their predictive draws (the posterior predictive at every "
            "posterior draw), pointwise log-likelihood and data, a `unit` on every variable.")
    return {"heading": "Conventions", "text": text, "tables": [], "figures": []}


def _comparison_table(comparisons, quick):
    frames = [c.table for c in comparisons.values()]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if quick and len(table):
        table["verdict"] = table["verdict"] + " (quick)"
    return table


def _parameter_table(fits, quick, time_resolved=False):
    frames = []
    for experiment, results in fits.items():
        for idata in results.values():
            df = report.parameter_table(idata, time_resolved=time_resolved)
            if "cell" in idata.attrs:
                df.insert(0, "cell", idata.attrs["cell"])
            if idata.attrs.get("pooling") == "partial":
                df["hypothesis"] = df["hypothesis"] + POOLED
            if time_resolved:
                df = df[df["time_h"].notna()] if "time_h" in df else df.iloc[0:0]
            df.insert(0, "experiment", experiment)
            frames.append(df)
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if quick and len(table):
        table["note"] = "quick"
    return table


def _intro(study, quick):
    text = study.description.strip() or study.title
    text += f"\n\nData: {study.provenance}."
    if quick:
        text = QUICK_NOTE + "\n\n" + text
    return {"heading": "Study", "text": text, "tables": [], "figures": []}


def experiment_figures(experiment, results, data, comparison, out_dir):
    """Make and save a single experiment's figures and Kramers-Kronig results, as soon as its comparison is in.

    Returns
    -------
    dict
        ``figures``: ``(PNG path, caption)`` pairs; ``kk``: ``(text, table,
        figure)`` of the Kramers-Kronig test, or None (see :func:`_kk`).
    """
    fig_dir = Path(out_dir) / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    return {"figures": _figures(experiment.name, results, data, comparison, fig_dir),
            "kk": _kk(experiment, data, Path(out_dir), fig_dir)}


def _figures(name, results, data, comparison, fig_dir):
    """Make and save the figures of one experiment; returns ``(PNG path, caption)`` pairs."""
    paths = []
    best = comparison.table.hypothesis.iloc[0] if comparison is not None else next(iter(results))
    first = next(iter(results.values()))
    observed = next(iter(first["observed_data"].data_vars))
    band = f"{round(100 * report.PROB)} %"

    def keep(fig, stem, caption):
        paths.append((Path(plots.save(fig, fig_dir / f"{name}_{stem}")[0]), caption))

    if observed == "Z":
        which = "best-ranked" if comparison is not None else "fitted"
        keep(plots.nyquist(results[best]), f"nyquist_{best}",
             f"Nyquist plot of the first, middle and last spectra with the {which} hypothesis, '{best}': "
             f"data (circles), posterior median (line), {band} band of the noise-free model (dark) and of "
             "new measurements (light).")
        keep(plots.bode(results[best]), f"bode_{best}",
             f"Bode plot (|Z| and phase against frequency) of the same spectra and fit ('{best}'), with {band} bands.")
        keep(plots.residuals(results[best]), f"residuals_{best}",
             f"Residuals of '{best}' against frequency, in % of |Z|: data minus the posterior-median model; the "
             f"grey bands are the {band} spread the noise model expects. Structure beyond the bands is misfit.")
        quantities = plots.drift_quantities(results)
        if len(first["observed_data"]["Z"].coords["time"]) > 1 and quantities:
            keep(plots.drift(results, quantities=quantities), "drift",
                 f"Time course of {', '.join(quantities)} under each hypothesis (median and {band} band); where "
                 "a hypothesis defines a quantity by a formula, the legend gives it, so the same name can be "
                 "a different physical parameter in different hypotheses.")
    elif "t" in first["constant_data"]:
        keep(plots.transients(data, results), "transients",
             f"Overpotential transients (data) with each hypothesis's model median and {band} band, one panel "
             "per current density.")
    else:
        keep(plots.iv(data, results), "iv",
             f"Overpotential against current density: data (symbols) and each hypothesis's model, evaluated on a "
             f"fine grid of current densities (median and {band} band).")
    if "prior" in results[best].children:
        keep(plots.prior_posterior(results[best]), f"prior_posterior_{best}",
             f"Prior (grey) and posterior (blue) of the sampled parameters of '{best}': how far the data moved "
             "and narrowed each one.")
    keep(plots.pair(results[best]), f"pair_{best}",
         f"Pair plot of the first sampled parameters of '{best}': posterior draws pairwise (tilted clouds are "
         "correlated parameters) and each one's histogram.")
    keep(plots.rank(results[best]), f"rank_{best}",
         f"Rank plots of '{best}': for each parameter, each chain's histogram of ranks among all draws; flat "
         "at the dashed line when the chains agree (a visual twin of R-hat).")
    if comparison is not None:
        keep(plots.comparison(comparison.table), "comparison",
             "Model comparison on the scale of the difference to the best hypothesis (ELPD − best, PSIS-LOO, "
             "nat) ± the standard error of the difference; the dotted line is −4, the smallest difference the "
             "rule calls a preference. Right: verdict, stacking weight and absolute ELPD ± SE.")
        if comparison.unit != "future":  # LFO's k are of carried-forward weights, NaN at refits
            keep(plots.pareto_k(comparison.loo[best]), f"pareto_k_{best}",
                 f"Pareto k̂ of every left-out observation of '{best}'; above the line ({compare.K_BAD}) the PSIS-LOO "
                 "estimate of that observation is unreliable (exact refits replace it where the study allows).")
    return paths


def _kk(experiment, data, out_dir, fig_dir):
    """``(text, table, figure)`` of the Kramers-Kronig test of an impedance experiment's spectra, or None.

    With ``kk = "exclude"`` the spectra are read again, so the failing ones
    the fits left out are shown too.
    """
    if experiment.kk == "off" or not isinstance(data, (kk.Spectrum, kk.SpectrumSeries)):
        return None
    if experiment.kk == "exclude":
        data = read_spectra(experiment)
    results = kk.check(data, threshold=experiment.kk_threshold)
    frame = kk.table(data, results)
    report.write_table(frame, out_dir / f"{experiment.name}_kk")
    action = (" Failing spectra were left out of the fits (kk = \"exclude\")." if experiment.kk == "exclude"
              else " Every spectrum was fitted (kk = \"flag\"; \"exclude\" leaves failing ones out).")
    figure = plots.save(plots.kk_residuals(data, results, threshold=experiment.kk_threshold),
                        fig_dir / f"{experiment.name}_kk")[0]
    caption = (f"Linear Kramers-Kronig residuals of every spectrum against frequency (% of |Z|), coloured by "
               f"time; dashed: the ±{100 * experiment.kk_threshold:g} % threshold; failing spectra drawn thicker.")
    return kk.summary(frame) + action, ("Kramers-Kronig test per spectrum", frame), (Path(figure), caption)


def _section(experiment, comparison, results, figures, params, quick):
    lines = [experiment.description.strip(), f"Data: `{experiment.data_path.name}` ({experiment.provenance})."]
    tables = []
    if comparison is not None:
        lines.append(f"**Verdict:** {comparison.verdict}"
                     + (f" (synthetic data generated by '{comparison.truth}')" if comparison.truth else ""))
        lines.append(f"Rule: {comparison.rule}. {comparison.method[0].upper()}{comparison.method[1:]}.")
        tables.append(comparison.table)
    for name, idata in results.items():
        lines.append(f"- **{name}** — {idata.attrs.get('hypothesis_title', '')}: {idata.attrs.get('hypothesis_physics', '')}")
    if quick:
        lines.insert(0, QUICK_NOTE)
    subset = params[params["experiment"] == experiment.name] if len(params) else params
    tables.append(subset)
    return {"heading": experiment.name, "text": "\n\n".join(l for l in lines if l), "tables": tables, "figures": figures}


def _cell_section(experiment, result, params, out_dir, fig_dir, quick):
    """Report section of a many-cell experiment; writes its extra tables and the forest plot."""
    name = experiment.name
    per_cell = cells.per_cell_table(result.per_cell, result.cells)
    report.write_table(per_cell, out_dir / f"{name}_per_cell")
    report.write_table(result.wins, out_dir / f"{name}_wins")
    subset = params[params["experiment"] == name] if len(params) else params
    group = cells.group_table(subset)
    report.write_table(group, out_dir / f"{name}_group")
    ranked = list(result.comparison.table.hypothesis)
    figures = []
    best = next((h for h in ranked if not h.endswith(POOLED)), None)
    if best is not None:  # independent fits: one row per cell
        best_fits = {c: rs[best] for c, rs in result.fits.items()}
        figures.append(Path(plots.save(plots.forest(best_fits, cells.key_parameters(next(iter(best_fits.values())))),
                                       fig_dir / f"{name}_forest_{best}")[0]))
    pooled = next((h for h in ranked if h.endswith(POOLED)), None)
    if pooled is not None:  # hierarchical model: per-cell values of the pooled parameters
        idata = result.pooled[pooled[:-len(POOLED)]]
        per_cell_vars = [v for v in idata["posterior"].data_vars if idata["posterior"][v].dims == ("chain", "draw", "cell")
                         and not v.endswith("_z")]
        if per_cell_vars:
            figures.append(Path(plots.save(plots.forest(idata, per_cell_vars),
                                           fig_dir / f"{name}_forest_pooled_{pooled[:-len(POOLED)]}")[0]))
    figures.append(Path(plots.save(plots.comparison(result.comparison.table), fig_dir / f"{name}_comparison")[0]))
    wins = "; ".join(f"'{r.hypothesis}' best in {r.best} of {len(result.cells)} cells ({r.preferred} clearly)"
                     for r in result.wins.itertuples())
    lines = [experiment.description.strip(),
             f"Data: {len(result.cells)} cells (pooling: {experiment.pooling}: "
             + {"none": "independent fits per cell", "partial": "one hierarchical model of all cells",
                "both": f"independent fits per cell and one hierarchical model, labelled '{POOLED.strip()}'"}[experiment.pooling]
             + f"); {experiment.provenance}.",
             f"**Over all cells (LOO unit: cell):** {result.comparison.verdict}",
             f"**Per cell:** {wins}.",
             f"Rule: {result.comparison.rule}. Within a cell, LOO unit: "
             f"{next(iter(result.per_cell.values())).unit}. Group level: mean and sd of the cells' posterior medians"
             " (independent fits); the hierarchical model's group means and scatter are the `_mu` and `_sd` rows of its"
             " parameter table. Forest plots: key parameters per cell of the best hypothesis."]
    if quick:
        lines.insert(0, QUICK_NOTE)
    return {"heading": name, "text": "\n\n".join(l for l in lines if l),
            "tables": [result.comparison.table, result.wins, per_cell, group, subset], "figures": figures}


def summary(comparisons, fits, out_dir, *, quick=False):
    """The one-screen summary printed at the end of a run."""
    lines = []
    if quick:
        lines.append(QUICK_NOTE)
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
