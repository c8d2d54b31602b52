"""An objective's direction: the metric's own unless written, and never against it."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from searchlab.config.schema import ObjectiveConfig
    from searchlab.config.yamlsrc import KeyPath, Located


def objective_direction(name: str, natural: str, objective: "ObjectiveConfig", src: "Located", at: "KeyPath") -> str:
    """`natural` ("maximize"/"minimize") unless the study wrote one; a written direction against it is refused:
    maximizing hamming_loss, flops or MedFID would make the worst trial win."""
    if objective.direction not in (None, natural):
        raise src.error(at, f"metric {name!r} is better when {'lower' if natural == 'minimize' else 'higher'}, "
                        f"and this objective asks to {objective.direction} it", got=objective.direction,
                        fix=f"drop direction ({name} is {natural}d), or name another metric")
    return objective.direction or natural
