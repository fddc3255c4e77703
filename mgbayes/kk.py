"""Kramers–Kronig checks of every spectrum of a data set, before fitting.

Each spectrum gets the linear Kramers–Kronig test of Schönleber, Klotz and
Ivers-Tiffée (Electrochim. Acta 131, 20, 2014; :func:`mgbayes.validation.kramers_kronig`):
a Kramers–Kronig compliant Voigt chain is fitted by linear least squares
and the residuals ``(Z - fit) / |Z|`` are compared with a threshold. A
spectrum whose residuals exceed it was probably not linear, causal and
stationary while it was measured (drift during the sweep, a nonlinear
response, instrument artefacts), and no equivalent circuit should be
asked to explain it.

A study experiment says what to do with failing spectra (``kk = "flag"``,
the default: report them; ``"exclude"``: leave them out of the fits;
``"off"``), and the threshold (``kk_threshold``, a fraction of ``|Z|``).
The report lists every spectrum's result and draws the residuals against
frequency.

Defaults, and why: the residuals hold the measurement noise as well as any
violation, so a 1 % threshold fails every spectrum with 1 % noise (the
demo data's). The default :data:`THRESHOLD` of 5 % flags gross violations
(a spectrum whose real part drifts by 30 % during its sweep) without
flagging noise of 1–2 %; tighten it for low-noise data. The Voigt chain
gets a series capacitance (:data:`CAPACITANCE`), because an arc that grows
beyond the lowest measured frequency (the usual case in a drifting series)
otherwise leaves low-frequency residuals that look like a violation; a
drift during the sweep is only partly absorbed by it (see
:mod:`mgbayes.validation`).
"""

import numpy as np
import pandas as pd

from .data import Spectrum, SpectrumSeries
from .errors import DataError
from .validation import kramers_kronig

#: What a study can do with spectra that fail the test.
ACTIONS = ("flag", "exclude", "off")
#: Default largest allowed residual, as a fraction of |Z| (see the module notes).
THRESHOLD = 0.05
#: Series capacitance in the Voigt chain by default (an arc extending below the measured band).
CAPACITANCE = True


def spectra(data):
    """The spectra of ``data`` (a Spectrum or a SpectrumSeries) as a list."""
    if isinstance(data, Spectrum):
        return [data]
    if isinstance(data, SpectrumSeries):
        return list(data)
    raise DataError(f"Kramers-Kronig checks take impedance spectra, not {type(data).__name__}")


def check(data, *, threshold=THRESHOLD, capacitance=CAPACITANCE, **options):
    """Linear KK test of every spectrum.

    Parameters
    ----------
    data : Spectrum or SpectrumSeries
    threshold : float
        Largest allowed ``|residual|``, a fraction of ``|Z|`` (0.05 = 5 %).
    capacitance : bool
        Series capacitance in the Voigt chain.
    **options
        Passed to :func:`mgbayes.validation.kramers_kronig` (``c``, ``min_rc``...).

    Returns
    -------
    list of mgbayes.validation.KKResult
        One per spectrum, in time order.
    """
    return [kramers_kronig(s.frequency, s.impedance, threshold=threshold, capacitance=capacitance, **options)
            for s in spectra(data)]


def table(data, results):
    """One row per spectrum: ``spectrum, time_h, n_rc, mu, max_residual_re_pct, max_residual_im_pct, passed``."""
    rows = []
    for k, (s, r) in enumerate(zip(spectra(data), results)):
        rows.append({
            "spectrum": k,
            "time_h": np.nan if s.time_h is None else float(s.time_h),
            "n_rc": r.n_rc,
            "mu": r.mu,
            "max_residual_re_pct": 100 * float(np.max(np.abs(r.residuals_real))),
            "max_residual_im_pct": 100 * float(np.max(np.abs(r.residuals_imag))),
            "threshold_pct": 100 * r.threshold,
            "passed": bool(r.passed),
        })
    return pd.DataFrame(rows)


def summary(frame):
    """One sentence on a :func:`table`: how many spectra pass, and the worst residual."""
    n, failed = len(frame), int((~frame["passed"]).sum())
    worst = frame[["max_residual_re_pct", "max_residual_im_pct"]].max(axis=1)
    text = (f"Linear Kramers-Kronig test (Schönleber et al. 2014): {n - failed} of {n} spectra pass "
            f"(every residual below {frame['threshold_pct'].iloc[0]:g} % of |Z|); worst residual "
            f"{worst.max():.3g} % (spectrum {int(worst.idxmax())}).")
    if failed:
        bad = frame.loc[~frame["passed"], "spectrum"].tolist()
        text += (f" Failing: spectra {bad[:12]}{' ...' if len(bad) > 12 else ''} — they may have drifted during "
                 "the sweep, be nonlinear or carry artefacts.")
    return text


def exclude_failed(data, frame, *, where="data"):
    """``data`` without the spectra that failed (a SpectrumSeries, or the Spectrum if it passed).

    Raises
    ------
    DataError
        If every spectrum failed: there would be nothing to fit.
    """
    keep = frame["passed"].to_numpy(bool)
    if not keep.any():
        raise DataError(f"{where}: every spectrum fails the Kramers-Kronig test (worst residual "
                        f"{frame[['max_residual_re_pct', 'max_residual_im_pct']].max().max():.3g} %); "
                        "raise kk_threshold or use kk = \"flag\" to fit them anyway")
    if isinstance(data, Spectrum):
        return data
    return data[np.flatnonzero(keep).tolist()] if not keep.all() else data
