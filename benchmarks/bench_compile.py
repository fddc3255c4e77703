"""Benchmark 5: what compiling one model's log density costs a first run, and the backends it could use.

Each model is compiled in a fresh process whose PyTensor folder
(``base_compiledir``, which holds PyTensor's Numba kernels) starts empty, so
nothing of an earlier run is loaded; mgbayes's density cache is off. Printed
per model: graph rewriting (``model.logp_dlogp_function``, what mgbayes's
density cache saves a warm run) and the Numba JIT (the first call: what
PyTensor's kernel cache saves), then the same model compiled again in
another fresh process with the same, now filled, PyTensor folder (the warm
baseline). ``--backends`` also compiles the first model with PyTensor's C
backend (``CVM``) and reports both backends' first-call and per-evaluation
times; the ratios are against Numba, measured in the same run.

    python benchmarks/bench_compile.py                      # the three OCV hypotheses, in one folder
    python benchmarks/bench_compile.py --backends plating_iv/two_channel.toml
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OCV = ["ocv_drift/charge_transfer.toml", "ocv_drift/film.toml", "ocv_drift/mixed.toml"]


def child(name, mode, repeats):
    """Compile ``name``'s density with ``mode`` here; print seconds as JSON."""
    import pytensor
    from pymc.blocking import DictToArrayBijection

    import mgbayes
    from mgbayes import demo, inference, resources, sampler, study

    family = mgbayes.load(resources.models_dir() / name).family
    experiment = next(e for e in study.load_study(demo.STUDY).experiments if e.name == family)
    hyps, data = study.prepare(experiment, log=lambda line: None)  # as the demo fits it
    h = next(h for h in hyps if Path(h.path).name == Path(name).name)
    model, _ = inference.build_model(h, data)
    with pytensor.config.change_flags(**sampler.EXACT_ARITHMETIC):
        start = time.perf_counter()
        fn = model.logp_dlogp_function(ravel_inputs=True, trust_input=True, mode=mode)
        rewrite = time.perf_counter() - start
        point = model.initial_point()
        x = DictToArrayBijection.map({v.name: point[v.name] for v in model.value_vars}).data
        start = time.perf_counter()
        fn(x)
        first = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(repeats):
            fn(x)
        per_eval = (time.perf_counter() - start) / repeats
    print(json.dumps({"rewrite": rewrite, "first_call": first, "per_eval_ms": 1e3 * per_eval}))


def run(name, folder, mode="NUMBA", repeats=200):
    """One compile in a fresh process with PyTensor's folder ``folder``; returns the child's numbers."""
    env = dict(os.environ, PYTENSOR_FLAGS=f"base_compiledir={folder}", MGBAYES_CACHE="0", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, __file__, "--child", name, "--mode", mode, "--repeats", str(repeats)],
                          env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"bench_compile: compiling {name} ({mode}) failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=OCV, help="hypothesis files under models/ (compiled in order)")
    parser.add_argument("--backends", action="store_true", help="also compile the first model with the C backend")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="NUMBA", help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=200, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.mode, args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "pytensor"
        print("model  rewriting s  Numba JIT s (cold: kernels of the models above cached)  warm JIT s  per eval ms")
        for name in args.models:
            cold = run(name, folder)
            warm = run(name, folder)
            print(f"{name}  {cold['rewrite']:.1f}  {cold['first_call']:.1f}  {warm['first_call']:.2f}  "
                  f"{warm['per_eval_ms']:.3f}")
        if args.backends:
            name = args.models[0]
            numba = run(name, Path(tmp) / "numba_only")
            c = run(name, Path(tmp) / "c_only", mode="CVM", repeats=50)
            for label, r in (("Numba", numba), ("C (CVM)", c)):
                print(f"{name} {label}: compile + first call {r['rewrite'] + r['first_call']:.1f} s, "
                      f"{r['per_eval_ms']:.3f} ms per logp + gradient")
            print(f"C / Numba: compile {(c['rewrite'] + c['first_call']) / (numba['rewrite'] + numba['first_call']):.2f}x,"
                  f" per evaluation {c['per_eval_ms'] / numba['per_eval_ms']:.2f}x")


if __name__ == "__main__":
    main()
