import pytest

from postlab.verifiers import extract_answer, follows_format, is_correct


@pytest.mark.parametrize("reply,kind,expected", [
    ("7 x 8 = 56\nAnswer: 56", "number", "56"),
    ("answer: 1,200", "number", "1200"),          # thousands separator
    ("Answer: 54 or 56", "number", None),          # two answers is no answer
    ("I think it is 54. No, 56.", "number", "56"),  # no Answer line: the last number
    ("Answer: 3, 45, 46", "list", "3, 45, 46"),
    ("The sorted list is:\n3, 45, 46", "list", "3, 45, 46"),
    ("", "number", None),
    ("no numbers here", "list", None),
])
def test_extract_answer(reply, kind, expected):
    assert extract_answer(reply, kind) == expected


def test_last_answer_line_wins():
    assert extract_answer("Answer: 1\nAnswer: 2") == "2"


@pytest.mark.parametrize("reply,ok", [
    ("7 x 8 = 56\nAnswer: 56", True),
    ("Answer: 56", True),
    ("Answer: 3, 45, 46", True),
    ("56", False),                                   # no Answer line
    ("Answer: 56\nHope this helps!", False),          # Answer line not last
    ("Answer: 56\nAnswer: 56", False),                # repeated
    ("a\nb\nc\nAnswer: 56", False),                   # too long
    ("Answer:", False),                               # empty answer
    ("", False),
])
def test_follows_format(reply, ok):
    assert follows_format(reply) is ok


def test_is_correct_compares_lists_in_order():
    assert is_correct("Answer: 2, 5, 9", "2, 5, 9", "list")
    assert not is_correct("Answer: 9, 5, 2", "2, 5, 9", "list")
    assert not is_correct("Answer: 2, 5", "2, 5, 9", "list")
