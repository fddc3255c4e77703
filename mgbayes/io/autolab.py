"""Metrohm Autolab text exports.

Two kinds are read:

- the ``Z60W Data File`` text that Autolab (FRA) writes for ZView: the
  ZPlot layout, read by :mod:`mgbayes.io.zplot` (``Z''`` is Im(Z), usual sign);
- NOVA "ASCII" exports with named columns, e.g. ``Frequency (Hz)``,
  ``Z' (Ω)``, ``-Z'' (Ω)`` separated by tabs or semicolons; a ``-Z''``
  column is negated to the usual sign.
"""

from ..errors import DataError
from ._common import find_header, read_headed_table, read_lines
from .zplot import looks_like_zplot, read_z


def read_autolab(path):
    """Read an Autolab impedance export.

    Returns
    -------
    Spectrum or SpectrumSeries

    Raises
    ------
    DataError
        If no frequency/impedance columns are found or a value cannot be read.
    """
    lines = read_lines(path)
    if looks_like_zplot(lines):
        return read_z(path, instrument="Metrohm Autolab (Z60W)")
    header = find_header(path, lines)
    if header is None:
        raise DataError(
            f"{path}: no line naming frequency and impedance columns (e.g. \"Frequency (Hz); Z' (Ω); -Z'' (Ω)\"); "
            "export the NOVA data grid as ASCII with those columns"
        )
    at, names, delimiter = header
    return read_headed_table(path, lines, at, names, delimiter, metadata={"instrument": "Metrohm Autolab (NOVA)"})
