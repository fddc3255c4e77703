"""Gamry Framework ``.DTA`` files (potentiostatic/galvanostatic EIS).

The header is ``KEY<TAB>TYPE<TAB>VALUE...`` lines; the spectrum is the
``ZCURVE<TAB>TABLE`` block: a line of column names (``Pt Time Freq Zreal
Zimag ...``), a line of units, then tab-indented rows until the next
unindented line. ``Zimag`` has the usual sign.

An aborted run (``EXPERIMENTABORTED<TAB>TOGGLE<TAB>T``), or a file that
ends in the middle of a table row, holds the points measured before the
abort. The complete points are loaded, ``metadata["partial"]`` is set
to True, and a :class:`~mgbayes.data.DataWarning` names the file: the
points are good measurements, only the low-frequency end is missing.
"""

import warnings

from ..data import DataWarning
from ..errors import DataError
from ._common import build_spectra, columns_to_read, impedance_columns, parse_datetime, read_lines, read_table

DATE_FORMATS = ("%m/%d/%Y %H:%M:%S", "%d.%m.%Y %H:%M:%S")


def looks_like_gamry(lines):
    """True if the file starts like a Gamry DTA (``EXPLAIN`` then ``TAG``)."""
    return bool(lines) and lines[0].strip() == "EXPLAIN"


def read_dta(path):
    """Read the ZCURVE table of a Gamry ``.DTA`` file.

    Returns
    -------
    Spectrum or SpectrumSeries

    Raises
    ------
    DataError
        If there is no ZCURVE table or a value cannot be read.

    Warns
    -----
    DataWarning
        If the experiment was aborted (the points present are loaded).
    """
    lines = read_lines(path)
    at = next((i for i, line in enumerate(lines) if line.split("\t")[:2] == ["ZCURVE", "TABLE"]), None)
    if at is None:
        raise DataError(f"{path}: no 'ZCURVE TABLE' block; is it an impedance (EIS) file from Gamry Framework?")
    names = [n.strip() for n in lines[at + 1].split("\t")]
    units = [u.strip() for u in lines[at + 2].split("\t")] if at + 2 < len(lines) else []
    found = impedance_columns(path, _with_units(names, units))
    time_col = names.index("Time") if "Time" in names else None
    columns = columns_to_read(found, time_col)
    end = next((i for i in range(at + 3, len(lines)) if not lines[i].startswith("\t")), len(lines))
    cut = end == len(lines) and len(lines[end - 1].split("\t")) < len(names)
    table = read_table(path, lines[: end - 1] if cut else lines[:end], at + 3, names, columns, "\t")
    header = _header(lines[:at])
    metadata = {"instrument": "Gamry", "header": header}
    try:
        metadata["instrument_area_cm2"] = float(header["AREA"])
    except (KeyError, ValueError):
        pass
    if cut or _aborted(lines):
        metadata["partial"] = True
        why = "the experiment was aborted" if not cut else "the file ends in the middle of a line"
        warnings.warn(
            f"{path}: {why}; loading the {len(table['lineno'])} complete points before that",
            DataWarning,
            stacklevel=3,
        )
    return build_spectra(
        path,
        names,
        table,
        found,
        time_col=time_col,
        start=parse_datetime(f"{header.get('DATE', '')} {header.get('TIME', '')}", DATE_FORMATS),
        metadata=metadata,
    )


def _with_units(names, units):
    """Column names with their unit row attached (``Freq`` + ``Hz`` -> ``Freq/Hz``)."""
    if len(units) != len(names):
        return names
    return [f"{n}/{u}" if n and u and u != "#" else n for n, u in zip(names, units)]


def _header(lines):
    """The VALUE of each ``KEY<TAB>TYPE<TAB>VALUE`` header line."""
    header = {}
    for line in lines:
        fields = line.split("\t")
        if len(fields) >= 3 and fields[0]:
            header[fields[0]] = fields[2].strip()
    return header


def _aborted(lines):
    return any(line.split("\t")[:3] == ["EXPERIMENTABORTED", "TOGGLE", "T"] for line in lines)
