"""Image files of several sizes, colour modes or file types in one data set, said when a run starts.

Every file is resized to image_size and converted to the study's channels, so mixed files train fine. But
when the sizes, modes or file types differ by class (positives scanned on one machine, negatives on another),
the model can learn the format instead of the finding: a shortcut that scores well on such a test split and
fails in the clinic. Each is judged on its own: microscopy files often each have their own size, and a
colour mode found in one class only must still show through that. Only file headers are read (no pixels),
for up to SAMPLE files per class spread over its list; a class with fewer than MIN_COMPARED readable ones is
listed but not compared (a handful of files is no evidence of a format by class), unless all of its files, at
least MIN_UNIFORM, are of one format that few of the other classes' files share: the rarest class, 9 malignant
RGB JPEGs among grey PNGs, is where the shortcut sits. The warning names the classes that stand apart.
"""
from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from searchlab.data.common import UNREADABLE_IMAGE, spread
from searchlab.data.types import SplitPlan

SAMPLE = 200
SHARE_GAP = 0.2        # a format's share of one class's files vs another's: beyond this, it tells them apart
AREA_RATIO = 1.5       # per-class median image areas this far apart tell the classes apart too
# fewest readable sampled files a class needs to be compared at all (both classes of a pair): below 10, one or two
# odd files (a screenshot, a re-saved image) already open a share gap over SHARE_GAP, and a class of 3 images
# (L 2, RGB 1) was said to differ by class; from 10 on it takes 3 or more files of a format. A smaller class's
# formats are still listed in the warning's per-class counts, only not called a difference by class (unless they
# are all of one format rare elsewhere: MIN_UNIFORM).
MIN_COMPARED = 10
# a smaller class is still compared when all its files, at least MIN_UNIFORM, are of one format found in at most
# FEW_ELSEWHERE of the other classes' files: 3 of 3 RGB beside grey files is no accident of one odd file
MIN_UNIFORM = 3
FEW_ELSEWHERE = 0.1
SHOWN = 3


@dataclass
class _Headers:
    sizes: Counter = field(default_factory=Counter)
    modes: Counter = field(default_factory=Counter)
    types: Counter = field(default_factory=Counter)
    areas: list[int] = field(default_factory=list)


def mixed_formats_warning(plan: SplitPlan) -> str | None:
    """None when the sampled files share one size, mode and file type; else what varies, per class, and
    which of them differ by class."""
    if plan.kind == "multilabel":
        return None   # classes overlap: a per-class count would not say which label a format goes with
    per_class = {name: _headers(spread(_class_files(plan, c), SAMPLE)) for c, name in enumerate(plan.classes)}
    per_class = {name: h for name, h in per_class.items() if h.areas}
    every = {"sizes": {n: h.sizes for n, h in per_class.items()}, "colour modes": {n: h.modes for n, h in
             per_class.items()}, "file types": {n: h.types for n, h in per_class.items()}}
    varying = [(what, counters) for what, counters in every.items() if len(sum(counters.values(), Counter())) > 1]
    if not varying:
        return None
    parts = [f"{len(sum(c.values(), Counter()))} {what} ({_shown(what, c, per_class)})" for what, c in varying]
    text = (f"data: image files come in {'; '.join(parts)} (sampled headers, per class); each is resized and "
            "converted to the study's image_size and channels")
    skewed = [what for what, counters in varying if _skewed(counters) or _apart(counters)]
    if "sizes" in dict(varying) and "sizes" not in skewed and _areas_apart(per_class):
        skewed.insert(0, "sizes")
    if skewed:
        apart = [said for what, counters in varying if what in skewed for said in _apart(counters)]
        named = f" ({'; '.join(apart[:2 * SHOWN])}{'; ...' if len(apart) > 2 * SHOWN else ''})" if apart else ""
        text += (f". The {' and '.join(skewed)} differ by class, so the model can learn the file format instead of "
                 f"the finding{named}. Fix: bring every class to one format, or check that the test split mixes "
                 "them as the clinic will")
    return text


def _shown(what: str, counters: dict[str, Counter], per_class: dict[str, _Headers]) -> str:
    if what == "sizes" and max(len(c) for c in counters.values()) > SHOWN:   # each file its own size
        return "; ".join(f"{name}: median {_median_side(h)}" for name, h in per_class.items())
    return "; ".join(f"{name}: " + ", ".join(f"{fmt} {n}" for fmt, n in c.most_common(SHOWN))
                     for name, c in counters.items())


def _median_side(headers: _Headers) -> str:
    width = statistics.median(int(s.split("x")[0]) for s in headers.sizes.elements())
    height = statistics.median(int(s.split("x")[1]) for s in headers.sizes.elements())
    return f"{width:g}x{height:g}"


def _skewed(counters: dict[str, Counter]) -> bool:
    shares = [{fmt: n / sum(c.values()) for fmt, n in c.items()} for c in counters.values()
              if sum(c.values()) >= MIN_COMPARED]
    formats = set().union(*shares)
    return any(abs(a.get(fmt, 0) - b.get(fmt, 0)) > SHARE_GAP for a in shares for b in shares for fmt in formats)


def _apart(counters: dict[str, Counter]) -> list[str]:
    """The classes whose files stand apart in a format that is not the commonest, each said as `malignant: RGB
    9 of 9, the other classes 2 of 51`: a class of MIN_COMPARED files or more whose share of it exceeds the other
    classes' by over SHARE_GAP, or a smaller one of MIN_UNIFORM files or more all of it, a format found in at most
    FEW_ELSEWHERE of the other classes' files. A flag alone left the user to find the class in a long line."""
    every = sum(counters.values(), Counter())
    commonest = every.most_common(1)[0][0]   # a class short of it stands apart in its other format, said instead
    said = []
    for name, found in counters.items():
        n, rest = sum(found.values()), every - found
        m = sum(rest.values())
        if m < MIN_COMPARED or n < MIN_UNIFORM:
            continue
        for fmt, k in found.most_common():
            elsewhere = rest[fmt] / m
            if fmt != commonest and ((n >= MIN_COMPARED and k / n - elsewhere > SHARE_GAP) or
                                     (k == n and elsewhere <= FEW_ELSEWHERE)):
                said.append(f"{name}: {fmt} {k} of {n}, the other classes {rest[fmt]} of {m}")
    return said


def _areas_apart(per_class: dict[str, _Headers]) -> bool:
    medians = [statistics.median(h.areas) for h in per_class.values() if len(h.areas) >= MIN_COMPARED]
    return len(medians) > 1 and max(medians) > AREA_RATIO * min(medians)


def _class_files(plan: SplitPlan, label: int) -> list[Path]:
    return [path for split, files in plan.files.items() for path, y in zip(files, plan.labels[split]) if y == label]


def _headers(paths: list[Path]) -> _Headers:
    found = _Headers()
    for path in paths:
        try:
            with Image.open(path) as img:   # reads the header only
                found.sizes[f"{img.width}x{img.height}"] += 1
                found.modes[img.mode] += 1
                found.types[img.format or path.suffix.lstrip(".").upper()] += 1
                found.areas.append(img.width * img.height)
        except UNREADABLE_IMAGE:
            continue   # decoding names unreadable files (a decompression bomb too)
    return found
