"""BioLogic EC-Lab files: ``.mpt`` text exports and ``.mpr`` binaries.

An ``.mpt`` starts with ``EC-Lab ASCII FILE`` and ``Nb header lines : N``;
line N names the tab-separated columns. Impedance files have ``freq/Hz``,
``Re(Z)/Ohm`` and ``-Im(Z)/Ohm`` (negated here to the usual sign), and
usually ``time/s`` and ``cycle number``. A file with several sweeps (the
``cycle number`` or ``z cycle`` changes, or the frequency jumps back) is
returned as a :class:`~mgbayes.data.SpectrumSeries`; each spectrum's
``time_h`` is the ``time/s`` of its first point in hours, i.e. hours since
the technique started. Rows with zero frequency (rest or OCV steps of a
modular sequence) are dropped and counted in ``metadata["dropped_rows"]``.

The electrode area in the header (``Electrode surface area``; EC-Lab's
default is 0.001 cm2) is kept in ``metadata["instrument_area_cm2"]`` but
not applied: pass ``area_cm2=`` to :func:`mgbayes.io.read`.

``.mpr`` binaries are read with the ``galvani`` package and go through the
same column logic.
"""

import re
from datetime import timedelta
from pathlib import Path

import numpy as np

from .. import files
from ..data import SpectrumSeries, Transient
from ..errors import DataError
from ._common import (
    build_spectra,
    columns_to_read,
    impedance_columns,
    parse_datetime,
    read_lines,
    read_table,
    segments,
    split_names,
)

MAGIC = ("EC-Lab ASCII FILE", "BT-Lab ASCII FILE")
DATE_FORMATS = ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M:%S.%f", "%m/%d/%y %H:%M:%S", "%m/%d/%y %H:%M:%S.%f")
CYCLE_COLUMNS = ("cycle number", "z cycle")
VOLTAGE_COLUMNS = {"Ewe/V": 1.0, "<Ewe>/V": 1.0, "Ewe-Ece/V": 1.0, "Ecell/V": 1.0, "Ewe/mV": 1e-3}
CURRENT_COLUMNS = {"I/mA": 1.0, "<I>/mA": 1.0, "control/mA": 1.0, "I/A": 1e3, "I/µA": 1e-3}


def looks_like_mpt(lines):
    """True if the first line is the EC-Lab/BT-Lab magic line."""
    return bool(lines) and lines[0].strip() in MAGIC


def read_mpt(path):
    """Read an EC-Lab impedance ``.mpt`` file.

    Returns
    -------
    Spectrum or SpectrumSeries
        A series when the file holds several sweeps.

    Raises
    ------
    DataError
        If the header is malformed, a needed column is missing (the message
        names it), or a value cannot be read.
    """
    names, header_index, lines = _mpt_layout(path)
    found = _impedance_columns(path, names)
    columns = columns_to_read(found, *(names.index(n) for n in ("time/s", *CYCLE_COLUMNS) if n in names))
    table = read_table(path, lines, header_index + 1, names, columns, "\t")
    return _build(path, names, table, found, _header(lines[:header_index]))


def read_mpr(path):
    """Read an EC-Lab impedance ``.mpr`` binary file (through ``galvani``).

    Returns
    -------
    Spectrum or SpectrumSeries

    Raises
    ------
    DataError
        If ``galvani`` cannot parse the file or it has no impedance columns.
    """
    names, columns_by_name, header = _mpr_columns(path)
    found = _impedance_columns(path, names)
    table = {names.index(n): v for n, v in columns_by_name.items()}
    return _build(path, names, table, found, header)


def _build(path, names, table, found, header):
    start = header.pop("start", None)
    time_col = names.index("time/s") if "time/s" in names else None
    groups = [names.index(n) for n in CYCLE_COLUMNS if n in names]
    return build_spectra(path, names, table, found, time_col=time_col, group_cols=groups, start=start, metadata=header)


def _mpr_columns(path):
    from galvani import BioLogic

    try:
        with open(path, "rb") as handle:
            mpr = BioLogic.MPRfile(handle)
    except OSError as err:
        raise DataError(f"{path}: cannot be read ({err.strerror or err}); check the path") from None
    except Exception as err:  # galvani raises ValueError, AssertionError, NotImplementedError...
        raise DataError(
            f"{path}: not a BioLogic .mpr file that galvani can read ({type(err).__name__}: {err}); "
            "export it from EC-Lab as text (.mpt) and read that"
        ) from None
    names = list(mpr.data.dtype.names)
    columns = {n: np.asarray(mpr.data[n], dtype=np.float64) for n in names}
    start = getattr(mpr, "timestamp", None)
    header = {"instrument": "BioLogic EC-Lab (.mpr)", "start": start}
    return names, columns, header


