"""Headlines: paired effects with 95% intervals, and the verdicts and closing text written from them."""
import pytest

from postlab import headlines


def test_a_clear_paired_gain_is_called_up_and_a_wash_is_not():
    gain = headlines.paired("accuracy", [0] * 30, [1] * 20 + [0] * 10)
    assert gain["delta"] == pytest.approx(20 / 30) and gain["ci"][0] > 0 and headlines.verdict(gain) == "up"
    assert headlines.as_taught(gain)
    wash = headlines.paired("accuracy", [0, 1] * 15, [1, 0] * 15)  # every problem changed, no net change
    assert wash["delta"] == 0 and wash["ci"][0] < 0 < wash["ci"][1]
    assert headlines.verdict(wash) == "no measurable change" and not headlines.as_taught(wash)
    assert "cannot tell" in headlines.sentence(wash)


def test_a_fall_against_the_taught_direction_is_said_so():
    fall = headlines.paired("accuracy", [1] * 40, [0] * 15 + [1] * 25, expect="up")
    assert headlines.verdict(fall) == "down" and "against the direction" in headlines.sentence(fall)
    leash = headlines.paired("KL", [1.0] * 40, [0.2] * 40, expect="down")
    assert headlines.as_taught(leash) and "fell" in headlines.sentence(leash)


def test_versus_null():
    h = headlines.versus_null("pairwise accuracy - 0.5", [1] * 35 + [0] * 5, 0.5)
    assert h["before"] == 0.5 and h["after"] == pytest.approx(35 / 40) and h["ci"][0] > 0


def test_the_closing_text_carries_the_numbers_and_the_schema_is_checked():
    h = headlines.paired("strict accuracy", [0] * 10, [1] * 10)
    text = headlines.conclude([h], notes=["a note written from the run"])
    assert "0.000 -> 1.000" in text and "+1.000" in text and "a note written from the run" in text
    with pytest.raises(ValueError, match="lacks"):
        headlines.check([{"name": "x"}])
    with pytest.raises(ValueError, match="same items"):
        headlines.paired("x", [1, 2], [1])
