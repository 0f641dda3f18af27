"""Sentences that differ between two report PDFs: ``python bench/diff_pdf_text.py A.pdf B.pdf``.

Both PDFs go through ``pdftotext`` (poppler-utils); the text is joined into one stream
(hyphenation and page furniture aside), split into sentences, and the sentences only in A or
only in B are printed (build times and dates, which differ between any two builds, are masked).
"""

from __future__ import annotations

import difflib
import re
import subprocess
import sys

MASK = re.compile(r"\(page \d+\)|\.{3,} ?\d+|\d{4}-\d\d-\d\dT?[\d:.+Z ]*|\d+(\.\d+)? ?s\b|\d+(\.\d+)? min\b")


def sentences(pdf: str) -> list[str]:
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", pdf, "-"], capture_output=True, text=True,
                          check=True).stdout
    text = re.sub(r"Page \d+ of \d+", " ", text.replace("\f", " "))     # page furniture
    text = re.sub(r"\s+", " ", text)
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+(?=[A-Z*(\[])", text) if s.strip()]


def main(a: str, b: str) -> int:
    sa, sb = sentences(a), sentences(b)
    out = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, sa, sb, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        old, new = sa[i1:i2], sb[j1:j2]
        if [MASK.sub("#", s) for s in old] == [MASK.sub("#", s) for s in new]:
            continue
        out += [f"- {s}" for s in old] + [f"+ {s}" for s in new] + [""]
    print("\n".join(out) if out else "no differences")
    return 1 if out else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
