"""An export folder whose files cannot be read or do not fit together, said in one line, not a traceback.

config.json that is not JSON or lacks a key, an architecture this searchlab does not know, a weights file
truncated or from another export: each surfaces from the plain-PyTorch loader (models/standalone.py, which
exports ship as model.py and so raises only Python's own errors) as one of these.
"""
from __future__ import annotations

import struct
from pathlib import Path

# json.JSONDecodeError is a ValueError; struct.error: a safetensors header cut short
UNLOADABLE = (ValueError, KeyError, TypeError, RuntimeError, struct.error, OSError)


def unloadable(export_dir: Path | str, exc: BaseException) -> str:
    """'<dir> cannot be loaded (<Error>: <first line>)', without the error's own '. Fix: ...': every caller
    follows this with the fix for its command, and a line holds one (a swapped weights file's text offers a
    classifier's model.save, which a generator's export, or searchlab itself, cannot take)."""
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"{export_dir} cannot be loaded ({type(exc).__name__}: {first.split('. Fix: ', 1)[0]})"
