"""The report's questions, in order. Adding a question = adding a module and its templates."""

from . import q1_data, q2_model, q3_ig, q4_gradcam, q5_sanity

SECTIONS = (
    q1_data.SECTION,
    q2_model.SECTION,
    q3_ig.SECTION,
    q4_gradcam.SECTION,
    q5_sanity.SECTION,
)
