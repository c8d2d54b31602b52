"""Helpers shared by the folder and CSV loaders: paths, image decoding, seeded splits.

Kept in one place so both sources resize, convert and split identically: a study must give the same
numbers whether its images arrive as a folder tree or as a CSV listing the same files.
"""
from __future__ import annotations

import itertools
import os
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from searchlab.config.schema import usable_cores
from searchlab.data.class_typos import typo_hint
from searchlab.data.given_splits import SPLITS, resolve_path  # noqa: F401  (imported from here by others)
from searchlab.data.grouping import own_splits_said, spanning_split, spans_classes, sub_folder
from searchlab.data.image_cache import cache_dir, cached_decode
from searchlab.data.label_stratify import deal_by_labels
from searchlab.data.types import Decoding, ImageSplit, SplitPlan
from searchlab.errors import DataError, a_few
from searchlab.models.image_files import read_image_file

# what Pillow decodes; a multi-frame file (TIFF stack, animated GIF) is read as its first frame. Files are
# chosen by extension only (reading every file's first bytes would slow a large folder's listing): .jfif and
# .jpe are JPEG's other names (Windows saves web images as .jfif)
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".jfif", ".jpe", ".bmp", ".tif", ".tiff", ".webp", ".gif"})
# what opening an image file that cannot be read raises (a truncated file, a bad header, one too large to decode)
UNREADABLE_IMAGE = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)
# Pillow warns, once and without naming the file, of any image over 89 million pixels as a possible
# decompression bomb: whole-slide and stitched scans are that large, and the user chose these files. Each is
# downscaled at once; one over twice that still fails, named with what to do (read_image)
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
DICOM_EXTENSIONS = frozenset({".dcm", ".dicom"})
DICOM_FIX = "convert it to 16-bit PNG (e.g. with pydicom) and set data.bit_depth"
FEW_GROUPS = 8   # a class's groups up to which every way of dealing them to the splits is weighed (3^8 at most)


def one_line(exc: BaseException, limit: int = 300) -> str:
    """An exception as one short line, for messages the CLI prints without a traceback."""
    text = " ".join(str(exc).split()) or "no details"
    text = f"{type(exc).__name__}: {text}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_image(path: Path, decoding: Decoding) -> np.ndarray:
    """Decode one image file to uint8 (C, size, size); DataError naming the file if it cannot be read.

    The decoding is the exported model.py's own (`load_images`), so a deployed model reads files as the
    search did."""
    try:
        return read_image_file(path, decoding.size, decoding.size, decoding.channels, decoding.fit,
                               decoding.bit_depth).numpy()
    except UNREADABLE_IMAGE as exc:
        if path.is_symlink() and not path.exists():
            raise DataError(f"{path}: cannot read image (a link to {os.readlink(path)}, which does not exist: "
                            "point it at the image). Fix: replace or remove the file") from exc
        if path.suffix.lower() in DICOM_EXTENSIONS:   # listed by a CSV (a folder's are counted and left out)
            # the advice within the reason: a message naming several files keeps the reasons, not their fixes
            raise DataError(f"{path}: cannot read image (DICOM is not read: {DICOM_FIX}). "
                            "Fix: replace or remove the file") from exc
        if isinstance(exc, Image.DecompressionBombError):   # a whole-slide or stitched image, not an attack
            raise DataError(f"{path}: cannot read image (over Pillow's safety limit of "
                            f"{2 * (Image.MAX_IMAGE_PIXELS or 0):,} pixels: downscale it, e.g. to 4096 px, or cut "
                            "it into tiles first). Fix: replace or remove the file") from exc
        raise DataError(f"{path}: cannot read image ({unreadable_reason(path, exc)}). "
                        f"Fix: replace or remove the file") from exc


def unreadable_reason(path: Path, exc: BaseException) -> str:
    """Why an image file cannot be read, for a list of them: Pillow calls an empty file (a copy that ran out
    of space, a download that never started) one it 'cannot identify', which sent users looking for a codec."""
    try:
        empty = path.stat().st_size == 0
    except OSError:
        empty = False
    return "empty file (0 bytes)" if empty else one_line(exc)


