"""The report's questions, in order. Adding a question = adding a module and its templates."""

from . import q1_data

SECTIONS = (
    q1_data.SECTION,
)
