"""CH Instruments (CHI 6xx/7xx) A.C. Impedance text exports.

A free-text header (date on the first line, instrument model, settings),
then ``Freq/Hz, Z'/ohm, Z"/ohm, Z/ohm, Phase/deg`` and comma-separated rows.
``Z"`` is Im(Z) with the usual sign (the phase is negative for capacitive
points).
"""

from ..errors import DataError
from ._common import find_header, parse_datetime, read_headed_table, read_lines

DATE_FORMATS = ("%b. %d, %Y %H:%M:%S", "%b %d, %Y %H:%M:%S", "%B %d, %Y %H:%M:%S")


def looks_like_chi(lines):
    """True for a CHI export: 'A.C. Impedance' or 'Instrument Model:  CHI...' near the top."""
    head = lines[:12]
    return any(line.strip() == "A.C. Impedance" or "Model:  CHI" in line for line in head)


def read_chi(path):
    """Read a CH Instruments impedance export.

    Returns
    -------
    Spectrum or SpectrumSeries

    Raises
    ------
    DataError
        If the ``Freq/Hz, Z'/ohm, Z"/ohm`` line is missing or a value cannot be read.
    """
    lines = read_lines(path)
    header = find_header(path, lines)
    if header is None:
        raise DataError(f'{path}: no "Freq/Hz, Z\'/ohm, Z"/ohm" column line; is it a CHI A.C. Impedance export?')
    at, names, delimiter = header
    metadata = {"instrument": "CH Instruments", "header": [line for line in lines[:at] if line.strip()]}
    model = next((line.split(":", 1)[1].strip() for line in lines[:at] if line.startswith("Instrument Model")), None)
    if model:
        metadata["model"] = model
    start = parse_datetime(lines[0], DATE_FORMATS)
    return read_headed_table(path, lines, at, names, delimiter, start=start, metadata=metadata)
