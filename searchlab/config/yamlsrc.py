"""Reading YAML safely while remembering where every key came from.

Error messages must name the file and line of the offending key, so we compose the node tree once
(yaml.safe_load semantics: no tags beyond the safe ones, no code) and build both the plain data and a
map from key path to line number from it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from searchlab.errors import ConfigError, SearchlabError, storage_url_in

KeyPath = tuple[str | int, ...]
MAX_NODES = 100_000   # a YAML alias "bomb" expands exponentially; refuse documents past this size
MAX_DEPTH = 64        # no study needs deeper nesting; PyYAML's recursive parser overflows the stack near 1000


# An unquoted number YAML 1.1 reads other than as the decimal written: resolved to this tag, then refused by name
# (`epochs: 010` trained 8 epochs, `name: 0123` was "83", `timeout: 1:30` was 90 seconds, all unsaid)
_AMBIGUOUS = "tag:searchlab,2026:ambiguous-number"
# 010 is octal (8) and 08 text (then 8 to a number setting); 0 alone is zero. 0x10 and 0b101 stay numbers: their
# prefix is written on purpose and they mean what YAML reads (16, 5); 0o10 stays text (YAML 1.1 has no 0o).
_LEADING_ZERO = re.compile(r"^[-+]?0[0-9_]+$")
_NUMBER_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")


def _reads_otherwise(value: str, tag: str) -> bool:
    """Whether YAML 1.1 reads `value`, resolved or tagged as `tag`, otherwise than as the decimal written."""
    return bool(_LEADING_ZERO.match(value)) or (tag in _NUMBER_TAGS and ":" in value)


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads YAML 1.2 floats such as 1e-3 (YAML 1.1 would make them strings), and refuses
    the unquoted numbers YAML 1.1 reads otherwise than as written (010 octal, 1:30 base 60)."""

    def resolve(self, kind: type, value: str, implicit: tuple[bool, bool]) -> str:
        tag = super().resolve(kind, value, implicit)
        plain = kind is yaml.ScalarNode and implicit[0]   # unquoted and untagged: `!!str 010` is text on purpose
        if plain and _reads_otherwise(value, tag):
            return _AMBIGUOUS
        return tag


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


class AmbiguousNumber(ConfigError, ValueError):
    """An unquoted 010 or 1:30 in a `--set` value (load_value). A ValueError too: schema.py's pydantic checks read
    quoted text with load_value, and pydantic reports a ValueError at the key's section rather than passing it on."""


def ambiguous_number(text: str) -> tuple[str, str]:
    """The rule and the fix for an unquoted number YAML 1.1 reads otherwise than as the decimal written."""
    quote = f'quote it, "{text}", to mean the text'
    if ":" in text:
        value = yaml.safe_load(text)   # plain SafeLoader: the base-60 number YAML 1.1 makes of it
        return (f"a number with colons is refused ({text} unquoted: YAML reads it as base 60, {value})",
                f"write the number itself, e.g. {value} (seconds, for a time such as timeout); {quote}")
    decimal = int(text.replace("_", ""))
    if set(text.lstrip("+-")) <= set("01234567_"):
        octal = int(text.replace("_", ""), 8)
        read = f"YAML reads it as octal, {octal}" + (f", not {decimal}" if octal != decimal else "")
    else:
        read = f"YAML keeps it text, which a number setting reads as {decimal}"
    return (f"a number with a leading zero is refused ({text} unquoted: {read})",
            f"write {decimal} for the number; {quote}")