def _read_or_error(path: Path, decoding: Decoding) -> np.ndarray | DataError:
    try:
        return read_image(path, decoding)
    except DataError as exc:
        return exc


def spread(paths: Sequence[Path], sample: int) -> list[Path]:
    """Up to `sample` of `paths`, evenly spread over the list (a folder's classes and patients all show)."""
    if len(paths) <= sample:
        return list(paths)
    return [paths[i] for i in np.linspace(0, len(paths) - 1, sample).astype(int)]


def bit_depth_advice(paths: Sequence[Path], bit_depth: int | None, sample: int = 256) -> str | None:
    """What is wrong with how images of more than 8 bits will be scaled, judged from the raw values of up to
    `sample` files spread over `paths`; None if nothing. 12-bit values in 16-bit files scaled from 65535 decode
    nearly black (a few such files among full-range ones, from another scanner or export, too: the model can
    then tell the files apart by brightness); values above 2^bit_depth - 1 clip to white."""
    # 64 files spread over the set first, then up to `sample` while the check has taken under 3 s: 256 16-bit
    # 512 px PNGs take ~1.5 s, but a 2k px X-ray set would add ~20 s to every run start
    started, first = time.perf_counter(), spread(paths, min(sample, 64))
    deep, colour = _deep_maxima(first)
    picked = first
    if len(paths) > len(first) and time.perf_counter() - started < 3.0:
        picked = spread(paths, sample)
        seen = set(first)
        more_deep, more_colour = _deep_maxima([p for p in picked if p not in seen])
        deep.update(more_deep)
        colour.update(more_colour)
    said = [_grey_advice(deep, len(picked), bit_depth), _colour_advice(colour, len(picked), bit_depth)]
    return " Also: ".join(text for text in said if text) or None


def _grey_advice(deep: dict[Path, int], picked: int, bit_depth: int | None) -> str | None:
    if not deep:
        return None
    top, example = max((v, str(p)) for p, v in deep.items())
    low = sorted(str(p) for p, v in deep.items() if v <= 4095)
    if bit_depth is None and low and len(low) < len(deep):
        return (f"{len(low)} of {len(deep)} sampled 16-bit files have values below 4096 (12 bits; e.g. {low[0]}) "
                f"while the others reach {top} (e.g. {example}): scaled from 0..65535 the first decode almost "
                "black, and a model can learn which kind of file an image is instead of what it shows. Fix: "
                "convert the files to one range before the search (12-bit values times 16); data.bit_depth "
                "applies one depth to every file")
    if bit_depth is None and top <= 4095:
        return (f"{len(deep)} of {picked} sampled images are 16-bit files whose values stay below 4096 "
                f"(12 bits; e.g. {example}): scaled from 0..65535 they decode almost black. Fix: set "
                "data.bit_depth to the bits the values use (12 for most X-ray/CT exports)")
    if bit_depth is not None and top > 2 ** bit_depth - 1:
        return (f"values up to {top} (e.g. {example}) exceed data.bit_depth {bit_depth} (0..{2 ** bit_depth - 1}): "
                "brighter pixels all clip to white. Fix: a larger bit_depth, or remove it for 16-bit data")
    if bit_depth is not None and top * 16 < 2 ** bit_depth:   # the brightest sampled pixel decodes below 16 of 255
        return (f"the sampled files' values reach only {top} (e.g. {example}), under 1/16 of data.bit_depth "
                f"{bit_depth}'s 0..{2 ** bit_depth - 1}: every image decodes almost black (its brightest pixel "
                f"{round(top * 255 / (2 ** bit_depth - 1))} of 255). Fix: set data.bit_depth to the bits the values "
                f"use ({max(top, 1).bit_length()} for values up to {top}), or remove it for 16-bit data (0..65535)")
    return None


