"""Text cells of the CSV files searchlab writes (`predict`, `trials`), made safe to open in a spreadsheet.

Excel and LibreOffice read a cell that begins with = + - @ (or a tab or carriage return) as a formula: an image
named `=cmd().png`, a class name or an error message that came from user data ran as one (CSV injection). As
OWASP recommends, such a cell is written with a single quote before it, which spreadsheets show as text. A cell
that is a plain number (`-1`, a class named by a negative label) is no formula and is left as it is, so a reader
still gets the number. Parquet and JSON output hold the text as it is: no spreadsheet evaluates them.
"""
from __future__ import annotations

import re
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def spreadsheet_safe(cell: Any) -> Any:
    """`cell` with a single quote before it if it is text a spreadsheet would read as a formula; else as it is."""
    if isinstance(cell, str) and cell.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(cell):
        return "'" + cell
    return cell
