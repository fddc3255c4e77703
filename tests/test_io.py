"""Readers and writers: real instrument files, malformed input, round trips.

Expected values are typed in from the raw files (first and last data line),
with the sign turned to the usual convention where the file holds -Im(Z).
"""

import warnings
from pathlib import Path

import numpy as np
import pytest

from mgbayes import io
from mgbayes.data import DataWarning, IVCurve, Spectrum, SpectrumSeries, Transient
from mgbayes.errors import DataError

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
INSTRUMENT_FILES = Path(__file__).resolve().parents[2] / "shared" / "data" / "instrument-files"

needs_instrument_files = pytest.mark.skipif(
    not INSTRUMENT_FILES.is_dir(),
    reason=f"real instrument files not found at {INSTRUMENT_FILES} (shared/ must sit beside the repository)",
)


def read_quietly(path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return io.read(path, **kwargs)


# --- real instrument files --------------------------------------------------------------

# name, format, n points, (f, Re, Im) of the first and of the last point, as read off the file
REAL_FILES = [
    ("exampleData.csv", "csv", 66,
     (3.162299999999999833e-03, 4.949989776405060160e-02, -2.043869854441892481e-02),
     (1.0e4, 1.577148266048593317e-02, 1.015747456493823649e-02)),
    ("exampleDataBioLogic.mpt", "biologic-mpt", 43,  # -Im(Z) column: 3.8998979E-001 -> Im = -0.38998979
     (1.0003201e3, 6.5470886e1, -3.8998979e-1), (1.6895540e-2, 1.1097003e2, -2.3458567)),
    ("exampleDataAutolab.txt", "autolab", 41,
     (1.0e4, 0.013785863964281, 0.007191946305823), (0.1, 0.0345697771923854, -0.00390292888845954)),
    ("exampleDataCHInstruments.txt", "chi", 73, (9.961e4, 9.891e1, -2.748), (0.1, 5.685e3, -1.586e4)),
    ("exampleDataGamry.DTA", "gamry", 72, (200015.6, 825.8584, -1367.239), (0.0158898, 17007.49, -6635.557)),
    ("exampleDataParstat.txt", "parstat", 31,
     (1.0e4, -0.00049816280376104, 0.0175143479976367), (10.0, 0.0270946491457229, -0.00399791080333837)),
    ("exampleDataPowersuite.txt", "powersuite", 30, (0.1, 423929.46, -49014.063), (2.0e6, -470.54113, -1397.7358)),
    ("exampleDataVersaStudio.par", "versastudio", 61,
     (1.0e5, 55.31571, 4.575431), (0.02154435, 1516.313, -122.8279)),
    ("Circuit1_EIS_1.z", "zplot", 48, (5.0e4, 29.036, 0.63662), (1.0, 75.803, -0.16244)),
    ("Circuit1_EIS_2.z", "zplot", 48, (5.0e4, 29.001, 0.59920), (1.0, 75.820, -0.17374)),
    ("Circuit2_EIS_1.z", "zplot", 56, (3.0e5, 147.77, -11.335), (1.0, 654.19, 0.64271)),
    ("Circuit2_EIS_2.z", "zplot", 56, (3.0e5, 147.68, -11.662), (1.0, 652.44, -2.1180)),
    ("Circuit3_EIS_1.z", "zplot", 53, (1.5e5, 1493.7, 10.377), (1.0, 6137.5, 17.890)),
    ("Circuit3_EIS_2.z", "zplot", 53, (1.5e5, 1492.0, 11.789), (1.0, 6138.2, -10.151)),
]  # fmt: skip


@needs_instrument_files
@pytest.mark.parametrize(("name", "fmt", "n", "first", "last"), REAL_FILES, ids=[r[0] for r in REAL_FILES])
def test_real_file_loads(name, fmt, n, first, last):
    path = INSTRUMENT_FILES / name
    assert io.guess_format(path) == fmt
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)  # none of these is partial or flipped
        s = io.read(path)
    messages = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    if s.metadata.get("dropped_rows"):  # DC rows are dropped, and said so
        assert messages and "zero frequency" in messages[0] and len(messages) == 1
    else:
        assert not messages, messages
    assert isinstance(s, Spectrum)
    assert s.n_points == n
    for k, (f, re, im) in ((0, first), (-1, last)):
        assert s.frequency[k] == pytest.approx(f, rel=1e-12)
        assert s.impedance[k].real == pytest.approx(re, rel=1e-12)
        assert s.impedance[k].imag == pytest.approx(im, rel=1e-12)
    assert s.source == str(path)
    assert s.area_cm2 is None and s.symmetric is False


