"""`searchlab run` imports what its study uses: scikit-learn and the exporter (~1-2 s each) only for an export after
the run or a classify task's metrics, SciPy's optimizer only for deepmad. Every run, every spawned worker and every
`searchlab run` of a plug-in task paid them at start."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from test_run import callable_study

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
# the CLI in this process, then the heavy modules it imported on the way
RUN_THEN_SAY = r"""
import sys
from searchlab.cli import main
code = main(["run", "--no-progress", sys.argv[1]])
print("imported:", sorted(m for m in ("sklearn", "scipy.optimize", "searchlab.export.exporter") if m in sys.modules))
sys.exit(code)
"""


def _imported(study: Path) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS)])}
    done = subprocess.run([sys.executable, "-c", RUN_THEN_SAY, str(study)], env=env, capture_output=True, text=True,
                          cwd=study.parent, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[-1]


def test_a_run_of_a_plug_in_task_without_an_export_imports_neither_scikit_learn_nor_scipys_optimizer(write_study):
    assert _imported(callable_study(write_study, n=2)) == "imported: []"


def test_a_run_that_exports_after_it_imports_the_exporter(write_study):
    study = callable_study(write_study, n=2, extra="export: {after_run: true}\n")
    assert "searchlab.export.exporter" in _imported(study)
