"""A script that runs a study with worker processes must guard its call with `if __name__ == "__main__":`:
spawned workers import the script again (multiprocessing's rule), and an unguarded call started the whole run
once more in each."""
from __future__ import annotations

import ast
import multiprocessing
import sys
from pathlib import Path

from searchlab.errors import SearchlabError

UNGUARDED = ("executor.workers > 1 (or budget.trial_timeout) start new Python processes that import your script, "
             "and each would run this call again. Fix: put the call under `if __name__ == \"__main__\":`")


def refuse_an_unguarded_script() -> None:
    """Worker processes are spawned: each imports the script that runs the study (as `__mp_main__`). A script
    calling searchlab at its top level without the `__name__` guard started the whole run again in each, whose
    own start of workers multiprocessing refused with a 20-line RuntimeError; the run ended "no trials"."""
    if getattr(multiprocessing.current_process(), "_inheriting", False):   # in such a worker: the parent is told
        raise SystemExit(f"error: {UNGUARDED}")                              # by its exit, and this on stderr
    where = _unguarded_call_in_main()
    if where is not None:
        raise SearchlabError(f"{where}: {UNGUARDED}")


def _unguarded_call_in_main() -> str | None:
    """"file:line" of the top-level statement of the script `__main__` that called this, when no `if` on
    `__name__` guards it and a spawned process would run that script again; else None (a notebook, `python -c`,
    `python -m package`, a call from a guarded block, a script whose source cannot be read)."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    module = getattr(getattr(main, "__spec__", None), "name", None)
    # what multiprocessing's spawn runs again in a new process (multiprocessing/spawn.py: get_preparation_data,
    # _fixup_main_from_name, _fixup_main_from_path)
    if module is not None and (module == "__main__" or module.endswith(".__main__")):
        return None
    if main is None or path is None or (module is None and Path(path).stem == "ipython"):
        return None
    frame = sys._getframe()
    top = None
    while frame is not None:   # the script's own top-level code, as it runs
        if frame.f_globals is vars(main) and frame.f_code.co_name == "<module>":
            top = frame
        frame = frame.f_back
    if top is None:
        return None
    try:
        tree = ast.parse(Path(path).read_text())
    except (OSError, SyntaxError, ValueError):
        return None
    if _guarded(tree, top.f_lineno):
        return None
    return f"{path}:{top.f_lineno}"


def _guarded(tree: ast.Module, line: int) -> bool:
    """Is the statement at `line` inside an `if` whose test reads `__name__`?"""
    return any(isinstance(node, ast.If) and node.lineno <= line <= (node.end_lineno or node.lineno)
               and any(isinstance(name, ast.Name) and name.id == "__name__" for name in ast.walk(node.test))
               for node in ast.walk(tree))
