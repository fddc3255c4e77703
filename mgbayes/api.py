"""The public API: read data, state a hypothesis, fit it, compare, run a study.

Everything here is also exported from :mod:`mgbayes`::

    import mgbayes
    s = mgbayes.read("cell.mpt", area_cm2=1.131)        # Spectrum or SpectrumSeries
    s = s.select(time_h=(0, 20), frequency_Hz=(0.1, 1e5))
    a = mgbayes.fit("R0-p(R1,CPE1)", s)                  # an arviz-ready xarray.DataTree
    b = mgbayes.fit(mgbayes.load("models/ocv_drift/film.toml"), s)
    print(mgbayes.compare({"arc": a, "film": b}))         # PSIS-LOO ranking and verdict
    mgbayes.plot(a); z = mgbayes.predict(a, [1e3, 1.0])

Results are plain :class:`xarray.DataTree` objects with the groups ArviZ
knows (``posterior``, ``posterior_predictive``, ``log_likelihood``,
``observed_data``, ``prior``, ``prior_predictive``, ``sample_stats``), so
``arviz.summary(result)``, ``arviz.loo(result)`` and
``arviz.plot_prior_posterior(result)`` work on them directly.
:class:`CircuitModel` offers impedance.py's ``fit`` / ``predict`` / ``plot``
verbs on an object for those used to them.
"""

import tomllib
from pathlib import Path

import numpy as np

from . import hypotheses, inference, io
from .circuits import Circuit
from .data import IVCurve, Spectrum, SpectrumSeries
from .errors import DataError, HypothesisError
from .hypotheses import Hypothesis, load



def read(path, **options):
    """Read a measured data file: :func:`mgbayes.io.read` (see there for the formats and options)."""
    return io.read(path, **options)


__all__ = ["read", "Circuit", "load", "hypothesis", "fit", "compare", "run", "predict", "plot", "summary",
           "loo_pit", "save", "load_result", "CircuitModel"]

#: The ``family`` of hypotheses made from a bare circuit string: circuits fitted to one data set compare.
CIRCUIT_FAMILY = "circuit"


def hypothesis(model, *, noise="proportional"):
    """A :class:`~mgbayes.hypotheses.Hypothesis` from a circuit string, a Circuit, a file or a hypothesis.

    Parameters
    ----------
    model : str, Circuit, Path or Hypothesis
        ``"R0-p(R1,CPE1)"`` (impedance.py syntax, see :mod:`mgbayes.circuits`),
        a :class:`Circuit`, a hypothesis TOML file (``*.toml``) or a loaded
        hypothesis (returned as is).
    noise : {"proportional", "student_t", "absolute"}
        Noise model of a circuit hypothesis (see :mod:`mgbayes.hypotheses`).

    Returns
    -------
    Hypothesis
        For a circuit: named after the circuit, priors centred on the data
        (the element defaults), experiment ``"circuit"``.
    """
    if isinstance(model, Hypothesis):
        return model
    if isinstance(model, Path) or (isinstance(model, str) and model.endswith(".toml")):
        return load(model)
    if isinstance(model, Circuit):
        model = model.text
    if not isinstance(model, str):
        raise HypothesisError(f"model = {model!r}: give a circuit string such as 'R0-p(R1,CPE1)', a Circuit, "
                              "a hypothesis .toml file or a Hypothesis")
    Circuit(model)  # a clear CircuitError for a bad string, before anything else
    text = (f'name = "{model}"\nfamily = "{CIRCUIT_FAMILY}"\ntitle = "{model}"\n'
            f'physics = "equivalent circuit {model}"\n\n[circuit]\nelectrode = "{model}"\nelectrodes = 1\n\n'
            f'[noise]\nmodel = "{noise}"\n')
    return hypotheses.from_table(tomllib.loads(text), text=text)


def _data(data, area_cm2, symmetric):
    """Data objects pass through; a path is read with :func:`mgbayes.read`."""
    if isinstance(data, (str, Path)):
        return read(data, area_cm2=area_cm2, symmetric=bool(symmetric))
    if area_cm2 is not None or symmetric is not None:
        changes = {k: v for k, v in (("area_cm2", area_cm2), ("symmetric", symmetric)) if v is not None}
        if not isinstance(data, (Spectrum, SpectrumSeries)):
            raise DataError("area_cm2 / symmetric apply to impedance data; set them when reading I-V data")
        data = data.with_(**changes)
    return data


