"""Paper figures: Nyquist, Bode, drift, I–V, transients, model comparison.

Every function returns a :class:`matplotlib.figure.Figure` made without
:mod:`matplotlib.pyplot` (so no GUI backend, no global figure registry and no
``plt.show``) inside :func:`style`, a small rc context: fonts of 9 pt and
more, the Okabe–Ito colour-blind-safe palette, constrained ("tight")
layout. Global ``rcParams`` are never changed. Pass ``ax=`` to draw into an
axes of your own figure instead.

Axis labels are "quantity / unit" with the units of the data (Ω cm² when the
spectra carry an electrode area). Bands are equal-tailed 94 % intervals of
the posterior draws (``prob=``), lines their medians:

- *model band*: the noise-free model (``Z_mean``/``eta_mean`` in
  ``posterior_predictive``) — where the hypothesis puts the mean;
- *predictive band*: noisy replicates (``Z``/``eta``) — where new data would
  fall; shown in Nyquist and Bode plots, lighter.

:func:`save` writes PNG (200 dpi) and PDF atomically.
"""

import contextlib
import functools
import re
import warnings
from pathlib import Path

import matplotlib
import numpy as np
from cycler import cycler
from matplotlib import ticker
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from . import files
from . import compare
from .compare import K_BAD
from .report import PROB, by_label, parameter_units, unit_text

__all__ = ["nyquist", "bode", "drift", "drift_quantities", "kk_residuals", "residuals", "prior_posterior", "pair", "rank", "iv", "transients", "comparison", "pareto_k", "forest", "save", "style",
           "OKABE_ITO", "PALETTE"]

#: The Okabe–Ito palette (Okabe & Ito 2008), safe for all common colour-vision deficiencies.
OKABE_ITO = {
    "black": "#000000", "orange": "#E69F00", "sky_blue": "#56B4E9", "bluish_green": "#009E73",
    "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "reddish_purple": "#CC79A7",
}
#: Line colours in order of use (yellow last: weak on white).
PALETTE = [OKABE_ITO[k] for k in ("blue", "vermillion", "bluish_green", "reddish_purple", "orange", "sky_blue",
                                  "black", "yellow")]
DATA_COLOUR = "#333333"
GREY = "#777777"
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">")
_DASHES = ("-", "--", "-.", ":")
#: Single-column and double-column figure widths (inches).
WIDTH_1, WIDTH_2 = 3.5, 7.2

STYLE = {
    "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "xtick.labelsize": 9, "ytick.labelsize": 9,
    "legend.fontsize": 9, "legend.title_fontsize": 9, "figure.titlesize": 10,
    "font.family": "sans-serif", "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
    "mathtext.fontset": "dejavusans",
    "axes.prop_cycle": cycler(color=PALETTE), "image.cmap": "cividis",
    "axes.spines.top": False, "axes.spines.right": False, "axes.linewidth": 0.8,
    "lines.linewidth": 1.3, "lines.markersize": 4,
    "xtick.direction": "out", "ytick.direction": "out", "xtick.major.width": 0.8, "ytick.major.width": 0.8,
    "legend.frameon": False, "legend.handlelength": 1.6, "legend.borderaxespad": 0.3,
    "figure.dpi": 100, "savefig.dpi": 200, "figure.constrained_layout.use": True,
    "pdf.fonttype": 42, "ps.fonttype": 42, "svg.fonttype": "none",
}


@contextlib.contextmanager
def style():
    """Context manager applying the mgbayes paper style (restores rcParams on exit)."""
    with matplotlib.rc_context(STYLE):
        yield


def _styled(function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with style(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*(tight_layout|constrained_layout).*")
            return function(*args, **kwargs)

    return wrapper


def _figure(nrows=1, ncols=1, *, width=WIDTH_1, height=2.8, **kwargs):
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kwargs)
    return fig, axes


# --- labels ---------------------------------------------------------------------------

_GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "eta", "theta", "kappa", "lambda", "mu", "nu", "rho",
          "sigma", "tau", "phi", "chi", "psi", "omega", "Delta", "Omega"}


def _symbol(name):
    """Math-text symbol of a quantity name: ``R_ct`` → $R_\\mathrm{ct}$, ``eta_on`` → $\\eta_\\mathrm{on}$."""
    cpe = re.fullmatch(r"CPE_?(\w*?)_([TP])", str(name))
    if cpe:
        sub = ",".join(["CPE"] + ([cpe.group(1)] if cpe.group(1) else []))
        return f"${cpe.group(2)}_{{\\mathrm{{{sub}}}}}$"
    head, *rest = str(name).split("_")
    numbered = re.fullmatch(r"([A-Za-z])(\d+)", head)
    if numbered:
        head, rest = numbered.group(1), [numbered.group(2)] + rest
    if head in _GREEK:
        head = "\\" + head
    elif not re.fullmatch(r"[A-Za-z]", head):
        return str(name)
    sub = ",".join(rest)
    return f"${head}_{{\\mathrm{{{sub}}}}}$" if sub else f"${head}$"


def _label(quantity, unit):
    """``quantity / unit`` (math text), or the quantity alone when dimensionless."""
    text = unit_text(unit, "math")
    return f"{quantity} / {text}" if text else quantity


def _display(unit, values, log=False):
    """(factor, unit) for showing values: F → µF; Ohm → kOhm/MOhm for large magnitudes on linear axes."""
    unit = str(unit or "")
    if unit.startswith("F"):
        return 1e6, "u" + unit
    if log:
        return 1.0, unit
    finite = np.abs(np.asarray(values, float))
    finite = finite[np.isfinite(finite)]
    top = finite.max() if finite.size else 0.0
    if unit.startswith("Ohm"):
        if top >= 1e7:
            return 1e-6, "M" + unit
        if top >= 1e4:
            return 1e-3, "k" + unit
    return 1.0, unit


def _log_scale(ax, which, values):
    """Log axis; plain numbers (20, 30, 50, 100) on minor ticks too when the span is under two decades."""
    class PlainLog(ticker.LogFormatter):
        def _num_to_string(self, x, vmin, vmax):
            return f"{x:.6g}"

    (ax.set_yscale if which == "y" else ax.set_xscale)("log")
    values = np.asarray(values, float)
    values = values[np.isfinite(values) & (values > 0)]
    axis = ax.yaxis if which == "y" else ax.xaxis
    if values.size and values.max() / values.min() < 100:
        axis.set_major_formatter(PlainLog(labelOnlyBase=False))
        axis.set_minor_formatter(PlainLog(labelOnlyBase=False, minor_thresholds=(2, 1)))


def _time_text(t):
    return "t unknown" if t is None or not np.isfinite(t) else f"t = {t:.3g} h"


