"""Count what the answer templates hold (issue #30, item 3): ``{% %}`` tags, ``{{ }}`` fields,
if/elif branches, lines and the longest line. ``python bench/template_counts.py [DIR]``."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ANSWERS = Path(__file__).resolve().parent.parent / "templates" / "answers"


def counts(folder: Path = ANSWERS) -> dict:
    text = "\n".join(p.read_text() for p in sorted(Path(folder).rglob("*.md")))
    lines = text.splitlines()
    return {"tags": len(re.findall(r"{%.*?%}", text, re.S)), "fields": len(re.findall(r"{{.*?}}", text, re.S)),
            "if_elif": len(re.findall(r"{%-?\s*(?:if|elif)\b", text)), "lines": len(lines),
            "longest_line": max(map(len, lines))}


if __name__ == "__main__":
    print(counts(Path(sys.argv[1]) if len(sys.argv) > 1 else ANSWERS))
