"""Helpers shared by the readers: text, numbers, column names, units, sweeps.

Column names are recognised by meaning, not by exact spelling: a name is
split into a base (``Re(Z)``, ``Z'``, ``Zre``...) and a unit (``/Ohm``,
``(ohms)``, ``_Ohm``, ``[kOhm]``...). A leading ``-`` on an imaginary column
(``-Im(Z)/Ohm``, ``-Z''``) means the file holds ``-Im(Z)``; the reader negates
it so every spectrum has the usual sign. Units are converted to Hz and Ohm;
a unit that is not known is rejected, never guessed.
"""

import contextlib
import contextvars
import re
import warnings
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from ..data import DataWarning, Spectrum, SpectrumSeries
from ..errors import DataError

FREQUENCY_UNITS = {"Hz": 1.0, "hz": 1.0, "HZ": 1.0, "kHz": 1e3, "KHz": 1e3, "khz": 1e3, "mHz": 1e-3, "MHz": 1e6}
IMPEDANCE_UNITS = {
    "ohm": 1.0, "Ohm": 1.0, "ohms": 1.0, "Ohms": 1.0, "OHM": 1.0, "Ω": 1.0,
    "mOhm": 1e-3, "mohm": 1e-3, "mΩ": 1e-3,
    "kOhm": 1e3, "kohm": 1e3, "KOhm": 1e3, "kΩ": 1e3,
    "MOhm": 1e6, "Mohm": 1e6, "MΩ": 1e6,
}  # fmt: skip
TIME_UNITS = {"s": 1.0, "sec": 1.0, "Sec": 1.0, "min": 60.0, "h": 3600.0}

FREQUENCY_NAMES = {"freq", "frequency", "f"}
REAL_NAMES = {"re(z)", "re z", "rez", "z'", "z'(a)", "zre", "z real", "zreal", "z_re", "real", "z_real", "re"}
IMAG_NAMES = {
    "im(z)", "im z", "imz", 'z"', "z''", "z''(b)", "zim", "zimg", "z imag", "zimag", "z_im", "imag", "z_imag", "im",
}  # fmt: skip
TIME_NAMES = {"time", "elapsed time"}
_EXAMPLES = {
    "frequency": "'freq/Hz', 'Frequency (Hz)'",
    "real": "'Re(Z)/Ohm', \"Z'\", 'Zre'",
    "imag": "'-Im(Z)/Ohm', \"Z''\", 'Zim'",
}

_UNIT_IN_BRACKETS = re.compile(r"^(?P<base>.*?)\s*[(\[](?P<unit>[^()\[\]]*)[)\]]\s*$")


#: The decimal separator the user declared for the files being read (see :func:`decimal_separator`).
_DECIMAL = contextvars.ContextVar("mgbayes_decimal", default=None)


@contextlib.contextmanager
def decimal_separator(decimal):
    """Within the block, readers parse numbers with ``decimal`` (``"."`` or ``","``; None: detect per file)."""
    if decimal not in (None, ".", ","):
        raise DataError(f"decimal = {decimal!r}; use '.' or ',' (or leave it out to detect it per file)")
    token = _DECIMAL.set(decimal)
    try:
        yield
    finally:
        _DECIMAL.reset(token)


def read_text(path):
    """Return the text of a file (UTF-8, else cp1252).

    Raises
    ------
    DataError
        If the file does not exist, is not a text file, or is empty.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DataError(f"{path}: cannot be read ({err.strerror or err}); check the path") from None
    if not raw or raw.isspace():
        raise DataError(f"{path}: file is empty")
    if b"\x00" in raw[:4096]:
        raise DataError(f"{path}: looks like a binary file, not text; give the exported text file")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def open_binary(path):
    """Open a text file for reading as bytes, line by line (large files: nothing held whole).

    Raises
    ------
    DataError
        If the file does not exist, cannot be read or is not a text file.
    """
    path = Path(path)
    try:
        handle = open(path, "rb")
    except OSError as err:
        raise DataError(f"{path}: cannot be read ({err.strerror or err}); check the path") from None
    if b"\x00" in handle.read(4096):
        handle.close()
        raise DataError(f"{path}: looks like a binary file, not text; give the exported text file")
    handle.seek(0)
    return handle


def decode(raw):
    """Text of a line of bytes (UTF-8, else cp1252, as :func:`read_text`)."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def read_lines(path):
    """Return the lines of a text file (UTF-8, else cp1252), without line ends (see :func:`read_text`)."""
    return read_text(path).splitlines()


