"""The ``mgbayes`` command.

    mgbayes demo [--out DIR] [--quick]           the paper's study on shipped data
    mgbayes run STUDY.toml [--out DIR] [--quick] the same for your own study file
        [--scheduler processes|serial|local|ADDRESS] [--workers N]   where the fits run (demo too)
    mgbayes fit FILE --circuit STR [--out DIR]   Bayesian fit of one circuit
    mgbayes compare FILE --circuit A --circuit B [--out DIR]   rank circuits by PSIS-LOO
    mgbayes calibrate STUDY.toml [--replicates N] [--experiment NAME] [--from posterior|prior]
        how often each experiment's verdict is right, on data simulated from each hypothesis
    mgbayes design STUDY.toml [--replicates N]  which measurement would separate tied hypotheses
    mgbayes --version

Errors a user can make end with one line on stderr and exit status 2;
Ctrl-C stops with status 130.
"""

import argparse
import shlex
import sys
import warnings
from pathlib import Path

from .errors import MgbayesError


def _parser():
    from . import __version__

    p = argparse.ArgumentParser(prog="mgbayes", description="Bayesian hypothesis testing on electrochemical data.")
    p.add_argument("--version", action="version", version=f"mgbayes {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the paper's whole study on the shipped demo data")
    demo.add_argument("--out", default="mgbayes-demo", help="output folder (default: mgbayes-demo)")
    demo.add_argument("--quick", action="store_true", help="fewer draws for a fast look (marked on every output)")
    demo.add_argument("--scheduler", default=None, help="as for 'run': processes (default), serial, local or ADDRESS")
    demo.add_argument("--workers", type=int, default=None, help="local worker processes (default: all CPUs)")
    run = sub.add_parser("run", help="run a study file")
    run.add_argument("study", help="study TOML file (see models/studies/paper.toml)")
    run.add_argument("--out", default=None, help="output folder (default: STUDY_results)")
    run.add_argument("--quick", action="store_true", help="fewer draws for a fast look")
    run.add_argument("--scheduler", default=None,
                     help="where the fits run: 'processes' (default, a local pool, chains one after another "
                          "per fit), 'serial' (one fit after another, chains in parallel; the same draws), "
                          "'local' (a Dask LocalCluster) or a Dask scheduler address")
    run.add_argument("--workers", type=int, default=None, help="local worker processes (default: all CPUs)")
    for name, text in (("calibrate", "how often the verdict is right on data simulated from each hypothesis"),
                       ("design", "rank candidate measurements by how often they make a tied verdict decisive")):
        c = sub.add_parser(name, help=text)
        c.add_argument("study", help="study TOML file")
        c.add_argument("--out", default=None, help=f"output folder (default: STUDY_{name})")
        c.add_argument("--replicates", type=int, default=20 if name == "calibrate" else 10,
                       help="simulated data sets per generating hypothesis (and candidate)")
        c.add_argument("--experiment", default=None, help="only this experiment")
        c.add_argument("--quick", action="store_true", help="fewer draws for a fast look")
        c.add_argument("--scheduler", default=None, help="as for 'run': processes (default), serial, local or ADDRESS")
        c.add_argument("--workers", type=int, default=None, help="local worker processes (default: all CPUs)")
        for key in ("draws", "tune", "chains"):
            c.add_argument(f"--{key}", type=int, default=None,
                           help=f"{key} of every replicate fit (default: the study's, or --quick's)")
        if name == "design":
            c.add_argument("--candidates", nargs="+", default=None, metavar="NAME",
                           help="try only these candidates (and 'as measured'); default: all")
            c.add_argument("--between", nargs="+", default=None, metavar="HYPOTHESIS",
                           help="the hypotheses to separate; default: those the study's data leave tied")
        if name == "calibrate":
            c.add_argument("--from", dest="source", default="posterior", choices=["posterior", "prior"],
                           help="draw generators' parameters from their posterior on the study's data (default) "
                                "or from their prior (adds simulation-based calibration)")
    for name, text in (("fit", "Bayesian fit of one circuit to a spectrum or series"),
                       ("compare", "rank several circuits by PSIS-LOO")):
        c = sub.add_parser(name, help=text)
        c.add_argument("file", help="impedance file (any format mgbayes.io.read knows)")
        c.add_argument("--circuit", action="append", required=True, help="circuit string, e.g. 'R0-p(R1,CPE1)'")
        c.add_argument("--area", type=float, default=None, help="electrode area in cm2")
        c.add_argument("--symmetric", action="store_true", help="symmetric cell: two electrodes in series")
        c.add_argument("--draws", type=int, default=1000)
        c.add_argument("--chains", type=int, default=4)
        c.add_argument("--seed", type=int, default=1)
        c.add_argument("--unit", default="point", choices=["point", "spectrum"])
        c.add_argument("--format", default=None, help="file format when it cannot be guessed (see mgbayes.io.FORMATS)")
        c.add_argument("--flip-imag", action="store_true", help="the file's imaginary column is -Im(Z): negate it")
        c.add_argument("--out", default=None,
                       help="output folder: results (fits/*.nc), tables, figures and report, as 'mgbayes run' writes")
    return p


#: Python keyword arguments named in library messages → the command's options.
_OPTIONS = (("pass flip_imag=True to mgbayes.io.read", "add --flip-imag"), ("pass format=", "pass --format"),
            ("flip_imag=True", "--flip-imag"), ("area_cm2", "--area"))


def _cli_words(message):
    """A library message in the command's words: options instead of Python arguments."""
    for python, option in _OPTIONS:
        message = message.replace(python, option)
    return message


