"""A sampled config dict through a task's trial schema; every error names the space key and the value."""
from __future__ import annotations

import math
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from searchlab.config.yamlsrc import Located, dotted
from searchlab.errors import TrialFailure, error_loc, pydantic_fix, rule_and_fix, shown_input
from searchlab.space.params import Group, written_path
from searchlab.suggest import did_you_mean, fields_at

Config = TypeVar("Config", bound=BaseModel)


def parse_trial(schema: type[Config], task: str, config: dict[str, Any], src: Located | None,
                searched: dict[str, Any] | None = None, union_tags: tuple[str, ...] = (),
                space: Group | None = None) -> Config:
    """`schema` validated from `config`; a ConfigError at the space key (with `src`), else a TrialFailure.
    `union_tags`: discriminator values pydantic puts in error locations, which are not keys the user wrote.
    `space` (the compiled space `config` was drawn from) locates a key inside the one_of option drawn."""
    try:
        return schema.model_validate(config)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = list(error_loc(err))
        if len(loc) > 1 and loc[1] in union_tags:
            del loc[1]
        key = dotted(tuple(loc))
        written = written_path(space, config, tuple(loc)) if space is not None else tuple(loc)
        message, own_fix = rule_and_fix(err)
        rule = f"not a valid {task} config: {message}"
        fix = own_fix or pydantic_fix(err, key) or "check this parameter's range or choices"
        if err["type"] == "missing":
            rule, fix = f"the {task} task needs {loc[-1]} here", f"add {loc[-1]}: ..."
        # parameters are named by the option they belong to (`model.cnn.depth`), as --set spells them
        name = dotted(tuple(part for part in written if part != "one_of"))
        param = (searched or {}).get(name)
        if param is not None:
            span = param.choices if hasattr(param, "choices") else [param.low, param.high]
            fix = own_fix or (f"the space searches {list(span)} for '{name}'; keep it within what the {task} "
                              "task accepts")
            if err["type"] == "int_from_float" and not hasattr(param, "choices"):
                ends = f"{math.ceil(param.low)}, {math.floor(param.high)}"   # whole numbers within the range
                fix = f"search whole numbers: {key.rsplit('.', 1)[-1]}: {{int: [{ends}]}}"
        if err["type"] == "union_tag_not_found":   # e.g. model: {depth: ...} without kind: cnn
            tag = err["ctx"]["discriminator"].strip("'")
            rule = f"names no {tag}: it selects which settings the section takes"
            fix = f"add {tag}: one of {', '.join(union_tags)} (e.g. {tag}: {union_tags[0]})" if union_tags else \
                f"add {tag}"
        if err["type"] == "extra_forbidden":
            known = fields_at(schema, tuple(err["loc"][:-1]))
            rule = f"the {task} task has no such setting"
            fix = did_you_mean(str(loc[-1]), known) or (f"settings here: {', '.join(known)}" if known else
                                                        "remove it or fix its spelling")
        if src is None:
            got = shown_input(err)
            quoted = "" if got is ... else f" (got {got!r})"
            raise TrialFailure(f"{dotted(('space',) + tuple(loc))}: {rule}{quoted}") from None
        # an unknown setting's value is what a probe drew (a range's low end), not what was written: name the key;
        # a searched one's, one draw of its range (1.3985909084407415 of [0.0, 1.5]): the range written is said
        got = loc[-1] if err["type"] == "extra_forbidden" else list(span) if param is not None else shown_input(err)
        raise src.error(("space",) + tuple(loc), rule, got=got, fix=fix, written=("space",) + written) from None
