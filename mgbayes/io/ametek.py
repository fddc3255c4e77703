"""Ametek / Princeton Applied Research: Parstat text, VersaStudio ``.par``, PowerSuite text.

- **Parstat** text: one tab-separated table with ``Potential (V)``,
  ``Current (A)``, ``Elapsed Time (s)``, ``Frequency (Hz)``, ``Zre (ohms)``,
  ``Zim (ohms)``...; rows with zero frequency belong to the DC steps before
  the impedance sweep and are dropped.
- **VersaStudio** ``.par``: XML-like sections; each ``<SegmentN>`` holds a
  ``Definition=`` line naming the comma-separated columns (``Frequency(Hz)``,
  ``Z Real``, ``Z Imag``, ``Elapsed Time(s)``...) and the rows.
- **PowerSuite** text: ``Frequency``, ``Zre``, ``Zimg`` tab-separated.

In all three the imaginary part has the usual sign.
"""

import re

from ..data import SpectrumSeries
from ..errors import DataError
from ._common import (
    build_spectra,
    columns_to_read,
    find_header,
    impedance_columns,
    read_headed_table,
    read_lines,
    read_table,
    spectrum_or_series,
    time_column,
)


def looks_like_versastudio(lines):
    """True for a VersaStudio ``.par`` (starts with ``<Application>`` or has ``<Segment1>``)."""
    return bool(lines) and (lines[0].strip() == "<Application>" or "<Segment1>" in lines[:200])


def read_table_file(path, instrument):
    """Read a Parstat or PowerSuite text table (the column names are found by meaning)."""
    lines = read_lines(path)
    header = find_header(path, lines)
    if header is None:
        raise DataError(f"{path}: no line naming frequency, Zre and Zim columns; is it a {instrument} export?")
    at, names, delimiter = header
    return read_headed_table(path, lines, at, names, delimiter, metadata={"instrument": instrument})


def read_parstat(path):
    """Read a Parstat text export. Returns a Spectrum or SpectrumSeries."""
    return read_table_file(path, "Ametek Parstat")


def read_powersuite(path):
    """Read a PowerSuite text export. Returns a Spectrum or SpectrumSeries."""
    return read_table_file(path, "Princeton Applied Research PowerSuite")


def read_versastudio(path):
    """Read the impedance segments of a VersaStudio ``.par`` file.

    Returns
    -------
    Spectrum or SpectrumSeries
        A series when there are several segments or sweeps.

    Raises
    ------
    DataError
        If there is no segment with frequency and impedance columns.
    """
    lines = read_lines(path)
    spectra = []
    for at in [i for i, line in enumerate(lines) if re.fullmatch(r"<Segment\d+>", line.strip())]:
        definition = next((i for i in range(at, min(at + 5, len(lines))) if lines[i].startswith("Definition=")), None)
        if definition is None:
            continue
        names = [n.strip() for n in lines[definition].split("=", 1)[1].split(",")]
        found = impedance_columns(path, names, required=False)
        if not found:
            continue
        time_col, scale = time_column(names)
        columns = columns_to_read(found, time_col)
        table = read_table(path, lines, definition + 1, names, columns, ",", stop=lambda line: line.startswith("</"))
        metadata = {"instrument": "Ametek VersaStudio", "segment": lines[at].strip("<> ")}
        result = build_spectra(path, names, table, found, time_col=time_col, time_scale=scale, metadata=metadata)
        spectra.extend(result.spectra if isinstance(result, SpectrumSeries) else [result])
    if not spectra:
        raise DataError(
            f"{path}: no <SegmentN> with a Definition= line naming Frequency(Hz), Z Real and Z Imag; "
            "is it an impedance experiment saved by VersaStudio?"
        )
    return spectrum_or_series(spectra, path)
