"""Load an export in a fresh Python process where searchlab cannot be imported: torch, numpy, model.py only."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

SCRIPT = r"""
import json, sys
sys.modules["searchlab"] = None          # any `import searchlab` now fails
sys.path.insert(0, sys.argv[1])
import numpy as np, torch
import model
net, config = model.load(sys.argv[1])
images = torch.from_numpy(np.load(sys.argv[2])["test_images"][:, None].copy())
print(json.dumps(model.predict_proba(net, config, images).tolist()))
"""


def predict_without_searchlab(export_dir: Path, npz: Path, path: tuple[Path, ...] = ()) -> np.ndarray:
    """The export's test-set probabilities, computed by a torch-only process (`path`: folders of user modules
    the export's model.py may import, e.g. an NNI model space)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(str(p) for p in path))
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(export_dir), str(npz)], capture_output=True, text=True,
                         cwd=export_dir.parent, check=True, env=env)
    return np.array(json.loads(out.stdout))