def _impedance_columns(path, names):
    try:
        return impedance_columns(path, names)
    except DataError as err:
        if any(n in names for n in ("I/mA", "control/mA")):
            raise DataError(f"{err} (this looks like a galvanostatic file: use mgbayes.io.read_transients)") from None
        raise


def _mpt_layout(path):
    """Return (column names, index of the column-name line, all lines)."""
    lines = read_lines(path)
    if not looks_like_mpt(lines):
        return split_names(lines[0], "\t"), 0, lines  # a headerless export: names on line 1
    match = re.match(r"\s*Nb header lines\s*:\s*(\d+)", lines[1] if len(lines) > 1 else "")
    if not match:
        raise DataError(
            f"{path}, line 2: expected 'Nb header lines : N', found {lines[1][:60]!r}; "
            "export the file again from EC-Lab"
        )
    n_header = int(match[1])
    if n_header < 3 or n_header > len(lines):
        raise DataError(f"{path}: header says {n_header} header lines but the file has {len(lines)} lines")
    return split_names(lines[n_header - 1], "\t"), n_header - 1, lines


def _header(lines):
    """Key/value pairs of an EC-Lab header, plus the technique and start time."""
    pairs = {}
    for line in lines[2:]:
        if " : " in line:
            key, value = line.split(" : ", 1)
            pairs[key.strip()] = value.strip()
    technique = lines[3].strip() if len(lines) > 3 else ""
    start = parse_datetime(pairs.get("Acquisition started on", ""), DATE_FORMATS)
    header = {"instrument": "BioLogic EC-Lab", "technique": technique, "start": start, "header": pairs}
    area = re.match(r"([0-9.eE+-]+)\s*cm", pairs.get("Electrode surface area", ""))
    if area:
        header["instrument_area_cm2"] = float(area[1])
    return header


def write_mpt(data, path):
    """Write a Spectrum or SpectrumSeries as an EC-Lab-style impedance ``.mpt``.

    The file has the EC-Lab header layout, ``freq/Hz``, ``Re(Z)/Ohm``,
    ``-Im(Z)/Ohm``, ``time/s`` (only when times are known) and
    ``cycle number`` (one per spectrum), with every number written in full
    precision, so :func:`read_mpt` gives the same frequencies, impedances and
    times back (times to rounding of the hour/second conversion). Point times
    within a sweep are synthetic: each point lasts one period ``1/f``.

    Parameters
    ----------
    data : Spectrum or SpectrumSeries
    path : str or Path

    Returns
    -------
    Path
        The path written.
    """
    spectra = list(data) if isinstance(data, SpectrumSeries) else [data]
    with_time = all(s.time_h is not None for s in spectra)
    names = ["freq/Hz", "Re(Z)/Ohm", "-Im(Z)/Ohm"] + (["time/s"] if with_time else []) + ["cycle number"]
    rows = []
    for k, s in enumerate(spectra):
        times = s.time_h * 3600.0 + np.concatenate([[0.0], np.cumsum(1.0 / s.frequency[:-1])]) if with_time else None
        for i in range(s.n_points):
            row = [s.frequency[i], s.impedance[i].real, -s.impedance[i].imag]
            row += [times[i]] if with_time else []
            rows.append("\t".join(repr(float(v)) for v in row) + f"\t{k + 1}")
    header = _write_header(spectra, with_time)
    lines = ["EC-Lab ASCII FILE", f"Nb header lines : {len(header) + 3}", *header, "\t".join(names)]
    path = Path(path)
    files.write_atomic(path, ("\n".join(lines + rows) + "\n").encode("cp1252", errors="replace"))
    return path


def _write_header(spectra, with_time):
    from .. import __version__

    technique = "Potentio Electrochemical Impedance Spectroscopy"
    header = ["", technique, "", f"Written by mgbayes {__version__}, not by EC-Lab"]
    first = spectra[0]
    if first.source:
        header.append(f"Source : {first.source}")
    if first.timestamp is not None:
        start = first.timestamp - timedelta(hours=first.time_h if with_time else 0.0)
        header.append(f"Acquisition started on : {start.strftime('%m/%d/%Y %H:%M:%S.%f')}")
    if first.area_cm2 is not None:
        header.append(f"Electrode surface area : {first.area_cm2!r} cm²")
    header.append("")
    return header