def fit(model, data, *, area_cm2=None, symmetric=None, noise="proportional", draws=1000, tune=inference.TUNE, chains=4,
        seed=None, progressbar=False, **options):
    """Sample the posterior of a model given data with NUTS.

    Parameters
    ----------
    model : str, Circuit, Path or Hypothesis
        See :func:`hypothesis`.
    data : Spectrum, SpectrumSeries, IVCurve, list of Transient, str or Path
        The measurements; a path is read with :func:`mgbayes.read`. Select
        part of a series first with :meth:`SpectrumSeries.select` (or
        ``series[[0, 5, 9]]``).
    area_cm2 : float, optional
        Electrode area; set on the data (parameters then per cm2).
    symmetric : bool, optional
        Mark the data as a symmetric cell.
    noise : str
        Noise model of a circuit string (hypothesis files state their own).
    draws, tune, chains : int
        NUTS settings per chain; sampling stops once every convergence
        check passes, at most after ``draws`` unless only R-hat or ESS fall
        short, then at most after twice as many (pass ``until_converged=False``
        for exactly ``draws``).
    seed : int, optional
        Makes the fit reproducible.
    progressbar : bool
        Show PyMC's progress bar.
    **options
        Passed to :func:`mgbayes.inference.fit` (``target_accept``,
        ``nuts_sampler``, ``cores``, ``retry``, ``until_converged``...).

    Returns
    -------
    xarray.DataTree
        The result (see :func:`mgbayes.inference.fit` for its groups).
    """
    h = hypothesis(model, noise=noise)
    return inference.fit(h, _data(data, area_cm2, symmetric), draws=draws, tune=tune, chains=chains,
                         random_seed=seed, progressbar=progressbar, **options)


def compare(results, *, unit="point"):
    """Rank results of several hypotheses fitted to the same data by PSIS-LOO.

    Parameters
    ----------
    results : dict or list of DataTree
        Name → result, or a list (named by each result's hypothesis).
    unit : {"point", "spectrum", "cell"}
        What one left-out observation is.

    Returns
    -------
    mgbayes.compare.Comparison
        ``.table`` (a DataFrame indexed by hypothesis), ``.verdict``;
        ``print()`` shows both.
    """
    from . import compare as _compare

    if not isinstance(results, dict):
        results = {r.attrs.get("hypothesis", f"model {k}"): r for k, r in enumerate(results)}
    return _compare.compare(results, unit=unit)


def run(study, *, out=None, quick=False, scheduler=None, workers=None, log=print):
    """Run a study file (data, hypotheses, settings) and write every output.

    Parameters
    ----------
    study : str or Path
        The study TOML file (see the shipped ``paper.toml``).
    out : str or Path, optional
        Output folder (default: ``STUDY_results`` beside the working folder).
    quick : bool
        Fewer draws for a fast look (marked on every output).
    scheduler, workers
        Where many-cell fits run (see :func:`mgbayes.study.run`).
    log : callable
        Receives progress lines.

    Returns
    -------
    dict
        Experiment name → :class:`mgbayes.compare.Comparison`.
    """
    from . import study as _study

    study = Path(study)
    out = Path(out) if out is not None else Path(f"{study.stem}_results")
    return _study.run(study, out, quick=quick, log=log, scheduler=scheduler, workers=workers,
                      command=f"mgbayes.run({str(study)!r}, out={str(out)!r})")


def _result_hypothesis(result):
    text = result.attrs.get("hypothesis_text", "")
    if not text:
        raise HypothesisError("this result holds no hypothesis text (attrs['hypothesis_text']); "
                              "it was not written by mgbayes.fit")
    return hypotheses.from_table(tomllib.loads(text), path=result.attrs.get("hypothesis_file") or None, text=text)


def predict(result, x=None, *, time_h=None, draws=False):
    """The fitted model at new points: impedance at frequencies, or overpotential at current densities.

    Parameters
    ----------
    result : DataTree
        From :func:`fit`.
    x : array_like, optional
        Frequencies in Hz (impedance) or current densities in mA cm-2 (I-V);
        default: those of the data.
    time_h : float or array_like, optional
        Times of a drifting impedance model (default: those of the data).
    draws : bool
        Return every posterior draw (leading axis) instead of the median.

    Returns
    -------
    numpy.ndarray
        Complex impedance in the data's unit, shape ``(time, frequency)``
        (``(frequency,)`` for one time), or overpotential in V; with a
        leading draw axis when ``draws``.
    """
    h = _result_hypothesis(result)
    posterior = result["posterior"].to_dataset()
    fixed = {n: np.asarray(p.args["value"]) for n, p in h.prior_table().items() if p.is_fixed}
    values = inference.posterior_values(posterior, [n for n in h.free_parameters() if n not in fixed])
    if h.kind == "impedance":
        data_x = result["observed_data"]["Z"]
        x = np.asarray(data_x["frequency"].values if x is None else x, float)
        t = np.atleast_1d(np.asarray(data_x["time"].values if time_h is None else time_h, float))
        resolved = h.resolve({**values, **fixed}, {"t": t}, cell_index=None)
        symmetric = bool(result["constant_data"].attrs.get("symmetric", 0)) if "constant_data" in result.children else False
        re, im = h.impedance(resolved, x, symmetric=symmetric)
        shape = (next(iter(values.values())).shape[0], t.size, x.size)
        out = np.broadcast_to(np.asarray(re) + 1j * np.asarray(im), shape)
        if (time_h is not None and np.ndim(time_h) == 0) or t.size == 1:  # one time: (draw, frequency)
            out = out[:, 0]
    elif h.kind == "iv":
        x = np.asarray(result["constant_data"]["j"].values if x is None else x, float)
        resolved = h.resolve({**values, **fixed}, {"j": x}, cell_index=None)
        out = np.broadcast_to(np.asarray(h.overpotential(resolved)), (next(iter(values.values())).shape[0], x.size))
    else:
        raise HypothesisError(f"predict works on impedance and I-V results, not {h.kind!r}; "
                              "use result['posterior_predictive'] for transients")
    if draws:
        return np.array(out)
    return np.median(out.real, axis=0) + (1j * np.median(out.imag, axis=0) if np.iscomplexobj(out) else 0)