def split_name(name):
    """Split a column name into (base, unit); unit is None when there is none.

    ``"freq/Hz"`` -> ``("freq", "Hz")``, ``"Zre (ohms)"`` -> ``("Zre", "ohms")``,
    ``"Z_re_Ohm"`` -> ``("Z_re", "Ohm")``, ``"Z'(a)"`` -> ``("Z'(a)", None)``.
    """
    name = name.strip().strip('"').strip()
    if "/" in name:
        base, unit = name.split("/", 1)
        return base.strip(), unit.strip()
    match = _UNIT_IN_BRACKETS.match(name)
    if match and _is_unit(match["unit"].strip()):
        return match["base"].strip(), match["unit"].strip()
    if "_" in name:
        base, unit = name.rsplit("_", 1)
        if _is_unit(unit):
            return base.strip(), unit
    return name, None


def _is_unit(text):
    return text in FREQUENCY_UNITS or text in IMPEDANCE_UNITS or text in TIME_UNITS or _looks_area(text)


def _looks_area(unit):
    return "cm" in unit.replace(" ", "").lower() and "ohm" in unit.lower().replace("ω", "ohm")


def _kind(base):
    """Return ("frequency" | "real" | "imag", negated) for a column base name, or None."""
    key = base.strip().lower().replace("\u2019", "'").replace("\u2032", "'")
    negated = key.startswith("-")
    key = key.lstrip("-").strip()
    if key in FREQUENCY_NAMES and not negated:
        return "frequency", False
    if key in REAL_NAMES and not negated:
        return "real", False
    if key in IMAG_NAMES:
        return "imag", negated
    return None


def _scale(path, name, kind, unit):
    if unit is None:
        return 1.0
    if kind == "frequency":
        units = FREQUENCY_UNITS
        fix = "convert it to Hz"
    else:
        units = IMPEDANCE_UNITS
        fix = "convert it to Ohm"
        if _looks_area(unit):
            fix = "area-normalised impedance is not read; give Ohm as measured and pass area_cm2="
    if unit not in units:
        raise DataError(f"{path}: column {name!r} has unit {unit!r}, which mgbayes does not read; {fix}")
    return units[unit]


def impedance_columns(path, names, required=True):
    """Find the frequency, real and imaginary columns among ``names``.

    Returns
    -------
    dict
        ``{"frequency": (index, scale, sign), "real": ..., "imag": ...}`` where
        ``value_in_SI = sign * scale * raw``; ``sign`` is -1 for a ``-Im``
        column. Empty if a column is missing and ``required`` is False.

    Raises
    ------
    DataError
        Naming the file, the missing column and the columns it has, or a
        column whose unit is not known.
    """
    kinds = {}
    for i, name in enumerate(names):
        base, unit = split_name(name)
        kind = _kind(base)
        if kind is not None and kind[0] not in kinds:
            kinds[kind[0]] = (i, name, unit, -1.0 if kind[1] else 1.0)
    missing = [k for k in ("frequency", "real", "imag") if k not in kinds]
    if missing and not required:
        return {}
    if missing:
        listed = ", ".join(repr(n) for n in names if n.strip()) or "none"
        raise DataError(
            f"{path}: no {' or '.join(missing)} column (looked for names such as "
            f"{_EXAMPLES[missing[0]]}); the columns are: {listed}. Export the file again with that column"
        )
    return {k: (i, _scale(path, name, k, unit), sign) for k, (i, name, unit, sign) in kinds.items()}


