"""Plain CSV files: spectra, long-format time series, I–V points, transients.

Spectra
    - no header: three columns ``frequency [Hz], Re Z [Ohm], Im Z [Ohm]``
      (usual sign; comma, semicolon, tab or space separated);
    - a header naming the columns by meaning (``freq/Hz``, ``Z' (Ohm)``,
      ``-Im(Z)/Ohm``, ``frequency_kHz``...): units converted, ``-Im`` negated.
Time series ("long" CSV)
    ``time_h,frequency_Hz,Z_re_Ohm,Z_im_Ohm``, one row per point; the rows of
    one spectrum share a ``time_h``. Read into a SpectrumSeries.
I–V points
    ``cell,current_density_mA_cm2,overpotential_mV`` and optionally
    ``process`` (``plating`` by default) and ``sd_mV`` (a known measurement
    standard deviation of each overpotential); magnitudes, mV turned into V.
Transients
    ``cell,current_density_mA_cm2,time_s,overpotential_mV`` and optionally
    ``process`` (``stripping`` by default); a new transient starts where the
    cell, current density or process changes or the time goes back.

Writers use full float precision so that reading back gives the same numbers.
"""

import array
import csv
import io
import math

import numpy as np

from .. import files
from ..data import IVCurve, Spectrum, SpectrumSeries, Transient
from ..errors import DataError
from ._common import (
    Numbers,
    check_field_count,
    decode,
    find_header,
    open_binary,
    parse_number,
    read_headed_table,
    read_lines,
    sniff_delimiter,
    split_fields,
)

LONG_COLUMNS = ("time_h", "frequency_Hz", "Z_re_Ohm", "Z_im_Ohm")
IV_COLUMNS = ("cell", "current_density_mA_cm2", "overpotential_mV")
TRANSIENT_COLUMNS = ("cell", "current_density_mA_cm2", "time_s", "overpotential_mV")


def read_csv(path):
    """Read a spectrum CSV, with or without a header, or a long CSV.

    Returns
    -------
    Spectrum or SpectrumSeries
        A SpectrumSeries for a long CSV (``time_h`` column) or several sweeps.
    """
    lines = read_lines(path)
    first = next(i for i, line in enumerate(lines) if line.strip())
    delimiter = sniff_delimiter(lines[first])
    if is_numeric(split_fields(lines[first], delimiter), delimiter):
        return _read_headerless(path, lines, delimiter)
    if "time_h" in _names(lines[first], delimiter):
        return read_long_csv(path)
    header = find_header(path, lines)
    if header is None:
        raise DataError(
            f"{path}, line {first + 1}: {lines[first][:80]!r} is neither numbers nor a header naming the "
            "frequency, real and imaginary columns (e.g. 'freq/Hz,Re(Z)/Ohm,-Im(Z)/Ohm')"
        )
    at, names, delimiter = header
    return read_headed_table(path, lines, at, names, delimiter, metadata={"instrument": "CSV"}, strict=True)


def is_numeric(fields, delimiter):
    """True if every non-empty field of a line reads as a number."""
    try:
        [float(f.strip().replace(",", ".") if delimiter != "," else f) for f in fields if f.strip()]
    except ValueError:
        return False
    return True


def _names(line, delimiter):
    return [n.strip().strip('"') for n in split_fields(line, delimiter)]


def _read_headerless(path, lines, delimiter):
    rows = _numeric_rows(path, lines, delimiter, ["frequency", "Re Z", "Im Z"])
    frequency, real, imag = rows[:, 0], rows[:, 1], rows[:, 2]
    return Spectrum(frequency, real + 1j * imag, source=str(path), metadata={"instrument": "CSV (no header)"})


def _numeric_rows(path, lines, delimiter, names):
    """Parse the first len(names) columns of every non-blank line; every line has as many fields as the first."""
    rows, width, number = [], None, Numbers(path, delimiter)
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        fields = split_fields(line, delimiter)
        if len(fields) < len(names):
            raise DataError(
                f"{path}, line {i + 1}: {len(fields)} field(s), expected {len(names)} "
                f"({', '.join(names)}); fix or delete that line"
            )
        if width is None:
            width = len(fields)
        if len(fields) != width:
            raise DataError(f"{path}, line {i + 1}: {len(fields)} field(s) but the first line has {width}; a decimal "
                            "comma in a comma-separated file, or an extra separator? fix or delete that line")
        rows.append([number(fields[k], i + 1, names[k]) for k in range(len(names))])
    return np.array(rows)


