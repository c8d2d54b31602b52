"""Whether image files given to `searchlab predict` are like the files its model was trained on, in size and in
colour. Every file is resized to the model's input and converted to its channels without complaint (that is what
load_images must do), so a 1x1 file, a 2000x2 strip or a colour photograph given to a model of greyscale X-rays
is scored as readily as a scan of its training set: these say so, once, with a few of the files.

The export records the range of its training files' sizes (`files_sized`, from their headers) beside their kind
(`files_were`); predict compares a sample of the files given with it.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from searchlab.data.colour import grey_mode, in_colour
from searchlab.data.common import UNREADABLE_IMAGE, spread
from searchlab.errors import a_few

SAMPLE = 200          # files whose headers are read, spread over the list: as `files_were` samples them
COLOUR_SAMPLE = 20    # RGB or palette files decoded to tell true colour from grey saved as RGB (~50 ms each)
# Far from the training sizes: a side under half the smallest training side, or over 4x the largest, or an
# aspect ratio beyond 1.5x the training range. Loose on purpose: a set's sizes vary (a 550x420 file among
# training images of 500x400 to 600x450 is normal); a thumbnail, a strip or a whole-slide tile is not.
SMALLER, LARGER, ASPECT = 2.0, 4.0, 1.5
# Without a recorded range (MedMNIST arrays, which are the model's own size, or an export older than
# files_sized): MedMNIST itself was made by downsizing larger scans, so any larger file may be fair; only what no
# source of a HxW model's training images can be is said: a side under 8 px (and under the model's own side),
# or an aspect ratio over 4:1 either way of the model's input.
TINY_SIDE, EXTREME_ASPECT = 8, 4.0
# Mean difference between channels, in 8-bit levels (data/colour.py in_colour), above which a file is colour: a
# grey image saved as RGB (or as an RGB JPEG, whose decoding differs by a level or so) stays under it, and so does
# an X-ray with a small coloured marker burned in, which converts to grey as it should. Lower than a run start's
# check (which asks whether most training images carry colour): here one colour file among grey ones is said
COLOUR_LEVELS = 2.0
ORIENTATION = 0x0112  # the EXIF tag: 5 to 8 are stored sideways, and decoded (decoder >= 2) turned upright


def record_files_sized(summary: dict[str, Any], train_files: Sequence[str | Path]) -> None:
    """The export's record of its training files' sizes (summary["input"]["files_sized"]); nothing for a data
    set of arrays (MedMNIST), which are the model's own size."""
    if sized := files_sized([Path(p) for p in train_files]):
        summary["input"]["files_sized"] = sized


def files_sized(paths: Sequence[Path], sample: int = SAMPLE) -> dict[str, Any] | None:
    """{"width": [min, max], "height": [min, max], "aspect": [min, max] (width/height), "sampled": n} of up to
    `sample` files spread over `paths`, read from their headers as decoded (upright); None when none is read."""
    sizes = [size for path in spread(list(paths), sample) if (size := header_size(path))]
    if not sizes:
        return None
    widths, heights = [w for w, _ in sizes], [h for _, h in sizes]
    aspects = [w / h for w, h in sizes]
    return {"width": [min(widths), max(widths)], "height": [min(heights), max(heights)],
            "aspect": [round(min(aspects), 4), round(max(aspects), 4)], "sampled": len(sizes)}


def header_size(path: Path, upright: bool = True) -> tuple[int, int] | None:
    """(width, height) as the file decodes, from its header only; None if it cannot be opened (decoding names
    unreadable files). A PNG's EXIF after its pixels is not looked for: Pillow would decode the image for it."""
    try:
        with Image.open(path) as img:
            width, height = img.size
            if upright and (img.format != "PNG" or "exif" in img.info) and \
                    img.getexif().get(ORIENTATION, 1) in (5, 6, 7, 8):
                width, height = height, width
    except UNREADABLE_IMAGE:
        return None
    return (width, height) if width > 0 and height > 0 else None


def unlike_training(files: Sequence[Path], config: dict[str, Any]) -> list[str]:
    """The warnings `predict` prints about these files (none when they are like the training files)."""
    grey = grey_into_colour_warning(files, config["input"]["channels"]) \
        if config["input"].get("files_were", "colour") == "colour" else None   # not when trained on grey
    return [said for said in (size_warning(files, config), grey, colour_into_grey_warning(files, config)) if said]


def size_warning(files: Sequence[Path], config: dict[str, Any], sample: int = SAMPLE) -> str | None:
    """Files far outside the sizes the model was trained on (the recorded range, else only extreme ones)."""
    spec = config.get("input", {})
    if "height" not in spec or "width" not in spec:
        return None
    picked = spread(list(files), sample)
    upright = spec.get("decoder", 1) >= 2
    sizes = {path: size for path in picked if (size := header_size(path, upright))}
    outside, rule = _bounds(spec)
    far = [f"{path} ({w}x{h})" for path, (w, h) in sizes.items() if outside(w, h)]
    if not far:
        return None
    return (f"{len(far)} of {len(picked)} image files (sampled) are far from the size of the images this model was "
            f"trained on ({a_few(far)}; width x height in px): {rule}. They are resized to the model's input of "
            f"{spec['width']}x{spec['height']} with fit={spec.get('fit', 'stretch')}, so predictions on them may mean "
            "little. Fix: check that they are the kind of images the model was trained on, and crop or resize them "
            "as the training images were")


