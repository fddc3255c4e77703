"""Nothing lost, nothing run, nothing silently wrong: cache, readers, outputs, names, user mistakes, workers.

Each test reproduces one fault found on ee044ff (issue 14) and checks the fix.
"""

import errno
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import xarray as xr

from mgbayes import cache, cli, files, fits, hypotheses, inference, io, parallel, simulate, study
from mgbayes.diagnostics import ConvergenceWarning
from mgbayes.errors import DataError, HypothesisError, MgbayesError, OutputError
from tests.studies import CT, write_small_study

ROOT = Path(__file__).resolve().parent.parent


# --- cache: nothing unpickled that this user did not write --------------------------------------------


class Planted:
    """A pickle that, when loaded, creates a marker file (stands in for ``os.system``)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("MGBAYES_CACHE_DIR", str(folder))
    monkeypatch.delenv("MGBAYES_CACHE", raising=False)
    return folder


def test_planted_pickle_is_not_run_and_the_entry_is_rebuilt(cache_dir, tmp_path):
    marker = tmp_path / "marker"
    cache.store("k", {"a": 1})  # the folder and this user's secret exist
    (cache_dir / "k.pkl").write_bytes(pickle.dumps(Planted(marker)))
    assert cache.load("k") is None
    assert not marker.exists() and not (cache_dir / "k.pkl").exists()
    cache.store("k", {"a": 2})
    assert cache.load("k") == {"a": 2}


def test_planted_pickle_in_a_fresh_folder_is_not_run(cache_dir, tmp_path):
    marker = tmp_path / "marker"
    cache_dir.mkdir(mode=0o700)
    (cache_dir / "k.pkl").write_bytes(pickle.dumps(Planted(marker)))
    assert cache.load("k") is None and not marker.exists()


def test_entry_signed_for_another_key_or_truncated_is_ignored(cache_dir, tmp_path):
    cache.store("a", {"a": 1})
    (cache_dir / "b.pkl").write_bytes((cache_dir / "a.pkl").read_bytes())  # right secret, wrong key
    assert cache.load("b") is None and not (cache_dir / "b.pkl").exists()
    (cache_dir / "a.pkl").write_bytes((cache_dir / "a.pkl").read_bytes()[:40])
    assert cache.load("a") is None


def test_folder_writable_by_others_is_refused_with_a_warning_naming_it(cache_dir, tmp_path):
    marker = tmp_path / "marker"
    cache.store("k", {"a": 1})
    os.chmod(cache_dir, 0o777)
    (cache_dir / "k.pkl").write_bytes(pickle.dumps(Planted(marker)))
    with pytest.warns(cache.CacheWarning, match=str(cache_dir)):
        assert cache.load("k") is None
    with pytest.warns(cache.CacheWarning):
        cache.store("j", {"b": 1})
    assert not marker.exists() and not (cache_dir / "j.pkl").exists()


def test_secret_readable_by_others_is_refused(cache_dir):
    cache.store("k", {"a": 1})
    os.chmod(cache_dir / cache.SECRET_NAME, 0o644)
    with pytest.warns(cache.CacheWarning, match="secret"):
        assert cache.load("k") is None


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to give a file to another user")
def test_folder_or_entry_of_another_user_is_refused(cache_dir, tmp_path):
    marker = tmp_path / "marker"
    cache.store("k", {"a": 1})
    os.chown(cache_dir / "k.pkl", 65534, 65534)
    assert cache.load("k") is None
    cache.store("k", {"a": 1})
    os.chown(cache_dir, 65534, 65534)
    with pytest.warns(cache.CacheWarning, match=str(cache_dir)):
        assert cache.load("k") is None
    assert not marker.exists()


# --- strict readers -----------------------------------------------------------------------------------


@pytest.mark.parametrize("text, line", [
    ("freq/Hz,Re(Z)/Ohm,-Im(Z)/Ohm\n1000,40.1,8.2\n100,35,2,8.2\n", 3),  # headed CSV, decimal comma
    ("1000,40.1,8.2\n100,35,2,8.2\n", 2),  # headerless CSV
    ("time_h,frequency_Hz,Z_re_Ohm,Z_im_Ohm\n0,1000,40.1,-8.2\n0,100,35,2,-8.2\n", 3),  # long CSV
    ("time_h,frequency_Hz,Z_re_Ohm,Z_im_Ohm\n0,1000,40.1,-8.2\n0,100,35\n", 3),  # a field short
    ("freq/Hz,Re(Z)/Ohm,-Im(Z)/Ohm\n1000,40.1,8.2\n100,35.2\n", 3),
])
def test_line_with_more_or_fewer_fields_than_the_header_is_an_error(tmp_path, text, line):
    path = tmp_path / "z.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=rf"z\.csv, line {line}: .*field"):
        io.read(path)


def test_iv_row_with_an_extra_field_is_an_error(tmp_path):
    path = tmp_path / "iv.csv"
    path.write_text("cell,current_density_mA_cm2,overpotential_mV\nA,1,120\nA,2,130,5\n")
    with pytest.raises(DataError, match=r"iv\.csv, line 3"):
        io.read_iv(path)


def _semicolon(rows):
    return "freq/Hz;Re(Z)/Ohm;-Im(Z)/Ohm\n" + "".join(f"{10 ** (4 - k)};{re};{im}\n" for k, (re, im) in enumerate(rows))


def test_one_decimal_separator_per_file(tmp_path):
    path = tmp_path / "z.txt"
    comma = [("40,5", "8,25"), ("35,2", "9"), ("31", "7,5"), ("30,5", "4"), ("30,1", "2")]
    path.write_text(_semicolon(comma))
    np.testing.assert_allclose(io.read(path).impedance.real, [40.5, 35.2, 31, 30.5, 30.1])
    path.write_text(_semicolon(comma[:2] + [("31.5", "7")] + comma[3:]))
    with pytest.raises(DataError, match=r"z\.txt, line 4: '31.5'.*uses '\.'.*line 2"):
        io.read(path)
    dots = [(a.replace(",", "."), b.replace(",", ".")) for a, b in comma]
    path.write_text(_semicolon(dots))
    with pytest.raises(DataError, match=r"line 2: '40.5'.*declared"):
        io.read(path, decimal=",")
    assert io.read(path, decimal=".").impedance.real[1] == 35.2
    with pytest.raises(DataError, match="separated by commas"):
        io.read(path, format="long-csv", decimal=",")


def test_study_decimal_key_is_used_for_the_data(tmp_path):
    (tmp_path / "z.txt").write_text(_semicolon([("40.5", "8"), ("35,2", "9"), ("31", "7"), ("30", "4"), ("30", "2")]))
    experiment = study.Experiment("e", tmp_path / "z.txt", [], {}, decimal=".")
    with pytest.raises(DataError, match="line 3"):
        study.load_data(experiment, "impedance")


def test_long_csv_groups_by_time_in_one_pass(tmp_path):
    path = tmp_path / "long.csv"
    rows = [(0.5, 10 ** (4 - k), 40 + k, -8) for k in range(3)] + [(1.5, 10 ** (4 - k), 41 + k, -9) for k in range(5)]
    rows += [(0.5, 10 ** (1 - k), 50 + k, -3) for k in range(2)]  # time 0.5 again, after 1.5
    path.write_text("time_h,frequency_Hz,Z_re_Ohm,Z_im_Ohm,note\n" + "".join(f"{t},{f},{a},{b},x\n" for t, f, a, b in rows)
                    + "\n")
    series = io.read(path)
    assert [s.time_h for s in series] == [0.5, 1.5]
    np.testing.assert_array_equal(series[0].frequency, [1e4, 1e3, 1e2, 10, 1])
    np.testing.assert_array_equal(series[1].impedance.real, [41, 42, 43, 44, 45])
    path.write_text("time_h,frequency_Hz,Z_re_Ohm,Z_im_Ohm\n0.5,1000,40,-8\n0.5,100,nan,-9\n")
    with pytest.raises(DataError, match=r"line 3: column 'Z_re_Ohm' holds 'nan'"):
        io.read(path)


# --- outputs: atomic files, lock, unreadable fits, unwritable folders ---------------------------------------


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "fits" / "h.nc"
    tree = xr.DataTree(xr.Dataset({"x": ("a", np.arange(3.0))}))
    inference.save(tree, target)
    before = target.read_bytes()

    def full_disk(self, path, **kwargs):
        Path(path).write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(xr.DataTree, "to_netcdf", full_disk)
    with pytest.raises(OSError):
        inference.save(tree, target)
    assert target.read_bytes() == before and sorted(p.name for p in target.parent.iterdir()) == ["h.nc"]


def test_unreadable_saved_fit_is_named_and_skipped(tmp_path):
    bad = tmp_path / "fits" / "ocv" / "h.nc"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"CDF\x01 truncated")
    lines = []
    assert fits.cached(tmp_path, "key", lines.append) == (None, None)
    assert len(lines) == 1 and str(bad) in lines[0] and "fitted again" in lines[0]


def test_second_run_into_a_folder_waits_for_the_first(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from mgbayes import files
        from pathlib import Path
        with files.lock({str(tmp_path)!r}):
            print("held", flush=True)
            time.sleep(1.5)
            Path({str(tmp_path / "finished")!r}).write_text("yes")
        """)], stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert holder.stdout.readline().strip() == "held"
    lines = []
    with files.lock(tmp_path, log=lines.append):
        assert (tmp_path / "finished").exists()  # it held the folder until it was done
    assert len(lines) == 1 and f"pid {holder.pid}" in lines[0] and "waiting" in lines[0]
    holder.wait()