def time_column(names):
    """Index and to-seconds scale of a time column with a known unit, or (None, 1.0)."""
    for i, name in enumerate(names):
        base, unit = split_name(name)
        if base.strip().lower() in TIME_NAMES and unit in TIME_UNITS:
            return i, TIME_UNITS[unit]
    return None, 1.0


def split_names(line, delimiter):
    """Column names of a header line, without quotes and trailing empty names."""
    names = [n.strip().strip('"').strip() for n in split_fields(line, delimiter)]
    while names and not names[-1]:
        names.pop()
    return names


def find_header(path, lines, limit=300):
    """Return (line index, names, delimiter) of the first line naming the impedance columns, or None.

    Raises
    ------
    DataError
        If that line names a column in a unit that is not known.
    """
    for i, line in enumerate(lines[:limit]):
        delimiter = sniff_delimiter(line)
        names = split_names(line, delimiter)
        if impedance_columns(path, names, required=False):
            return i, names, delimiter
    return None


def columns_to_read(found, *others):
    """Sorted indices of the impedance columns in ``found`` and of ``others`` (None skipped)."""
    return sorted({v[0] for v in found.values()} | {c for c in others if c is not None})


def read_headed_table(path, lines, at, names, delimiter, *, start=None, metadata=None, strict=False):
    """Read a table whose column names are on line ``at``: the generic text reader.

    Used for CSV with a header, CH Instruments, Parstat, PowerSuite and
    Autolab NOVA exports. Zero-frequency rows are dropped; a time column with
    a unit (``Elapsed Time (s)``, ``time/s``) gives ``time_h``.
    """
    found = impedance_columns(path, names)
    time_col, time_scale = time_column(names)
    columns = columns_to_read(found, time_col)
    data_delimiter = sniff_delimiter(next((x for x in lines[at + 1 :] if x.strip()), "")) or delimiter
    table = read_table(path, lines, at + 1, names, columns, data_delimiter, strict=strict)
    return build_spectra(
        path, names, table, found, time_col=time_col, time_scale=time_scale, start=start, metadata=metadata
    )


def parse_number(text, path, lineno, column, decimal_comma=False):
    """Parse one finite number; DataError naming the line, column and text otherwise."""
    cleaned = text.strip().strip('"')
    if decimal_comma:
        cleaned = cleaned.replace(",", ".")
    if not cleaned:
        raise DataError(f"{path}, line {lineno}: column {column!r} is empty; fill it in or delete the line")
    try:
        value = float(cleaned)
    except ValueError:
        raise DataError(
            f"{path}, line {lineno}: cannot read {text.strip()!r} in column {column!r} as a number; "
            "fix or delete that line"
        ) from None
    if not np.isfinite(value):
        raise DataError(
            f"{path}, line {lineno}: column {column!r} holds {text.strip()!r}, not a finite number; "
            "delete that point or re-measure it"
        )
    return value


class Numbers:
    """Parser of one file's numbers, with one decimal separator for the whole file.

    The separator is the one declared (:func:`decimal_separator`), ``"."``
    for comma-separated fields, else set by the first number that has one;
    a number written with the other one is an error naming its line.
    """

    def __init__(self, path, delimiter):
        self.path, self.decimal, self.since = path, _DECIMAL.get(), None
        if delimiter == ",":
            if self.decimal == ",":
                raise DataError(f"{path}: decimal ',' was declared but the fields are separated by commas too; "
                                "export with ';' or tab between fields, or with '.' as decimal separator")
            self.decimal = "."

    def __call__(self, text, lineno, column):
        """The number in ``text`` (line ``lineno``, column ``column``); DataError otherwise."""
        used = [sep for sep in ",." if sep in text]
        if len(used) == 2:
            raise DataError(f"{self.path}, line {lineno}: {text.strip()!r} in column {column!r} has both ',' and '.'; "
                            "write numbers without thousands separators")
        if used and self.decimal is None:
            self.decimal, self.since = used[0], lineno
        elif used and used[0] != self.decimal:
            origin = f"line {self.since}" if self.since else "declared"
            raise DataError(f"{self.path}, line {lineno}: {text.strip()!r} in column {column!r} uses {used[0]!r} as "
                            f"decimal separator, but this file uses {self.decimal!r} ({origin}); one separator per "
                            "file: fix that line, or declare the separator (decimal = '.' or ',')")
        return parse_number(text, self.path, lineno, column, self.decimal == ",")