@needs_instrument_files
@pytest.mark.parametrize("name", [f"Circuit{i}_EIS_{j}.z" for i in (1, 2, 3) for j in (1, 2)])
def test_dummy_cells_have_capacitive_arcs(name):
    """R0-p(R1,C1): Re grows towards low frequency and the arc has a clearly negative Im."""
    s = io.read(INSTRUMENT_FILES / name).sorted()
    assert s.impedance.real[-1] > s.impedance.real[0]
    assert s.impedance.imag.min() < -10 * max(s.impedance.imag.max(), 0.1)
    assert s.frequency[0] > s.frequency[-1]


@needs_instrument_files
def test_biologic_header_and_time():
    s = io.read(INSTRUMENT_FILES / "exampleDataBioLogic.mpt")
    # time/s of the first point: 7.836904905780102E-001
    assert s.time_h == pytest.approx(0.7836904905780102 / 3600)
    assert s.timestamp.strftime("%Y-%m-%d %H:%M:%S") == "2018-02-04 10:02:46"
    assert s.metadata["instrument_area_cm2"] == 0.001  # kept, but not applied
    assert s.metadata["technique"] == "Potentio Electrochemical Impedance Spectroscopy"
    assert s.impedance_unit == "Ohm"


@needs_instrument_files
def test_biologic_missing_frequency_column():
    path = INSTRUMENT_FILES / "exampleDataBioLogic_MissingFreq.mpt"
    with pytest.raises(DataError) as err:
        io.read(path)
    message = str(err.value)
    assert str(path) in message
    assert "no frequency column" in message and "freq/Hz" in message and "'Re(Z)/Ohm'" in message


@needs_instrument_files
def test_gamry_aborted_run_loads_complete_points_and_warns():
    path = INSTRUMENT_FILES / "exampleDataGamryABORT.DTA"
    with pytest.warns(DataWarning, match=f"{path.name}: the experiment was aborted; loading the 72 complete points"):
        s = io.read(path)
    assert s.metadata["partial"] is True
    assert s.n_points == 72
    # last complete ZCURVE row: 71  861  0.0158898  17007.49  -6635.557
    assert s.frequency[-1] == 0.0158898 and s.impedance[-1] == complex(17007.49, -6635.557)
    assert "partial" not in io.read(INSTRUMENT_FILES / "exampleDataGamry.DTA").metadata


@needs_instrument_files
def test_gamry_file_cut_mid_line_loads_complete_rows(tmp_path):
    raw = (INSTRUMENT_FILES / "exampleDataGamry.DTA").read_bytes().rstrip()
    cut = tmp_path / "cut.DTA"
    cut.write_bytes(raw[:-40])  # the last ZCURVE row loses its last fields
    with pytest.warns(DataWarning, match="ends in the middle of a line"):
        s = io.read(cut)
    assert s.n_points == 71 and s.metadata["partial"] is True


