"""Scribner ZPlot/ZView ``.z`` files (also the ``Z60W`` text that Autolab writes).

Two layouts are read:

- ``ZPLOT2 ASCII``: a comment block that ends with ``End Comments``; the
  tab-separated column names (``Freq(Hz) Ampl Bias Time(Sec) Z'(a) Z''(b) GD
  Err Range``) are the line just before it.
- ``ZPlotW Data File`` / ``Z60W Data File``: a few quoted header lines, then
  the column names in quotes, then comma-separated data.

``Z''`` is Im(Z) with the usual sign (capacitive arcs negative), as in
ZView. When the header announces more points (``Data Points: N``, or the
lone N before the names) than the file holds, the points present are loaded,
``metadata["partial"]`` is True and a DataWarning names the file.
``Time(Sec)`` gives ``time_h``; a file with several sweeps becomes a
SpectrumSeries.
"""

import re
import warnings

from ..data import DataWarning
from ..errors import DataError
from ._common import (
    build_spectra,
    columns_to_read,
    impedance_columns,
    parse_datetime,
    read_lines,
    read_table,
    sniff_delimiter,
)

MAGIC = ("ZPLOT2 ASCII", "ZPlotW Data File", "Z60W Data File")
DATE_FORMATS = ("%m-%d-%Y %H:%M:%S", "%m/%d/%Y %H:%M:%S")


def looks_like_zplot(lines):
    """True if the first line is one of the ZPlot/ZView magic lines."""
    return bool(lines) and any(m in lines[0] for m in MAGIC)


def read_z(path, instrument="ZPlot/ZView"):
    """Read a ZPlot/ZView ``.z`` file (with or without the comment block).

    Returns
    -------
    Spectrum or SpectrumSeries

    Raises
    ------
    DataError
        If no column-name line is found, or a value cannot be read.
    """
    lines = read_lines(path)
    names_at = _names_line(path, lines)
    names = re.sub(r"\s+\(", "(", lines[names_at].strip().strip('"')).split()
    start = names_at + 1
    if start < len(lines) and lines[start].strip() == "End Comments":
        start += 1
    found = impedance_columns(path, names)
    delimiter = sniff_delimiter(next((x for x in lines[start:] if x.strip()), ""))
    time_name = next((n for n in names if n.startswith("Time(")), None)
    time_col = names.index(time_name) if time_name else None
    columns = columns_to_read(found, time_col)
    table = read_table(path, lines, start, names, columns, delimiter)
    metadata = {"instrument": instrument, "header": lines[0].strip().strip('"')}
    declared = _declared_points(lines[:names_at])
    n_read = len(table["lineno"])
    if declared is not None and declared > n_read:
        metadata.update(partial=True, declared_points=declared)
        warnings.warn(
            f"{path}: the header announces {declared} points but the file holds {n_read}; "
            "loading those (the sweep was stopped or the file cut)",
            DataWarning,
            stacklevel=2,
        )
    return build_spectra(
        path,
        names,
        table,
        found,
        time_col=time_col,
        start=_start_time(lines[:names_at]),
        metadata=metadata,
    )


def _declared_points(header_lines):
    """The number of points the header announces (``Data Points: N``, or a lone N just before the names), or None."""
    for line in header_lines:
        if line.strip().startswith("Data Points:"):
            return int(line.split(":", 1)[1])
    if header_lines and header_lines[-1].strip().isdigit():
        return int(header_lines[-1])
    return None


def _names_line(path, lines):
    for i, line in enumerate(lines):
        if "Freq" in line and "Z'" in line:
            return i
    raise DataError(
        f"{path}: no column-name line (with 'Freq(Hz)' and \"Z'(a)\") found; "
        "is it a ZPlot/ZView .z file? Export it again from ZView"
    )


def _start_time(header_lines):
    """Date and time from ``Date: ...`` / ``Time: ...`` header entries, if any."""
    values = {}
    for line in header_lines:
        parts = line.replace('"', "").split()
        for key in ("Date:", "Time:"):
            if key in parts and parts.index(key) + 1 < len(parts):
                values.setdefault(key, parts[parts.index(key) + 1])
    if len(values) < 2:
        return None
    return parse_datetime(f"{values['Date:']} {values['Time:']}", DATE_FORMATS)
