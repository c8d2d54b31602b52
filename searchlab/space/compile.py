"""Compiling the declarative YAML space into immutable parameters (space/params.py).

Syntax, anywhere in the tree (see spaces/README.md):
  key: 3                                  fixed value (also {fixed: [any, json]})
  key: {float: [1e-4, 1e-1], log: true}   float (optional log or step)
  key: {int: [2, 6], step: 2}             int (optional step or log)
  key: {choice: [a, b, c]}                categorical
  key: {one_of: {cnn: {...}, timm: {...}}, key: kind}   conditional branches; `key` names the selector
  key: {include: "cnn.yaml#model", depth: {int: [2, 3]}}   a fragment, with overrides beside it
  model: {nni: "my_spaces:Net", init: {...}}       an NNI model space's mutables (searchlab/nni_space.py)
"""
from __future__ import annotations

import math
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from searchlab.config.yamlsrc import KeyPath, Located, is_study_file, read_yaml
from searchlab.errors import SearchlabError
from searchlab.suggest import did_you_mean
from searchlab.space.params import (Branch, CategoricalParam, FixedParam, FloatParam, Group, IntParam,
                                    Node)

PARAM_KINDS = ("float", "int", "choice", "fixed")
MAX_GRID = 10**9   # grid points a step may make: beyond it Optuna's exact decimal arithmetic gives up
OPTIONS = {"float": {"log", "step"}, "int": {"log", "step"}, "choice": set(), "fixed": set()}
MAX_INCLUDE_DEPTH = 16
REPO_SPACES = Path(__file__).resolve().parents[2] / "spaces"   # the shipped library (editable installs)


def library_dirs() -> list[Path]:
    """Where bare include names are looked up after the including file's own folder."""
    extra = [Path(p) for p in os.environ.get("SEARCHLAB_PATH", "").split(os.pathsep) if p]
    return [*extra, REPO_SPACES]


def compile_space(src: Located, at: KeyPath) -> Group:
    """Compile the mapping found at key path `at` of `src` (e.g. ('space',)) into a Group."""
    raw = _get(src.data, at)
    if raw is None:
        return Group()
    ctx = _Ctx(src, (), MAX_INCLUDE_DEPTH, where=_Where(src, at))
    node = ctx.node(raw, at, ())
    if not isinstance(node, Group):
        raise src.error(at, "the space must be a mapping of named parameters or groups", got=raw,
                        fix="write e.g. `space: {optim: {lr: {float: [1e-4, 1e-2], log: true}}}`")
    return node


def _get(data: Any, path: KeyPath) -> Any:
    """The value at `path`, or None where the path does not exist."""
    for part in path:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return None
    return data


class _Where:
    """Where included fragments wrote the space's keys, kept in the study's Located (`included`): the task's
    checks of the compiled space (its settings, their values) run after compiling, and named the include line."""

    def __init__(self, study: Located, at: KeyPath) -> None:
        self.study, self.at = study, at
        self.labels: set[tuple[str, ...]] = set()   # names ending in a one_of option's label: not config keys

    def note(self, name: tuple[str, ...], src: Located, key: KeyPath) -> None:
        """The config key named `name` was written at `key` of the fragment `src` (the latest one counts: a
        fragment's overrides replace what it includes)."""
        config = tuple(part for i, part in enumerate(name) if name[:i + 1] not in self.labels)
        self.study.included[self.at + config] = (src.file, src.lines.get(key), key)
        # and under the option's own name, as --set spells it: options sharing a key each keep their line
        self.study.included[self.at + name] = (src.file, src.lines.get(key), key)


