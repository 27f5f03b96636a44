"""Numbers read from the paper's own text (Delisle et al. 2022, ``../shared/paper/`` beside the
repository), so that constants transcribed into ``dnorm`` are checked against the source, not a
copy of themselves."""

from __future__ import annotations

import re
from pathlib import Path

from ci_helpers import unavailable

PAPER = Path(__file__).resolve().parents[2] / "shared" / "paper" / "000_34bf0661a28a635c.txt"
NUMBER = r"(\d+\.\d+)"


def paper_text() -> str:
    """The paper's text; skips the calling test when it is absent (fails under CI)."""
    if not PAPER.is_file():
        unavailable(f"the paper's text is not at {PAPER}")
    return PAPER.read_text()


def table_block(number: int) -> str:
    """The text from the caption "Table <number>." to the next table caption or section."""
    text = paper_text()
    start = text.index(f"Table {number}. ")
    end = re.compile(r"^\s*(Table \d+\. |\d+\.\d+\. [A-Z]|\d+\. [A-Z])", re.MULTILINE).search(text, start + 10)
    return text[start:end.start() if end else len(text)]


def table_rows(number: int, label: str, columns: int) -> list[tuple[str, tuple[float, ...]]]:
    """Rows of Table ``number`` as ``(label, numbers)``: lines made of a label matching the
    regular expression ``label`` followed by exactly ``columns`` decimal numbers, in order."""
    row = re.compile(rf"^\s*({label})" + rf"\s+{NUMBER}" * columns + r"\s*$", re.MULTILINE)
    return [(m.group(1), tuple(float(v) for v in m.groups()[1:])) for m in row.finditer(table_block(number))]
