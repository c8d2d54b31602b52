"""Close names for a misspelt one ("did you mean"), shared by every message that lists them.

difflib alone ranks ties in reverse alphabetical order and sees no likeness between look-alike characters,
so `efficientnet_bo` got efficientnet_b8, b7, b6, ... but not b0. Names equal up to case, '-'/'_' and
look-alikes (o/0, l/1) come first; then names one of which is a whole '_' part of the other (size for
image_size); then difflib's matches, best first and ties in alphabetical order.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any, get_args, get_origin

from pydantic import BaseModel

_LOOKALIKE = str.maketrans({"o": "0", "l": "1", "i": "1", "-": "_", " ": "_"})


def close_names(name: str, known: Iterable[str], n: int = 3, cutoff: float = 0.6) -> list[str]:
    """`cutoff`: the least difflib ratio; a value's misspelling asks more than a key's (finetune is not features)."""
    known = list(dict.fromkeys(known))
    wanted = name.lower().translate(_LOOKALIKE)
    same = [k for k in known if k.lower().translate(_LOOKALIKE) == wanted and k != name]
    matcher = difflib.SequenceMatcher(b=name)
    scored = []
    for candidate in known:
        matcher.set_seq1(candidate)
        if matcher.real_quick_ratio() >= cutoff and matcher.quick_ratio() >= cutoff and matcher.ratio() >= cutoff:
            scored.append((-matcher.ratio(), candidate))
    # one name a whole '_' part of the other (size / image_size): difflib scores such pairs below its cutoff
    part = [k for k in known if k not in same and k != name and _part_of(wanted, k.lower().translate(_LOOKALIKE))]
    ranked = [candidate for _, candidate in sorted(scored) if candidate not in same and candidate not in part]
    return (same + part + ranked)[:n]


def _part_of(a: str, b: str) -> bool:
    return a in b.split("_") or b in a.split("_")


def did_you_mean(name: str, known: Iterable[str], n: int = 3) -> str | None:
    close = close_names(name, known, n)
    return f"did you mean {', '.join(close)}?" if close else None


def fields_at(schema: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The setting names a pydantic schema accepts at `loc` (a validation error's location less its last
    part); a union's discriminator tag in `loc` picks the members with that `kind`."""
    models: list[type[BaseModel]] = [schema]
    named_by_user = False   # the part is a key the user chose (a block `b1`, a node `n1`), not a setting
    for part in loc:
        if named_by_user:
            named_by_user = False
            continue
        annotations = [model.model_fields[part].annotation for model in models if part in model.model_fields]
        inner = [m for annotation in annotations for m in models_in(annotation)]
        named_by_user = any(_mapping(annotation) for annotation in annotations)
        if not inner:   # a tag: the union members whose `kind` is it
            inner = [m for m in models if _kind_is(m, part)]
        models = inner
    return sorted({field.alias or name for model in models for name, field in model.model_fields.items()})


def _kind_is(model: type[BaseModel], tag: Any) -> bool:
    """Whether `model` is the union member a `kind` tag picks: its kind defaults to the tag, or must be it."""
    kind = model.model_fields.get("kind")
    return kind is not None and (kind.default == tag or tag in get_args(kind.annotation))


def _mapping(annotation: Any) -> bool:
    """A mapping of user-named keys to settings (dict[str, BlockSpec]), also inside Optional or Annotated."""
    origin = get_origin(annotation)
    if origin in (dict, Mapping):
        return True
    return any(_mapping(arg) for arg in get_args(annotation)) if origin is not None else False


def models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in models_in(arg)]