class _Ctx:
    """Compiles nodes of one source file; includes open a child context on the included file."""

    def __init__(self, src: Located, chain: tuple[str, ...], depth: int, seen: tuple[str, ...] = (),
                 where: _Where | None = None) -> None:
        self.src, self.chain, self.depth, self.seen = src, chain, depth, seen
        self.where = where

    def node(self, raw: Any, at: KeyPath, name: tuple[str, ...]) -> Node:
        if not isinstance(raw, dict):
            if isinstance(raw, list):
                raise self.src.error(at, "a bare list is ambiguous in a space", got=raw,
                                     fix="write {choice: [...]} to search over it, or {fixed: [...]} for a constant")
            return FixedParam(_dotted(name), raw)
        if "include" in raw:
            return self.include(raw, at, name)
        if "nni" in raw:
            return self.nni(raw, at, name)
        kinds = [k for k in PARAM_KINDS if k in raw]
        if "one_of" in raw:
            kinds.append("one_of")
        if len(kinds) > 1:
            raise self.src.error(at, f"a parameter has exactly one kind, found {kinds}", fix="keep one")
        if not kinds:
            (only, value), = raw.items() if len(raw) == 1 else ((None, None),)
            close = did_you_mean(str(only), (*PARAM_KINDS, "one_of")) if isinstance(value, list) else None
            if close:   # {floats: [...]}: a misspelt kind, not a group holding a bare list
                raise self.src.error(at + (only,), "unknown parameter kind", got=only, fix=close)
            return self.group(raw, at, name)
        if kinds[0] == "one_of":
            return self.branch(raw, at, name)
        return self.param(kinds[0], raw, at, name)

    def group(self, raw: dict[str, Any], at: KeyPath, name: tuple[str, ...]) -> Group:
        for key in raw:
            if "." in key:
                raise self.src.error(at + (key,), "keys may not contain '.' (dots join parameter names)",
                                     got=key, fix="nest the key as a mapping instead")
        if self.chain and self.where is not None:   # an included fragment's keys (the study's have lines of their own)
            for key in raw:
                self.where.note(name + (key,), self.src, at + (key,))
        return Group(tuple((key, self.node(value, at + (key,), name + (key,))) for key, value in raw.items()))

    def param(self, kind: str, raw: dict[str, Any], at: KeyPath, name: tuple[str, ...]) -> Node:
        unknown = set(raw) - {kind} - OPTIONS[kind]
        if unknown:
            raise self.src.error(at + (sorted(unknown)[0],), f"unknown option for a {kind} parameter",
                                 got=sorted(unknown)[0], fix=f"allowed: {sorted(OPTIONS[kind]) or 'none'}")
        if not name:
            raise self.src.error(at, "the space itself must be a mapping of names", fix="give the parameter a name")
        full = _dotted(name)
        if kind == "fixed":
            return FixedParam(full, raw["fixed"])
        if kind == "choice":
            return self.choice(raw["choice"], at + ("choice",), full)
        return self.numeric(kind, raw, at, full)

    def choice(self, values: Any, at: KeyPath, full: str) -> CategoricalParam | FixedParam:
        """A choice of values; a choice of one is that value fixed, as `key: value` is: no Optuna parameter,
        counted with the fixed settings, so a space of such choices "searches nothing" (said at load), and
        the sampler and dashboard see no parameter that never varies. Optuna's samplers skip a one-value
        categorical too (it is "single"); trials stored before keep it in their params, with the same value."""
        if not isinstance(values, list) or not values:
            raise self.src.error(at, "choice needs a non-empty list", got=values, fix="write {choice: [a, b]}")
        for i, v in enumerate(values):
            if not (v is None or isinstance(v, (bool, int, float, str))):
                raise self.src.error(at + (i,), "choices must be numbers, strings, booleans or null", got=v,
                                     fix="name structured options with strings, or use one_of for sub-spaces")
        if len({repr(v) for v in values}) != len(values):
            raise self.src.error(at, "choices must be distinct", got=values, fix="remove the repeated value")
        # 1, 1.0 and true are one value to Python and to Optuna, which stores each as the first of them
        alike = [(a, b) for i, a in enumerate(values) for b in values[i + 1:] if a == b]
        if alike:
            a, b = alike[0]
            raise self.src.error(at, f"choices must be distinct values: {a!r} and {b!r} are equal (Python and "
                                 "Optuna take 1, 1.0 and true as one value)", got=values, fix="keep one of them")
        self._no_number_also_as_text(values, at)
        if len(values) == 1:   # as a one_of of one option is: nothing to search
            return FixedParam(full, values[0], one_choice=True)
        return CategoricalParam(full, tuple(values))

    def _no_number_also_as_text(self, values: list[Any], at: KeyPath) -> None:
        """[8, "8"]: two choices to Optuna, one value once a task reads the text as the number it wants, so the
        same config was trained twice as often (a setting that wants text refuses the 8 instead)."""
        for i, a in enumerate(values):
            for j, b in enumerate(values):
                if isinstance(a, (int, float)) and not isinstance(a, bool) and _number_in(b) == a:
                    raise self.src.error(at + (j,), f"choices must be distinct values: {a!r} (choice {i + 1}) and "
                                         f"{b!r} (choice {j + 1}) are the same number, once as text, which a "
                                         "number setting reads as the number", got=values,
                                         fix=f"keep one of them: {a!r} for the number, or quote both to mean text")

    def numeric(self, kind: str, raw: dict[str, Any], at: KeyPath, full: str) -> Node:
        bounds, here = raw[kind], at + (kind,)
        number = int if kind == "int" else (int, float)
        if (not isinstance(bounds, list) or len(bounds) != 2
                or not all(isinstance(b, number) and not isinstance(b, bool) for b in bounds)):
            raise self.src.error(here, f"{kind} needs [low, high] as two {'integers' if kind == 'int' else 'numbers'}",
                                 got=bounds, fix=f"write {{{kind}: [low, high]}}")
        low, high = bounds
        if not all(math.isfinite(b) for b in bounds):
            raise self.src.error(here, "bounds must be finite numbers (.inf and .nan are not)", got=bounds,
                                 fix=f"write a finite low and high, e.g. {{{kind}: [low, high]}} with two numbers")
        if low > high:
            raise self.src.error(here, "low must be <= high", got=bounds, fix=f"write [{high}, {low}]")
        if low == high:   # Optuna accepts it, and every trial trained the one value: a constant written as a range
            raise self.src.error(here, f"the range [{low}, {high}] holds one value, so it searches nothing",
                                 got=bounds, fix=f"write the value as a constant ({full.rpartition('.')[2]}: "
                                 f"{low}), or widen the range")
        log, step = raw.get("log", False), raw.get("step")
        if not isinstance(log, bool):
            raise self.src.error(at + ("log",), "log must be true or false", got=log, fix="log: true")
        if log and low <= 0:
            raise self.src.error(here, "a log range needs low > 0", got=bounds, fix="raise low above 0 or drop log")
        if step is not None:
            if not isinstance(step, number) or isinstance(step, bool) or not math.isfinite(step) or step <= 0:
                what = "integer" if kind == "int" else "number"   # finite: .inf is positive, and no step
                raise self.src.error(at + ("step",), f"step must be a finite positive {what}",
                                     got=step, fix=f"e.g. step: {1 if kind == 'int' else (high - low) / 10:g}, or "
                                     "leave step out for every value in the range")
            if log and step != 1:
                raise self.src.error(at, "step and log cannot be combined", fix="drop one of them")
            if (high - low) / step > MAX_GRID:
                raise self.src.error(at + ("step",), f"step makes more than {MAX_GRID:.0e} grid points in {bounds}",
                                     got=step, fix="use a larger step, or drop step for a continuous range")
            points = (high - low) / step
            if abs(points - round(points)) > 1e-9 * max(1.0, points):   # Optuna would warn and move `high`
                top = low + math.floor(points + 1e-9) * step
                raise self.src.error(at + ("step",), f"step must divide high - low ({high} - {low}), or {high} is "
                                     "never drawn", got=step, fix=f"write [{low}, {top:g}] (the grid's last "
                                     "point), or a step that divides the range")
        written = frozenset(raw) & OPTIONS[kind]
        param = (IntParam(full, low, high, log=log, step=step or 1, written=written) if kind == "int" else
                 FloatParam(full, float(low), float(high), log=log, step=None if step is None else float(step),
                            written=written))
        try:
            param.distribution()   # Optuna's own checks, reported here with the key rather than mid-trial
        except (ValueError, ArithmeticError) as exc:
            raise self.src.error(at, f"Optuna refuses this range ({exc})", got=raw,
                                 fix="widen [low, high] or change step") from None
        return param

    def branch(self, raw: dict[str, Any], at: KeyPath, name: tuple[str, ...]) -> Branch:
        # Keys beside one_of and key (a `--set space.gan.conditional=true` on an inline space lands there)
        # change the options as they do on an included one_of: see merge_into_branch.
        beside = {k: v for k, v in raw.items() if k not in ("one_of", "key")}
        if beside:
            base = self.branch({k: raw[k] for k in ("one_of", "key") if k in raw}, at, name)
            return merge_into_branch(base, self.group(beside, at, name), self.src, at)
        options, key = raw["one_of"], raw.get("key", "kind")
        if not isinstance(options, dict) or not options:
            raise self.src.error(at + ("one_of",), "one_of needs a mapping of option name -> sub-space",
                                 got=options, fix="write {one_of: {cnn: {...}, timm: {...}}}")
        if not isinstance(key, str) or not key or "." in key:
            raise self.src.error(at + ("key",), "key must be a plain name", got=key,
                                 fix="a name without dots, e.g. key: family")
        compiled = []
        for label, sub in options.items():
            if self.where is not None:
                self.where.labels.add(name + (label,))
            group = self.node(sub if sub is not None else {}, at + ("one_of", label), name + (label,))
            if not isinstance(group, Group):
                raise self.src.error(at + ("one_of", label), "each option must be a mapping (or empty)", got=sub,
                                     fix=f"write {label}: {{key: value, ...}}, or {label}: {{}} for its defaults")
            compiled.append((label, self._without_selector(group, key, label, at + ("one_of", label))))
        return Branch(_dotted(name + (key,)), key, tuple(compiled))

    def _without_selector(self, group: Group, key: str, label: str, at: KeyPath) -> Group:
        """An option may restate its own selector value (e.g. an included `kind: cnn` under option cnn)."""
        node = group.get(key)
        if node is None:
            return group
        if isinstance(node, FixedParam) and node.value == label:
            return Group(tuple((k, n) for k, n in group.entries if k != key))
        raise self.src.error(at + (key,), f"'{key}' is the branch selector's name (its value here is '{label}')",
                             fix="rename the parameter or set `key:` to another selector name")

    def nni(self, raw: dict[str, Any], at: KeyPath, name: tuple[str, ...]) -> Group:
        """{nni: "module:Class", init: {...}} -> the model kind `nni` with one parameter per NNI mutable."""
        from searchlab.nni_space import space_parameters

        unknown = set(raw) - {"nni", "init"}
        if unknown:
            raise self.src.error(at + (sorted(unknown)[0],), "an NNI space takes only 'init' beside 'nni'",
                                 got=sorted(unknown)[0], fix="pass constructor arguments under init")
        target, init = raw["nni"], raw.get("init") or {}
        if not isinstance(target, str) or not isinstance(init, dict):
            raise self.src.error(at, "nni needs a 'module:Class' string and init a mapping", got=raw,
                                 fix='write {nni: "my_spaces:Net", init: {width: 16}}')
        try:
            params = space_parameters(target, init)
        except SearchlabError as exc:
            raise self.src.error(at + ("nni",), str(exc).split(". Fix: ")[0], got=target,
                                 fix=str(exc).partition(". Fix: ")[2] or "see searchlab/nni_space.py") from None
        choices = Group(tuple((label, self._nni_param(param, at + ("nni",), _dotted(name + ("choices", label))))
                              for label, param in params.items()))
        return Group((("kind", FixedParam(_dotted(name + ("kind",)), "nni")),
                      ("space", FixedParam(_dotted(name + ("space",)), target)),
                      ("init", FixedParam(_dotted(name + ("init",)), init)), ("choices", choices)))

    def _nni_param(self, param: tuple[Any, ...], at: KeyPath, full: str) -> Node:
        if param[0] == "choice":
            return self.choice(param[1], at, full)
        _, low, high, log, step = param
        return FloatParam(full, low, high, log=log, step=step)

    def include(self, raw: dict[str, Any], at: KeyPath, name: tuple[str, ...]) -> Node:
        target = raw["include"]
        if not isinstance(target, str) or not target:
            raise self.src.error(at + ("include",), "include needs a file name (optionally file#key.path)",
                                 got=target, fix="write include: cnn.yaml or include: library.yaml#optim")
        file_part, _, key_part = target.partition("#")
        path = self.resolve(file_part, at, whole_file=not key_part)
        here = f"{path.resolve()}#{key_part}"   # a cycle is the same file and key again, not the same name
        if self.depth <= 0 or here in self.seen:
            raise self.src.error(at + ("include",), "includes nest too deep or form a cycle",
                                 got=" -> ".join((*self.chain, target)),
                                 fix="remove the include that leads back to an earlier file")
        child = _Ctx(read_yaml(path), (*self.chain, target), self.depth - 1, (*self.seen, here), self.where)
        inner: KeyPath = tuple(k for k in key_part.split(".") if k)
        if inner and _get(child.src.data, inner) is None:
            keys = sorted(child.src.data) if isinstance(child.src.data, dict) else []
            raise self.src.error(at + ("include",), f"{path} has no key '{key_part}'", got=target,
                                 fix=f"one of its keys: {', '.join(keys)}" if keys else "include the whole file")
        if _get(child.src.data, inner) is None:   # an empty file (or key) included nothing, unsaid
            raise self.src.error(at + ("include",), f"{path}{'#' + key_part if key_part else ''} is empty, so the "
                                 "include adds nothing", got=target, fix="write its settings, or drop the include")
        base = child.node(_get(child.src.data, inner), inner, name)
        overrides = {k: v for k, v in raw.items() if k != "include"}
        if not overrides:
            return base
        override = self.node(overrides, at, name)
        ranged = isinstance(base, (FloatParam, IntParam))   # log or step beside it: merge's _over_range
        if not ranged and isinstance(base, (Group, Branch)) != isinstance(override, (Group, Branch)):
            raise self.src.error(at, f"the include brings {_what(base)}, and what is written beside it "
                                 f"({', '.join(overrides)}) would replace it whole", got=target,
                                 fix="include a mapping of settings to write settings beside it, or write the "
                                     "value alone")
        return merge(base, override, self.src, at)

    def resolve(self, file_part: str, at: KeyPath, whole_file: bool = True) -> Path:
        including = Path(self.src.file).resolve()
        candidates = [including.parent / file_part] + [d / file_part for d in library_dirs()]
        for candidate in candidates:
            # A study saved as zen.yaml that includes zen.yaml means the library's fragment, not itself; nor
            # another study file beside it (gan.yaml next to a study including gan.yaml): a whole study is no space
            if candidate.is_file() and candidate.resolve() != including \
                    and not (whole_file and is_study_file(candidate)):
                return candidate
        raise self.src.error(at + ("include",), "included file not found", got=file_part,
                             fix="looked in " + ", ".join(str(c.parent) for c in candidates))


