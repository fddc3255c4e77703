"""Tables (CSV, Markdown, LaTeX) and the study report (Markdown and HTML).

Every table states its units: parameter tables carry a ``unit`` column, read
from each variable's ``unit`` attribute (set at fit time where the quantity is
defined, :mod:`mgbayes.units`), and times are in hours (``time_h``). Intervals are **equal-tailed** (central)
credible intervals, 94 % by default: the columns ``q3%`` and ``q97%`` are
the 3rd and 97th percentiles of the posterior draws.

All files are written atomically: to a temporary file in the same folder,
then renamed over the target, so a reader never sees half a file and an
interrupted run leaves the old file in place.

Units are plain ASCII strings as stored in results (``"Ohm cm2"``,
``"F s^(P-1) cm-2"``, ``"mA cm-2 V-1"``); :func:`unit_text` renders them for
Markdown/HTML (Unicode), LaTeX and Matplotlib (math text).
"""

import base64
import html
import math
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .files import write_atomic  # noqa: F401 - the one atomic writer, importable from here as before
from .units import COORDINATE_ROLE

__all__ = [
    "parameter_table", "convergence_table", "write_table", "write_report", "by_label",
    "parameter_units", "unit_text", "write_atomic", "interval_columns", "to_markdown", "to_latex", "to_html",
]

#: Credible mass of the intervals in tables and figure bands.
PROB = 0.94

# --- units -------------------------------------------------------------------------