def read_long_csv(path):
    """Read a long CSV (``time_h,frequency_Hz,Z_re_Ohm,Z_im_Ohm``) into a SpectrumSeries.

    Rows are grouped by ``time_h`` (in order of first appearance); each group
    is one spectrum with that ``time_h``. Other columns are ignored. One
    pass over the lines, so the time grows linearly with the file
    (``benchmarks/bench_io.py``); every line must have as many fields as
    the header.
    """
    with open_binary(path) as lines:  # bytes, line by line: float() reads bytes, text is made only for messages
        header, lineno = b"", 0
        for lineno, header in enumerate(lines, 1):
            if header.strip():
                break
        else:
            raise DataError(f"{path}: file is empty")
        Numbers(path, ",")  # a declared decimal comma cannot be used with comma-separated fields
        names = [n.strip() for n in next(csv.reader([decode(header)]))]
        missing = [n for n in LONG_COLUMNS if n not in names]
        if missing:
            raise DataError(f"{path}: no column {missing[0]!r}; the header must name {', '.join(LONG_COLUMNS)}; "
                            f"it has: {', '.join(names)}")
        groups = _long_rows(path, lines, lineno, names)
    if not groups:
        raise DataError(f"{path}: the header is there but no data lines follow it")
    spectra = [Spectrum(np.frombuffer(f), np.frombuffer(re) + 1j * np.frombuffer(im), time_h=t, source=str(path),
                        metadata={"instrument": "long CSV"}) for t, (f, re, im) in groups.items()]
    return SpectrumSeries(spectra, source=str(path))


def _long_rows(path, lines, lineno, names):
    """``{time_h: (frequency, re, im)}`` (arrays of doubles) from the data lines (bytes) of a long CSV."""
    where = [names.index(n) for n in LONG_COLUMNS]
    i_t, i_f, i_re, i_im = where
    groups = {}
    for lineno, line in enumerate(lines, lineno + 1):  # the hot loop: plain float() here, parse_number on failure
        fields = line.split(b",") if b'"' not in line else [x.encode() for x in next(csv.reader([decode(line)]))]
        if len(fields) != len(names):
            if not line.strip():
                continue
            check_field_count(path, lineno, [decode(x) for x in fields], len(names))
        try:
            t, f, re, im = float(fields[i_t]), float(fields[i_f]), float(fields[i_re]), float(fields[i_im])
            ok = math.isfinite(t + f + re + im)  # NaN or inf anywhere (or an overflowing sum: checked below)
        except ValueError:
            ok = False
        if not ok:  # the strict parser names the line, column and value, or returns the same numbers
            t, f, re, im = (parse_number(decode(fields[k]), path, lineno, n) for k, n in zip(where, LONG_COLUMNS))
        group = groups.get(t)
        if group is None:
            group = groups[t] = (array.array("d"), array.array("d"), array.array("d"))
        group[0].append(f)
        group[1].append(re)
        group[2].append(im)
    return groups


def write_long_csv(data, path):
    """Write a SpectrumSeries (or one Spectrum) as a long CSV; every spectrum needs a ``time_h``.

    Returns
    -------
    Path
    """
    spectra = list(data) if isinstance(data, SpectrumSeries) else [data]
    missing = [i for i, s in enumerate(spectra) if s.time_h is None]
    if missing:
        raise DataError(
            f"spectrum {missing[0]} has no time_h; a long CSV needs one per spectrum "
            "(set it with spectrum.with_(time_h=...))"
        )
    rows = [(s.time_h, f, z.real, z.imag) for s in spectra for f, z in zip(s.frequency, s.impedance)]
    return _write(path, LONG_COLUMNS, rows)


