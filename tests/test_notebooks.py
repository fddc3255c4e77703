"""The worked-analysis notebooks run top to bottom (with fewer draws)."""

import json
import os
from pathlib import Path

import matplotlib
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
FILES = Path(__file__).resolve().parents[2] / "shared" / "data" / "instrument-files"


def test_notebooks_are_up_to_date_with_their_source():
    import runpy
    import tempfile

    source = Path(__file__).resolve().parents[1] / "notebooks" / "_make.py"
    module = runpy.run_path(str(source))
    with tempfile.TemporaryDirectory():
        for path, cells in zip(NOTEBOOKS, (module["OCV"], module["PLATING"], module["BYOD"], module["CALIBRATION"])):
            assert json.loads(path.read_text()) == module["notebook"](cells), f"{path.name}: run notebooks/_make.py"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, monkeypatch):
    if "own_data" in path.stem and not FILES.is_dir():
        pytest.skip(f"instrument files not found at {FILES}")
    matplotlib.use("Agg")
    monkeypatch.setenv("MGBAYES_NOTEBOOK_QUICK", "1")
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    namespace = {"__name__": "__main__"}
    for k, cell in enumerate(cells):
        source = "".join(cell["source"])
        try:
            exec(compile(source, f"{path.name}[cell {k}]", "exec"), namespace)
        except Exception as err:  # name the cell that failed
            raise AssertionError(f"{path.name}, code cell {k} failed: {err!r}\n{source}") from err
    assert os.environ["MGBAYES_NOTEBOOK_QUICK"] == "1"