@needs_instrument_files
@pytest.mark.parametrize(
    ("name", "n", "declared", "first", "last"),
    [
        ("exampleDataZPlot.z", 21, 56, (3.0e5, 147.77, -11.335), (3.0e3, 613.68, -137.13)),
        ("exampleDataZPlot_noComments.z", 31, 79, (3.0e5, 642.62, -85.821), (300.0, 1305.3, -195.01)),
    ],
)
def test_zplot_files_shorter_than_announced(name, n, declared, first, last):
    path = INSTRUMENT_FILES / name
    assert io.guess_format(path) == "zplot"
    with pytest.warns(DataWarning, match=f"{name}: the header announces {declared} points but the file holds {n}"):
        s = io.read(path)
    assert s.n_points == n and s.metadata == s.metadata | {"partial": True, "declared_points": declared}
    assert (s.frequency[0], s.impedance[0]) == (first[0], complex(*first[1:]))
    assert (s.frequency[-1], s.impedance[-1]) == (last[0], complex(*last[1:]))


@needs_instrument_files
def test_parstat_drops_dc_rows():
    s = io.read(INSTRUMENT_FILES / "exampleDataParstat.txt")
    assert s.metadata["dropped_rows"] == 781
    assert s.time_h == pytest.approx(7639.602 / 3600)  # Elapsed Time (s) of the first impedance row


@needs_instrument_files
def test_area_symmetric_and_flip_are_applied():
    path = INSTRUMENT_FILES / "Circuit2_EIS_1.z"
    plain = io.read(path)
    s = io.read(path, area_cm2=0.5, symmetric=True)
    assert s.area_cm2 == 0.5 and s.symmetric and s.impedance_unit == "Ohm cm2"
    np.testing.assert_allclose(s.impedance_area, plain.impedance * 0.5)
    with pytest.warns(DataWarning, match="sign convention looks flipped"):  # flipping a right file is suspicious
        flipped = io.read(path, flip_imag=True)
    np.testing.assert_array_equal(flipped.impedance, plain.impedance.conjugate())


@needs_instrument_files
def test_format_override():
    s = io.read(INSTRUMENT_FILES / "exampleDataAutolab.txt", format="zplot")
    assert s.n_points == 41
    with pytest.raises(DataError, match="unknown format 'nova'; supported formats are: biologic-mpt, biologic-mpr"):
        io.read(INSTRUMENT_FILES / "exampleDataAutolab.txt", format="nova")


# --- BioLogic: several sweeps, decimal commas, .mpr ----------------------------------------

MPT_HEADER = """EC-Lab ASCII FILE
Nb header lines : 7

Potentio Electrochemical Impedance Spectroscopy

Acquisition started on : 03/14/2024 09:30:00.000
"""


def write_ec_lab(path, names, rows, decimal_comma=False):
    lines = ["\t".join(names) + "\t"]
    for row in rows:
        text = "\t".join(f"{v:.7E}" for v in row)
        lines.append(text.replace(".", ",") if decimal_comma else text)
    path.write_text(MPT_HEADER + "\n".join(lines) + "\n", encoding="cp1252")
    return path


def arc(frequency, r=500.0):
    return 20.0 + r / (1 + 2j * np.pi * frequency * r * 2e-6)


F6 = np.logspace(4, -1, 6)


def test_mpt_cycles_become_a_series(tmp_path):
    rows = []
    for cycle, t0 in ((1, 100.0), (2, 3700.0), (3, 7300.0)):
        z = arc(F6, r=100.0 * cycle)
        rows += [(f, zz.real, -zz.imag, t0 + 10 * k, cycle) for k, (f, zz) in enumerate(zip(F6, z))]
    path = write_ec_lab(tmp_path / "loop.mpt", ["freq/Hz", "Re(Z)/Ohm", "-Im(Z)/Ohm", "time/s", "cycle number"], rows)
    s = io.read(path)
    assert isinstance(s, SpectrumSeries) and len(s) == 3 and s.source == str(path)
    np.testing.assert_allclose(s.time_h, [100 / 3600, 3700 / 3600, 7300 / 3600])
    np.testing.assert_allclose(s.frequency, F6, rtol=1e-7)
    np.testing.assert_allclose(s.impedance[2], arc(F6, r=300.0), rtol=1e-6)
    assert s[1].timestamp.strftime("%H:%M:%S") == "10:31:40"  # 09:30:00 + 3700 s


