"""Finding a run's study from its directory (or its study file) for export, status and dashboard."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna

from searchlab.engine.storage import open_storage
from searchlab.errors import SearchlabError, StorageError

if TYPE_CHECKING:
    from searchlab.config.load import Study

MANIFEST = "searchlab.json"


def write_manifest(study: "Study") -> None:
    """The run directory names its storage, so `export RUN`, `status RUN` and `dashboard RUN` find it."""
    manifest = {"study_name": study.config.name, "storage": absolute_url(study.storage_url),
                "artifacts": str((study.run_dir / "artifacts").resolve())}
    (study.run_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def absolute_url(url: str) -> str:
    """File storages are recorded with absolute paths, so the run works from any current directory."""
    for scheme in ("sqlite:///", "journal://"):
        if url.startswith(scheme) and not url.startswith(scheme + "/"):
            return scheme + str(Path(url.removeprefix(scheme)).resolve())
    return url


@dataclass(frozen=True)
class OpenRun:
    run_dir: Path
    study: optuna.Study
    storage_url: str
    artifacts: Path

    @property
    def record(self) -> dict[str, Any]:
        """What `run` stored in the study about itself (data config, objectives, seed ...)."""
        record = self.study.user_attrs.get("searchlab")
        if not isinstance(record, dict):
            raise StorageError(f"study '{self.study.study_name}' was not created by searchlab run (no 'searchlab' "
                               "user attribute)")
        return record


def open_run(target: str | Path) -> OpenRun:
    """`target` is a run directory, or a study file whose run directory is looked up."""
    target = Path(target)
    run_dir = target if target.is_dir() else _run_dir_of_study_file(target)
    manifest_path = run_dir / MANIFEST
    if not manifest_path.is_file():
        found = sorted(p.name for p in run_dir.iterdir())[:10] if run_dir.is_dir() else []
        raise SearchlabError(f"'{run_dir}' holds no searchlab run (no {MANIFEST}; found: "
                             f"{', '.join(found) or 'nothing'}). Fix: pass the directory `searchlab run` "
                             "printed, e.g. runs/quickstart")
    try:
        manifest = json.loads(manifest_path.read_text())
        name, url = manifest["study_name"], manifest["storage"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise SearchlabError(f"{manifest_path} is damaged ({exc}). Fix: re-run `searchlab run` on the study file") \
            from None
    try:
        study = optuna.load_study(study_name=name, storage=open_storage(url))
    except KeyError:
        raise StorageError(f"storage {url} has no study named '{name}'") from None
    return OpenRun(run_dir, study, url, Path(manifest.get("artifacts", run_dir / "artifacts")))


def _run_dir_of_study_file(path: Path) -> Path:
    if not path.exists():
        raise SearchlabError(f"'{path}' does not exist. Fix: pass a run directory (e.g. runs/quickstart) or a "
                             "study file")
    from searchlab.config.load import load_study

    return load_study(path).run_dir