_SUPERSCRIPT = str.maketrans("0123456789-+", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺")
_BASE_UNITS = ("F", "m", "A", "s", "V", "Hz", "g", "S", "C", "H", "W")
_TOKEN = re.compile(r"^([A-Za-zµ°]+?)\^?(\([^)]*\)|[-+]?\d+(?:/\d+)?)?$")


def _split_prefix(base):
    """('µ', 'F') for 'uF'; ('k', 'Ω') for 'kOhm'; ('', base) otherwise."""
    if base.endswith("Ohm"):
        return base[:-3].replace("u", "µ"), "Ω"
    if len(base) > 1 and base[0] in "uµ" and base[1:] in _BASE_UNITS:
        return "µ", base[1:]
    return "", base


def unit_text(unit, style="unicode"):
    """Render an ASCII unit string for humans.

    Parameters
    ----------
    unit : str
        E.g. ``"Ohm cm2"``, ``"F s^(P-1) cm-2"``, ``"uF cm-2"``, ``"h-1"``;
        ``""`` or ``"1"`` is dimensionless.
    style : {"unicode", "math", "latex", "ascii"}
        ``"unicode"``: ``Ω cm²`` (Markdown, HTML); ``"math"``/``"latex"``:
        ``$\\Omega\\,\\mathrm{cm}^{2}$`` (Matplotlib math text, valid LaTeX);
        ``"ascii"``: unchanged.

    Returns
    -------
    str
        ``""`` for dimensionless quantities.
    """
    unit = str(unit or "").strip()
    if unit in ("", "1") or style == "ascii":
        return "" if unit in ("", "1") else unit
    parts = []
    for token in unit.split():
        match = _TOKEN.match(token)
        if not match:
            parts.append(token if style == "unicode" else r"\mathrm{%s}" % _latex_escape(token))
            continue
        prefix, base = _split_prefix(match.group(1))
        exponent = (match.group(2) or "").strip("()")
        if style == "unicode":
            text = prefix + base
            if exponent:
                text += exponent.translate(_SUPERSCRIPT) if re.fullmatch(r"[-+]?\d+", exponent) else f"^({exponent})"
            parts.append(text)
        else:
            text = (r"\mu" if prefix == "µ" else (r"\mathrm{%s}" % prefix if prefix else ""))
            text += r"\Omega" if base == "Ω" else (r"^\circ" if base == "°" else r"\mathrm{%s}" % base)
            if exponent:
                text += "^{%s}" % exponent
            parts.append(text)
    if style == "unicode":
        return " ".join(parts)
    return "$" + r"\,".join(parts) + "$"


def parameter_units(idata):
    """Unit of every posterior variable of a result, as an ASCII string: its ``unit`` attribute.

    A fit sets it where the quantity is defined (:mod:`mgbayes.units`);
    ``""`` where the result has none (nothing is guessed here).
    """
    posterior = idata["posterior"]
    return {name: str(posterior[name].attrs.get("unit", "")) for name in posterior.data_vars}


# --- tables ------------------------------------------------------------------------


def by_label(idatas):
    """One DataTree, a list or a dict of them as ``{label: DataTree}`` (labels: dict keys or ``hypothesis`` attributes)."""
    if hasattr(idatas, "attrs") and hasattr(idatas, "children"):
        return {idatas.attrs.get("hypothesis", "result"): idatas}
    if isinstance(idatas, dict):
        return dict(idatas)
    return {r.attrs.get("hypothesis", f"result {i}"): r for i, r in enumerate(idatas)}


def _percentiles(prob):
    lo = 100 * (1 - prob) / 2
    return lo, 100 - lo


def interval_columns(prob=PROB):
    """Names of the interval columns for credible mass ``prob`` (``("q3%", "q97%")``)."""
    lo, hi = _percentiles(prob)
    return f"q{lo:g}%", f"q{hi:g}%"


def parameter_table(idata, *, time_resolved=False, var_names=None, prob=PROB):
    """Posterior median and equal-tailed interval of every parameter.

    Parameters
    ----------
    idata : DataTree, or dict/list of them
        Result(s) of :func:`mgbayes.inference.fit`; a dict's keys label the
        hypotheses, otherwise the ``hypothesis`` attribute does.
    time_resolved : bool or "ends"
        Time-resolved quantities (dims ``time``, e.g. ``R_ct``, ``C_dl``):
        left out (False, default), one row per time point (True), or rows at
        the first and last time only (``"ends"``).
    var_names : list of str, optional
        Only these variables (in this order). By default every free
        parameter, resolved and derived quantity except standardised
        hierarchical offsets (``*_z``) and the sampler's own coordinates
        (a hypothesis's ``[coordinates]``).
    prob : float
        Credible mass of the equal-tailed interval (0.94: columns
        ``q3%``, ``q97%``).

    Returns
    -------
    pandas.DataFrame
        Columns ``hypothesis, parameter, time_h, unit, median, q3%, q97%``
        (interval columns named after ``prob``). Parameters with a ``cell``
        dimension get one row per cell, named ``X[cell]``; ``time_h`` is NaN
        for quantities that do not change with time.
    """
    lo_name, hi_name = interval_columns(prob)
    q = [(1 - prob) / 2, 0.5, 1 - (1 - prob) / 2]
    rows = []
    for label, result in by_label(idata).items():
        posterior = result["posterior"].to_dataset()
        units = parameter_units(result)
        names = var_names or [n for n in posterior.data_vars if not _is_offset(n, posterior[n])]
        for name in names:
            if name not in posterior:
                continue
            da = posterior[name]
            extra = [d for d in da.dims if d not in ("chain", "draw")]
            if "point" in extra or len(extra) > 1:
                continue  # per-data-point values belong in figures, not tables
            if "time" in extra:
                if not time_resolved:
                    continue
                times = da["time"].values
                keep = range(len(times)) if time_resolved is True else sorted({0, len(times) - 1})
                for k in keep:
                    rows.append(_row(label, name, float(times[k]), units[name], da.isel(time=k), q))
            elif extra:
                dim = extra[0]
                for k, coord in enumerate(da[dim].values if dim in da.coords else range(da.sizes[dim])):
                    rows.append(_row(label, f"{name}[{coord}]", np.nan, units[name], da.isel({dim: k}), q))
            else:
                rows.append(_row(label, name, np.nan, units[name], da, q))
    df = pd.DataFrame(rows, columns=["hypothesis", "parameter", "time_h", "unit", "q_lo", "median", "q_hi"])
    df = df.rename(columns={"q_lo": lo_name, "q_hi": hi_name})
    return df[["hypothesis", "parameter", "time_h", "unit", "median", lo_name, hi_name]]


def _is_offset(name, da):
    """A standardised hierarchical offset or a sampler coordinate: not a parameter a table reports."""
    return name.endswith("_z") and "cell" in da.dims or da.attrs.get("role") == COORDINATE_ROLE


def _row(label, name, time_h, unit, da, q):
    values = np.asarray(da.values, dtype=float).ravel()
    values = values[np.isfinite(values)]
    lo, med, hi = np.quantile(values, q) if values.size else (np.nan,) * 3
    return {"hypothesis": label, "parameter": name, "time_h": time_h, "unit": unit,
            "q_lo": float(lo), "median": float(med), "q_hi": float(hi)}


def convergence_table(idatas):
    """Sampler diagnostics per hypothesis.

    Computed from the draws with :func:`mgbayes.diagnostics.check` (free
    parameters only; thresholds R-hat < 1.01, bulk and tail ESS >= 400,
    no divergences, E-BFMI >= 0.3).

    Parameters
    ----------
    idatas : DataTree, or dict/list of them

    Returns
    -------
    pandas.DataFrame
        Columns ``hypothesis, chains, draws, rhat_max, ess_bulk_min,
        ess_tail_min, divergences, bfmi_min, converged, retried`` (the
        fit was sampled a second time, with smaller steps and longer
        tuning, after its first run failed a check: see
        :func:`mgbayes.inference.fit`).
    """
    from . import diagnostics

    rows = []
    for label, result in by_label(idatas).items():
        sizes = result["posterior"].sizes
        try:
            rep = diagnostics.check(result, label)
            values = dict(rhat_max=rep.rhat_max, ess_bulk_min=rep.ess_bulk_min, ess_tail_min=rep.ess_tail_min,
                          divergences=int(rep.divergences), bfmi_min=rep.bfmi_min, converged=bool(rep.ok))
        except Exception:  # no sample_stats etc.: fall back to the stored verdict
            values = dict(rhat_max=np.nan, ess_bulk_min=np.nan, ess_tail_min=np.nan, divergences=-1,
                          bfmi_min=np.nan, converged=bool(int(result.attrs.get("converged", 0))))
        rows.append({"hypothesis": label, "chains": int(sizes.get("chain", 0)), "draws": int(sizes.get("draw", 0)),
                     **values, "retried": bool(int(result.attrs.get("retried", 0)))})
    return pd.DataFrame(rows, columns=["hypothesis", "chains", "draws", "rhat_max", "ess_bulk_min",
                                       "ess_tail_min", "divergences", "bfmi_min", "converged", "retried"])


# --- formatting ----------------------------------------------------------------------

_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _latex_escape(text):
    return "".join(_LATEX_SPECIAL.get(c, c) for c in str(text))


def _format_value(value, digits=4):
    """Short text of one cell: numbers to ``digits`` significant figures, NaN empty."""
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            return "" if math.isnan(value) else str(value)
        if value == int(value) and abs(value) < 1e6:
            return str(int(value)) if abs(value) >= 1 or value == 0 else f"{value:.{digits}g}"
        return f"{value:.{digits}g}"
    return str(value)


def _is_unit_column(name):
    return str(name) == "unit"


def _unit_cell(unit, style):
    """A unit in a table cell: dimensionless shown as 1 (an empty cell means "not stated")."""
    return "1" if str(unit).strip() == "1" else unit_text(unit, style)


def _numeric(series):
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def to_markdown(df, digits=4):
    """A pipe table (GitHub Markdown); units rendered in Unicode, numbers right-aligned."""
    cols = list(df.columns)
    align = ["---:" if _numeric(df[c]) else ":---" for c in cols]

    def cell(text):
        return str(text).replace("|", r"\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(c) for c in cols) + " |", "| " + " | ".join(align) + " |"]
    for row in df.itertuples(index=False):
        texts = [_unit_cell(v, "unicode") if _is_unit_column(c) else _format_value(v, digits)
                 for c, v in zip(cols, row)]
        lines.append("| " + " | ".join(cell(t) for t in texts) + " |")
    return "\n".join(lines) + "\n"


def _latex_number(text):
    """``1.2e-05`` → ``$1.2\\times10^{-5}$``; anything else escaped."""
    match = re.fullmatch(r"(-?\d+(?:\.\d+)?)e([-+]\d+)", text)
    if not match:
        return _latex_escape(text)
    return f"${match.group(1)}\\times10^{{{int(match.group(2))}}}$"


def to_latex(df, digits=4, caption=None):
    """A booktabs table (``\\toprule``/``\\midrule``/``\\bottomrule``); needs ``\\usepackage{booktabs}``."""
    cols = list(df.columns)
    spec = "".join("r" if _numeric(df[c]) else "l" for c in cols)
    lines = []
    if caption:
        lines.append(f"% {_latex_escape(caption)}")
    lines += [f"\\begin{{tabular}}{{{spec}}}", r"\toprule",
              " & ".join(_latex_escape(c) for c in cols) + r" \\", r"\midrule"]
    for row in df.itertuples(index=False):
        texts = [_unit_cell(v, "latex") if _is_unit_column(c) else _latex_number(_format_value(v, digits))
                 for c, v in zip(cols, row)]
        lines.append(" & ".join(texts) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def to_html(df, digits=4):
    """A plain HTML table (escaped; units in Unicode)."""
    cols = list(df.columns)
    numeric = [_numeric(df[c]) for c in cols]
    out = ["<table>", "<thead><tr>" + "".join(f"<th>{html.escape(str(c))}</th>" for c in cols) + "</tr></thead>",
           "<tbody>"]
    for row in df.itertuples(index=False):
        cells = []
        for c, v, num in zip(cols, row, numeric):
            text = _unit_cell(v, "unicode") if _is_unit_column(c) else _format_value(v, digits)
            cells.append(f'<td class="num">{html.escape(text)}</td>' if num else f"<td>{html.escape(text)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out += ["</tbody>", "</table>"]
    return "\n".join(out)


def write_table(df, path_stem, *, digits=4):
    """Write a table as CSV, Markdown and LaTeX, atomically.

    Parameters
    ----------
    df : pandas.DataFrame
        Column names should carry units where the column has one
        (``time_h``), or the table a ``unit`` column (rendered as Ω cm² in
        Markdown and as math in LaTeX).
    path_stem : str or Path
        Path without suffix; ``.csv``, ``.md`` and ``.tex`` are added.
    digits : int
        Significant figures in Markdown and LaTeX (CSV keeps full precision).

    Returns
    -------
    dict
        ``{"csv": Path, "md": Path, "tex": Path}``.
    """
    stem = str(path_stem)
    for suffix in (".csv", ".md", ".tex"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    return {
        "csv": write_atomic(stem + ".csv", df.to_csv(index=False)),
        "md": write_atomic(stem + ".md", to_markdown(df, digits)),
        "tex": write_atomic(stem + ".tex", to_latex(df, digits)),
    }


# --- calibration section --------------------------------------------------------------


def calibration_section(frame, confusions, figures, *, sbc_tests=None, sbc_figures=None, source="posterior",
                        nominal=None, summaries=()):
    """The report section of ``mgbayes calibrate`` (see :mod:`mgbayes.calibrate`).

    ``confusions`` and ``figures`` map experiment → confusion table and its
    figure paths; ``sbc_tests`` (from :func:`mgbayes.sbc.uniformity`) and
    ``sbc_figures`` ((experiment, hypothesis) → paths) are given for
    replicates from the prior.
    """
    text = [
        f"Each hypothesis in turn generated {frame.groupby(['experiment', 'generator']).size().max()} data sets "
        f"at the experiment's own design, with parameters drawn from its {source} and its own noise model; every "
        "hypothesis was fitted to each, and the comparison rule of `mgbayes run` decided. A verdict is "
        "'unreliable' when a fit clearly failed (R-hat > 1.05 or > 1 % divergent draws) or PSIS-LOO of the best "
        "hypothesis had units with Pareto k > 0.7 (calibration makes no exact refits). A false preference is a wrong hypothesis "
        "called preferred; its interval is the 95 % Clopper-Pearson interval"
        + (f", beside the rule's nominal rate {nominal:.3f} (a one-sided normal tail beyond the rule's "
           "standard-error factor)." if nominal is not None else "."),
        *summaries,
    ]
    tables = [(f"{name}: verdicts by generator (counts) and false-preference rate", table)
              for name, table in confusions.items()]
    figs = [(paths[0], f"{name}: share of replicates per verdict, counts written in") for name, paths in figures.items()]
    if sbc_tests is not None:
        flagged = sbc_tests[sbc_tests.flagged]
        text.append("Simulation-based calibration: the rank of each true parameter among its posterior draws "
                    "should be uniform over prior replicates (Kolmogorov-Smirnov test, flagged below a family-wise 1 %). "
                    + ("No parameter is flagged." if flagged.empty else
                       "Flagged: " + ", ".join(f"{r.hypothesis}/{r.parameter}" for r in flagged.itertuples()) + "."))
        tables.append(("Simulation-based calibration: uniformity of ranks", sbc_tests))
        figs += [(paths[0], f"{e} / {h}: SBC rank histograms (grey: 99 % band of a uniform count)")
                 for (e, h), paths in (sbc_figures or {}).items()]
    return {"heading": "Calibration: how often is the verdict right?", "text": "\n\n".join(text),
            "tables": tables, "figures": figs}


# --- report ------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 60rem;
       margin: 2rem auto; padding: 0 1rem; line-height: 1.5; color: #222; }
h1, h2 { line-height: 1.2; } h2 { margin-top: 2.5rem; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }
th, td { padding: 0.2rem 0.6rem; border-bottom: 1px solid #ddd; text-align: left; vertical-align: top; }
thead th { border-bottom: 2px solid #444; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1rem 0; } figure img { max-width: 100%; height: auto; }
figcaption, .caption { font-size: 0.9rem; color: #444; }
.banner { background: #fff4d6; border: 1px solid #e69f00; padding: 0.5rem 1rem; }
code { background: #f3f3f3; padding: 0 0.2rem; }
""".strip()


def _items(entries):
    """[(caption or None, item)] from a list of items or (caption, item) pairs."""
    out = []
    for entry in entries or ():
        if isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], str) and not isinstance(entry[1], str):
            out.append(entry)                       # (caption, DataFrame)
        elif isinstance(entry, tuple) and len(entry) == 2:
            out.append((entry[1], entry[0]))        # (path, caption)
        else:
            out.append((None, entry))
    return out


def _provenance_frame(provenance):
    rows = []
    for key, value in (provenance or {}).items():
        if isinstance(value, dict):
            value = "; ".join(f"{k} {v}" for k, v in value.items())
        elif isinstance(value, (list, tuple)):
            value = " ".join(str(v) for v in value)
        rows.append({"item": str(key), "value": str(value)})
    return pd.DataFrame(rows, columns=["item", "value"])


def _synthetic(provenance):
    return "synthetic" in str((provenance or {}).get("data", "")).lower()


def _paragraphs(text):
    return [p.strip() for p in re.split(r"\n\s*\n", str(text or "")) if p.strip()]


def _markdown():
    """The Markdown renderer of the HTML report: CommonMark with tables, raw HTML escaped.

    markdown-it-py (a dependency for this) renders what the Markdown report
    says, so emphasis, code, lists and links read the same in both files,
    instead of a hand-written subset leaving ``**`` in the HTML.
    """
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable("table")


def _block_html(text):
    """A paragraph (or list) of Markdown as HTML."""
    return _markdown().render(str(text)).strip()


def _inline_html(text):
    """One line of Markdown (a caption, a banner) as inline HTML."""
    return _markdown().renderInline(" ".join(str(text).split()))


def write_report(out_dir, *, title, sections, provenance=None):
    """Write ``report.md`` and a self-contained ``report.html`` into ``out_dir``.

    Parameters
    ----------
    out_dir : str or Path
        Created if needed.
    title : str
    sections : list of dict
        Each ``{"heading": str, "text": str, "tables": [...], "figures": [...]}``
        (all but ``heading`` optional). Text is plain paragraphs separated by
        blank lines, in Markdown (rendered to HTML by markdown-it-py). Tables are DataFrames or
        ``(caption, DataFrame)``; figures are PNG paths or ``(path, caption)``.
    provenance : dict, optional
        Printed as a table at the top (e.g. ``command``, ``versions``,
        ``data``). When ``data`` says "synthetic", both reports open with a
        banner saying so.

    Returns
    -------
    dict
        ``{"md": Path, "html": Path}``. The HTML embeds every figure as a
        base64 PNG and needs no other file; the Markdown links the figures
        by paths relative to ``out_dir``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    prov = _provenance_frame(provenance)
    banner = ("These results are from **synthetic data** (simulated from the hypotheses' forward models), "
              "not from measurements." if _synthetic(provenance) else None)

    md = [f"# {title}", ""]
    body = [f"<h1>{html.escape(title)}</h1>"]
    if banner:
        md += [f"> {banner}", ""]
        body.append(f'<p class="banner">{_inline_html(banner)}</p>')
    if len(prov):
        md += ["## Provenance", "", to_markdown(prov)]
        body += ["<h2>Provenance</h2>", to_html(prov)]
    for number, section in enumerate(sections, start=1):
        heading = section.get("heading", f"Section {number}")
        md += [f"## {heading}", ""]
        body.append(f"<h2>{html.escape(heading)}</h2>")
        for paragraph in _paragraphs(section.get("text")):
            md += [paragraph, ""]
            body.append(_block_html(paragraph))
        for caption, df in _items(section.get("tables")):
            if caption:
                md += [f"*{caption}*", ""]
                body.append(f'<p class="caption">{_inline_html(caption)}</p>')
            md += [to_markdown(df)]
            body.append(to_html(df))
        for caption, path in _items(section.get("figures")):
            path = Path(path)
            if not path.is_file():
                raise FileNotFoundError(f"report section {heading!r}: figure {path} does not exist")
            alt = re.sub(r"[*`]", "", caption) if caption else path.stem
            md += [f"![{alt}]({Path(os.path.relpath(path.resolve(), out_dir.resolve())).as_posix()})", ""]
            if caption:
                md += [f"*{caption}*", ""]
            encoded = base64.b64encode(path.read_bytes()).decode("ascii")
            cap = f"<figcaption>{_inline_html(caption)}</figcaption>" if caption else ""
            body.append(f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}">{cap}</figure>')
    page = ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>\n{_CSS}\n</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")
    return {"md": write_atomic(out_dir / "report.md", "\n".join(md).rstrip() + "\n"),
            "html": write_atomic(out_dir / "report.html", page)}