def test_mpt_frequency_jump_starts_a_new_sweep_and_zero_rows_are_dropped(tmp_path):
    z = arc(F6)
    sweep = [(f, zz.real, -zz.imag) for f, zz in zip(F6, z)]
    rest = [(0.0, 0.0, 0.0)] * 3  # an OCV step between two sweeps of a modular sequence
    path = write_ec_lab(tmp_path / "two.mpt", ["freq/Hz", "Re(Z)/Ohm", "-Im(Z)/Ohm"], sweep + rest + sweep)
    s = io.read(path)
    assert isinstance(s, SpectrumSeries) and len(s) == 2
    assert s[0].metadata["dropped_rows"] == 3
    assert np.all(np.isnan(s.time_h))


def test_mpt_decimal_comma(tmp_path):
    z = arc(F6)
    rows = [(f, zz.real, -zz.imag) for f, zz in zip(F6, z)]
    path = write_ec_lab(tmp_path / "komma.mpt", ["freq/Hz", "Re(Z)/Ohm", "-Im(Z)/Ohm"], rows, decimal_comma=True)
    np.testing.assert_allclose(io.read(path).impedance, z, rtol=1e-6)


def test_mpt_bad_header_count(tmp_path):
    path = tmp_path / "bad.mpt"
    path.write_text("EC-Lab ASCII FILE\nNb header lines : 99\n\nfreq/Hz\tRe(Z)/Ohm\t-Im(Z)/Ohm\n1\t2\t3\n")
    with pytest.raises(DataError, match=f"{path}: header says 99 header lines but the file has 5 lines"):
        io.read(path)
    path.write_text("EC-Lab ASCII FILE\nsomething else\n")
    with pytest.raises(DataError, match=f"{path}, line 2: expected 'Nb header lines : N'"):
        io.read(path)


def test_mpr_dispatch_and_bad_file(tmp_path):
    fake = tmp_path / "not_binary.mpr"
    fake.write_text("EC-Lab ASCII FILE\nthis is text, not an .mpr\n")
    assert io.guess_format(fake) == "biologic-mpr"
    with pytest.raises(DataError, match=f"{fake}: not a BioLogic .mpr file that galvani can read"):
        io.read(fake)


def test_mpr_columns_go_through_the_mpt_logic(tmp_path, monkeypatch):
    """No real .mpr fixture exists; check our side of the galvani interface with a stand-in."""
    from datetime import datetime

    from galvani import BioLogic

    names = ["freq/Hz", "Re(Z)/Ohm", "-Im(Z)/Ohm", "time/s", "z cycle"]
    dtype = [(n, "<f4" if n != "time/s" else "<f8") for n in names[:-1]] + [("z cycle", "<u4")]
    rows = []
    for cycle in (1, 2):
        z = arc(F6, r=200.0 * cycle)
        rows += [(f, zz.real, -zz.imag, 3600.0 * cycle + k, cycle) for k, (f, zz) in enumerate(zip(F6, z))]

    class FakeMPR:
        def __init__(self, handle):
            self.data = np.array(rows, dtype=dtype)
            self.timestamp = datetime(2024, 3, 14, 9, 30)

    monkeypatch.setattr(BioLogic, "MPRfile", FakeMPR)
    path = tmp_path / "cell.mpr"
    path.write_bytes(b"BIO-LOGIC MODULAR FILE\x1a")
    s = io.read(path)
    assert isinstance(s, SpectrumSeries) and len(s) == 2
    np.testing.assert_allclose(s.time_h, [1.0, 2.0])
    np.testing.assert_allclose(s.impedance[1], arc(F6, r=400.0), rtol=1e-6)  # float32 in the file


# --- other formats and fixtures -----------------------------------------------------------