def read_gcpl(path, *, area_cm2, cell=None):
    """Read the galvanostatic steps of an EC-Lab ``.mpt`` (GCPL, CP...) as transients.

    Each run of constant non-zero current is one transient (a change of the
    ``Ns`` sequence number, of the current's sign, or of its size by more
    than 10 % starts a new one; rest periods, with less than 1 % of the
    largest current, are skipped). Its time starts at 0, its overpotential
    is ``|E|`` of the first voltage column found (``Ewe/V``, ``<Ewe>/V``,
    ``Ewe-Ece/V``, ``Ecell/V``): against a Mg reference that is the
    overpotential of the working electrode; for ``Ewe-Ece/V`` of a symmetric
    cell it is the cell voltage (both electrodes). The current density is
    the mean set point (``control/mA``, else the measured current) over the
    step divided by ``area_cm2``. A positive (anodic) current is
    ``"stripping"``, a negative one ``"plating"``.

    Parameters
    ----------
    path : str or Path
    area_cm2 : float
        Electrode area, to turn the current in mA into mA/cm2.
    cell : str, optional
        Cell label; default the file name without suffix.

    Returns
    -------
    list of Transient
    """
    if area_cm2 is None or not np.isfinite(area_cm2) or area_cm2 <= 0:
        raise DataError(f"{path}: pass area_cm2=<electrode area in cm2> to turn the current into a current density")
    if str(path).lower().endswith(".mpr"):
        names, columns_by_name, _ = _mpr_columns(path)
    else:
        names, header_index, lines = _mpt_layout(path)
        wanted = [n for n in ("time/s", "Ns", *VOLTAGE_COLUMNS, *CURRENT_COLUMNS) if n in names]
        table = read_table(path, lines, header_index + 1, names, [names.index(n) for n in wanted], "\t")
        columns_by_name = {n: table[names.index(n)] for n in wanted}
    time_s, _ = _pick(path, names, columns_by_name, {"time/s": 1.0}, "time")
    voltage, v_name = _pick(path, names, columns_by_name, VOLTAGE_COLUMNS, "voltage")
    current, i_name = _pick(path, names, columns_by_name, CURRENT_COLUMNS, "current")
    label = str(cell) if cell is not None else Path(path).stem
    metadata = {"instrument": "BioLogic EC-Lab", "voltage_column": v_name, "current_column": i_name}
    transients = []
    setpoint = columns_by_name.get("control/mA")  # steps are found on `current`, their size is the set point
    for part in _current_steps(current, columns_by_name.get("Ns")):
        mean_current = float(np.mean((current if setpoint is None else setpoint)[part]))
        transients.append(
            Transient(
                time_s=time_s[part] - time_s[part][0],
                overpotential_V=np.abs(voltage[part]),
                current_density_mA_cm2=abs(mean_current) / area_cm2,
                cell=label,
                process="stripping" if mean_current > 0 else "plating",
                source=str(path),
                metadata=dict(metadata, start_time_s=float(time_s[part][0])),
            )
        )
    if not transients:
        raise DataError(f"{path}: no step with a non-zero current of 2 points or more; is it a galvanostatic file?")
    return transients


def _pick(path, names, columns_by_name, choices, what):
    """(values in base units, column name) of the first of ``choices`` present."""
    for name, scale in choices.items():
        if name in columns_by_name:
            return scale * columns_by_name[name], name
    raise DataError(f"{path}: no {what} column (looked for {', '.join(choices)}); the columns are: {', '.join(names)}")


def _current_steps(current, ns=None):
    """Slices of constant non-zero current (see :func:`read_gcpl`)."""
    rest = np.abs(current) < 0.01 * np.max(np.abs(current))
    change = np.abs(np.diff(current)) > 0.1 * np.maximum(np.abs(current[1:]), np.abs(current[:-1]))
    new = (rest[1:] != rest[:-1]) | (change & ~rest[1:])
    if ns is not None:
        new |= np.diff(ns) != 0
    starts = [0, *(np.flatnonzero(new) + 1)]
    return [s for s in segments(starts, len(current)) if not rest[s.start] and s.stop - s.start >= 2]
