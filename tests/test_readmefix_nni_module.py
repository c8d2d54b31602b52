"""An NNI export's model.py rebuilds the network by importing the user's space module: loaded where that module
is not on the path, it ended in a bare "ModuleNotFoundError: No module named 'nni_spaces'". It now names the
module, the export folder and the fix; a package the user's module itself lacks is still named as it was."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("nni")

from searchlab.config.load import load_study  # noqa: E402
from searchlab.engine.run import run_study  # noqa: E402
from searchlab.export.exporter import export_run  # noqa: E402
from test_nni_bridge import STUDY  # noqa: E402

LOAD = r"""
import sys
sys.modules["searchlab"] = None          # model.py alone, as a user without searchlab loads it
sys.path.insert(0, sys.argv[1])
import model
model.load(sys.argv[1])
"""


def test_an_export_loaded_without_its_space_module_says_where_to_put_it(write_study, tmp_path):
    one = STUDY.replace("STRATEGY", "random").replace("n_trials: 4", "n_trials: 1")
    run_study(load_study(write_study(one)), progress=False)
    best = tmp_path / "best"
    export_run(tmp_path / "run", best)
    env = {**os.environ, "PYTHONPATH": ""}   # tests/, which holds nni_spaces.py, is not on the path
    done = subprocess.run([sys.executable, "-c", LOAD, str(best)], capture_output=True, text=True, cwd=tmp_path,
                          env=env, timeout=120)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ModuleNotFoundError: the NNI model space 'nni_spaces:TinySpace' is rebuilt by "
                           "importing its module 'nni_spaces', which is not importable here")
    assert f"(export {best})" in last
    assert "Fix: put the folder holding nni_spaces.py on sys.path" in last and "PYTHONPATH" in last


def test_a_package_the_space_module_itself_lacks_keeps_its_own_name(tmp_path, monkeypatch):
    from searchlab.models import nni_model
    from searchlab.models.nni_model import nni_space_instance
    from searchlab.nni_space import allow_nni_space

    monkeypatch.setattr(nni_model, "_nni_allowed_spaces", set(nni_model._nni_allowed_spaces))   # others unchanged
    (tmp_path / "space_needing_more.py").write_text("import no_such_package_for_readmefix\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    allow_nni_space("space_needing_more:Space")
    with pytest.raises(ModuleNotFoundError) as caught:
        nni_space_instance("space_needing_more:Space", {}, in_channels=1, num_outputs=2)
    assert caught.value.name == "no_such_package_for_readmefix"
    assert str(caught.value) == "No module named 'no_such_package_for_readmefix'"
