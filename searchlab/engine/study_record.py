"""A run's record in its study (the `searchlab` user attribute): what export and the report need later, kept in
the Optuna study itself. Moved out of engine/run.py, which imports it from here."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from searchlab.config.load import Study
from searchlab.engine.data_record import data_record
from searchlab.engine.setup_record import search_setup
from searchlab.errors import shown_text
from searchlab.tasks import budget_epochs_read
from searchlab.tasks.callable_task import code_digest

STUDY_TEXT_KEPT = 100_000   # characters: a study file is a page or two; this only bounds a stray huge one


def study_record(study: Study) -> dict[str, Any]:
    """What export and the report need later, kept in the Optuna study itself."""
    return {
        "study_file": str(study.file.resolve()),
        # as the run read it (the file may be edited later), and the space fragments it included, which a
        # rerun finds by name beside it, on $SEARCHLAB_PATH or in the checkout's spaces/ (any may have changed)
        "study_file_text": _study_text(study.file),
        "included_file_texts": {name: _study_text(Path(name)) for name in _included_files(study)},
        "base_dir": str(study.base_dir),
        **data_record(study),
        "objectives": [list(o) for o in study.objectives],
        "seed": study.config.seed,
        "epochs": budget_epochs_read(study),
        "task": study.config.task.model_dump(mode="json"),
        **({"task_code": code_digest(study.config.task.function)} if study.config.task.function else {}),
        "search": search_setup(study),
        "artifacts": str((study.run_dir / "artifacts").resolve()),
    }


def _included_files(study: Study) -> list[str]:
    """The fragment files the study's space included (config/yamlsrc.py Located.included), in order."""
    included = study.source.included if study.source is not None else {}
    return sorted({str(Path(file).resolve()) for file, _, _ in included.values()})


def _study_text(path: Path) -> str | None:
    """The study file's text, a password in it (its storage URL's) as ***: the record is served by the
    dashboard, which has no login, and read by anyone who can read the database."""
    try:
        return shown_text(path.read_text(encoding="utf-8", errors="replace")[:STUDY_TEXT_KEPT])
    except OSError:   # a study built in code, or its file since removed: the path alone is kept
        return None