def _refuse_ambiguous(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    rule, fix = ambiguous_number(node.value)
    raise AmbiguousNumber(rule, got=node.value, fix=fix)


def _number_unless_ambiguous(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    """`!!int 010` and `!!float 1:30`, tagged by hand, are octal and base 60 too."""
    if _reads_otherwise(node.value, node.tag):
        _refuse_ambiguous(loader, node)
    return yaml.SafeLoader.yaml_constructors[node.tag](loader, node)


_Loader.add_constructor(_AMBIGUOUS, _refuse_ambiguous)
for _tag in _NUMBER_TAGS:
    _Loader.add_constructor(_tag, _number_unless_ambiguous)


@dataclass(frozen=True)
class Located:
    """Plain YAML data plus where each key path was written."""

    data: Any
    file: str
    lines: dict[KeyPath, int]
    # Keys replaced from the command line (`run --set K=V`): their errors name the option, not a file line
    overridden: dict[KeyPath, str] = field(default_factory=dict)
    # Keys of the space that an included fragment wrote (filled by space/compile.py): {key path here: (the
    # fragment's file, line, key path in it)}, so an error found after compiling names the fragment's line
    included: dict[KeyPath, tuple[str, int | None, KeyPath]] = field(default_factory=dict)

    def line_of(self, path: KeyPath) -> int | None:
        """The line of the longest prefix of `path` we know (a missing key points at its parent)."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return None

    def error(self, path: KeyPath, rule: str, got: object = ..., fix: str | None = None,
              written: KeyPath | None = None) -> ConfigError:
        """`written`: where the key of a config (`path`) sits in the YAML, one_of option included
        (space/params.py written_path); the --set option, fragment or line that wrote it is named."""
        if written is not None and written != path:
            path = self._where_written(path, written)
        option = self._override_of(path)
        if option:
            return ConfigError(rule, file=f"{self.file} ({option})", key=dotted(path), got=got, fix=fix)
        fragment = self._included_at(path)
        if fragment:
            file, line, key = fragment
            return ConfigError(rule, file=file, line=line, key=dotted(key) or None, got=got, fix=fix)
        return ConfigError(rule, file=self.file, line=self.line_of(path), key=dotted(path) or None,
                           got=got, fix=fix)

    def _where_written(self, path: KeyPath, written: KeyPath) -> KeyPath:
        """Of `path`, `written` (`space.gan.one_of.dcgan.latent`) and its --set spelling (`space.gan.dcgan.latent`):
        one a --set option wrote (they replace the rest), else the option's key in a fragment or in this file."""
        by_label = tuple(part for part in written if part != "one_of")
        for spelling in (path, written, by_label):
            if self._override_of(spelling) is not None:
                return spelling
        if by_label in self.included:
            return by_label
        return written if written in self.lines else path

    def _included_at(self, path: KeyPath) -> tuple[str, int | None, KeyPath] | None:
        """Where an included fragment wrote `path` (or the closest key above it), when this file itself has
        nothing closer to it: a key written beside the include replaced the fragment's."""
        own = next((end for end in range(len(path), -1, -1) if path[:end] in self.lines), 0)
        for end in range(len(path), own, -1):
            if path[:end] in self.included:
                file, line, key = self.included[path[:end]]
                return file, line, key + path[end:]
        return None

    def _override_of(self, path: KeyPath) -> str | None:
        """The --set option that wrote `path`: one naming it or a section above it, or, for a key the file
        does not have (`--set budjet.n_trials=2`), one naming a key below it."""
        for end in range(len(path), 0, -1):
            if path[:end] in self.overridden:
                return self.overridden[path[:end]]
        if path and path not in self.lines:
            return next((option for key, option in self.overridden.items() if key[:len(path)] == path), None)
        return None


def load_value(text: str, key: str | None = None) -> Any:
    """One YAML value as the study file would read it (`--set optim.lr=1e-3` is the number, not text). `key`: the
    --set option's, named in the error for an unquoted 010 or 1:30 (AmbiguousNumber)."""
    try:
        return yaml.load(text, Loader=_Loader)   # noqa: S506 -- _Loader is a SafeLoader: no tags beyond the safe ones
    except AmbiguousNumber as exc:
        if key is None:
            raise
        shell = f"; on the command line, quoted for the shell too: --set '{key}=\"{exc.got}\"'"
        raise AmbiguousNumber(exc.rule, file=f"--set {key}", got=exc.got, fix=f"{exc.fix}{shell}") from None


def section_of(data: dict[str, Any], key: str, src: Located, create: bool) -> dict[str, Any] | None:
    """The mapping of `data` holding dotted `key`'s last part (a `--set` option's), made where missing if `create`,
    else None."""
    node = data
    *parents, _ = key.split(".")
    for depth, part in enumerate(parents):
        if part not in node and not create:
            return None
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            inside = ".".join(parents[:depth + 1])
            raise src.error(tuple(parents[:depth + 1]), f"--set {key}: '{inside}' is a value, not a section "
                            "with keys", got=node, fix=f"set '{inside}' whole (--set {inside}=...), or, if the "
                            "file should have a section there, write it as one (key: value lines)")
    return node


def remove_written(data: dict[str, Any], key: str, src: Located) -> bool:
    """`--set KEY=null`: KEY removed from `data` where it is written (True), so its default applies."""
    section = section_of(data, key, src, create=False)
    last = key.split(".")[-1]
    if section is not None and last in section:
        del section[last]
        return True
    return False


def dotted(path: KeyPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def read_yaml(path: Path) -> Located:
    """Parse one YAML file; a missing file or bad syntax is a ConfigError with the line."""
    if storage_url_in(path) is not None:   # `searchlab run postgresql://...`: not "file not found"
        raise ConfigError("is a storage URL, not a YAML file", file=str(path), fix="name the study file (e.g. "
                          "studies/quickstart.yaml), and give the URL as its `storage:` or with --set storage=URL")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", file=str(path), fix="check the path (relative paths are "
                          "resolved against the file that names them)") from None
    except IsADirectoryError:
        raise ConfigError("is a folder, not a study file", file=str(path),
                          fix="name the YAML file inside it (e.g. studies/quickstart.yaml)") from None
    except OSError as exc:
        raise ConfigError(f"cannot be read ({exc.strerror or exc})", file=str(path),
                          fix="check the path and the file's permissions") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", file=str(path),
                          fix="save the file as UTF-8") from None
    return parse_yaml(text, str(path))


def is_study_file(path: Path) -> bool:
    """A whole study file (a space beside its data, task, strategy or budget), not a space fragment or a
    strategy preset: what a fragment or preset of the same name beside a study must not be mistaken for."""
    try:
        data = read_yaml(path).data
    except SearchlabError:
        return False
    return isinstance(data, dict) and "space" in data and bool({"data", "task", "strategy", "budget"} & set(data))


def parse_yaml(text: str, file: str) -> Located:
    try:
        node = yaml.compose(text, Loader=_Loader)
    except RecursionError:
        raise ConfigError(f"nested too deeply for the YAML parser (at most {MAX_DEPTH} levels are used)", file=file,
                          fix="flatten the document") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"malformed YAML: {problem}", file=file, line=line,
                          fix="correct the YAML syntax at that line") from None
    if node is None:
        return Located(None, file, {})
    lines: dict[KeyPath, int] = {}
    counter = [0]
    data = _build(node, (), lines, counter, file)
    return Located(data, file, lines)


def _build(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int], counter: list[int], file: str) -> Any:
    counter[0] += 1
    if counter[0] > MAX_NODES:
        raise ConfigError(f"document too large (more than {MAX_NODES} values after expanding aliases)",
                          file=file, line=node.start_mark.line + 1, fix="remove recursive or repeated aliases")
    lines.setdefault(path, node.start_mark.line + 1)
    _refuse_tag(node, path, file)
    if len(path) > MAX_DEPTH:
        raise ConfigError(f"nested more than {MAX_DEPTH} levels deep", file=file, line=node.start_mark.line + 1,
                          key=dotted(path[:3]) + " ...", fix="flatten the document")
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            _refuse_tag(key_node, path, file)
            key = _scalar(key_node, file)
            if key == "<<":
                raise _merge_key_error(key_node, file)
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise ConfigError("mapping keys must be strings", file=file, line=key_node.start_mark.line + 1,
                                  got=key, fix="quote the key")
            key = str(key)
            if key in out:
                raise ConfigError("duplicate key", file=file, line=key_node.start_mark.line + 1,
                                  key=dotted(path + (key,)), fix="keep one of them")
            lines[path + (key,)] = key_node.start_mark.line + 1
            out[key] = _build(value_node, path + (key,), lines, counter, file)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, path + (i,), lines, counter, file) for i, item in enumerate(node.value)]
    return _scalar(node, file)