def merge(base: Node, override: Node, src: Located, at: KeyPath) -> Node:
    """Overrides replace parameters; groups merge by key and branches by option, recursively."""
    if isinstance(base, Group) and isinstance(override, Group):
        merged = dict(base.entries)
        for key, node in override.entries:
            merged[key] = merge(merged[key], node, src, at + (key,)) if key in merged else node
        return Group(tuple(merged.items()))
    if isinstance(base, Branch) and isinstance(override, Branch):
        # The selector keeps its name: an override spelt {one_of: {...}} without `key` means the same branch.
        options = dict(base.options)
        for label, group in override.options:
            options[label] = merge(options[label], group, src, at) if label in options else group
        return Branch(base.name, base.key, tuple(options.items()))
    if isinstance(base, Branch) and isinstance(override, Group):
        return merge_into_branch(base, override, src, at)
    if isinstance(base, (FloatParam, IntParam)):
        return _over_range(base, override, src, at)
    return override


def _over_range(base: FloatParam | IntParam, override: Node, src: Located, at: KeyPath) -> Node:
    """A key written over an included range: a range keeps what it does not write, log or step alone change
    the range, a value or a choice replaces it, and any other mapping is refused here (the config would
    refuse it as "not a number", far from the line)."""
    if type(override) is type(base):
        return _new_range(base, override, src, at)   # type: ignore[arg-type]
    if not isinstance(override, Group):
        return override
    if _only_options(override, base):
        return _new_options(base, override, src, at)
    options = OPTIONS[_kind(base)]
    key = next((key for key, _ in override.entries if key not in options), (*override.entries, ("",))[0][0])
    raise src.error(at + ((key,) if key else ()), f"the {_kind(base)} range written before takes only log and "
                    "step (one value each) beside it", got=key or {},
                    fix=(key not in options and did_you_mean(key, options))
                    or f"write log or step, or a new range {{{_kind(base)}: [low, high]}}")


