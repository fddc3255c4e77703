"""Simulation-based calibration (Talts et al. 2018): are the posteriors right on average?

Draw parameters from the prior, simulate data from them, fit, and note
where each true value falls among the posterior draws (its *rank*). When
the sampler and the likelihood are right, every parameter's ranks are
uniform over replicates; a U shape means posteriors too narrow, a hump too
wide, a slope a bias. :mod:`mgbayes.calibrate` collects the ranks from the
fits of each generating hypothesis to its own prior replicates; this module
turns them into tests, flags and figures.
"""

import numpy as np
import pandas as pd
import scipy.stats

#: Posterior draws kept per fit for a rank (evenly spaced over chains, which thins autocorrelation away).
RANK_DRAWS = 99
#: Family-wise level at which a parameter's ranks are flagged as not uniform (Bonferroni over parameters).
ALPHA = 0.01


def ranks(truth, posterior, *, n_draws=RANK_DRAWS):
    """Rank of each true value among ``n_draws`` evenly spaced posterior draws.

    Parameters
    ----------
    truth : dict
        Parameter name → true value (scalar or array, e.g. one per cell).
    posterior : xarray.Dataset
        Posterior with ``chain`` and ``draw`` dims; parameters missing from
        it are skipped.
    n_draws : int
        Draws kept; ranks run from 0 to ``n_draws``.

    Returns
    -------
    dict
        ``"name"`` (or ``"name[k]"`` for elements) → rank (int).
    """
    out = {}
    for name, value in truth.items():
        if name not in posterior:
            continue
        draws = np.asarray(posterior[name].values, dtype=float)
        draws = draws.reshape((-1,) + draws.shape[2:])
        keep = np.linspace(0, draws.shape[0] - 1, min(n_draws, draws.shape[0])).astype(int)
        value = np.asarray(value, dtype=float).reshape(draws.shape[1:])
        rank = (draws[keep] < value).sum(axis=0)
        if rank.ndim == 0:
            out[name] = int(rank)
        else:
            out.update({f"{name}[{k}]": int(r) for k, r in enumerate(rank.ravel())})
    return out


def uniformity(frame, *, n_draws=RANK_DRAWS, alpha=ALPHA):
    """Kolmogorov–Smirnov test of uniform ranks per (experiment, hypothesis, parameter).

    ``frame`` has columns ``experiment, hypothesis, parameter, rank``. Ranks
    (0 … ``n_draws``) are mapped to the middle of their cells,
    ``(rank + 0.5) / (n_draws + 1)``, and compared with the uniform
    distribution; the test sees piles at one end (bias) or at both
    (posteriors too narrow) with a dozen replicates, where a chi-square test
    of a few wide bins does not. A parameter is flagged when its p-value is
    below ``alpha`` divided by the number of parameters of its hypothesis.

    Returns
    -------
    pandas.DataFrame
        ``experiment, hypothesis, parameter, replicates, ks, p_value, flagged``.
    """
    rows = []
    for (experiment, hypothesis), group in frame.groupby(["experiment", "hypothesis"], sort=False):
        n_params = group["parameter"].nunique()
        for parameter, g in group.groupby("parameter", sort=False):
            u = (g["rank"].to_numpy(dtype=float) + 0.5) / (n_draws + 1)
            result = scipy.stats.kstest(u, "uniform")
            rows.append({"experiment": experiment, "hypothesis": hypothesis, "parameter": parameter,
                         "replicates": int(u.size), "ks": float(result.statistic), "p_value": float(result.pvalue),
                         "flagged": bool(result.pvalue < alpha / n_params)})
    return pd.DataFrame(rows, columns=["experiment", "hypothesis", "parameter", "replicates", "ks", "p_value",
                                       "flagged"])


def _edges(n_replicates, n_draws):
    """Histogram bin edges over ranks 0 … ``n_draws``: about five replicates per bin, equal widths."""
    bins = int(np.clip(n_replicates // 5, 1, 20))
    return np.linspace(-0.5, n_draws + 0.5, bins + 1)


def plot(frame, tests=None, *, n_draws=RANK_DRAWS, title=""):
    """Rank histograms, one panel per parameter, with the 99 % band of a uniform count.

    ``frame`` holds one hypothesis's ranks (columns ``parameter, rank``);
    ``tests`` (from :func:`uniformity`) marks flagged parameters in red.
    Returns a Matplotlib figure.
    """
    from matplotlib.figure import Figure

    from .plots import OKABE_ITO, style

    names = list(dict.fromkeys(frame["parameter"]))
    flagged = set(tests.loc[tests.flagged, "parameter"]) if tests is not None else set()
    ncols = min(4, len(names))
    nrows = -(-len(names) // ncols)
    with style():
        fig = Figure(figsize=(1.9 * ncols + 0.4, 1.6 * nrows + 0.5), layout="constrained")
        axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
        for ax, name in zip(axes, names):
            r = frame.loc[frame.parameter == name, "rank"].to_numpy()
            edges = _edges(r.size, n_draws)
            expected = r.size / (edges.size - 1)
            low, high = scipy.stats.binom.ppf([0.005, 0.995], r.size, 1 / (edges.size - 1))
            ax.axhspan(low, high, color="#dddddd", lw=0)
            ax.axhline(expected, color="#777777", lw=0.8)
            colour = OKABE_ITO["vermillion"] if name in flagged else OKABE_ITO["blue"]
            ax.hist(r, bins=edges, color=colour, edgecolor="white", lw=0.5)
            ax.set_title(name + (" (flagged)" if name in flagged else ""), fontsize=8)
            ax.set_xlim(edges[0], edges[-1])
            ax.set_yticks([])
        for ax in axes[len(names):]:
            ax.set_visible(False)
        fig.supxlabel(f"rank of the true value among {n_draws} posterior draws")
        if title:
            fig.suptitle(title)
    return fig