def _colour_advice(colour: dict[Path, int], picked: int, bit_depth: int | None) -> str | None:
    """16-bit colour files: Pillow has no mode for them and keeps each value's top 8 bits, so bit_depth cannot
    apply and 12-bit values (top byte 0..15) decode almost black; full-range ones read as from 0..65535."""
    dark = sorted(str(p) for p, top_byte in colour.items() if top_byte <= 15)
    if not colour or (bit_depth is None and not dark):
        return None
    example = dark[0] if dark else str(min(colour))
    why = (f"data.bit_depth {bit_depth} applies to single-channel files only" if bit_depth is not None else
           f"{len(dark)} of them have values below 4096 (12 bits) and decode almost black")
    return (f"{len(colour)} of {picked} sampled images are 16-bit colour files (e.g. {example}), read at 8 bits "
            f"per channel as from 0..65535 (the image library keeps each value's top 8 bits): {why}. Fix: convert "
            "them before the search, to 8-bit colour with the values scaled to 0..255, or, for grey images, to "
            "16-bit single-channel files (which data.bit_depth scales)")


def _deep_maxima(paths: Sequence[Path]) -> tuple[dict[Path, int], dict[Path, int]]:
    """The largest raw value of each 16-bit or 32-bit integer file among `paths`; and of each 16-bit colour
    file, the largest value as read (its values' top 8 bits). Read on every core, as training decodes: one
    file at a time, 64 2k-px 16-bit X-rays took 8-10 s of every run's start."""
    with ThreadPoolExecutor(max_workers=decode_threads()) as pool:
        found = list(pool.map(_raw_maximum, paths))
    deep = {path: top for path, (kind, top) in zip(paths, found) if kind == "deep"}
    colour = {path: top for path, (kind, top) in zip(paths, found) if kind == "colour"}
    return deep, colour


def _raw_maximum(path: Path) -> tuple[str | None, int]:
    """("deep", its largest raw value) for a 16/32-bit integer file, ("colour", its largest value as read) for a
    16-bit colour file, (None, 0) for any other or an unreadable one (decoding names those, a bomb too)."""
    try:
        with Image.open(path) as img:
            if img.mode.startswith("I;16") or img.mode == "I":
                return "deep", int(np.asarray(img).max())
            if _sixteen_bit_colour(img):
                return "colour", int(np.asarray(img).max())
    except UNREADABLE_IMAGE:
        pass
    return None, 0


def _sixteen_bit_colour(img: Image.Image) -> bool:
    """Stored at 16 bits per channel (a PNG's or TIFF's raw mode RGB;16B, RGBA;16L...), opened as 8-bit RGB(A)."""
    raw_modes = [tile[3][0] if isinstance(tile[3], tuple) else tile[3] for tile in img.tile]
    return img.mode in ("RGB", "RGBA") and any(isinstance(raw, str) and ";16" in raw for raw in raw_modes)


def first_lines(lines: list[str], shown: int = 10) -> str:
    """Up to `shown` indented lines, then how many more: errors name every bad file, but not 5,000 of them."""
    more = f"\n  ... and {len(lines) - shown} more" if len(lines) > shown else ""
    return "\n  " + "\n  ".join(lines[:shown]) + more


class UnreadableImages(DataError):
    """Image files that cannot be decoded, all named in one message (a folder is fixed in one pass)."""

    def __init__(self, errors: list[DataError], total: int, shown: int = 10, what: str = "image files",
                 fix: str = "replace or remove these files") -> None:
        self.errors, self.total = errors, total
        lines = first_lines([str(e).split(". Fix:")[0] for e in errors], shown)
        super().__init__(f"{len(errors)} of {total} {what} cannot be read:{lines}\nFix: {fix}")


def decode_threads() -> int:
    """The cores this process may run on (its affinity: taskset, a Ray or batch job's cpuset), at most 16."""
    return max(1, min(16, usable_cores()))


class DecodeProgress:
    """A line now and then while a split takes long to decode: 3,000 X-rays at 2k px decode for about ten
    minutes on 2 cores, which a run spent without a word after its `data:` line."""

    FIRST, EVERY = 15.0, 60.0   # seconds before the first line, and between lines

    def __init__(self, total: int, cached: bool, doing: str = "data: decoded") -> None:
        self.total, self.cached, self.doing = total, cached, doing
        self.start = time.monotonic()
        self.due = self.FIRST

    def decoded(self, done: int) -> None:
        elapsed = time.monotonic() - self.start
        if elapsed < self.due or done >= self.total:
            return
        left = (self.total - done) * elapsed / done
        kept = "; kept in the image cache for later runs" if self.cached else ""
        print(f"{self.doing} {done} of {self.total} images in {elapsed:.0f} s, about {left:.0f} s to go{kept}",
              file=sys.stderr)
        self.due = elapsed + self.EVERY