def _kind(param: FloatParam | IntParam) -> str:
    return "int" if isinstance(param, IntParam) else "float"


def _only_options(override: Node, base: FloatParam | IntParam) -> bool:
    """Whether `override` writes only a range's options (`{log: false}`, `--set space.optim.lr.log=false`)."""
    return (isinstance(override, Group) and bool(override.entries)
            and all(key in OPTIONS[_kind(base)] and isinstance(node, FixedParam) for key, node in override.entries))


def _new_options(base: FloatParam | IntParam, override: Group, src: Located, at: KeyPath) -> Node:
    """The included range with the log scale or step written beside it (without this, `{log: false}` replaced
    the range with a mapping the config then refused as not a number)."""
    kind = _kind(base)
    raw: dict[str, Any] = {kind: [base.low, base.high], "log": base.log}
    if base.step not in (None, 1):
        raw["step"] = base.step
    raw.update((key, node.value) for key, node in override.entries)   # type: ignore[union-attr]
    if raw["log"] is True and raw.get("step") is not None and "step" not in dict(override.entries):
        del raw["step"]   # log: true over a stepped range: the step the YAML did not write goes
    param = _Ctx(src, (), 0).numeric(kind, raw, at, base.name)
    return replace(param, written=base.written | frozenset(key for key, _ in override.entries))


