"""Image files of several sizes or colour modes in one data set, said when a run starts.

Every file is resized to image_size and converted to the study's channels, so mixed files train fine. But
when the sizes or modes differ by class (positives scanned on one machine, negatives on another), the model
can learn the format instead of the finding: a shortcut that scores well on such a test split and fails in
the clinic. Only file headers are read (no pixels), for up to SAMPLE files per class spread over its list.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from PIL import Image

from searchlab.data.common import spread
from searchlab.data.types import SplitPlan

SAMPLE = 200


def mixed_formats_warning(plan: SplitPlan) -> str | None:
    """None when the sampled files share one size and mode; else the counts, per class when they differ."""
    if plan.kind == "multilabel":
        return None   # classes overlap: a per-class count would not say which label a format goes with
    per_class = {name: _formats(spread(_class_files(plan, c), SAMPLE)) for c, name in enumerate(plan.classes)}
    overall = sum(per_class.values(), Counter())
    if len(overall) < 2:
        return None
    shown = "; ".join(f"{name}: " + ", ".join(f"{fmt} {n}" for fmt, n in counts.most_common(3))
                      for name, counts in per_class.items() if counts)
    shares = [{fmt: n / max(sum(c.values()), 1) for fmt, n in c.items()} for c in per_class.values() if c]
    skewed = any(abs(a.get(fmt, 0) - b.get(fmt, 0)) > 0.2 for a in shares for b in shares for fmt in overall)
    text = (f"data: image files come in {len(overall)} sizes or colour modes (sampled headers, per class: {shown}); "
            "each is resized and converted to the study's image_size and channels")
    if skewed:
        text += (". They differ by class, so the model can learn the file format instead of the finding. Fix: "
                 "bring every class to one format, or check that the test split mixes them as the clinic will")
    return text


def _class_files(plan: SplitPlan, label: int) -> list[Path]:
    return [path for split, files in plan.files.items() for path, y in zip(files, plan.labels[split]) if y == label]


def _formats(paths: list[Path]) -> Counter:
    found: Counter = Counter()
    for path in paths:
        try:
            with Image.open(path) as img:   # reads the header only
                found[f"{img.width}x{img.height} {img.mode}"] += 1
        except (OSError, ValueError, SyntaxError):
            continue   # decoding names unreadable files
    return found
