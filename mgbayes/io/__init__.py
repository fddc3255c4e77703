"""Read and write measured data: one reader per instrument family, one :func:`read`.

>>> from mgbayes import io
>>> spectrum = io.read("cell.mpt", area_cm2=1.13, symmetric=True)   # doctest: +SKIP

Every reader returns the usual sign (capacitive arcs have a negative
imaginary part), frequencies in Hz and impedances in Ohm as measured on the
cell; ``area_cm2`` and ``symmetric`` are never taken from the file, they are
given here. A file with several sweeps gives a
:class:`~mgbayes.data.SpectrumSeries`. Every problem raises
:class:`~mgbayes.errors.DataError` naming the file.

Text files are read strictly: a line with more fields than the header (a
decimal comma in a comma-separated file) is an error naming the line, and
all numbers of a file share one decimal separator: ``.`` for
comma-separated fields, else the first one found, or the one given
(``read(..., decimal=",")``, or ``with decimal_separator(","):`` around
any reader).

======================  ==========================================  =====================
format                  files                                       module
======================  ==========================================  =====================
``biologic-mpt``        EC-Lab ``.mpt`` text export                 :mod:`.biologic`
``biologic-mpr``        EC-Lab ``.mpr`` binary (via galvani)        :mod:`.biologic`
``zplot``               ZPlot/ZView ``.z``                          :mod:`.zplot`
``gamry``               Gamry ``.DTA``                              :mod:`.gamry`
``autolab``             Autolab ``.txt`` (Z60W or NOVA columns)     :mod:`.autolab`
``chi``                 CH Instruments ``.txt``                     :mod:`.chinstruments`
``parstat``             Parstat ``.txt``                            :mod:`.ametek`
``versastudio``         VersaStudio ``.par``                        :mod:`.ametek`
``powersuite``          PowerSuite ``.txt``                         :mod:`.ametek`
``csv``                 CSV, with or without header                 :mod:`.csvfiles`
``long-csv``            ``time_h,frequency_Hz,Z_re_Ohm,Z_im_Ohm``   :mod:`.csvfiles`
======================  ==========================================  =====================
"""

import warnings
from pathlib import Path

from ..data import DataWarning, SpectrumSeries
from ..errors import DataError
from . import ametek, autolab, biologic, chinstruments, csvfiles, gamry, zplot
from ._common import decimal_separator, find_header, read_lines
from .biologic import write_mpt
from .csvfiles import read_iv, write_iv, write_long_csv, write_transients

__all__ = [
    "FORMATS",
    "decimal_separator",
    "guess_format",
    "read",
    "read_iv",
    "read_transients",
    "write_iv",
    "write_long_csv",
    "write_mpt",
    "write_transients",
]

FORMATS = {
    "biologic-mpt": biologic.read_mpt,
    "biologic-mpr": biologic.read_mpr,
    "zplot": zplot.read_z,
    "gamry": gamry.read_dta,
    "autolab": autolab.read_autolab,
    "chi": chinstruments.read_chi,
    "parstat": ametek.read_parstat,
    "versastudio": ametek.read_versastudio,
    "powersuite": ametek.read_powersuite,
    "csv": csvfiles.read_csv,
    "long-csv": csvfiles.read_long_csv,
}

SUFFIXES = {".mpt": "biologic-mpt", ".mpr": "biologic-mpr", ".z": "zplot", ".dta": "gamry", ".par": "versastudio"}


def read(path, *, format=None, area_cm2=None, symmetric=False, flip_imag=False, decimal=None):
    """Read an impedance file.

    Parameters
    ----------
    path : str or Path
    format : str, optional
        One of :data:`FORMATS`; by default guessed from the suffix and the
        first lines of the file.
    area_cm2 : float, optional
        Electrode area in cm2, set on every spectrum.
    symmetric : bool
        True for a symmetric cell (``Z_cell = R_el + 2 Z_electrode``).
    flip_imag : bool
        Negate the imaginary part after reading, for a file whose imaginary
        column is really -Im(Z) but is not labelled so.
    decimal : {".", ","}, optional
        Decimal separator of a text file's numbers (default: ``.`` for
        comma-separated fields, else detected once per file).

    Returns
    -------
    Spectrum or SpectrumSeries

    Raises
    ------
    DataError
        For an unknown format, or anything wrong with the file.
    """
    reader = FORMATS.get(format or guess_format(path))
    if reader is None:
        raise DataError(f"{path}: unknown format {format!r}; supported formats are: {', '.join(FORMATS)}")
    with warnings.catch_warnings(), decimal_separator(decimal):
        if flip_imag:  # the file's sign is known to be flipped: say so only if it still looks flipped after
            warnings.filterwarnings("ignore", ".*sign convention looks flipped", DataWarning)
        data = reader(path)

    def finish(s):
        impedance = s.impedance.conjugate() if flip_imag else s.impedance
        return s.with_(impedance=impedance, area_cm2=area_cm2, symmetric=symmetric)

    return _map(data, finish)


def _map(data, change):
    if isinstance(data, SpectrumSeries):
        return SpectrumSeries([change(s) for s in data], source=data.source)
    return change(data)


def guess_format(path):
    """Name of the format of ``path``, from its suffix, else from its first lines.

    Raises
    ------
    DataError
        If the format cannot be recognised (the message lists the formats).
    """
    suffix = Path(path).suffix.lower()
    if suffix in SUFFIXES:
        return SUFFIXES[suffix]
    lines = read_lines(path)
    for test, name in (
        (biologic.looks_like_mpt, "biologic-mpt"),
        (zplot.looks_like_zplot, "autolab" if "Z60W" in lines[0] else "zplot"),
        (gamry.looks_like_gamry, "gamry"),
        (ametek.looks_like_versastudio, "versastudio"),
        (chinstruments.looks_like_chi, "chi"),
    ):
        if test(lines):
            return name
    if suffix == ".csv":
        return "csv"
    header = find_header(path, lines)
    if header is not None:
        return _table_format(header[1])
    if suffix in (".txt", ".dat", ".tsv") and csvfiles.is_numeric(lines[0].split(), None):
        return "csv"
    raise DataError(
        f"{path}: cannot tell the file format from its suffix or first lines; pass format= one of: {', '.join(FORMATS)}"
    )


def _table_format(names):
    if "Zimg" in names:
        return "powersuite"
    if "Zre (ohms)" in names:
        return "parstat"
    return "csv"


def read_transients(path, *, area_cm2=None, cell=None):
    """Read galvanostatic overpotential transients.

    Parameters
    ----------
    path : str or Path
        A CSV (``cell,current_density_mA_cm2,time_s,overpotential_mV[,process]``)
        or an EC-Lab galvanostatic ``.mpt``/``.mpr``.
    area_cm2 : float, optional
        Electrode area; needed for EC-Lab files, whose current is in mA.
    cell : str, optional
        Cell label for EC-Lab files (default: the file name).

    Returns
    -------
    list of Transient
    """
    if Path(path).suffix.lower() in (".mpt", ".mpr"):
        return biologic.read_gcpl(path, area_cm2=area_cm2, cell=cell)
    return csvfiles.read_transients_csv(path)