def _new_range(base: FloatParam | IntParam, override: FloatParam | IntParam, src: Located,
               at: KeyPath) -> FloatParam | IntParam:
    """A range written over an included one (`--set space.optim.lr.float=[...]`, or `float:` beside an
    include) keeps the log scale and step it does not write: the included log-scale lr was searched linearly."""
    kept = {key: getattr(base, key) for key in ("log", "step") if key not in override.written}
    if override.log:
        kept.pop("step", None)   # a log scale written has no step: the included one's goes with it
    merged = replace(override, **kept, written=override.written | base.written)
    shown = ", ".join([*(["log: true"] if kept.get("log") is True else []),
                       *([f"step: {kept['step']:g}"] if kept.get("step") not in (None, 1) else [])])
    try:
        if merged.log and merged.low <= 0:
            raise ValueError("a log range needs low > 0")
        points = (merged.high - merged.low) / merged.step if merged.step else 0
        if abs(points - round(points)) > 1e-9 * max(1.0, points):
            raise ValueError(f"step {merged.step:g} does not divide [{merged.low:g}, {merged.high:g}]")
        merged.distribution()
    except (ValueError, ArithmeticError) as exc:
        raise src.error(at, f"this range keeps the {shown} of the parameter it replaces, and then {exc}",
                        got=[override.low, override.high],
                        fix="write log (and step) beside the range too, e.g. log: false") from None
    return merged