def _bounds(spec: dict[str, Any]) -> tuple[Any, str]:
    """(whether a width, height is far, the rule said) from the recorded training range, or the model's input."""
    sized = spec.get("files_sized")
    if _well_formed(sized):
        (w_lo, w_hi), (h_lo, h_hi), (a_lo, a_hi) = sized["width"], sized["height"], sized["aspect"]

        def outside(w: int, h: int) -> bool:
            return (w < w_lo / SMALLER or h < h_lo / SMALLER or w > w_hi * LARGER or h > h_hi * LARGER
                    or not a_lo / ASPECT <= w / h <= a_hi * ASPECT)

        return outside, (f"its training files ({sized.get('sampled', '?')} sampled) were {_span(w_lo, w_hi)} px "
                         f"wide and {_span(h_lo, h_hi)} px high, of aspect ratio (width/height) "
                         f"{_span(a_lo, a_hi, '.2f')}; far is a side under 1/{SMALLER:g} of the smallest or over "
                         f"{LARGER:g}x the largest, or an aspect ratio beyond {ASPECT:g}x that range")
    width, height = spec["width"], spec["height"]
    tiny, aspect = min(TINY_SIDE, width, height), width / height

    def extreme(w: int, h: int) -> bool:
        return min(w, h) < tiny or not aspect / EXTREME_ASPECT <= w / h <= aspect * EXTREME_ASPECT

    return extreme, (f"this export records no sizes of training files (trained on arrays of its input's size, as "
                     f"MedMNIST's, or exported by an older searchlab), and these have a side under {tiny} px or an "
                     f"aspect ratio over {EXTREME_ASPECT:g}x the model's input's")


def _well_formed(sized: Any) -> bool:
    return isinstance(sized, dict) and all(
        isinstance(sized.get(key), list) and len(sized[key]) == 2 and all(
            isinstance(v, (int, float)) and v > 0 for v in sized[key]) for key in ("width", "height", "aspect"))


def _span(low: float, high: float, spec: str = "g") -> str:
    return f"{low:{spec}}" if low == high else f"{low:{spec}} to {high:{spec}}"


def colour_into_grey_warning(files: Sequence[Path], config: dict[str, Any], sample: int = SAMPLE) -> str | None:
    """Colour files (channels that differ) for a model trained on greyscale files; RGB files whose channels are
    equal, as X-ray PNGs are often saved, are grey in effect and not counted."""
    spec = config.get("input", {})
    if spec.get("files_were") != "greyscale":
        return None
    picked = spread(list(files), sample)
    several = [path for path in picked if _several_bands(path)]   # headers: grey files are not decoded
    decoded = spread(several, COLOUR_SAMPLE)
    colour = [path for path in decoded if in_colour(path, COLOUR_LEVELS)]
    if not colour:
        return None
    scored = ("each is converted to grey (L = 0.299R + 0.587G + 0.114B) and scored as grey" if spec.get("channels") == 1
              else "they are scored in colour, which it never saw (its grey files were read as three equal channels)")
    return (f"{len(colour)} of {len(decoded)} RGB or palette image files decoded ({len(several)} among {len(picked)} "
            f"files sampled) are in colour, their red, green and blue differing ({a_few(colour)}), but this model "
            f"was trained on greyscale image files: {scored}, so predictions on them may mean little (RGB files "
            "with three equal channels are grey and not counted). Fix: check that they are the kind of images the "
            "model was trained on (its scanner and export), or convert them to grey as the training images were")


def _several_bands(path: Path) -> bool:
    """Whether a file's header says RGB, palette, CMYK or the like: what may be colour."""
    try:
        with Image.open(path) as img:
            return not grey_mode(img.mode)
    except UNREADABLE_IMAGE:
        return False   # decoding names unreadable files



def grey_into_colour_warning(files: Sequence[Path], channels: int, sample: int = SAMPLE) -> str | None:
    """Greyscale files given to a model trained on colour images are copied into 3 equal channels and scored
    without complaint, though they are often another scanner's or a converted export's: said, with a few of
    them. (Colour files for a greyscale model: colour_into_grey_warning, which decodes them to tell grey saved as
    RGB from colour.)"""
    if channels != 3:
        return None
    grey = [path for path in spread(list(files), sample) if _single_band(path)]
    if not grey:
        return None
    return (f"{len(grey)} of {min(len(files), sample)} image files (sampled) are greyscale ({a_few(grey)}), but this "
            "model was trained on colour images: they are scored as grey colour images. Fix: check that they come from "
            "the scanner and export the model was trained for")


def files_were(paths: Sequence[Path], sample: int = SAMPLE) -> str | None:
    """Whether a sample of image files is greyscale, colour or mixed (None for no files, an npz set)."""
    picked = [Path(p) for p in spread(list(paths), sample) if Path(p).is_file()]   # the files still there
    if not picked:
        return None
    grey = sum(_single_band(path) for path in picked)
    return "greyscale" if grey == len(picked) else "colour" if grey == 0 else "mixed"


def _single_band(path: Path) -> bool:
    try:
        with Image.open(path) as img:   # the header only
            return img.mode != "P" and len(img.getbands()) == 1
    except UNREADABLE_IMAGE:
        return False   # decoding names unreadable files
