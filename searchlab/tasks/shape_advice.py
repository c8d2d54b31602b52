"""Plain CNNs deeper than the image: each stage but the last halves the map (max-pool, ceil), so at 28 px
the sixth stage already sees 1x1 and any stage after it pools nothing and runs its 3x3 convolutions on one
pixel (a wider MLP at many times the parameters). Said once when a run starts, with the depth that fits."""
from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any


def stages_that_fit(side: int) -> int:
    """How many stages a `side`-pixel map supports before pooling stops halving (28 px: 6)."""
    stages = 1
    while side > 1:
        side, stages = math.ceil(side / 2), stages + 1
    return stages


def too_deep_warning(configs: Iterable[dict[str, Any]], image_size: tuple[int, int]) -> str | None:
    deepest = None
    for config in configs:
        model = config.get("model") or {}
        if model.get("kind", "cnn") != "cnn":
            continue
        depth, scale = int(model.get("depth", 3)), int(model.get("input_scale", 1))
        fits = stages_that_fit(min(image_size) * scale)
        if depth > fits and (deepest is None or depth - fits > deepest[0] - deepest[1]):
            deepest = (depth, fits, scale)
    if deepest is None:
        return None
    depth, fits, scale = deepest
    return (f"space.model.depth reaches {depth} on {min(image_size)}-px images (input_scale {scale}): stages "
            f"{fits + 1}-{depth} see 1x1 maps, where pooling halves nothing and a convolution sees one pixel. "
            f"Fix: depth <= {fits}, or a larger input_scale")