def merge_into_branch(base: Branch, override: Group, src: Located, at: KeyPath) -> Branch:
    """Settings written onto a one_of (an include's overrides, `--set space.gan.<key>=...`), by key:
    the selector (`family: dcgan`, or a choice of options) keeps only those options; an option's name
    (`dcgan: {latent: 64}`) changes that option; any other key changes every option that has it (all of
    them when none has), so `conditional: true` fixes it on each GAN family instead of replacing the branch."""
    path = tuple(base.name.split("."))[:-1]
    options = dict(base.options)
    for key, node in override.entries:
        if key == base.key:
            options = _pinned(options, node, src, at + (key,))
        elif key in options:
            if not isinstance(node, Group):
                raise src.error(at + (key,), f"'{key}' is an option of the one_of '{base.key}' (a section of "
                                "settings), not a value", got=_shown(node),
                                fix=f"set one of its settings, e.g. {key}.<setting>: value, or pin the option "
                                    f"with {base.key}: {key}")
            options[key] = merge(options[key], renamed(node, path + (key,)), src, at + (key,))
        else:
            having = [label for label, group in options.items() if group.get(key) is not None]
            for label in having or list(options):
                change = Group(((key, renamed(node, path + (label, key))),))
                options[label] = merge(options[label], change, src, at + (key,))
    return Branch(base.name, base.key, tuple(options.items()))