def load_split(paths: Sequence[Path], labels: np.ndarray, decoding: Decoding) -> ImageSplit:
    """Read the listed files into one in-memory split (only called for splits the caller asked for)."""
    def decode(rows: Sequence[int]) -> np.ndarray:
        """The files at `rows` of `paths` (those the image cache does not hold), decoded."""
        images = np.zeros((len(rows), decoding.channels, decoding.size, decoding.size), dtype=np.uint8)
        unreadable: list[DataError] = []
        progress = DecodeProgress(len(rows), cached=cache_dir() is not None)
        # Pillow releases the GIL while it decodes and resizes, so threads use every core this process may
        with ThreadPoolExecutor(max_workers=decode_threads()) as pool:
            for i, image in enumerate(pool.map(lambda row: _read_or_error(paths[row], decoding), rows)):
                progress.decoded(i + 1)
                if isinstance(image, DataError):
                    unreadable.append(image)
                else:
                    images[i] = image
        if unreadable:
            raise UnreadableImages(unreadable, len(paths))
        return images

    images = cached_decode(paths, decoding, decode)
    label_tensor = torch.from_numpy(np.ascontiguousarray(labels))
    label_tensor = label_tensor.float() if label_tensor.ndim == 2 else label_tensor.long()
    return ImageSplit(images=torch.from_numpy(images), labels=label_tensor)


def load_splits(plan: SplitPlan, splits: Sequence[str], decoding: Decoding) -> dict[str, ImageSplit]:
    """The asked-for splits of a plan, read; unreadable files of every split named together."""
    loaded, unreadable, total = {}, [], 0
    for split in splits:
        total += len(plan.files[split])
        try:
            loaded[split] = load_split(plan.files[split], plan.labels[split], decoding)
            if split in plan.groups:
                loaded[split] = replace(loaded[split], groups=tuple(plan.groups[split]))
        except UnreadableImages as exc:
            unreadable += exc.errors
    if unreadable:
        raise UnreadableImages(unreadable, total)
    return loaded


def _typo_hint(name: str, class_names: Sequence[str] | None, labels: np.ndarray) -> str:
    return typo_hint(name, class_names, labels.astype(np.int64)) if class_names is not None else ""


def _holdout_sizes(n: int, fractions: Mapping[str, float]) -> dict[str, int]:
    """Images per held-out split; any non-zero fraction gets at least one so every split sees every class."""
    return {name: max(1, round(n * f)) if f > 0 else 0 for name, f in fractions.items()}


def _too_few(where: str, what: str, n: int, fractions: Mapping[str, float], hint: str = "") -> DataError:
    wanted = ", ".join(f"{k}_fraction={v:g}" for k, v in fractions.items())
    return DataError(
        f"{where}: {what} has {n} image(s), too few to split into train/{'/'.join(fractions)} "
        f"({wanted}): each split needs at least one image of each class. "
        f"Fix: add images, lower the fractions, or provide the splits explicitly{hint}")


def stratified_split(labels: Sequence[int], fractions: Mapping[str, float], seed: int, where: str,
                     class_names: Sequence[str] | None = None,
                     groups: Sequence[str] | None = None, folder: bool = False) -> dict[str, np.ndarray]:
    """Seeded per-class split: {'train': idx, **{k: idx for k in fractions}}, each sorted.

    Stratified because small medical sets are imbalanced; a plain random split can leave val with no
    positives. Deterministic for a given seed and file list, so the test split never moves between calls.
    With `groups` (e.g. one per patient), each group's images go to one split together. `folder`: the groups
    are an image folder's patient sub-folders (`where` the folder), not a CSV's group_column, which a refusal
    then names.
    """
    labels = np.asarray(labels)
    if groups is not None and len(set(groups)) < len(groups):
        if spans_classes(labels, groups):   # a CSV patient with images of two classes, or benign/p07 + malignant/p07
            return spanning_split(labels, fractions, seed, where, class_names, groups, folder=folder)
        return _grouped_split(labels, fractions, seed, where, class_names, list(groups), folder)
    rng = np.random.default_rng(seed)
    out: dict[str, list[np.ndarray]] = {"train": [], **{k: [] for k in fractions}}
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        sizes = _holdout_sizes(len(idx), fractions)
        if sum(sizes.values()) >= len(idx):
            name = class_names[int(c)] if class_names is not None else str(c)
            raise _too_few(where, f"class {name!r}", len(idx), fractions, _typo_hint(name, class_names, labels))
        start = 0
        for split, k in sizes.items():
            out[split].append(idx[start:start + k])
            start += k
        out["train"].append(idx[start:])
    return {k: np.sort(np.concatenate(v)) if v else np.zeros(0, dtype=np.int64) for k, v in out.items()}