def _colours(n):
    """``n`` distinguishable colours: Okabe–Ito up to 7, else the cividis map."""
    if n <= 7:
        return PALETTE[:n]
    return [matplotlib.colormaps["cividis"](x) for x in np.linspace(0.0, 0.9, n)]


def _quantiles(samples, prob, axis=0):
    """(low, median, high) of ``samples`` along ``axis`` for an equal-tailed interval."""
    a = (1 - prob) / 2
    lo, med, hi = np.nanquantile(samples, [a, 0.5, 1 - a], axis=axis)
    return lo, med, hi


def _band_text(prob):
    return f"{100 * prob:g} %"


def _is_tree(obj):
    return hasattr(obj, "attrs") and hasattr(obj, "children")


def _samples(da, *dims):
    """(sample, *dims) NumPy array of a posterior(-predictive) DataArray."""
    return da.stack(sample=("chain", "draw")).transpose("sample", *dims).values


# --- impedance --------------------------------------------------------------------------


def _impedance_source(obj):
    """(times_h, frequency, complex Z (time, frequency), unit, idata or None)."""
    from . import data as d

    if _is_tree(obj):
        z = obj["observed_data"]["Z"]
        values = z.sel(part="re").values + 1j * z.sel(part="im").values
        unit = obj.attrs.get("data_unit") or obj["constant_data"].attrs.get("unit", "Ohm")
        return np.asarray(z["time"].values, float), np.asarray(z["frequency"].values, float), values, unit, obj
    if isinstance(obj, d.Spectrum):
        t = np.nan if obj.time_h is None else obj.time_h
        return np.array([t]), obj.frequency, obj.impedance_area[None, :], obj.impedance_unit, None
    if isinstance(obj, d.SpectrumSeries):
        return obj.time_h, obj.frequency, obj.impedance_area, obj.impedance_unit, None
    raise TypeError(f"expected a Spectrum, SpectrumSeries or a DataTree of an impedance fit, got {type(obj).__name__}")


