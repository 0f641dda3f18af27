"""report.words.says: a verdict word as one boolean per word of its vocabulary (issue #30)."""

from report.words import says


def test_exactly_the_word_said_is_true():
    # catches `w in word` (a substring: "differently" inside "no differently") or every word true
    assert says("no differently", ("differently", "no differently", "cannot tell")) == {
        "differently": False, "no differently": True, "cannot tell": False}


def test_a_word_outside_the_vocabulary_says_nothing():
    # catches a default that marks the first word true when the verdict is none of them
    assert not any(says("depends on the fill", ("IG", "Grad-CAM")).values())