def _log(message):
    print(message, flush=True)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """Warnings as one line on stderr, without the source line that raised them."""
    print(f"mgbayes: warning: {message}", file=sys.stderr if file is None else file)


def _check_counts(args):
    """Counts on the command line must be positive (before anything is read or sampled)."""
    for name in ("draws", "chains", "workers"):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            raise MgbayesError(f"--{name} {value}: must be a positive whole number")
    if args.command == "compare" and len(args.circuit) < 2:
        raise MgbayesError("compare needs at least two --circuit options")


def main(argv=None):
    """Entry point of the ``mgbayes`` console command."""
    args = _parser().parse_args(argv)
    command = "mgbayes " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        return _main(args, command)


def _main(args, command):
    try:
        _check_counts(args)
        if args.command in ("demo", "run"):
            return _run_study(args, command)
        if args.command in ("calibrate", "design"):
            return _calibrate(args, command)
        return _circuits(args)
    except MgbayesError as err:
        line = str(err).splitlines()[0]
        # fit/compare take Python's arguments as options; a study file's keys are the user's own words
        print(f"mgbayes: error: {_cli_words(line) if args.command in ('fit', 'compare') else line}", file=sys.stderr)
        return 2
    except FileNotFoundError as err:
        print(f"mgbayes: error: file not found: {err.filename}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nmgbayes: interrupted; finished fits are kept and reused on the next run", file=sys.stderr)
        return 130


def _run_study(args, command):
    from . import study
    from .demo import STUDY

    path = STUDY if args.command == "demo" else Path(args.study)
    out = Path(args.out or f"{Path(args.study).stem}_results")
    comparisons = study.run(path, out, quick=args.quick, log=_log, command=command,
                            scheduler=getattr(args, "scheduler", None), workers=getattr(args, "workers", None))
    return 0 if comparisons is not None else 1


def _calibrate(args, command):
    from . import calibrate, design

    out = Path(args.out or f"{Path(args.study).stem}_{args.command}")
    options = {"replicates": args.replicates, "experiment": args.experiment, "scheduler": args.scheduler,
               "workers": args.workers, "quick": args.quick, "log": _log, "command": command,
               "sampler": {k: getattr(args, k) for k in ("draws", "tune", "chains") if getattr(args, k) is not None}}
    if args.command == "calibrate":
        calibrate.run(args.study, out, source=args.source, **options)
    else:
        design.run(args.study, out, only=args.candidates, hypotheses=args.between, **options)
    return 0


def _circuits(args):
    import warnings

    import numpy as np

    from . import api, compare, io
    from .diagnostics import ConvergenceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", io.DataWarning)
        try:
            data = io.read(args.file, format=args.format, area_cm2=args.area, symmetric=args.symmetric,
                           flip_imag=args.flip_imag)
        finally:  # a warning before an error is still shown
            for w in caught:
                print(f"mgbayes: warning: {_cli_words(str(w.message))}", file=sys.stderr)
    results = {}
    for k, text in enumerate(args.circuit, start=1):
        h = api.hypothesis(text)
        _log(f"[{k}/{len(args.circuit)}] {text}: sampling {args.chains} chains × at most {args.draws} draws "
             f"({api.inference.TUNE} tuning) ...")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # its text is printed below
            idata = api.fit(h, data, draws=args.draws, chains=args.chains, seed=args.seed,
                            progressbar=sys.stderr.isatty())
        results[text] = idata
        _log(idata.attrs["diagnostics"])
        post = idata["posterior"]
        for name in h.free_parameters() + ["noise_sigma"]:
            q = np.quantile(post[name].values, [0.03, 0.5, 0.97])
            _log(f"  {name:<14} {q[1]:12.5g}  [{q[0]:.5g}, {q[2]:.5g}] {post[name].attrs.get('unit', '')}")
    comparison = None
    if args.command == "compare":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", compare.ParetoKWarning)  # the verdict says it
            comparison = compare.compare(results, unit=args.unit)
        _log(_comparison_text(comparison))
    if args.out:
        _write_circuits(args, data, results, comparison)
    return 0


def _comparison_text(comparison):
    """The comparison table with the circuits as row names."""
    cols = ["hypothesis", "rank", "elpd_loo", "se", "elpd_diff", "dse", "weight", "verdict"]
    table = comparison.table.reset_index(drop="hypothesis" in comparison.table.columns)
    table = table.rename(columns={"index": "hypothesis"})
    return (f"{comparison.method}\n{table[[c for c in cols if c in table]].to_string(index=False)}\n"
            f"{comparison.verdict}\nRule: {comparison.rule}")


def _write_circuits(args, data, results, comparison):
    """Results, tables, figures and report of ``fit``/``compare``, laid out as a study run's."""
    import re

    from . import inference, outputs, study

    out = Path(args.out)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(args.file).stem)
    experiment = study.Experiment(name=name, data_path=Path(args.file).resolve(), hypothesis_paths=[],
                                  information={}, unit=args.unit, area_cm2=args.area, symmetric=args.symmetric,
                                  description=f"Circuits fitted to {args.file}.")
    for text, idata in results.items():
        inference.save(idata, out / "fits" / name / (re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") + ".nc"))
    title = f"{' vs '.join(results)} on {Path(args.file).name}"
    the_study = study.Study(path=Path(args.file), title=title, experiments=[experiment])
    comparisons = {name: comparison} if comparison is not None else {}
    if comparison is not None:
        comparison.experiment = comparison.table["experiment"] = name
    outputs.write_all(the_study, out, {name: results}, {name: data}, comparisons, command=" ".join(
        ["mgbayes", *map(shlex.quote, sys.argv[1:])]), log=_log)


if __name__ == "__main__":
    sys.exit(main())
