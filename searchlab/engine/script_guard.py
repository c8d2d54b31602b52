"""A script that runs a study with worker processes must guard its call with `if __name__ == "__main__":`:
spawned workers import the script again (multiprocessing's rule), and an unguarded call started the whole run
once more in each."""
from __future__ import annotations

import ast
import inspect
import multiprocessing
import sys
from pathlib import Path
from types import FrameType

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
    """"file:line" of the top-level statement of the script `__main__` that called this, when no test on
    `__name__` guards the call (an `if`, an `... if ... else ...`, an `and`/`or`, a `match`) and a spawned process
    would run that script again; else None (a notebook, `python -c`, `python -m package`, a call from a guarded
    block, a script whose source cannot be read)."""
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
    if _guarded(tree, _running_call(top)):
        return None
    return f"{path}:{top.f_lineno}"


Span = tuple[int, int, int | None, int | None]   # first line, last line, first column, end column
Located = ast.stmt | ast.expr


def _running_call(frame: FrameType) -> Span:
    """Where the call the frame waits on is in its source: `main([...]) if __name__ == "__main__" else None` has
    the guard and the call on one line. Its line alone when Python keeps no columns (-X no_debug_ranges)."""
    at = inspect.getframeinfo(frame, context=0).positions
    if at is None or at.lineno is None or at.end_lineno is None:
        return (frame.f_lineno, frame.f_lineno, None, None)
    return (at.lineno, at.end_lineno, at.col_offset, at.end_col_offset)


def _guarded(tree: ast.Module, call: Span) -> bool:
    """Is the call in a branch of an `if` statement, an `... if ... else ...` expression, an `and`/`or` or a
    `match` whose test reads `__name__` (or a top-level name assigned from it: `is_main = __name__ == ...`)?"""
    guards = _guard_names(tree)
    return any(_within(branch, call) for node in ast.walk(tree)
               for branch in _branches_under_a_name_test(node, guards))


def _guard_names(tree: ast.Module) -> set[str]:
    """`__name__`, and the names the script's top level assigns a value read from it (or from such a name)."""
    names = {"__name__"}
    for statement in tree.body:
        if isinstance(statement, (ast.Assign, ast.AnnAssign)) and statement.value is not None \
                and _reads_name(statement.value, names):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            names |= {target.id for target in targets if isinstance(target, ast.Name)}
    return names


def _branches_under_a_name_test(node: ast.AST, guards: set[str]) -> list[Located]:
    """The parts of `node` that run or not depending on a test that reads one of `guards`."""
    if isinstance(node, (ast.If, ast.IfExp)) and _reads_name(node.test, guards):
        return [*_as_list(node.body), *_as_list(node.orelse)]
    if isinstance(node, ast.BoolOp):
        first = next((i for i, value in enumerate(node.values) if _reads_name(value, guards)), None)
        return node.values[first + 1:] if first is not None else []
    if isinstance(node, ast.Match) and _reads_name(node.subject, guards):
        return [statement for case in node.cases for statement in case.body]
    return []


def _as_list(part: Located | list[ast.stmt]) -> list[Located]:
    return list(part) if isinstance(part, list) else [part]


def _reads_name(test: ast.AST, guards: set[str]) -> bool:
    return any(isinstance(name, ast.Name) and name.id in guards for name in ast.walk(test))


def _within(node: Located, call: Span) -> bool:
    first, last, column, end_column = call
    node_last = node.end_lineno or node.lineno
    if column is None or end_column is None or node.end_col_offset is None:
        return node.lineno <= first and last <= node_last
    return (node.lineno, node.col_offset) <= (first, column) and (last, end_column) <= (node_last, node.end_col_offset)