def split_fields(line, delimiter):
    """Split one line on ``delimiter`` (None: any run of whitespace)."""
    if delimiter is None:
        return line.split()
    return line.split(delimiter)


def sniff_delimiter(line):
    """Guess the field separator of a line: tab, semicolon, comma or whitespace (None)."""
    for delimiter in ("\t", ";", ","):
        if delimiter in line:
            return delimiter
    return None


def read_table(path, lines, start, names, columns, delimiter, stop=None, strict=False):
    """Parse numeric columns from ``lines[start:]``.

    Parameters
    ----------
    path : str
        For error messages.
    lines : list of str
        All lines of the file.
    start : int
        Index of the first data line (0-based; messages use 1-based line numbers).
    names : list of str
        Column names (for messages).
    columns : list of int
        Which columns to parse.
    delimiter : str or None
        Field separator.
    stop : callable, optional
        ``stop(line)`` true ends the table (e.g. the next section of a file).
    strict : bool
        Lines must have exactly as many fields as ``names`` (more is always
        an error; see :func:`check_field_count`).

    Returns
    -------
    dict
        ``{column index: float array}``; also ``"lineno"``: the 1-based line numbers.

    Raises
    ------
    DataError
        For a short line, an unreadable number, or a table without data.
    """
    number = Numbers(path, delimiter)
    values = {c: [] for c in columns}
    linenos = []
    for i in range(start, len(lines)):
        line = lines[i]
        if stop is not None and stop(line):
            break
        if not line.strip():
            continue
        fields = split_fields(line, delimiter)
        if len(fields) <= max(columns):
            raise DataError(
                f"{path}, line {i + 1}: {len(fields)} field(s) but column {names[max(columns)]!r} is "
                f"number {max(columns) + 1}; the line is cut short or the header does not match the data"
            )
        check_field_count(path, i + 1, fields, len(names), strict=strict)
        for c in columns:
            values[c].append(number(fields[c], i + 1, names[c]))
        linenos.append(i + 1)
    if not linenos:
        raise DataError(f"{path}: the header is there but no data lines follow it")
    table = {c: np.array(v) for c, v in values.items()}
    table["lineno"] = np.array(linenos)
    return table


def check_field_count(path, lineno, fields, expected, *, strict=True):
    """DataError if a line has more fields than the header names (or fewer, if ``strict``); trailing empty fields aside.

    A decimal comma in a comma-separated file adds a field: the line is
    refused instead of shifting its values into the wrong columns. Some
    instrument exports leave unused last columns off their data lines
    (``strict=False``).
    """
    n = len(fields)
    while n > expected and not fields[n - 1].strip():
        n -= 1
    if n > expected or (strict and n != expected):
        raise DataError(f"{path}, line {lineno}: {n} field(s) but the header names {expected}; a decimal comma in a "
                        "comma-separated file, a missing value or an extra separator? fix or delete that line")


def spectrum_from_table(path, names, table, found, **fields):
    """Build a Spectrum from parsed columns and the result of :func:`impedance_columns`."""
    f_col, f_scale, _ = found["frequency"]
    re_col, re_scale, _ = found["real"]
    im_col, im_scale, im_sign = found["imag"]
    impedance = re_scale * table[re_col] + 1j * (im_sign * im_scale * table[im_col])
    return Spectrum(f_scale * table[f_col], impedance, source=str(path), **fields)