def loo_pit(result, **options):
    """:func:`arviz.loo_pit` of a result (kept for scripts that call it from here).

    A result stores its log-likelihood per observed value, with the dims of
    its observed data (Re and Im of an impedance point apart), so ArviZ's
    ``arviz.loo_pit(result)`` and ``arviz.plot_loo_pit(result)`` run on it
    directly; ``options`` go to :func:`arviz.loo_pit`.

    Returns
    -------
    xarray.Dataset
        LOO-PIT values in [0, 1] per observed value; uniform for a
        calibrated model.
    """
    import arviz as az

    return az.loo_pit(result, **options)


def plot(result, *, kind="nyquist", **options):
    """A figure of data and fitted model: ``kind`` is ``"nyquist"`` or ``"bode"`` (impedance), ``"iv"``.

    ``options`` go to :func:`mgbayes.plots.nyquist`, :func:`~mgbayes.plots.bode`
    or :func:`~mgbayes.plots.iv` (``times=``, ``prob=``...). Returns the
    Matplotlib figure.
    """
    from . import plots

    if kind == "iv":
        raise HypothesisError("plot(kind='iv') needs the curve: use mgbayes.plots.iv(curve, {name: result})")
    if kind not in ("nyquist", "bode"):
        raise HypothesisError(f"kind = {kind!r}; use 'nyquist' or 'bode'")
    return getattr(plots, kind)(result, **options)


def summary(result, *, time_resolved=False):
    """Parameter table of a result: median and 94 % interval with units (a DataFrame)."""
    from . import report

    return report.parameter_table(result, time_resolved=time_resolved)


def save(result, path):
    """Write a result to NetCDF (read it back with :func:`load_result` or ``xarray.open_datatree``)."""
    return inference.save(result, path)


def load_result(path):
    """Read a result written by :func:`save` or by a study run (``fits/*/*.nc``)."""
    return inference.load(path)


class CircuitModel:
    """impedance.py's verbs on a Bayesian fit: ``CircuitModel(c).fit(data).predict(f)``.

    Parameters
    ----------
    model : str, Circuit, Path or Hypothesis
        See :func:`hypothesis`.
    **options
        Defaults for :func:`fit` (``draws``, ``chains``, ``seed``, ``noise``...).

    Attributes
    ----------
    result : xarray.DataTree or None
        The last fit.
    """

    def __init__(self, model, **options):
        self.hypothesis = hypothesis(model, noise=options.get("noise", "proportional"))
        self.options = options
        self.result = None

    def fit(self, data, **options):
        """Fit to ``data`` (any data :func:`mgbayes.fit` takes); returns ``self``."""
        options = {**self.options, **options}
        options.pop("noise", None)
        self.result = fit(self.hypothesis, data, **options)
        return self

    def _fitted(self):
        if self.result is None:
            raise HypothesisError("this CircuitModel is not fitted yet; call .fit(data) first")
        return self.result

    def predict(self, x=None, **options):
        """See :func:`predict`."""
        return predict(self._fitted(), x, **options)

    def plot(self, **options):
        """See :func:`plot`."""
        return plot(self._fitted(), **options)

    @property
    def parameters(self):
        """Posterior medians and 94 % intervals with units (a DataFrame)."""
        return summary(self._fitted())

    def __repr__(self):
        head = f"CircuitModel({self.hypothesis.name!r})"
        if self.result is None:
            return head + " (not fitted)"
        return head + "\n" + summary(self.result).to_string(index=False) + "\n" + self.result.attrs.get("diagnostics", "")
