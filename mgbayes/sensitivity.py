"""What decided a comparison: prior sensitivity, prior-data conflict and tensions.

Three checks of a fitted hypothesis, each a small table:

* :func:`power_scaling`: power-scaling sensitivity (``arviz.psense``) of
  every sampled parameter to its prior and to the likelihood of the
  experiment's data. In a joint fit the outside experiment's likelihood
  counts as prior here: for the data being compared it is information from
  elsewhere, so a high "prior" sensitivity says the outside data (or the
  priors) decide that parameter.
* :func:`conflicts`: a flag on every parameter whose posterior median sits
  in the far tail of its prior (beyond its :data:`TAIL` or ``1 - TAIL``
  quantile): the data pull it where the prior said it should not be.
* :func:`tensions`: quantities stated elsewhere (the paper's numbers, in a
  ``stated`` file of the study) against the posterior: in tension when the
  central :data:`PROB` posterior interval and the stated range do not overlap.

:func:`report_sections` puts them, with the spectra-only verdict beside
the verdict with outside information, into the study report.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.stats as st
import xarray as xr

#: Prior-data conflict: posterior median beyond this prior quantile (either tail).
TAIL = 0.005
#: Sensitivity above which a parameter counts as sensitive (Kallioinen et al. 2024).
THRESHOLD = 0.05
#: Central posterior interval compared with stated ranges.
PROB = 0.94


def priors(idata):
    """Prior tables of a result (``name -> {"dist": ..., args}``), as fitted."""
    return json.loads(idata.attrs.get("priors", "{}"))


def prior_cdf(spec, x):
    """Prior CDF at ``x`` for a prior table (``{"dist": ..., args}``)."""
    a = spec
    match spec["dist"]:
        case "lognormal":
            return st.lognorm.cdf(x, s=a["sd_log"], scale=a["median"])
        case "loguniform":
            return st.uniform.cdf(np.log(x), np.log(a["lower"]), np.log(a["upper"] / a["lower"]))
        case "normal":
            return st.norm.cdf(x, a["mu"], a["sigma"])
        case "halfnormal":
            return st.halfnorm.cdf(x, scale=a["sigma"])
        case "uniform":
            return st.uniform.cdf(x, a["lower"], a["upper"] - a["lower"])
        case "beta":
            return st.beta.cdf(x, a["alpha"], a["beta"])
    return np.nan


def _describe(spec):
    return f"{spec['dist']}(" + ", ".join(f"{k}={v:.3g}" for k, v in spec.items() if k != "dist") + ")"


def _scalar_parameters(idata):
    """Sampled scalar parameters with a prior, in prior order."""
    posterior = idata["posterior"]
    return [n for n, spec in priors(idata).items()
            if spec["dist"] != "fixed" and n in posterior and posterior[n].dims == ("chain", "draw")]


def conflicts(idata, *, tail=TAIL):
    """Prior quantile of each parameter's posterior median, flagged in the far tail.

    Returns
    -------
    pandas.DataFrame
        ``hypothesis, parameter, prior, median, prior_quantile, conflict``.
    """
    rows, table = [], priors(idata)
    for name in _scalar_parameters(idata):
        median = float(idata["posterior"][name].median())
        q = float(prior_cdf(table[name], median))
        rows.append({"hypothesis": idata.attrs.get("hypothesis", ""), "parameter": name,
                     "prior": _describe(table[name]), "median": median, "prior_quantile": q,
                     "conflict": bool(q < tail or q > 1 - tail)})
    return pd.DataFrame(rows, columns=["hypothesis", "parameter", "prior", "median", "prior_quantile", "conflict"])


def _psense_tree(idata, names):
    """Posterior, likelihood and prior groups for ``arviz.psense`` (outside evidence counted as prior)."""
    log_prior = idata["log_prior"].to_dataset()
    if "evidence_log_likelihood" in idata.children:
        for k, v in idata["evidence_log_likelihood"].to_dataset().data_vars.items():
            log_prior[f"evidence_{k}"] = v.sum([d for d in v.dims if d not in ("chain", "draw")])
    return xr.DataTree.from_dict({
        "posterior": idata["posterior"].to_dataset()[names],
        "log_likelihood": idata["log_likelihood"].to_dataset(),
        "log_prior": log_prior,
    })


def power_scaling(idata, *, threshold=THRESHOLD):
    """Power-scaling prior and likelihood sensitivity of every sampled scalar parameter.

    Returns
    -------
    pandas.DataFrame
        ``hypothesis, parameter, prior_sensitivity, likelihood_sensitivity,
        diagnosis`` (ArviZ's words; "✓" when neither is a concern).
    """
    import logging

    import arviz as az

    names = _scalar_parameters(idata)
    columns = ["hypothesis", "parameter", "prior_sensitivity", "likelihood_sensitivity", "diagnosis"]
    if "log_prior" not in idata.children or not names:
        return pd.DataFrame(columns=columns)
    logger = logging.getLogger("arviz_stats.psense")
    level = logger.level
    logger.setLevel(logging.ERROR)  # its advice to read a web page is replaced by the report's text
    try:
        df = az.psense_summary(_psense_tree(idata, names), threshold=threshold)
    finally:
        logger.setLevel(level)
    df = df.reset_index(names="parameter")
    df.insert(0, "hypothesis", idata.attrs.get("hypothesis", ""))
    return df.rename(columns={"prior": "prior_sensitivity", "likelihood": "likelihood_sensitivity"})[columns]


def what_decided(idata):
    """Power-scaling sensitivity and prior-data conflict of one result, one row per parameter."""
    ps = power_scaling(idata)
    pc = conflicts(idata)
    return pc.merge(ps, on=["hypothesis", "parameter"], how="left")


def tensions(idata, stated, *, prob=PROB):
    """Stated numbers against the posterior (see the module docstring).

    Parameters
    ----------
    idata : DataTree
    stated : dict
        ``quantity -> {"range": (low, high), "text": str}`` (study key ``stated``).

    Returns
    -------
    pandas.DataFrame
        ``hypothesis, quantity, stated, posterior, lower, median, upper, status`` for the
        quantities the hypothesis has; time-resolved ones at the last spectrum.
    """
    rows = []
    for name, spec in stated.items():
        if name not in idata["posterior"]:
            continue
        da = idata["posterior"][name]
        if "time" in da.dims:
            da = da.isel(time=-1)
        if set(da.dims) != {"chain", "draw"}:
            continue
        lower, median, upper = np.quantile(da.values, [(1 - prob) / 2, 0.5, (1 + prob) / 2])
        low, high = spec["range"]
        status = "tension" if upper < low or lower > high else "agrees"
        rows.append({"hypothesis": idata.attrs.get("hypothesis", ""), "quantity": name,
                     "stated": f"{low:.3g}-{high:.3g}: {spec['text']}", "lower": lower, "median": median,
                     "upper": upper, "status": status})
    return pd.DataFrame(rows, columns=["hypothesis", "quantity", "stated", "lower", "median", "upper", "status"])


def shared_quantities(joint, alone, names, *, prob=PROB):
    """Each shared quantity from the outside data alone and from every joint fit, with its interval.

    ``joint`` maps hypothesis → DataTree (fits with the evidence), ``alone``
    is the fit of the outside data alone. ``status`` says whether a joint
    interval overlaps the one of the outside data alone.
    """
    rows = []
    for name in names:
        ref = None
        for label, idata in [("outside data alone", alone), *joint.items()]:
            if idata is None or name not in idata["posterior"]:
                continue
            lower, median, upper = np.quantile(idata["posterior"][name].values, [(1 - prob) / 2, 0.5, (1 + prob) / 2])
            if ref is None:
                ref, status = (lower, upper), ""
            else:
                status = "agrees" if lower <= ref[1] and upper >= ref[0] else "disagrees"
            rows.append({"quantity": name, "fit": label, "lower": lower, "median": median, "upper": upper,
                         "status": status})
    return pd.DataFrame(rows, columns=["quantity", "fit", "lower", "median", "upper", "status"])


def outside_information(experiment):
    """Words for the outside information of an experiment ('' when none)."""
    parts = [f"priors on {', '.join(sorted(experiment.information))}"] if experiment.information else []
    parts += [f"the {e['name']} data fitted jointly (sharing {', '.join(e['shares']) or 'nothing'})"
              for e in experiment.evidence]
    return "; ".join(parts)


def report_sections(experiment, comparisons, fits, *, out_dir=None, alone=None):
    """Report sections "What decided it" and "Tensions" for one experiment.

    ``comparisons`` and ``fits`` are the study's (experiment name → ...);
    ``alone`` is the fit of its outside data alone (:func:`mgbayes.fits.evidence_task`), if any.
    Tables are also written to ``out_dir`` when given.
    """
    from . import report

    comparison = comparisons.get(experiment.name)
    if comparison is None:
        return []
    results = fits[experiment.name]
    lines = []
    if comparison.truth:
        lines.append(f"Synthetic data generated by **'{comparison.truth}'**.")
    info = outside_information(experiment)
    if info:
        twin = comparisons.get(comparison.spectra_only or "")
        lines.append(f"**With outside information** ({info}): {comparison.verdict}")
        lines.append(f"**Spectra only** ({comparison.spectra_only}): {twin.verdict if twin else 'not compared'}")
    else:
        lines.append(f"**Spectra only** (no outside information): {comparison.verdict}")
        paired = [n for n, c in comparisons.items() if c.spectra_only == experiment.name]
        lines += [f"**With outside information** ({n}): {comparisons[n].verdict}" for n in paired]
    lines.append(
        "Power-scaling sensitivity (arviz.psense, Kallioinen et al. 2024): how much each posterior moves when "
        f"the prior (in joint fits: priors and the outside data) or the likelihood of these data is raised to a "
        f"power near 1; above {THRESHOLD} counts as sensitive. Prior-data conflict: the posterior median beyond "
        f"the prior's {TAIL:.1%} or {1 - TAIL:.1%} quantile. A hypothesis whose fit needs flagged parameters "
        "wins or loses by what its priors allow, not by the data alone.")
    table = pd.concat([what_decided(r) for r in results.values()], ignore_index=True)
    flagged = table[table.conflict | (table.diagnosis.fillna("✓") != "✓")]
    summary = "; ".join(f"'{h}': {', '.join(g.parameter)}" for h, g in flagged[flagged.conflict].groupby("hypothesis"))
    lines.append("Prior-data conflicts: " + (summary if summary else "none") + ".")
    tables = [("every parameter: prior quantile of its posterior median, sensitivities", table)]
    shared = sorted({n for e in experiment.evidence for n in e["shares"]})
    if shared and alone:
        both = shared_quantities(results, next(iter(alone.values())), shared)
        lines.append(f"Shared with the outside data: {', '.join(shared)}; "
                     + "; ".join(f"'{r.fit}' {r.status}" for r in both.itertuples() if r.status)
                     + f" with the outside data alone ({PROB:.0%} intervals overlap or not).")
        tables.insert(0, ("shared quantities: the outside data alone and each joint fit", both))
    sections = [{"heading": f"{experiment.name}: what decided it", "text": "\n\n".join(lines), "tables": tables}]
    if out_dir is not None:
        report.write_table(table, Path(out_dir) / f"{experiment.name}_sensitivity")
    if experiment.stated:
        tense = pd.concat([tensions(r, experiment.stated) for r in results.values()], ignore_index=True)
        n = int((tense.status == "tension").sum())
        text = (f"Numbers stated in the paper (study key `stated`) against the {PROB:.0%} posterior interval: "
                f"{n} of {len(tense)} in tension.")
        sections.append({"heading": f"{experiment.name}: tensions", "text": text, "tables": [tense]})
        if out_dir is not None:
            report.write_table(tense, Path(out_dir) / f"{experiment.name}_tensions")
    return sections