def sweep_starts(frequency):
    """Indices where a new frequency sweep starts (always includes 0).

    A sweep runs in one direction, set by its first step; a step the other
    way (the frequency jumps back up in a downward sweep) starts a new one.
    """
    starts = [0]
    direction = 0.0
    for i in range(1, len(frequency)):
        step = np.sign(frequency[i] - frequency[i - 1])
        if direction == 0.0:
            direction = step
        elif step != 0 and step != direction:
            starts.append(i)
            direction = 0.0
    return starts


def segments(starts, n):
    """Turn start indices into slices covering ``range(n)``."""
    ends = list(starts[1:]) + [n]
    return [slice(a, b) for a, b in zip(starts, ends)]


def spectrum_or_series(spectra, path):
    """One spectrum as itself, several as a SpectrumSeries."""
    if len(spectra) == 1:
        return spectra[0]
    return SpectrumSeries(spectra, source=str(path))


def build_spectra(
    path, names, table, found, *, time_col=None, time_scale=1.0, group_cols=(), start=None, metadata=None
):
    """Turn parsed columns into a Spectrum, or a SpectrumSeries for several sweeps.

    Rows with zero frequency (DC, rest or OCV rows) are dropped and counted in
    ``metadata["dropped_rows"]``. A new sweep starts where a ``group_cols``
    column (e.g. a cycle number) changes or the frequency jumps back. When a
    time column is given, each spectrum's ``time_h`` is the time of its first
    point (``time_scale`` converts the column to seconds), and its
    ``timestamp`` is ``start`` plus that time.
    """
    metadata = dict(metadata or {})
    keep = table[found["frequency"][0]] != 0
    table = {c: v[keep] for c, v in table.items()}
    metadata["dropped_rows"] = int(np.sum(~keep))
    if metadata["dropped_rows"]:
        warnings.warn(f"{path}: dropped {metadata['dropped_rows']} rows with zero frequency (DC, rest or OCV "
                      "rows, not impedance points); the count is in metadata['dropped_rows']", DataWarning, stacklevel=3)
    if not keep.any():
        raise DataError(f"{path}: every row has zero frequency; the file holds no impedance data")
    spectra = []
    for part in _sweeps(table, found["frequency"][0], group_cols):
        t0 = None if time_col is None else float(table[time_col][part][0]) * time_scale
        fields = {
            "time_h": None if t0 is None else t0 / 3600.0,
            "timestamp": _timestamp(start, t0),
            "metadata": dict(metadata, sweep=len(spectra)),
            # the time of every point, for drift laws: hours since the sweep's first point
            "sweep_time_h": None if t0 is None else (table[time_col][part] * time_scale - t0) / 3600.0,
        }
        sub = {c: v[part] for c, v in table.items()}
        spectra.append(spectrum_from_table(path, names, sub, found, **fields))
    return spectrum_or_series(spectra, path)


def _timestamp(start, t0):
    if start is None:
        return None
    return start if t0 is None else start + timedelta(seconds=t0)


def _sweeps(table, f_col, group_cols):
    """Slices of the rows, one per sweep: split on group changes, then on frequency jumps."""
    frequency = table[f_col]
    cuts = {0}
    for c in group_cols:
        cuts |= set((np.flatnonzero(np.diff(table[c]) != 0) + 1).tolist())
    parts = []
    for block in segments(sorted(cuts), len(frequency)):
        starts = [block.start + i for i in sweep_starts(frequency[block])]
        parts.extend(segments(starts, block.stop))
    return parts


def parse_datetime(text, formats):
    """Parse ``text`` with the first matching format, or return None."""
    text = " ".join(text.split())
    for fmt in formats:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None