def _grouped_split(labels: np.ndarray, fractions: Mapping[str, float], seed: int, where: str,
                   class_names: Sequence[str] | None, groups: list[str], folder: bool = False) -> dict[str, np.ndarray]:
    """Per class, whole groups in seeded order fill each held-out split up to its share of the class's images,
    the rest train (at least one group each). Shares are met as nearly as whole groups allow."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[int]] = {"train": [], **{k: [] for k in fractions}}
    for c in np.unique(labels):
        members: dict[str, list[int]] = {}
        for i in np.flatnonzero(labels == c):
            members.setdefault(groups[i], []).append(int(i))
        names = sorted(members)
        sizes = _holdout_sizes(int((labels == c).sum()), fractions)
        if len(names) <= sum(1 for k in sizes.values() if k):
            name = class_names[int(c)] if class_names is not None else str(c)
            if folder:
                raise DataError(_too_few_sub_folders(where, name, names, fractions))
            raise DataError(f"{where}: class {name!r} has {len(names)} group(s) of images (a patient: a sub-folder, "
                            "a data.group_column id, or a loose image alone; each kept in one split), too few for "
                            f"train/{'/'.join(fractions)}: each split needs one. Fix: add images of more patients, or "
                            f"lower the fractions{_typo_hint(name, class_names, labels)}")
        chosen = _dealt_in_order([names[g] for g in rng.permutation(len(names))], members, sizes)
        if len(names) <= FEW_GROUPS:
            chosen = _closest_to_shares(chosen, members, sizes, np.random.default_rng([seed, int(c)]))
        for group, split in chosen.items():
            out[split] += members[group]
    return {k: np.sort(np.asarray(v, dtype=np.int64)) for k, v in out.items()}


def _dealt_in_order(order: list[str], members: Mapping[str, list[int]], sizes: Mapping[str, int]) -> dict[str, str]:
    """Group -> split: in this order, each held-out split filled up to its size, the rest train (one at least)."""
    filled, trained, chosen = dict.fromkeys(sizes, 0), False, {}
    for position, group in enumerate(order):
        target = next((split for split, k in sizes.items() if filled[split] < k), "train")
        if position == len(order) - 1 and not trained:
            target = "train"
        chosen[group] = target
        trained |= target == "train"
        if target != "train":
            filled[target] += len(members[group])
    return chosen


def _closest_to_shares(dealt: dict[str, str], members: Mapping[str, list[int]], sizes: Mapping[str, int],
                       rng: np.random.Generator) -> dict[str, str]:
    """With few groups, dealing them in random order could leave training the smallest (patients of 2, 2 and 1
    images: train 1, val 2, test 2). Every way of dealing them (each split one group at least) is weighed by how
    far training is from its share, then all splits together; the dealt one is kept unless another is closer
    (so splits that were already as close stay as they were), ties drawn by the seeded `rng`."""
    names, splits = sorted(members), ["train", *(k for k, n in sizes.items() if n)]
    counts = [len(members[g]) for g in names]
    wanted = [sum(counts) - sum(sizes.values()), *(sizes[k] for k in splits[1:])]

    def cost(way: Sequence[str]) -> tuple[int, int]:
        got = [sum(n for n, split in zip(counts, way) if split == s) for s in splits]
        gaps = [abs(g - w) for g, w in zip(got, wanted)]
        return gaps[0], sum(gaps)

    weighed = [(cost(way), way) for way in itertools.product(splits, repeat=len(names)) if len(set(way)) == len(splits)]
    best = min(c for c, _ in weighed)
    if cost([dealt[g] for g in names]) <= best:
        return dealt
    closest = [way for c, way in weighed if c == best]
    return dict(zip(names, closest[int(rng.integers(len(closest)))]))


def _too_few_sub_folders(where: str, name: str, groups: list[str], fractions: Mapping[str, float]) -> str:
    """A folder's class whose images sit in too few sub-folders (each kept whole in one split) for the splits:
    often one generic sub-folder (`benign/images`), which is no patient."""
    folders = [sub_folder(where, g) for g in groups if not Path(g).is_file()]
    loose = len(groups) - len(folders)
    held = "/".join(k for k, f in fractions.items() if f > 0) or "/".join(fractions)
    said = (f"sub-folder{'' if len(folders) == 1 else 's'} {a_few(folders, 4)}" if folders else "") + \
        (" and " if folders and loose else "") + (f"{loose} loose image(s)" if loose else "")
    if len(groups) == 1 and folders:
        return (f"{where}: class {name!r} has all its images in one sub-folder, {folders[0]}, taken as ONE patient "
                f"holding all of them (each sub-folder of a class folder is kept in one split), but train/{held} "
                f"each need one. Fix: if it is not a patient, move its images up into {name}/ (they are then split "
                f"image by image); or {own_splits_said(where, fractions)}")
    groups_said = f"{len(groups)} group{'' if len(groups) == 1 else 's'}"
    return (f"{where}: class {name!r} has its images in {groups_said} ({said}), each sub-folder taken as "
            f"ONE patient kept in one split (a loose image alone), too few for train/{held}: each split needs one. "
            f"Fix: if the sub-folders are not patients, move their images up into {name}/; else add images of more "
            f"patients, or lower the fractions; or {own_splits_said(where, fractions)}")


def label_stratified_split(labels: np.ndarray, fractions: Mapping[str, float], seed: int,
                           where: str) -> dict[str, np.ndarray]:
    """Seeded multi-label split of images by iterative stratification (data/label_stratify.py): each split its
    share of every label's positives, and random_split's number of images where the labels allow."""
    n = len(labels)
    sizes = _holdout_sizes(n, fractions)
    if sum(sizes.values()) >= n:
        raise _too_few(where, "the data set", n, fractions)
    # dealt among the splits asked for: a split of fraction 0 in the deal took the rows its overfull neighbours
    # had no room for (test_fraction 0 gave 1-3 of 60 rows a test split)
    asked = {name: k for name, k in sizes.items() if k}
    wanted = [n - sum(asked.values()), *asked.values()]
    split_of = deal_by_labels(labels, np.ones(n), wanted, [fractions[name] for name in asked],
                              np.random.default_rng(seed))
    out = {name: np.flatnonzero(split_of == b) for b, name in enumerate(["train", *asked])}
    if any(len(rows) == 0 for rows in out.values()):
        raise _too_few(where, "the data set", n, fractions)
    return {"train": out["train"], **{name: out.get(name, np.zeros(0, np.int64)) for name in fractions}}


def random_split(n: int, fractions: Mapping[str, float], seed: int, where: str) -> dict[str, np.ndarray]:
    """Seeded split by permutation (multi-label rows with `multilabel_split: random`, as searchlab split them
    before label_stratified_split)."""
    perm = np.random.default_rng(seed).permutation(n)
    sizes = _holdout_sizes(n, fractions)
    if sum(sizes.values()) >= n:
        raise _too_few(where, "the data set", n, fractions)
    out, start = {}, 0
    for split, k in sizes.items():
        out[split] = np.sort(perm[start:start + k])
        start += k
    out["train"] = np.sort(perm[start:])
    return out


def check_splits(splits: Sequence[str]) -> tuple[str, ...]:
    """Normalise the requested split names (a programming error, not a user one, if they are wrong)."""
    splits = tuple(splits)
    bad = [s for s in splits if s not in SPLITS]
    if not splits or bad:
        raise ValueError(f"splits must be a non-empty subset of {SPLITS}, got {splits!r}")
    return tuple(dict.fromkeys(splits))
