"""Verdict words as booleans for the answer templates, which print and never compare (issue #30)."""

from __future__ import annotations


def says(word: str, vocabulary) -> dict[str, bool]:
    """One boolean per word of a verdict's vocabulary (``{"met": True, "missed": False, ...}``): an answer
    template chooses its sentence with ``{% if x.says.met %}``, never by comparing strings."""
    return {w: w == word for w in vocabulary}