def read_iv(path):
    """Read current–overpotential points from ``cell,current_density_mA_cm2,overpotential_mV[,process]``.

    Returns
    -------
    IVCurve
        Overpotentials in V.
    """
    records, names = _records(path, IV_COLUMNS, optional=("process", "sd_mV"))
    return IVCurve(
        current_density_mA_cm2=[r["current_density_mA_cm2"] for r in records],
        overpotential_V=[r["overpotential_mV"] / 1000.0 for r in records],
        cell=[r["cell"] for r in records],
        process=[r.get("process", "plating") for r in records],
        source=str(path),
        sd_V=[r["sd_mV"] / 1000.0 for r in records] if "sd_mV" in names else None,
    )


def write_iv(curve, path):
    """Write an IVCurve as ``cell,process,current_density_mA_cm2,overpotential_mV``.

    Returns
    -------
    Path
    """
    rows = [
        (c, p, j, eta * 1000.0)
        for c, p, j, eta in zip(curve.cell, curve.process, curve.current_density_mA_cm2, curve.overpotential_V)
    ]
    names = ("cell", "process", "current_density_mA_cm2", "overpotential_mV")
    if curve.sd_V is not None:
        rows, names = [row + (sd * 1000.0,) for row, sd in zip(rows, curve.sd_V)], names + ("sd_mV",)
    return _write(path, names, rows)


def read_transients_csv(path):
    """Read transients from ``cell,current_density_mA_cm2,time_s,overpotential_mV[,process]``.

    Returns
    -------
    list of Transient
    """
    records, _ = _records(path, TRANSIENT_COLUMNS, optional=("process",))
    groups = []
    for r in records:
        key = (r["cell"], r["current_density_mA_cm2"], r.get("process", "stripping"))
        if not groups or groups[-1][0] != key or r["time_s"] <= groups[-1][1][-1]["time_s"]:
            groups.append((key, []))
        groups[-1][1].append(r)
    return [
        Transient(
            time_s=[r["time_s"] for r in rows],
            overpotential_V=[r["overpotential_mV"] / 1000.0 for r in rows],
            current_density_mA_cm2=j,
            cell=cell,
            process=process,
            source=str(path),
            metadata={"first_line": rows[0]["lineno"]},
        )
        for (cell, j, process), rows in groups
    ]


def write_transients(transients, path):
    """Write transients as ``cell,process,current_density_mA_cm2,time_s,overpotential_mV``.

    Returns
    -------
    Path
    """
    rows = [
        (tr.cell, tr.process, tr.current_density_mA_cm2, t, eta * 1000.0)
        for tr in transients
        for t, eta in zip(tr.time_s, tr.overpotential_V)
    ]
    return _write(path, ("cell", "process", "current_density_mA_cm2", "time_s", "overpotential_mV"), rows)


def _records(path, required, optional):
    """Rows of a headed CSV as dicts; numbers parsed, ``lineno`` added.

    Raises
    ------
    DataError
        For a missing column, a short row, an empty cell or a bad number.
    """
    lines = read_lines(path)
    Numbers(path, ",")  # a declared decimal comma cannot be used with comma-separated fields
    rows = [(i + 1, row) for i, row in enumerate(csv.reader(lines)) if any(cell.strip() for cell in row)]
    names = [n.strip() for n in rows[0][1]]
    missing = [n for n in required if n not in names]
    if missing:
        raise DataError(
            f"{path}: no column {missing[0]!r}; the header must name {', '.join(required)}"
            f"{' (and optionally ' + ', '.join(optional) + ')' if optional else ''}; it has: {', '.join(names)}"
        )
    if len(rows) < 2:
        raise DataError(f"{path}: the header is there but no data lines follow it")
    wanted = [n for n in names if n in required or n in optional]
    records = []
    for lineno, row in rows[1:]:
        check_field_count(path, lineno, row, len(names))
        record = {"lineno": lineno}
        for n in wanted:
            text = row[names.index(n)].strip()
            if n in ("cell", "process"):
                if not text:
                    raise DataError(f"{path}, line {lineno}: column {n!r} is empty; fill it in")
                record[n] = text
            else:
                record[n] = parse_number(text, path, lineno, n)
        records.append(record)
    return records, names


def _write(path, names, rows):
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(names)
    writer.writerows([[_text(v) for v in row] for row in rows])
    return files.write_atomic(path, text.getvalue())


def _text(value):
    if isinstance(value, str):
        return value
    return repr(float(value))
