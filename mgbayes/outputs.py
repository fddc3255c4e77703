"""Write a study's tables, figures and report (wiring of plots and report)."""

import platform
from pathlib import Path

import pandas as pd

from . import __version__, compare, plots, report, sensitivity

QUICK_NOTE = "QUICK MODE (--quick): fewer draws than a publication run; numbers are for a fast look only."


def write_all(study, out_dir, fits, datas, comparisons, *, quick=False, command="", log=print, cell_results=None):
    """Tables (CSV, Markdown, LaTeX), figures (PNG, PDF) and report.md/.html.

    ``cell_results`` (experiment name → :class:`mgbayes.cells.CellResults`)
    adds, per many-cell experiment, the per-cell comparisons, the wins
    table, group-level summaries and a forest plot of the key parameters
    per cell.
    """
    from .study import evidence_key

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
        figures = _figures(name, fits[name], datas[name], comparisons.get(name), fig_dir)
        sections.append(_section(experiment, comparisons.get(name), fits[name], figures, params, quick))
        sections += sensitivity.report_sections(experiment, comparisons, fits, out_dir=out_dir,
                                                alone=fits.get(evidence_key(name)))
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
    from .study import summary

    log(summary(comparisons, fits, out_dir, quick=quick))


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
                df["hypothesis"] = df["hypothesis"] + " (pooled)"
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


def _figures(name, results, data, comparison, fig_dir):
    """Make and save the figures of one experiment; returns PNG paths."""
    paths = []
    best = comparison.table.hypothesis.iloc[0] if comparison is not None else next(iter(results))
    first = next(iter(results.values()))
    observed = next(iter(first["observed_data"].data_vars))

    def keep(fig, stem):
        paths.append(Path(plots.save(fig, fig_dir / f"{name}_{stem}")[0]))

    if observed == "Z":
        keep(plots.nyquist(results[best]), f"nyquist_{best}")
        keep(plots.bode(results[best]), f"bode_{best}")
        if len(first["observed_data"]["Z"].coords["time"]) > 1:
            keep(plots.drift(results), "drift")
    elif "t" in first["constant_data"]:
        keep(plots.transients(data, results), "transients")
    else:
        keep(plots.iv(data, results), "iv")
    if comparison is not None:
        keep(plots.comparison(comparison.table), "comparison")
        if comparison.unit != "future":  # LFO's k are of carried-forward weights, NaN at refits
            keep(plots.pareto_k(comparison.loo[best]), f"pareto_k_{best}")
    return paths


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
    from . import cells

    name = experiment.name
    per_cell = cells.per_cell_table(result.per_cell, result.cells)
    report.write_table(per_cell, out_dir / f"{name}_per_cell")
    report.write_table(result.wins, out_dir / f"{name}_wins")
    subset = params[params["experiment"] == name] if len(params) else params
    group = cells.group_table(subset)
    report.write_table(group, out_dir / f"{name}_group")
    ranked = list(result.comparison.table.hypothesis)
    figures = []
    best = next((h for h in ranked if not h.endswith(cells.POOLED)), None)
    if best is not None:  # independent fits: one row per cell
        best_fits = {c: rs[best] for c, rs in result.fits.items()}
        figures.append(Path(plots.save(plots.forest(best_fits, cells.key_parameters(next(iter(best_fits.values())))),
                                       fig_dir / f"{name}_forest_{best}")[0]))
    pooled = next((h for h in ranked if h.endswith(cells.POOLED)), None)
    if pooled is not None:  # hierarchical model: per-cell values of the pooled parameters
        idata = result.pooled[pooled[:-len(cells.POOLED)]]
        per_cell_vars = [v for v in idata["posterior"].data_vars if idata["posterior"][v].dims == ("chain", "draw", "cell")
                         and not v.endswith("_z")]
        if per_cell_vars:
            figures.append(Path(plots.save(plots.forest(idata, per_cell_vars),
                                           fig_dir / f"{name}_forest_pooled_{pooled[:-len(cells.POOLED)]}")[0]))
    figures.append(Path(plots.save(plots.comparison(result.comparison.table), fig_dir / f"{name}_comparison")[0]))
    wins = "; ".join(f"'{r.hypothesis}' best in {r.best} of {len(result.cells)} cells ({r.preferred} clearly)"
                     for r in result.wins.itertuples())
    lines = [experiment.description.strip(),
             f"Data: {len(result.cells)} cells (pooling: {experiment.pooling}: "
             + {"none": "independent fits per cell", "partial": "one hierarchical model of all cells",
                "both": "independent fits per cell and one hierarchical model, labelled '(pooled)'"}[experiment.pooling]
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