# What plain YAML resolves to without a tag (a `<<` and a lone `=` too: refused later with their own message),
# so `!!str 5` and `!!float 1` stay readable; any other tag, explicit, is refused by name.
_STANDARD = "tag:yaml.org,2002:"
_PLAIN_TAGS = frozenset(_STANDARD + name for name in
                        ("str", "int", "float", "bool", "null", "timestamp", "map", "seq", "merge", "value"))


def _refuse_tag(node: yaml.Node, path: KeyPath, file: str | None) -> None:
    """A tag such as `!!python/object:os.system` or `!mytag` got "write a number of normal size" (the fix for a huge
    number), and one on a mapping (`space: !x {...}`) or `!!binary` passed unsaid."""
    # _AMBIGUOUS is no tag the user wrote: an unquoted 010 or 1:30 (_Loader.resolve); or one by hand, !!int 010
    by_hand = node.tag in _NUMBER_TAGS and isinstance(node, yaml.ScalarNode) and _reads_otherwise(node.value, node.tag)
    if node.tag == _AMBIGUOUS or by_hand:
        rule, fix = ambiguous_number(node.value)
        raise ConfigError(rule, file=file, line=node.start_mark.line + 1, key=dotted(path) or None, got=node.value,
                          fix=fix)
    if node.tag in _PLAIN_TAGS:
        return
    tag = "!!" + node.tag.removeprefix(_STANDARD) if node.tag.startswith(_STANDARD) else node.tag
    rule = f"the YAML tag {tag} is not allowed: study files are read with safe loading, of plain values only"
    where = {"file": file, "line": node.start_mark.line + 1, "key": dotted(path) or None}
    if not isinstance(node, yaml.ScalarNode):
        raise ConfigError(rule, **where, fix=f"remove {tag}")
    shown = node.value[:40] + ("..." if len(node.value) > 40 else "")
    raise ConfigError(rule, **where, got=shown,
                      fix=f"remove {tag}, or quote the value to make it text: '{tag} {shown}'")


_SCALARS = _Loader("")   # only its safe scalar constructors are used (int, float, bool, null, str, date)


def _merge_key_error(node: yaml.Node, file: str | None) -> ConfigError:
    return ConfigError("YAML merge keys ('<<') are not supported", file=file, line=node.start_mark.line + 1,
                       fix="write the keys out (an alias of a whole value, e.g. budget: *b, is read)")


def _scalar(node: yaml.Node, file: str | None = None) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        raise ConfigError("complex mapping keys are not supported", file=file, line=node.start_mark.line + 1)
    if node.tag == "tag:yaml.org,2002:merge":   # an unquoted <<: no safe constructor, so "cannot be read"
        raise _merge_key_error(node, file)
    try:
        value = _SCALARS.construct_object(node)
    except (ValueError, OverflowError, yaml.YAMLError) as exc:   # e.g. an integer of thousands of digits
        raise ConfigError(f"value cannot be read ({str(exc).splitlines()[0][:120]})", file=file,
                          line=node.start_mark.line + 1,
                          got=node.value[:40] + ("..." if len(node.value) > 40 else ""),
                          fix="write a number of normal size, or quote it to make it text") from None
    finally:
        _SCALARS.constructed_objects.clear()   # no cache growth across documents
    return value