def _pinned(options: dict[str, Group], node: Node, src: Located, at: KeyPath) -> dict[str, Group]:
    """The options a fixed selector value (or a choice of them) keeps."""
    labels = [node.value] if isinstance(node, FixedParam) else \
        list(node.choices) if isinstance(node, CategoricalParam) else None
    unknown = [label for label in labels or [] if label not in options]
    if labels is None or unknown:
        raise src.error(at, "not an option of this one_of", got=unknown[0] if unknown else _shown(node),
                        fix=f"one of {', '.join(options)} (or {{choice: [...]}} of them)")
    return {label: options[label] for label in labels}


def renamed(node: Node, name: tuple[str, ...]) -> Node:
    """The node with the Optuna names it would have had if written at `name` (an option's own path)."""
    if isinstance(node, Group):
        return Group(tuple((key, renamed(child, name + (key,))) for key, child in node.entries))
    if isinstance(node, Branch):
        options = tuple((label, renamed(group, name + (label,))) for label, group in node.options)
        return Branch(_dotted(name + (node.key,)), node.key, options)  # type: ignore[arg-type]
    return replace(node, name=_dotted(name))


def _what(node: Node) -> str:
    if isinstance(node, (Group, Branch)):
        return "a mapping of settings"
    return f"the value {node.value!r}" if isinstance(node, FixedParam) else "a choice of values"


def _shown(node: Node) -> Any:
    return node.value if isinstance(node, FixedParam) else node


def _number_in(text: Any) -> float | None:
    """The number a text choice reads as to a number setting ("8", " 8.0 ", "1e3"), else None."""
    if not isinstance(text, str):
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    return None if math.isnan(number) else number


def _dotted(name: tuple[str, ...]) -> str:
    return ".".join(name)