def test_full_or_read_only_output_folder_is_found_before_sampling(tmp_path, monkeypatch, capsys):
    root = tmp_path / "s"
    root.mkdir()
    write_small_study(root, times_h=[0.5, 5], title="t")

    def no_sampling(*args, **kwargs):
        raise AssertionError("sampled")

    monkeypatch.setattr(inference, "fit", no_sampling)
    monkeypatch.setattr(files.shutil, "disk_usage", lambda folder: SimpleNamespace(free=5 << 20))
    assert cli.main(["run", str(root / "study.toml"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "has only 5 MiB free" in err and err.count("\n") == 1
    monkeypatch.undo()
    monkeypatch.setattr(inference, "fit", no_sampling)

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(files, "write_atomic", read_only)
    with pytest.raises(OutputError, match="Read-only file system"):
        study.run(root / "study.toml", tmp_path / "out2")


# --- names become path components only after a check --------------------------------------------------


@pytest.mark.parametrize("name", ["../../x", "/tmp/abs", "a/b", "..", "", "a\\b"])
def test_bad_experiment_names_are_refused(tmp_path, name, capsys):
    root = tmp_path / "s"
    root.mkdir()
    write_small_study(root, times_h=[0.5, 5], title="t")
    text = (root / "study.toml").read_text().replace('name = "ocv"', f"name = {name!r}".replace("'", '"')
                                                     if "\\" not in name else "name = 'a\\b'")
    (root / "study.toml").write_text(text)
    assert cli.main(["run", str(root / "study.toml"), "--out", str(root / "out")]) == 2
    err = capsys.readouterr().err
    assert "experiment name" in err and err.count("\n") == 1
    assert not (root / "out").exists() and not (tmp_path / "x").exists()


def test_bad_hypothesis_and_cell_names_are_refused(tmp_path):
    text = CT.read_text().replace('name = "charge_transfer"', 'name = "../evil"')
    (tmp_path / "h.toml").write_text(text)
    with pytest.raises(HypothesisError, match="hypothesis name '../evil'"):
        hypotheses.load(tmp_path / "h.toml")
    (tmp_path / "cells").mkdir()
    (tmp_path / "cells" / "a.mpt").write_text("x")
    (tmp_path / "cells.csv").write_text("file,cell\ncells/a.mpt,../a\n")
    from mgbayes import cells

    with pytest.raises(HypothesisError, match="cell name '../a'"):
        cells.read_cells("cells", "cells.csv", base=tmp_path)


# --- every user mistake: one line on stderr, exit status 2 ---------------------------------------------


@pytest.mark.parametrize("extra", [["--draws", "0"], ["--chains", "0"], ["--draws", "-3"]])
def test_non_positive_counts_on_the_command_line(extra, capsys):
    assert cli.main(["fit", "nowhere.mpt", "--circuit", "R0-p(R1,C1)", *extra]) == 2
    err = capsys.readouterr().err
    assert extra[0] in err and "positive" in err and err.count("\n") == 1


def test_compare_with_one_circuit_is_refused_before_sampling(monkeypatch, capsys):
    monkeypatch.setattr(inference, "fit", lambda *a, **k: pytest.fail("sampled"))
    assert cli.main(["compare", str(ROOT / "tests" / "data" / "ocv_drift_long.csv"), "--circuit", "R0-p(R1,C1)"]) == 2
    err = capsys.readouterr().err
    assert "at least two --circuit" in err and err.count("\n") == 1


def _study_with(root, replace=None, append=""):
    write_small_study(root, times_h=[0.5, 5], title="t")
    text = (root / "study.toml").read_text()
    for old, new in (replace or {}).items():
        assert old in text
        text = text.replace(old, new)
    (root / "study.toml").write_text(text + append)
    return root / "study.toml"


@pytest.mark.parametrize("replace, append, message", [
    ({"draws = 200": "draws = -5"}, "", "draws = -5"),
    ({"draws = 200": 'draws = "200"'}, "", "draws = '200'"),
    ({"chains = 2": "chains = 0"}, "", "chains = 0"),
    ({'data = "cell.mpt"': "data = 5"}, "", "data = 5"),
    ({"area_cm2 = 1.131": 'area_cm2 = "big"'}, "", "area_cm2 = 'big'"),
    ({}, 'information = ["info.toml"]\n', "info.toml: not valid TOML"),
    ({}, 'decimal = ";"\n', "decimal = ';'"),
])
def test_study_file_mistakes_are_one_line(tmp_path, replace, append, message, capsys, monkeypatch):
    monkeypatch.setattr(inference, "fit", lambda *a, **k: pytest.fail("sampled"))
    path = _study_with(tmp_path, replace, append)
    (tmp_path / "info.toml").write_text("[priors\nR_el = 3")
    assert cli.main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1, err


def test_experiment_as_a_string_non_utf8_files_and_a_folder_as_study(tmp_path, capsys):
    cases = []
    (tmp_path / "a.toml").write_text('title = "x"\nexperiment = "oops"\n')
    cases.append((tmp_path / "a.toml", "[[experiment]] tables"))
    (tmp_path / "b.toml").write_bytes('title = "Mg–Mg"\n'.encode("cp1252", errors="replace") + b"\xe9\n")
    cases.append((tmp_path / "b.toml", "not UTF-8"))
    cases.append((tmp_path, "is a folder"))
    root = tmp_path / "s"
    root.mkdir()
    path = _study_with(root)
    (root / "hyp" / "constant.toml").write_bytes((root / "hyp" / "constant.toml").read_bytes() + b"# \xe9\xff\n")
    cases.append((path, "constant.toml: not UTF-8"))
    for path, message in cases:
        assert cli.main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (path, err)


def test_warnings_are_one_line_without_a_source_line(monkeypatch, capsys):
    def warn_then_fail(*args, **kwargs):
        warnings.warn("R-hat 1.31 for R_ct", ConvergenceWarning, stacklevel=2)
        raise MgbayesError("stop")

    monkeypatch.setattr(io, "read", warn_then_fail)
    assert cli.main(["fit", "x.mpt", "--circuit", "R0"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["mgbayes: warning: R-hat 1.31 for R_ct", "mgbayes: error: stop"]


def _with_derived(expr):
    text = CT.read_text().replace("[derived]\n", f'[derived]\nbad = {{ expr = "{expr}", unit = "" }}\n')
    return hypotheses.from_table(__import__("tomllib").loads(text), path="ct_bad.toml", text=text)


@pytest.mark.parametrize("expr", ["1 / 0", "10 ** 10 ** 10", "log(R_el - R_el)"])
def test_failing_derived_expressions_are_found_before_sampling(expr, monkeypatch):
    h = _with_derived(expr)
    series = simulate.spectra(hypotheses.load(CT), {"R_el": 30.0, "R_ct_0": 2e4, "R_ct_rate": 0.45,
                                                    "CPE_dl_T": 4e-5, "CPE_dl_P": 0.9},
                              times_h=[0.5, 5], frequency=simulate.frequency_grid(1e5, 0.05, 3), seed=1)
    monkeypatch.setattr(inference, "sample", lambda *a, **k: pytest.fail("sampled"))
    with pytest.raises(HypothesisError, match=r"ct_bad\.toml \[derived\.bad\]"):
        inference.fit(h, series)


def test_text_in_an_expression_is_refused_when_loading():
    with pytest.raises(HypothesisError, match="only numbers"):
        _with_derived("'abc' * 1")


def test_derived_quantity_failing_for_a_fit_is_missing_not_fatal():
    h = _with_derived("1 / 0")
    tree = xr.DataTree()
    with pytest.warns(UserWarning, match="bad"):
        derived = inference._derive(tree, h, {"R_el": np.ones((4, 1))})
    assert derived == {} and "bad" in tree.attrs["derived_missing"]
    fine = _with_derived("2 * R_el")
    assert fine.derive({"R_el": np.ones(3)}, missing={})["bad"].tolist() == [2.0, 2.0, 2.0]


# --- remote schedulers only when the command line says so -------------------------------------------------


def test_remote_scheduler_in_a_study_file_needs_the_command_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(inference, "fit", lambda *a, **k: pytest.fail("sampled"))
    path = _study_with(tmp_path)
    path.write_text('scheduler = "tcp://203.0.113.9:8786"\n' + path.read_text())
    assert cli.main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "remote Dask scheduler" in err and "--scheduler" in err and err.count("\n") == 1
    assert parallel.is_remote("tcp://h:1") and not parallel.is_remote("local") and not parallel.is_remote(None)


# --- concurrency and worker processes (slow: real runs) ------------------------------------------------------


def _run_cli(args, **kwargs):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "mgbayes.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT, **kwargs)


@pytest.mark.slow
def test_ctrl_c_stops_a_run_at_once_and_saves_no_partial_fit(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONUNBUFFERED", "1")
    second = '[[experiment]]\nname = "other"\ndata = "cell.mpt"\narea_cm2 = 2.0\nsymmetric = true\nhypotheses = "hyp"\n'
    path = _study_with(tmp_path, {"draws = 200": "draws = 50000"}, second)  # fits far longer than the wait below
    out = tmp_path / "out"
    run = _run_cli(["run", str(path), "--out", str(out)], start_new_session=True,
                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as from a terminal
    for line in run.stdout:
        if "sampling 4 fit(s)" in line:
            break
    time.sleep(5)  # two fits compiling or sampling in the pool's workers
    os.killpg(run.pid, signal.SIGINT)  # Ctrl-C reaches the whole process group
    assert run.wait(timeout=300) == 130 and "interrupted" in run.stderr.read()
    assert not list((out / "fits").glob("*/*.nc"))  # PyMC returns the draws it has; none is kept as a fit


@pytest.mark.slow
def test_concurrent_runs_into_one_folder_then_a_third_reuses_the_fits(tmp_path):
    path = _study_with(tmp_path, {"draws = 200": "draws = 40", "tune = 300": "tune = 40"})
    out = tmp_path / "out"
    runs = [_run_cli(["run", str(path), "--out", str(out)]) for _ in range(2)]  # two runs at once, then a third alone
    results = [(r.wait(timeout=600), *r.communicate()) for r in runs]
    assert all(rc == 0 for rc, _, _ in results), results
    sampled = sum("sampling" in stdout for _, stdout, _ in results)
    assert sampled == 1, [stdout for _, stdout, _ in results]  # the second run waited for the first and reused its fits
    for name in ("charge_transfer", "no_drift"):
        assert inference.load(out / "fits" / "ocv" / f"{name}.nc").attrs["input_hash"]
    assert sorted(p.name for p in (out / "fits" / "ocv").iterdir()) == ["charge_transfer.nc", "no_drift.nc"]
    third = _run_cli(["run", str(path), "--out", str(out)])
    stdout, stderr = third.communicate(timeout=600)
    assert third.returncode == 0 and stdout.count("inputs unchanged, reusing") == 2 and "sampling" not in stdout


def _descendants(pid):
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _alive(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def sleep(*, seconds):
    """A fit that only waits (for the process-pool test below)."""
    time.sleep(seconds)


WORKER_SCRIPTS = {
    "chains": """
        import numpy as np, pymc as pm
        from mgbayes import sampler
        with pm.Model() as model:
            pm.Normal("x")
        print("sampling", flush=True)
        sampler.sample(model, draws=10**7, tune=10, chains=2, cores=2, rng=np.random.default_rng(1))
        """,
    "fits": """
        from mgbayes import parallel
        from tests.test_hardening import sleep
        print("sampling", flush=True)
        parallel.map_fits({"a": (sleep, {"seconds": 600}), "b": (sleep, {"seconds": 600})}, workers=2)
        """,
}


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux only")
@pytest.mark.parametrize("kind", list(WORKER_SCRIPTS))
def test_workers_die_with_a_killed_parent(kind):
    script = textwrap.dedent(WORKER_SCRIPTS[kind])
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT), "MGBAYES_CACHE": "0"})
    workers = []
    try:
        assert parent.stdout.readline().strip() == "sampling"
        deadline = time.monotonic() + 300
        while len(workers) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
            workers = [p for p in _descendants(parent.pid) if _alive(p)]
        assert len(workers) >= 2, "no worker processes started"
        time.sleep(1.0)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 20
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [p for p in workers if _alive(p)]
    finally:
        for p in workers:  # only the processes this test started
            if _alive(p):
                os.kill(p, signal.SIGKILL)
        if parent.poll() is None:
            parent.kill()