def test_autolab_nova_columns():
    s = io.read(DATA / "autolab_nova.txt", format="autolab")
    assert s.n_points == 7 and s.metadata["instrument"] == "Metrohm Autolab (NOVA)"
    # first row: 100000  20.0013  -Z''=0.795773  -> Im = -0.795773
    assert (s.frequency[0], s.impedance[0]) == (1e5, complex(20.0013, -0.795773))
    assert s.time_h == pytest.approx(10 / 3600)


def test_csv_header_units_are_converted():
    s = io.read(DATA / "header_kohm.csv")  # freq/kHz, Re(Z)/kOhm, -Im(Z)/kOhm
    assert s.frequency[0] == pytest.approx(1e5) and s.frequency[-1] == pytest.approx(0.1)
    assert s.impedance[0] == pytest.approx(complex(20.0013, -0.795773))
    np.testing.assert_allclose(s.impedance, io.read(DATA / "autolab_nova.txt").impedance, rtol=1e-5)


def test_long_csv_fixture():
    s = io.read(DATA / "ocv_drift_long.csv")
    assert isinstance(s, SpectrumSeries) and io.guess_format(DATA / "ocv_drift_long.csv") == "csv"
    np.testing.assert_array_equal(s.time_h, [0.0, 2.5, 5.0])
    np.testing.assert_array_equal(s.frequency, [1e5, 1e4, 1e3, 1e2, 10, 1, 0.1])
    assert s.impedance[2, -1] == complex(43280.4, -64691.5)  # last line of the file


def test_iv_fixture():
    curve = io.read_iv(DATA / "iv_plating.csv")
    assert isinstance(curve, IVCurve) and len(curve) == 9 and curve.cells == ("A", "B")
    assert curve.overpotential_V[3] == pytest.approx(0.805)  # A,10,805,plating
    assert curve.select(process="stripping").current_density_mA_cm2.tolist() == [0.3, 10.0]


def test_iv_default_process_and_errors(tmp_path):
    path = tmp_path / "iv.csv"
    path.write_text("cell,current_density_mA_cm2,overpotential_mV\n1,0.3,550\n1,1,560\n")
    assert set(io.read_iv(path).process) == {"plating"}
    path.write_text("cell,current_mA,overpotential_mV\n1,0.3,550\n")
    with pytest.raises(DataError, match=f"{path}: no column 'current_density_mA_cm2'; the header must name"):
        io.read_iv(path)
    path.write_text("cell,current_density_mA_cm2,overpotential_mV\n1,0.3,550\n1,1,abc\n")
    with pytest.raises(DataError, match=f"{path}, line 3: cannot read 'abc' in column 'overpotential_mV'"):
        io.read_iv(path)
    path.write_text("cell,current_density_mA_cm2,overpotential_mV\n1,0.3,-550\n")
    with pytest.raises(DataError, match=f"{path}: overpotential_V\\[0\\] = -0.55 is not positive"):
        io.read_iv(path)


def test_transients_csv_fixture():
    transients = io.read_transients(DATA / "transients.csv")
    found = [(t.cell, t.current_density_mA_cm2, t.n_points) for t in transients]
    assert found == [("1", 0.3, 5), ("1", 1.0, 3), ("2", 1.0, 2)]
    assert all(t.process == "stripping" for t in transients)
    np.testing.assert_allclose(transients[0].overpotential_V, [0.512, 0.505, 0.498, 0.061, 0.045])


def test_gcpl_mpt_fixture():
    path = DATA / "gcpl_stripping_plating.mpt"
    stripping, plating = io.read_transients(path, area_cm2=0.5)
    assert isinstance(stripping, Transient)
    # control/mA = 0.3 (stripping) and -0.3 (plating) on 0.5 cm2
    assert (stripping.process, stripping.n_points) == ("stripping", 12)
    assert (plating.process, plating.n_points) == ("plating", 10)
    assert stripping.current_density_mA_cm2 == pytest.approx(0.6) == plating.current_density_mA_cm2
    assert stripping.time_s[0] == 0 and stripping.time_s[-1] == 660
    assert stripping.overpotential_V[0] == pytest.approx(4.9999724e-1)  # Ewe/V of the first CC row
    assert plating.overpotential_V[0] == pytest.approx(0.55)  # |Ewe| = |-5.5E-01|
    assert stripping.cell == "gcpl_stripping_plating" and stripping.metadata["voltage_column"] == "Ewe/V"
    with pytest.raises(DataError, match=f"{path}: pass area_cm2="):
        io.read_transients(path)
    with pytest.raises(DataError, match=r"no frequency or real or imag column.*use mgbayes.io.read_transients"):
        io.read(path)


