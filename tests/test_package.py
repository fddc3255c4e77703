"""The wheel carries the hypotheses and the demo data, and they load from an install outside the repository."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CHECK = """
import json, sys
import mgbayes
from mgbayes import demo, hypotheses, resources, study
models = resources.models_dir()
import tomllib
loaded = []
for path in sorted(models.rglob("*.toml")):
    table = tomllib.loads(path.read_text())
    if "family" in table and "name" in table and path.parent.name != "studies":
        loaded.append(hypotheses.load(path).name)
    elif path.parent.name == "studies":
        study.load_study(path)
    else:  # an information file: priors or hard bounds another experiment adds, or numbers stated elsewhere
        assert table and set(table) <= {"priors", "bounds", "stated"}, path
paper = study.load_study(demo.STUDY)
data = {}
for experiment in paper.experiments:
    kind = study.load_hypotheses(experiment)[0].kind
    data[experiment.name] = len(study.load_data(experiment, kind))
print(json.dumps({"file": mgbayes.__file__, "models": str(models), "hypotheses": loaded,
                  "files": sorted(str(p.relative_to(models)) for p in models.rglob("*.toml")), "data": data}))
"""


@pytest.mark.slow
def test_installed_wheel_ships_every_hypothesis_and_the_demo_data(tmp_path):
    wheels = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(wheels), str(ROOT)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-2000:]
    site = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site),
                              *map(str, wheels.glob("mgbayes-*.whl"))], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-2000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "HOME": str(Path.home())}
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, cwd=elsewhere, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["file"].startswith(str(site)), found["file"]  # the installed copy, not the repository
    assert found["models"].startswith(str(site))
    shipped = sorted(str(p.relative_to(ROOT / "models")) for p in (ROOT / "models").rglob("*.toml"))
    assert found["files"] == shipped
    assert len(found["hypotheses"]) >= 9
    assert all(n > 0 for n in found["data"].values()) and len(found["data"]) >= 3
    version = subprocess.run([sys.executable, "-m", "mgbayes.cli", "--version"], capture_output=True, text=True,
                             cwd=elsewhere, env=env)
    assert version.returncode == 0 and version.stdout.startswith("mgbayes ")