def _select_times(times, selection):
    n = len(times)
    if selection is None:
        return sorted({0, n // 2, n - 1})
    if isinstance(selection, str) and selection == "all":
        return list(range(n))
    picked = []
    for t in np.atleast_1d(selection):
        if np.all(np.isnan(times)):
            k = int(t)
        else:
            k = int(np.nanargmin(np.abs(times - float(t))))
        if k not in picked:
            picked.append(k)
    return picked


def _predicted(idata, k, frequency):
    """{"mean": Z draws, "predictive": Z draws} (complex, (sample, frequency)) at time index ``k``."""
    out = {}
    if idata is None or "posterior_predictive" not in idata.children:
        return out
    pp = idata["posterior_predictive"]
    for key, name in (("mean", "Z_mean"), ("predictive", "Z")):
        if name in pp:
            da = pp[name].isel(time=k)
            s = _samples(da, "frequency", "part")
            out[key] = s[..., 0] + 1j * s[..., 1]
    return out


def _tube(x, y, prob):
    """Band around the median curve of draws ``x``, ``y`` (sample, point), normal to the curve.

    Along the curve the spread is invisible; across it, the band is the
    equal-tailed interval of the draws' distance from the median curve.
    """
    mx, my = np.median(x, axis=0), np.median(y, axis=0)
    tx, ty = np.gradient(mx), np.gradient(my)
    norm = np.hypot(tx, ty)
    norm[norm == 0] = 1.0
    nx, ny = -ty / norm, tx / norm
    dist = (x - mx) * nx + (y - my) * ny
    lo, _, hi = _quantiles(dist, prob)
    px = np.concatenate([mx + hi * nx, (mx + lo * nx)[::-1]])
    py = np.concatenate([my + hi * ny, (my + lo * ny)[::-1]])
    return (mx, my), (px, py)


def _legend_handles(prob, has_model, colours_labels):
    handles = [Line2D([], [], color=c, marker="o", mfc="none", ls="-", label=lab) for c, lab in colours_labels]
    handles.append(Line2D([], [], color=GREY, marker="o", mfc="none", ls="none", label="data"))
    if has_model:
        handles.append(Line2D([], [], color=GREY, ls="-", label="posterior median"))
        handles.append(Patch(color=GREY, alpha=0.35, lw=0, label=f"{_band_text(prob)} band"))
    return handles


@_styled
def nyquist(data_or_idata, *, times=None, ax=None, prob=PROB, predictive=True):
    """Nyquist plot (Z′ vs −Z″, equal aspect) of a few spectra, with the model.

    Parameters
    ----------
    data_or_idata : Spectrum, SpectrumSeries or DataTree
        Data alone, or the result of an impedance fit (its observed data,
        posterior median and bands are drawn).
    times : list of float or "all", optional
        Times in hours of the spectra to draw (nearest ones); default the
        first, middle and last.
    ax : matplotlib Axes, optional
    prob : float
        Mass of the equal-tailed bands.
    predictive : bool
        Also draw the predictive band of noisy replicates (lighter), when
        present, next to the band of the noise-free model.

    Returns
    -------
    matplotlib.figure.Figure
    """
    t, f, z, unit, idata = _impedance_source(data_or_idata)
    picks = _select_times(t, times)
    factor, shown = _display(unit, np.abs(z[picks]))
    if ax is None:
        fig, axes = _figure(width=WIDTH_1 + 0.4, height=3.2)
        ax = axes[0, 0]
    colours = _colours(len(picks))
    entries = []
    for colour, k in zip(colours, picks):
        pred = _predicted(idata, k, f)
        if predictive and "predictive" in pred:
            _, (px, py) = _tube(pred["predictive"].real * factor, -pred["predictive"].imag * factor, prob)
            ax.fill(px, py, color=colour, alpha=0.15, lw=0, gid="band-predictive")
        if "mean" in pred:
            (mx, my), (px, py) = _tube(pred["mean"].real * factor, -pred["mean"].imag * factor, prob)
            ax.fill(px, py, color=colour, alpha=0.35, lw=0, gid="band-model")
            ax.plot(mx, my, color=colour, lw=1.2, gid="median")
        ax.plot(z[k].real * factor, -z[k].imag * factor, ls="none", marker="o", ms=3, mfc="none", mew=0.8,
                color=colour, gid="data")
        entries.append((colour, _time_text(t[k])))
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel(_label("$Z'$", shown))
    ax.set_ylabel(_label("$-Z''$", shown))
    ax.legend(handles=_legend_handles(prob, idata is not None, entries), loc="upper left")
    return ax.figure


@_styled
def bode(data_or_idata, *, times=None, axes=None, prob=PROB, predictive=True):
    """Bode plot: |Z| (log) and −phase against frequency (log), with the model.

    Parameters
    ----------
    data_or_idata : Spectrum, SpectrumSeries or DataTree
    times : list of float or "all", optional
        As in :func:`nyquist`.
    axes : pair of matplotlib Axes, optional
        (modulus axes, phase axes).
    prob : float
    predictive : bool

    Returns
    -------
    matplotlib.figure.Figure
    """
    t, f, z, unit, idata = _impedance_source(data_or_idata)
    picks = _select_times(t, times)
    if axes is None:
        fig, grid = _figure(2, 1, width=WIDTH_1 + 0.4, height=4.8, sharex=True)
        ax_mod, ax_ph = grid[:, 0]
    else:
        ax_mod, ax_ph = axes
    colours = _colours(len(picks))
    entries = []
    for colour, k in zip(colours, picks):
        pred = _predicted(idata, k, f)
        for key, alpha in (("predictive", 0.15), ("mean", 0.35)):
            if key not in pred or (key == "predictive" and not predictive):
                continue
            draws = pred[key]
            for ax, values in ((ax_mod, np.abs(draws)), (ax_ph, -np.angle(draws, deg=True))):
                lo, med, hi = _quantiles(values, prob)
                gid = "band-model" if key == "mean" else "band-predictive"
                ax.fill_between(f, lo, hi, color=colour, alpha=alpha, lw=0, gid=gid)
                if key == "mean":
                    ax.plot(f, med, color=colour, lw=1.2, gid="median")
        ax_mod.plot(f, np.abs(z[k]), ls="none", marker="o", ms=3, mfc="none", mew=0.8, color=colour, gid="data")
        ax_ph.plot(f, -np.angle(z[k], deg=True), ls="none", marker="o", ms=3, mfc="none", mew=0.8, color=colour,
                   gid="data")
        entries.append((colour, _time_text(t[k])))
    ax_mod.set_xscale("log")
    ax_mod.set_yscale("log")
    ax_ph.set_xscale("log")
    ax_mod.set_ylabel(_label("$|Z|$", unit))
    ax_ph.set_ylabel(_label(r"$-\varphi$", "deg"))
    ax_ph.set_xlabel(_label("$f$", "Hz"))
    handles = _legend_handles(prob, idata is not None, entries)
    if axes is None:
        ax_mod.figure.legend(handles=handles, loc="outside upper center", ncols=2)
    else:
        ax_mod.legend(handles=handles, loc="lower left")
    return ax_mod.figure


# --- drift ------------------------------------------------------------------------------


def _grid(n, *, ncols_max=3, width=WIDTH_2, row_height=2.4, **kwargs):
    ncols = min(n, ncols_max)
    nrows = -(-n // ncols)
    fig, axes = _figure(nrows, ncols, width=width if ncols > 1 else WIDTH_1 + 0.4, height=row_height * nrows, **kwargs)
    flat = axes.ravel()
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


#: Quantities the drift figure shows first when hypotheses define them (``[derived]``).
DRIFT_QUANTITIES = ("R_arc", "C_dl", "f_peak")


def drift_quantities(results, *, preferred=DRIFT_QUANTITIES, most=6):
    """The quantities a drift figure of ``results`` can show.

    The ``preferred`` ones some hypothesis defines; failing those (hypotheses
    without a ``[derived]`` table), the time-resolved posterior variables
    (the drifting parameters), at most ``most``. Empty when nothing varies
    with time.
    """
    results = by_label(results)
    present = [q for q in preferred if any(q in r["posterior"].data_vars for r in results.values())]
    if present:
        return present
    found = []
    for r in results.values():
        for name, da in r["posterior"].data_vars.items():
            if "time" in da.dims and "cell" not in da.dims and not name.endswith("_z") and name not in found:
                found.append(name)
    return found[:most]


def _expression(idata, name):
    """The formula a hypothesis gives a derived quantity or transform (``"R_film + R_ct"``), or None."""
    import tomllib

    try:
        table = tomllib.loads(idata.attrs.get("hypothesis_text", ""))
    except tomllib.TOMLDecodeError:
        return None
    spec = table.get("derived", {}).get(name) or table.get("transform", {}).get(name)
    expr = spec.get("expr") if isinstance(spec, dict) else spec
    return " ".join(str(expr).split()) if expr and str(expr).strip() != name else None


@_styled
def drift(results, *, quantities=None, prob=PROB, log=None):
    """Trajectories over time of time-resolved quantities, one panel each.

    Parameters
    ----------
    results : DataTree or dict of str → DataTree
        One fit, or several hypotheses' fits of the same data (overlaid, one
        colour each, labelled by the dict keys and, where a hypothesis
        defines the quantity by a formula, by that formula, e.g.
        ``film: R_arc = R_film``, so one panel never passes different
        physical parameters off as one).
    quantities : sequence of str, optional
        Posterior variables to draw; default :func:`drift_quantities`.
        Quantities a hypothesis lacks are skipped for it; a panel nobody has
        is left out. Constant quantities are drawn as a flat band.
    prob : float
        Mass of the equal-tailed bands.
    log : bool, optional
        Log y axes; default: where the values span more than a factor 10.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        If no result has any of ``quantities``.
    """
    results = by_label(results)
    quantities = drift_quantities(results) if quantities is None else quantities
    present = [q for q in quantities if any(q in r["posterior"].data_vars for r in results.values())]
    if not present:
        raise ValueError(f"none of {list(quantities)} is in the results' posterior")
    fig, axes = _grid(len(present))
    colours = dict(zip(results, _colours(len(results))))
    for ax, q in zip(axes, present):
        unit, curves = None, []
        for label, r in results.items():
            if q not in r["posterior"].data_vars:
                continue
            da = r["posterior"][q]
            unit = unit if unit is not None else str(da.attrs.get("unit", ""))
            if "time" in da.dims:
                tt = np.asarray(da["time"].values, float)
                lo, med, hi = _quantiles(_samples(da, "time"), prob)
            else:
                tt = np.asarray(r["constant_data"]["t"].values if "t" in r["constant_data"] else [0.0], float)
                tt = np.array([tt.min(), tt.max()])
                lo, med, hi = (np.full(2, v) for v in _quantiles(_samples(da), prob))
            expr = _expression(r, q)
            curves.append((f"{label}: {q} = {expr}" if expr else label, tt, lo, med, hi, label))
        lows = np.concatenate([c[2] for c in curves])
        highs = np.concatenate([c[4] for c in curves])
        use_log = log if log is not None else bool(np.all(lows > 0) and highs.max() / lows.min() > 10)
        factor, shown = _display(unit, np.concatenate([c[3] for c in curves]), log=use_log)
        for k, (text, tt, lo, med, hi, label) in enumerate(curves):
            ax.fill_between(tt, lo * factor, hi * factor, color=colours[label], alpha=0.3, lw=0, gid="band-model")
            ax.plot(tt, med * factor, color=colours[label], ls=_DASHES[k % len(_DASHES)], ms=3,
                    marker=_MARKERS[list(results).index(label) % len(_MARKERS)] if tt.size > 2 else None,
                    label=text, gid="median")
        if use_log:
            _log_scale(ax, "y", np.concatenate([lows, highs]) * factor)
        ax.set_xlabel(_label("$t$", "h"))
        ax.set_ylabel(_label(_symbol(q), shown))
        if any(c[0] != c[5] for c in curves) or ax is axes[0]:
            ax.legend(loc="best", fontsize=7 if any(c[0] != c[5] for c in curves) else None)
    return fig


@_styled
def kk_residuals(data, results=None, *, threshold=0.01):
    """Linear Kramers–Kronig residuals against frequency, real and imaginary parts, every spectrum.

    Parameters
    ----------
    data : Spectrum or SpectrumSeries
    results : list of mgbayes.validation.KKResult, optional
        From :func:`mgbayes.kk.check` (computed when not given).
    threshold : float
        The pass threshold (fraction of ``|Z|``), drawn as dashed lines.

    Returns
    -------
    matplotlib.figure.Figure
        Residuals in % of ``|Z|``; spectra coloured by time (cividis), those
        that fail drawn thicker.
    """
    from . import kk

    spectra = kk.spectra(data)
    results = kk.check(data, threshold=threshold) if results is None else results
    fig, axes = _figure(1, 2, width=WIDTH_2, height=2.6, sharey=True)
    times = np.array([np.nan if s.time_h is None else s.time_h for s in spectra])
    order = np.nan_to_num(times, nan=0.0) if np.isfinite(times).any() else np.arange(len(spectra), dtype=float)
    span = np.ptp(order) or 1.0
    cmap = matplotlib.colormaps["cividis"]
    for ax, part, name in ((axes[0, 0], "residuals_real", "real"), (axes[0, 1], "residuals_imag", "imaginary")):
        for k, r in enumerate(results):
            colour = cmap(0.9 * (order[k] - order.min()) / span)
            ax.plot(r.frequency, 100 * getattr(r, part), color=colour, lw=1.6 if not r.passed else 0.7,
                    alpha=1.0 if not r.passed else 0.6, gid="failed" if not r.passed else "passed")
        for sign in (-1, 1):
            ax.axhline(sign * 100 * threshold, color=GREY, ls="--", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel(_label("$f$", "Hz"))
        ax.set_title(f"{name} part", loc="left")
    axes[0, 0].set_ylabel("residual / % of |Z|")
    if len(spectra) > 1:
        norm = matplotlib.colors.Normalize(order.min(), order.min() + span / 0.9)
        bar = fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap), ax=axes[0, 1])
        bar.set_label(_label("$t$", "h") if np.isfinite(times).any() else "spectrum")
    return fig


@_styled
def residuals(idata, *, times=None, prob=PROB):
    """Fit residuals against frequency: (data − posterior-median model) / |model|, real and imaginary.

    Parameters
    ----------
    idata : DataTree
        An impedance fit.
    times : list of float or "all", optional
        Spectra to draw (nearest times); default the first, middle and last.
    prob : float
        Mass of the band of the relative predictive spread (noise model), grey.

    Returns
    -------
    matplotlib.figure.Figure
        Systematic structure (waves, a trend at low frequency) says the model
        misses something that the noise model does not cover.
    """
    t, f, z, unit, tree = _impedance_source(idata)
    picks = _select_times(t, "all" if len(t) <= 3 else times)
    mean = _samples(tree["posterior_predictive"]["Z_mean"], "time", "frequency", "part")
    mean = np.median(mean[..., 0], axis=0) + 1j * np.median(mean[..., 1], axis=0)
    predictive = tree["posterior_predictive"]["Z"]
    fig, axes = _figure(1, 2, width=WIDTH_2, height=2.6, sharey=True)
    colours = _colours(len(picks))
    for colour, k in zip(colours, picks):
        scale = np.abs(mean[k])
        for ax, part in ((axes[0, 0], "real"), (axes[0, 1], "imag")):
            pick = (lambda x: x.real) if part == "real" else (lambda x: x.imag)
            spread = _samples(predictive.isel(time=k).sel(part="re" if part == "real" else "im"), "frequency")
            lo, _, hi = _quantiles((spread - pick(mean[k])) / scale * 100, prob)
            ax.fill_between(f, lo, hi, color=colour, alpha=0.15, lw=0, gid="band-predictive")
            ax.plot(f, 100 * (pick(z[k]) - pick(mean[k])) / scale, color=colour, marker="o", ms=2.5, lw=0.8,
                    label=_time_text(t[k]), gid="residual")
    for ax, name in ((axes[0, 0], "real part"), (axes[0, 1], "imaginary part")):
        ax.axhline(0.0, color=GREY, lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel(_label("$f$", "Hz"))
        ax.set_title(name, loc="left")
    axes[0, 0].set_ylabel("residual / % of |Z|")
    axes[0, 1].legend(loc="best")
    return fig


def _scalar_parameters(idata, var_names, most, group="prior"):
    """Sampled scalar parameters present in ``group`` and the posterior (or ``var_names``)."""
    if var_names is not None:
        return list(var_names)
    posterior = idata["posterior"]
    names = [n for n, da in posterior.data_vars.items() if da.dims == ("chain", "draw") and not n.endswith("_log")
             and (group not in idata.children or n in idata[group].data_vars)]
    return names[:most]


@_styled
def prior_posterior(idata, var_names=None, *, most=8):
    """Prior (grey) against posterior (colour) of the sampled parameters, one panel each.

    Parameters
    ----------
    idata : DataTree
        A result with ``prior`` and ``posterior`` groups.
    var_names : list of str, optional
        Default: the scalar sampled parameters, at most ``most``.

    Returns
    -------
    matplotlib.figure.Figure
        Histograms as densities, on a log axis for positive quantities that
        span more than a factor 10; how far the posterior moved from and
        narrowed within the prior shows what the data said.
    """
    if "prior" not in idata.children:
        raise ValueError("this result has no prior group (written by an older mgbayes); refit it")
    names = _scalar_parameters(idata, var_names, most)
    fig, axes = _grid(len(names), ncols_max=4, width=WIDTH_2, row_height=1.9)
    units = parameter_units(idata)
    for ax, name in zip(axes, names):
        post = idata["posterior"][name].values.ravel()
        prior = idata["prior"][name].values.ravel()
        both = np.concatenate([post, prior])
        low, high = np.quantile(prior, [0.005, 0.995])
        low, high = min(low, post.min()), max(high, post.max())
        log = bool(np.all(both > 0) and high / max(low, 1e-300) > 10)
        bins = np.geomspace(low, high, 60) if log else np.linspace(low, high, 60)
        widths = np.diff(np.log10(bins) if log else bins)  # density per decade on a log axis
        for values, colour, alpha, label in ((prior, GREY, 0.5, "prior"), (post, PALETTE[0], 0.8, "posterior")):
            counts, _ = np.histogram(values, bins=bins)
            ax.stairs(counts / (values.size * widths), bins, fill=True, color=colour, alpha=alpha, label=label,
                      gid=label)
        if log:
            ax.set_xscale("log")
        ax.set_yticks([])
        ax.set_xlabel(_label(_symbol(name), units.get(name, "")), fontsize=8)
    axes[0].legend(loc="best", fontsize=7)
    return fig


@_styled
def pair(idata, var_names=None, *, most=5, points=1000):
    """Pair (corner) plot of key parameters: pairwise scatter of posterior draws, histograms on the diagonal.

    Correlations between parameters (a resistance traded against a CPE
    exponent, a drift rate against a start value) show as tilted clouds; a
    log axis is used for positive parameters spanning more than a factor 3.
    ``points`` draws are shown (evenly thinned).
    """
    names = _scalar_parameters(idata, var_names, most, group="posterior")
    n = len(names)
    fig, axes = _figure(n, n, width=WIDTH_2, height=WIDTH_2 * 0.9 if n > 2 else 3.0)
    values = {k: idata["posterior"][k].values.ravel() for k in names}
    step = max(1, next(iter(values.values())).size // points)
    units = parameter_units(idata)
    logs = {k: bool(np.all(v > 0) and v.max() / v.min() > 3) for k, v in values.items()}
    for i, yi in enumerate(names):
        for j, xj in enumerate(names):
            ax = axes[i, j]
            if j > i:
                ax.set_visible(False)
                continue
            if i == j:
                ax.hist(values[xj], bins=np.geomspace(values[xj].min(), values[xj].max(), 30) if logs[xj] else 30,
                        color=PALETTE[0], alpha=0.8)
                ax.set_yticks([])
            else:
                ax.plot(values[xj][::step], values[yi][::step], ls="none", marker=".", ms=1.5, alpha=0.4,
                        color=PALETTE[0], gid="draws")
                if logs[yi]:
                    ax.set_yscale("log")
            if logs[xj]:
                ax.set_xscale("log")
            if i == n - 1:
                ax.set_xlabel(_label(_symbol(xj), units.get(xj, "")), fontsize=7)
            else:
                ax.set_xticklabels([])
            if j == 0 and i > 0:
                ax.set_ylabel(_label(_symbol(yi), units.get(yi, "")), fontsize=7)
            elif i != j:
                ax.set_yticklabels([])
            ax.tick_params(labelsize=6)
    return fig


@_styled
def rank(idata, var_names=None, *, most=8, bins=20):
    """Rank plots: per parameter, the histogram of each chain's draws' ranks among all draws.

    Every chain should be flat at the dashed line (ranks uniform): a chain
    above it at one end sampled a different region. A visual twin of R-hat
    (Vehtari et al. 2021).
    """
    names = _scalar_parameters(idata, var_names, most, group="posterior")
    fig, axes = _grid(len(names), ncols_max=4, width=WIDTH_2, row_height=1.7)
    for ax, name in zip(axes, names):
        values = idata["posterior"][name].values
        n_chain, n_draw = values.shape
        ranks = np.argsort(np.argsort(values.ravel(), kind="stable"), kind="stable").reshape(values.shape)
        edges = np.linspace(0, values.size, bins + 1)
        for c in range(n_chain):
            counts, _ = np.histogram(ranks[c], bins=edges)
            ax.stairs(counts, edges, baseline=None, color=_colours(n_chain)[c], lw=1.0, gid=f"chain-{c}")
        ax.set_ylim(0, None)
        ax.axhline(n_draw / bins, color=GREY, ls="--", lw=0.8)
        ax.set_yticks([])
        ax.set_xticks([])
        ax.set_title(_symbol(name), fontsize=8)
    return fig


# --- current–overpotential ------------------------------------------------------------------


def _cell_index(idata):
    cd = idata["constant_data"]
    n = cd["j"].size
    return np.asarray(cd["cell_index"].values if "cell_index" in cd else np.zeros(n, int), int)


def _mean_draws(idata):
    """(sample, point) draws of the predicted mean overpotential of an I–V or transient fit."""
    pp = idata["posterior_predictive"]
    name = "eta_mean" if "eta_mean" in pp else next(n for n in pp.data_vars if n.endswith("_mean"))
    return _samples(pp[name], "point")


#: Points of the smooth model curves of :func:`iv` (log-spaced over the measured currents).
CURVE_POINTS = 120


def _smooth_mean(idata, j, cell=None, *, n=CURVE_POINTS):
    """``(grid, draws)``: the model's mean overpotential [V] at ``n`` log-spaced current densities.

    Evaluated with NumPy from the posterior draws and the hypothesis stored
    in the result, so the curve between measured currents is the model's,
    not a straight segment; ``cell`` picks a cell's own parameters in a
    hierarchical fit. None when the result holds no hypothesis.
    """
    from .hypotheses import for_cells, from_table
    from .inference import posterior_values
    import tomllib

    text = idata.attrs.get("hypothesis_text", "")
    if not text or len(j) < 2 or np.min(j) <= 0:
        return None
    h = from_table(tomllib.loads(text), text=text)
    if h.kind != "iv":
        return None
    n_cells = idata["posterior"].sizes.get("cell", 0)
    h, _ = for_cells(h, n_cells)  # as fitted: one cell drops the [hierarchy]
    grid = np.geomspace(np.min(j), np.max(j), n)
    fixed = {k: np.asarray(p.args["value"]) for k, p in h.prior_table().items() if p.is_fixed}
    values = posterior_values(idata["posterior"].to_dataset(), [k for k in h.free_parameters() if k not in fixed])
    index = None if cell is None else np.full(n, int(cell))
    with np.errstate(all="ignore"):
        resolved = h.resolve({**values, **fixed}, {"j": grid}, cell_index=index)
        eta = np.asarray(h.overpotential(resolved), float)
    draws = next(iter(values.values())).shape[0]
    return grid, np.broadcast_to(eta, (draws, n))


def _point_groups(idata, x):
    """[(cell index or None, point indices sorted by x)]: one group per cell where parameters vary by cell.

    Without a ``cell`` dimension in the posterior every cell has the same
    prediction, so one group of distinct ``x`` values is returned.
    """
    index = _cell_index(idata)
    if "cell" in idata["posterior"].dims:
        groups = [(int(c), np.flatnonzero(index == c)) for c in np.unique(index)]
    else:
        _, first = np.unique(x, return_index=True)
        groups = [(None, first)]
    return [(c, sel[np.argsort(x[sel], kind="stable")]) for c, sel in groups]



@_styled
def iv(curve, idatas=None, *, prob=PROB, overlay=None, ax=None):
    """Current density (log) against overpotential (mV): data and each hypothesis's band.

    The band is the equal-tailed interval of the predicted mean
    overpotential at the data's current densities (sorted by j and joined),
    per cell where cells differ.

    Parameters
    ----------
    curve : IVCurve
    idatas : DataTree or dict of str → DataTree, optional
        Fits of ``curve`` (the same points, in the same order).
    prob : float
    overlay : bool, optional
        All hypotheses in one panel (default when the curve has one cell),
        or one panel per hypothesis with cells in colours.
    ax : matplotlib Axes, optional
        Only with ``overlay``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    results = by_label(idatas) if idatas is not None else {}
    cells = list(curve.cells)
    j, eta = np.asarray(curve.current_density_mA_cm2), np.asarray(curve.overpotential_V) * 1e3
    cell_of_point = np.asarray(curve.cell)
    overlay = (len(cells) == 1 or not results) if overlay is None else overlay
    if ax is not None:
        axes, fig = [ax], ax.figure
        overlay = True
    elif overlay:
        fig, grid = _figure(width=WIDTH_1 + 0.4, height=3.0)
        axes = [grid[0, 0]]
    else:
        fig, axes = _grid(len(results), ncols_max=3, sharey=True, sharex=True)
    hyp_colours = dict(zip(results, _colours(len(results))))
    cell_colours = dict(zip(cells, _colours(len(cells))))
    panels = [(axes[0], list(results))] if overlay else [(a, [h]) for a, h in zip(axes, results)]
    for ax_, names in panels:
        for label in names:
            r = results[label]
            draws = _mean_draws(r) * 1e3
            jj = np.asarray(r["constant_data"]["j"].values, float)
            for first, (c, sel) in enumerate(_point_groups(r, jj)):
                smooth = _smooth_mean(r, jj[sel], c)
                if smooth is None:  # no stored hypothesis: the model at the measured currents
                    lo, med, hi = _quantiles(draws[:, sel], prob)
                    grid = jj[sel]
                else:
                    grid, values = smooth
                    lo, med, hi = _quantiles(values * 1e3, prob)
                if overlay or c is None:
                    colour = hyp_colours[label] if overlay else DATA_COLOUR
                else:
                    colour = cell_colours.get(cells[c] if c < len(cells) else c, GREY)
                ax_.fill_between(grid, lo, hi, color=colour, alpha=0.3, lw=0, gid="band-model")
                name = label if overlay else ("model" if c is None else None)
                ax_.plot(grid, med, color=colour, lw=1.2, gid="median", label=name if first == 0 else None)
        for k, cell in enumerate(cells):
            sel = cell_of_point == cell
            colour = DATA_COLOUR if overlay else cell_colours[cell]
            ax_.plot(j[sel], eta[sel], ls="none", marker=_MARKERS[k % len(_MARKERS)], ms=4, mfc="none", mew=0.9,
                     color=colour, gid="data", label=f"cell {cell}" if len(cells) > 1 or not results else "data")
        _log_scale(ax_, "x", j)
        ax_.set_xlabel(_label("$j$", "mA cm-2"))
        if ax_.get_subplotspec() is None or ax_.get_subplotspec().is_first_col():
            ax_.set_ylabel(_label(r"$\eta$", "mV"))
        if not overlay:
            ax_.set_title(names[0])
        ax_.legend(loc="upper left")
    return fig


@_styled
def transients(transients, idatas=None, *, prob=PROB):
    """Overpotential (mV) against time (h), one panel per current density, with bands.

    Parameters
    ----------
    transients : list of Transient
    idatas : DataTree or dict of str → DataTree, optional
        Fits of these transients (the same points, in the same order).
    prob : float

    Returns
    -------
    matplotlib.figure.Figure
    """
    transients = list(transients)
    results = by_label(idatas) if idatas is not None else {}
    levels = sorted({float(tr.current_density_mA_cm2) for tr in transients})
    fig, axes = _grid(len(levels), ncols_max=4, sharey=True, row_height=2.5)
    colours = dict(zip(results, _colours(len(results))))
    greys = ["#222222", "#666666", "#999999", "#444444", "#888888"]
    for ax, level in zip(axes, levels):
        for k, tr in enumerate(tr for tr in transients if np.isclose(tr.current_density_mA_cm2, level)):
            ax.plot(np.asarray(tr.time_s) / 3600.0, np.asarray(tr.overpotential_V) * 1e3, color=greys[k % len(greys)],
                    lw=0.8, marker=".", ms=2, gid="data", label="data" if k == 0 else None)
        for label, r in results.items():
            draws = _mean_draws(r) * 1e3
            cd = r["constant_data"]
            tt, jj = np.asarray(cd["t"].values, float), np.asarray(cd["j"].values, float)
            index = _cell_index(r)
            first = True
            for c in np.unique(index):
                sel = np.flatnonzero((index == c) & np.isclose(jj, level))
                if sel.size == 0:
                    continue
                sel = sel[np.argsort(tt[sel], kind="stable")]
                lo, med, hi = _quantiles(draws[:, sel], prob)
                ax.fill_between(tt[sel], lo, hi, color=colours[label], alpha=0.3, lw=0, gid="band-model")
                ax.plot(tt[sel], med, color=colours[label], lw=1.2, gid="median", label=label if first else None)
                first = False
        ax.set_title(f"$j$ = {level:g} {unit_text('mA cm-2', 'math')}")
        ax.set_xlabel(_label("$t$", "h"))
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel(_label(r"$\eta$", "mV"))
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4))
    return fig


# --- model comparison ------------------------------------------------------------------------

_VERDICT_SHORT = {"best": "best", "indistinguishable from best": "tied with best", "worse than best": "worse"}


@_styled
def comparison(table, *, ax=None):
    """ELPD (PSIS-LOO) ± SE per hypothesis, and each one's difference to the best ± its SE.

    Parameters
    ----------
    table : pandas.DataFrame or mgbayes.compare.Comparison
        Columns ``experiment, hypothesis, rank, elpd_loo, se, elpd_diff, dse,
        weight, p_loo, pareto_k_max, n_bad_k, verdict`` (``experiment``,
        ``weight``, ``n_bad_k`` and ``verdict`` optional). Several
        experiments give one panel each.
    ax : matplotlib Axes, optional
        Only for a single experiment.

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    Drawn on the scale of the difference to the best hypothesis
    (ELPD − ELPD_best ≤ 0), because a difference of 10 beside ELPDs of
    −13 000 is invisible on the absolute scale. Filled circles: the
    difference ± the standard error of the difference (``dse``), which
    decides the verdict; the best sits at 0. The dotted line marks −4, the
    smallest difference the rule can call a preference. The right-hand
    labels give the verdict, the stacking weight and the absolute ELPD ± SE.
    """
    table = getattr(table, "table", table)
    groups = list(table.groupby("experiment", sort=False)) if "experiment" in table else [("", table)]
    if ax is not None and len(groups) > 1:
        raise ValueError("ax= takes one experiment; the table has several")
    if ax is None:
        heights = [0.5 * len(g) + 0.8 for _, g in groups]
        fig = Figure(figsize=(WIDTH_1 + 1.6, sum(heights) + 0.5), layout="constrained")
        axes = fig.subplots(len(groups), 1, squeeze=False, gridspec_kw={"height_ratios": heights})[:, 0]
    else:
        axes, fig = [ax], ax.figure
    for ax_, (experiment, g) in zip(axes, groups):
        g = g.sort_values("rank")
        n = len(g)
        y = np.arange(n)[::-1].astype(float)
        diff = -g["elpd_diff"].to_numpy(float)
        dse = np.nan_to_num(g["dse"].to_numpy(float))
        ax_.axvline(0.0, color=GREY, ls="--", lw=0.8)
        ax_.axvline(-4.0, color=GREY, ls=":", lw=0.8, label="−4: smallest preference")
        ax_.errorbar(diff, y, xerr=dse, fmt="o", color="black", ms=5, capsize=2, lw=1.0,
                     label="difference to best ± SE", gid="diff")
        low = float(np.min(diff - dse)) if n > 1 else -5.0
        ax_.set_xlim(min(low, -5.0) * 1.1, max(0.05 * abs(low), 0.5))
        ax_.set_yticks(y, [str(h) for h in g["hypothesis"]])
        ax_.set_ylim(-0.7, n - 0.4)
        right = ax_.twinx()
        right.set_ylim(ax_.get_ylim())
        right.set_yticks(y, [_right_label(row) for row in g.itertuples()])
        right.tick_params(length=0)
        right.spines["right"].set_visible(False)
        right.spines["top"].set_visible(False)
        ax_.xaxis.set_major_locator(ticker.MaxNLocator(5))
        ax_.set_xlabel(_label("ELPD − best ELPD (PSIS-LOO)", "nat"))
        if experiment:
            ax_.set_title(str(experiment), loc="left")
    handles, labels = axes[0].get_legend_handles_labels()
    if ax is None:
        fig.legend(handles, labels, loc="outside lower center", ncols=2, handletextpad=0.3)
    else:
        ax.legend(handles, labels, loc="best", handletextpad=0.3)
    return fig


def _right_label(row):
    parts = [_VERDICT_SHORT.get(getattr(row, "verdict", ""), str(getattr(row, "verdict", "")))]
    weight = getattr(row, "weight", None)
    if weight is not None and np.isfinite(weight):
        parts.append(f"w = {weight:.2f}")
    bad = getattr(row, "n_bad_k", 0)
    text = ", ".join(p for p in parts if p)
    elpd, se = getattr(row, "elpd_loo", np.nan), getattr(row, "se", np.nan)
    if np.isfinite(elpd):
        text += f"\nELPD {elpd:.5g} ± {se:.2g}"
    if bad and bad > 0:
        text += f"\n{int(bad)} with k > {K_BAD}"
    return text


@_styled
def pareto_k(idata_or_loo, *, threshold=K_BAD, ax=None, idata=None):
    """Pareto-k̂ of every left-out observation, with the reliability threshold.

    Parameters
    ----------
    idata_or_loo : DataTree or arviz ELPDData
        A fit (LOO computed here with ``arviz.loo(idata, pointwise=True)``)
        or a pointwise LOO result (e.g. from :func:`mgbayes.compare.loo`).
    threshold : float
        Line drawn at k̂ = :data:`mgbayes.compare.K_BAD` (0.7; PSIS unreliable above); where the sample
        size sets a lower one (``1 - 1/log10(S)``) it is drawn dotted too.
    ax : matplotlib Axes, optional
    idata : DataTree, optional
        The fit a given LOO result belongs to, to place I–V and transient
        points at their current density or time instead of their index.

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    Impedance: all (time, frequency) points against frequency, coloured by
    the spectrum's time. I–V points against current density, transient
    points against time; other units against their coordinate.
    """
    if _is_tree(idata_or_loo):
        idata = idata_or_loo
        loo = compare.loo(idata, unit="point")  # Re and Im of a frequency point are one LOO unit
    else:
        loo = idata_or_loo
    k = loo.pareto_k
    if "part" in k.dims:  # ArviZ's LOO of an impedance result scores Re and Im apart: show the worse of the two
        k = k.max("part")
    if ax is None:
        fig, grid = _figure(width=WIDTH_1 + 0.6, height=2.8)
        ax = grid[0, 0]
    values = np.asarray(k.values, float)
    colour_values = None
    if "frequency" in k.dims:
        x = np.broadcast_to(k["frequency"].values, values.shape)
        xlabel, log_x = _label("$f$", "Hz"), True
        if "time" in k.dims:
            times = k["time"].values
            colour_values = np.broadcast_to(times[:, None] if k.dims.index("time") == 0 else times[None, :],
                                            values.shape)
    elif k.dims == ("point",) and idata is not None and "constant_data" in idata.children:
        cd = idata["constant_data"]
        if "t" in cd:
            x, xlabel, log_x = np.asarray(cd["t"].values, float), _label("$t$", "h"), False
        elif "j" in cd:
            x, xlabel, log_x = np.asarray(cd["j"].values, float), _label("$j$", "mA cm-2"), True
        else:
            x, xlabel, log_x = np.arange(values.size), "observation", False
    elif k.ndim == 1 and k.dims[0] in k.coords and np.issubdtype(k[k.dims[0]].dtype, np.number):
        dim = k.dims[0]
        x, log_x = np.asarray(k[dim].values, float), False
        xlabel = _label("$t$", "h") if dim == "time" else dim
    else:
        labels = [str(v) for v in (k[k.dims[0]].values if k.ndim == 1 and k.dims[0] in k.coords
                                   else range(values.size))]
        x, log_x, xlabel = np.arange(values.size), False, k.dims[0] if k.ndim == 1 else "observation"
        ax.set_xticks(x, labels, rotation=45 if len(labels) > 6 else 0)
    x, values = np.ravel(x), values.ravel()
    if colour_values is not None and np.unique(colour_values).size > 1:
        sc = ax.scatter(x, values, c=np.ravel(colour_values), cmap="cividis", s=9, lw=0, gid="k")
        ax.figure.colorbar(sc, ax=ax, label=_label("$t$", "h"), pad=0.02)
    else:
        ax.scatter(x, values, color=PALETTE[0], s=9, lw=0, gid="k")
    bad = values > threshold
    if bad.any():
        ax.scatter(x[bad], values[bad], facecolor="none", edgecolor=OKABE_ITO["vermillion"], s=30, lw=1.0,
                   gid="k-bad")
    ax.axhline(threshold, color=OKABE_ITO["vermillion"], ls="--", lw=0.9, label=f"k = {threshold:g}")
    good_k = getattr(loo, "good_k", None)
    if good_k is not None and np.isfinite(good_k) and good_k < threshold - 1e-3:
        ax.axhline(good_k, color=OKABE_ITO["vermillion"], ls=":", lw=0.9, label=f"k = {good_k:.2f} (sample size)")
    if log_x:
        _log_scale(ax, "x", x)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(r"Pareto $\hat{k}$")
    ax.set_ylim(top=max(1.1, float(np.nanmax(values)) + 0.15))
    ax.set_title(f"{int(bad.sum())} of {values.size} observations with k > {threshold:g}", loc="left")
    ax.legend(loc="best")
    return ax.figure


# --- forest -------------------------------------------------------------------------------------


@_styled
def forest(idatas, var_names, *, prob=PROB, log=None):
    """Posterior medians and equal-tailed intervals of parameters across hypotheses or cells.

    Parameters
    ----------
    idatas : DataTree or dict of str → DataTree
    var_names : str or list of str
        One panel each, stacked (each with its own x axis and unit). A
        variable with a ``cell`` or ``time`` dimension gives one row per cell
        or time. Hypotheses without the variable are skipped in its panel.
    prob : float
    log : bool, optional
        Log x axes; default where a panel's values span more than a factor 20.

    Returns
    -------
    matplotlib.figure.Figure
    """
    results = by_label(idatas)
    var_names = [var_names] if isinstance(var_names, str) else list(var_names)
    present = [v for v in var_names if any(v in r["posterior"].data_vars for r in results.values())]
    if not present:
        raise ValueError(f"none of {var_names} is in the results' posterior")
    colours = dict(zip(results, _colours(len(results))))
    several = len(results) > 1
    panels = []
    for v in present:
        rows, unit = [], None
        for label, r in results.items():
            if v not in r["posterior"].data_vars:
                continue
            da = r["posterior"][v]
            unit = unit if unit is not None else str(da.attrs.get("unit", ""))
            extra = [d for d in da.dims if d not in ("chain", "draw")]
            if not extra:
                rows.append((label, label, _quantiles(_samples(da), prob)))
                continue
            dim = extra[0]
            if extra[1:]:
                da = da.isel({d: 0 for d in extra[1:]})
            coords = da[dim].values if dim in da.coords else np.arange(da.sizes[dim])
            for i, c in enumerate(coords):
                name = _time_text(float(c)) if dim == "time" else f"{dim} {c}"
                rows.append((label, f"{label}, {name}" if several else name,
                             _quantiles(_samples(da.isel({dim: i})), prob)))
        panels.append((v, unit, rows))
    heights = [0.24 * len(rows) + 0.75 for _, _, rows in panels]
    fig = Figure(figsize=(WIDTH_1 + 0.9, sum(heights) + 0.3), layout="constrained")
    axes = fig.subplots(len(panels), 1, squeeze=False, gridspec_kw={"height_ratios": heights})[:, 0]
    for ax, (v, unit, rows) in zip(axes, panels):
        lows = np.array([q[0] for _, _, q in rows])
        highs = np.array([q[2] for _, _, q in rows])
        use_log = log if log is not None else bool(np.all(lows > 0) and highs.max() / lows.min() > 20)
        factor, shown = _display(unit, [q[1] for _, _, q in rows], log=use_log)
        y = np.arange(len(rows))[::-1]
        for yy, (label, name, (lo, med, hi)) in zip(y, rows):
            ax.errorbar(med * factor, yy, xerr=[[(med - lo) * factor], [(hi - med) * factor]], fmt="o",
                        color=colours[label], ms=4, capsize=0, lw=1.4, gid="interval")
        ax.set_yticks(y, [name for _, name, _ in rows])
        ax.set_ylim(-0.6, len(rows) - 0.4)
        if use_log:
            _log_scale(ax, "x", np.concatenate([lows, highs]) * factor)
        else:
            ax.xaxis.set_major_locator(ticker.MaxNLocator(4))
        ax.set_xlabel(_label(_symbol(v), shown))
    axes[0].set_title(f"medians and {_band_text(prob)} equal-tailed intervals", loc="left", fontsize=9)
    return fig


# --- saving -------------------------------------------------------------------------------------


def save(fig, path, *, dpi=200, formats=("png", "pdf")):
    """Write ``fig`` as PNG (``dpi``) and PDF next to each other, atomically.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : str or Path
        Path without suffix (a ``.png``/``.pdf`` suffix is dropped).
    dpi : int
    formats : sequence of str

    Returns
    -------
    tuple of Path
        One path per format, in the order of ``formats`` (PNG, PDF).

    Each file is written to a temporary name in its folder and renamed over
    the target, so readers never see a half-written figure. PDFs carry no
    creation date, so the same figure gives the same file.
    """
    import logging

    stem = str(path)
    for fmt in formats:
        if stem.endswith("." + fmt):
            stem = stem[: -len(fmt) - 1]
    Path(stem).parent.mkdir(parents=True, exist_ok=True)
    out = []
    # fontTools complains about DejaVu's head timestamps when embedding (pdf.fonttype 42); harmless.
    font_log = logging.getLogger("fontTools")
    level = font_log.level
    font_log.setLevel(logging.ERROR)
    try:
        with style():
            for fmt in formats:
                target = Path(f"{stem}.{fmt}")
                with files.replacing(target) as tmp:
                    metadata = {"CreationDate": None} if fmt == "pdf" else None
                    fig.savefig(tmp, format=fmt, dpi=dpi, metadata=metadata)
                out.append(target)
    finally:
        font_log.setLevel(level)
    return tuple(out)