# --- malformed input ----------------------------------------------------------------------


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("name", "text", "pattern"),
    [
        ("empty.csv", "", "file is empty"),
        ("blank.csv", "\n \n", "file is empty"),
        ("header_only.csv", "freq/Hz,Re(Z)/Ohm,-Im(Z)/Ohm\n", "the header is there but no data lines follow it"),
        ("nan.csv", "1000,1,-1\n100,2,nan\n10,3,-3\n1,4,-4\n0.1,5,-5\n", r"line 2: column 'Im Z' holds 'nan'"),
        (
            "empty_cell.csv",
            "freq/Hz,Re(Z)/Ohm,-Im(Z)/Ohm\n1000,1,1\n100,,2\n",
            r"line 3: column 'Re\(Z\)/Ohm' is empty",
        ),
        ("word.csv", "1000,1,-1\n100,2,-2\n10,x3,-3\n", r"line 3: cannot read 'x3' in column 'Re Z'"),
        ("short.csv", "1000,1,-1\n100,2\n", r"line 2: 2 field\(s\), expected 3"),
        ("ghz.csv", "freq/GHz,Re(Z)/Ohm,-Im(Z)/Ohm\n1,1,1\n", r"column 'freq/GHz' has unit 'GHz'.*convert it to Hz"),
        ("area.csv", "freq/Hz,Re(Z)/Ohm.cm2,-Im(Z)/Ohm.cm2\n1,1,1\n", r"unit 'Ohm.cm2'.*area-normalised"),
        ("junk.csv", "hello,world\n1,2\n", r"line 1: 'hello,world' is neither numbers nor a header"),
        ("few.csv", "1000,1,-1\n100,2,-2\n", "at least 5 points, got 2"),
        ("dupes.csv", "1000,1,-1\n100,2,-2\n100,3,-3\n10,4,-4\n1,5,-5\n", "appears 2 times"),
    ],
)
def test_malformed_files(tmp_path, name, text, pattern):
    path = write(tmp_path, name, text)
    with pytest.raises(DataError, match=pattern) as err:
        io.read(path)
    assert str(path) in str(err.value)


def test_missing_file_and_unknown_content(tmp_path):
    with pytest.raises(DataError, match="nowhere.mpt: cannot be read"):
        io.read(tmp_path / "nowhere.mpt")
    path = write(tmp_path, "notes.xyz", "some notes\nabout a cell\n")
    with pytest.raises(DataError, match=f"{path}: cannot tell the file format.*pass format= one of: biologic-mpt"):
        io.read(path)
    binary = tmp_path / "blob.csv"
    binary.write_bytes(b"\x00\x01\x02binary")
    with pytest.raises(DataError, match="looks like a binary file"):
        io.read(binary)


def test_flipped_file_warns_and_flip_imag_fixes_it(tmp_path):
    z = arc(F6)
    # the third column is -Im(Z) but nothing says so
    text = "".join(f"{float(f)!r},{float(zz.real)!r},{float(-zz.imag)!r}\n" for f, zz in zip(F6, z))
    path = write(tmp_path, "minus_im.csv", text)
    with pytest.warns(DataWarning, match="sign convention looks flipped"):
        io.read(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        np.testing.assert_array_equal(io.read(path, flip_imag=True).impedance, z)


# --- round trips --------------------------------------------------------------------------


def demo_series():
    f = np.logspace(5, -2, 29)
    spectra = [
        Spectrum(f, arc(f, r=r), time_h=t, metadata={"synthetic": True})
        for t, r in ((0.0, 4e4), (1.0 / 3, 9e4), (20.0, 4e5))
    ]
    return SpectrumSeries(spectra)


def test_write_mpt_round_trip_series(tmp_path):
    series = demo_series()
    path = io.write_mpt(series, tmp_path / "demo.mpt")
    back = io.read(path)
    assert isinstance(back, SpectrumSeries) and len(back) == 3
    np.testing.assert_array_equal(back.frequency, series.frequency)
    np.testing.assert_array_equal(back.impedance, series.impedance)
    np.testing.assert_allclose(back.time_h, series.time_h, rtol=1e-15, atol=1e-15)
    assert "Written by mgbayes" in path.read_text(encoding="cp1252")


def test_write_mpt_round_trip_single_spectrum(tmp_path):
    s = demo_series()[1].with_(time_h=None, area_cm2=1.13)
    back = io.read(io.write_mpt(s, tmp_path / "one.mpt"))
    assert isinstance(back, Spectrum) and back.time_h is None
    np.testing.assert_array_equal(back.frequency, s.frequency)
    np.testing.assert_array_equal(back.impedance, s.impedance)
    assert back.metadata["instrument_area_cm2"] == 1.13 and back.area_cm2 is None


def test_write_long_csv_round_trip(tmp_path):
    series = demo_series()
    back = io.read(io.write_long_csv(series, tmp_path / "demo.csv"))
    np.testing.assert_array_equal(back.time_h, series.time_h)
    np.testing.assert_array_equal(back.frequency, series.frequency)
    np.testing.assert_array_equal(back.impedance, series.impedance)
    with pytest.raises(DataError, match="spectrum 0 has no time_h"):
        io.write_long_csv(series[0].with_(time_h=None), tmp_path / "x.csv")


def test_write_iv_round_trip(tmp_path):
    curve = io.read_iv(DATA / "iv_plating.csv")
    back = io.read_iv(io.write_iv(curve, tmp_path / "iv.csv"))
    np.testing.assert_array_equal(back.current_density_mA_cm2, curve.current_density_mA_cm2)
    np.testing.assert_allclose(back.overpotential_V, curve.overpotential_V, rtol=1e-15)
    assert back.cell.tolist() == curve.cell.tolist() and back.process.tolist() == curve.process.tolist()


def test_write_transients_round_trip(tmp_path):
    transients = io.read_transients(DATA / "gcpl_stripping_plating.mpt", area_cm2=0.5)
    back = io.read_transients(io.write_transients(transients, tmp_path / "tr.csv"))
    assert [(t.process, t.current_density_mA_cm2, t.n_points) for t in back] == [
        (t.process, t.current_density_mA_cm2, t.n_points) for t in transients
    ]
    np.testing.assert_allclose(back[0].overpotential_V, transients[0].overpotential_V, rtol=1e-15)


def test_per_point_times_of_a_real_gamry_file_reach_the_drift_law():
    """Gamry's ``Time`` column (s) gives every point its time since the sweep's first point."""
    from mgbayes.observations import observe

    path = INSTRUMENT_FILES / "exampleDataGamry.DTA"
    spectrum = io.read(path)
    sweep = spectrum.sweep_time_h
    assert sweep.shape == spectrum.frequency.shape and sweep[0] == 0.0 and np.all(np.diff(sweep) > 0)
    # a sweep down to 16 mHz lasts minutes: the last point is well after the first
    assert 60.0 < sweep[-1] * 3600.0 < 3600.0 * 2
    assert spectrum.select(frequency_Hz=(1.0, None)).sweep_time_h.size == int((spectrum.frequency >= 1.0).sum())
    obs = observe(spectrum)
    np.testing.assert_array_equal(obs.extra["sweep_time_h"], sweep[None, :])
    np.testing.assert_array_equal(obs.inputs["t"], [spectrum.time_h])  # one time per spectrum stays the coordinate
