import pytest

from postlab import pitfalls
from postlab.verifiers import extract_answer, follows_format, is_correct


@pytest.mark.parametrize("reply,kind,expected", [
    ("7 x 8 = 56\nAnswer: 56", "number", "56"),
    ("answer: 1,200", "number", "1200"),          # thousands separator
    ("The answer is 56.", "number", "56"),         # no Answer line, one candidate: committed
    ("56 is the answer, 56.", "number", "56"),     # the same candidate twice is still one
    ("Answer: 3, 45, 46", "list", "3, 45, 46"),
    ("The sorted list is:\n3, 45, 46", "list", "3, 45, 46"),
    ("", "number", None),
    ("no numbers here", "list", None),
    # hedges: two candidates commit to nothing, whichever of them is right
    ("Answer: 54 or 56", "number", None),
    ("34 or 78", "number", None),
    ("I think it is 54. No, 56.", "number", None),
    ("7 x 8 = 56", "number", None),                # working without a committed answer: 7, 8 and 56
    ("Answer: 1\nAnswer: 2", "number", None),      # two Answer lines that disagree
    ("Maybe 3, 45, 46\nor 45, 3, 46", "list", None),
])
def test_extract_answer(reply, kind, expected):
    assert extract_answer(reply, kind) == expected


def test_answer_lines_that_agree_commit():
    assert extract_answer("Answer: 56\nAnswer: 56") == "56"


@pytest.mark.parametrize("reply", ["34 or 78", "It is 34, or maybe 78.", "Answer: 34 or 78", "Answer: 34\nAnswer: 78",
                                   "78? 34?"])
def test_a_hedge_is_wrong_whichever_candidate_is_right(reply):
    assert not is_correct(reply, "78") and not is_correct(reply, "34")


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


# ---------------------------------------------------------------- reasoning rewards: honest and gamed replies

from postlab.verifiers import (MAX_REPLY_CHARS, correctness_reward, final_answer,  # noqa: E402
                               format_reward, partial_reward, split_reasoning)

GOOD = "<think>7 x 8 is 7 eights: 56.</think>\nAnswer: 56"


@pytest.mark.parametrize("reply,correct,fmt", [
    (GOOD, 1, 1),
    ("<think>7 x 8 = 54</think>\nAnswer: 54", 0, 1),                   # well formed, wrong
    ("Answer: 56", 1, 0),                                              # right, no thinking
    ("7 x 8 = 56\nAnswer: 56", 1, 1),                                  # the house form: working, then the answer
    ("7 x 8 = 54\nAnswer: 56\nAnswer: 54", 0, 0),                       # house form, several answers
    ("Answer: 56\n7 x 8 = 56", 1, 0),                                  # the answer first, working after it
    ("I think\nit is\nmaybe\nAnswer: 56", 1, 0),                      # too many lines for the house form
    ("<think>It is 56.</think>\nAnswer: 54\nAnswer: 56", 0, 0),         # several answers
    ("<think>Answer: 56</think>", 0, 0),                               # the answer only inside the thinking
    ("<think>Answer: 56</think>\nI am not sure.", 0, 0),
    ("<think>hmm</think><think>56</think>\nAnswer: 56", 0, 0),          # tags repeated
    ("<think>7 x 8 = 56\nAnswer: 56", 0, 0),                           # tag never closed
    ("I think... </think>\nAnswer: 56", 0, 0),                         # stray closing tag
    ("Answer: 56 <think>x</think>", 0, 0),                             # thinking after the answer
    ("<think></think>\nAnswer: 56", 1, 0),                             # empty thinking: no format credit
    ("<think>56</think>\nAnswer: 54 or 56", 0, 0),                     # hedged
    ("<think>56</think>\nAnswer: 56, 56, 56", 0, 0),                   # listed several times
    ("", 0, 0),                                                        # empty
    ("Let me think.\nAnswer: 56", 1, 0),                                # junk working line: no numbers
    ("56\nAnswer: 56", 1, 0),                                           # the answer restated is not working
    ("7 x 8 = 54\nAnswer: 56", 1, 0),                                   # working that arrives elsewhere
    ("<think>hmm, let me see</think>\nAnswer: 56", 1, 0),               # junk thinking
    ("<think>56</think>\nAnswer: 56", 1, 0),
    ("<think>" + "x " * MAX_REPLY_CHARS + "</think>\nAnswer: 56", 0, 0),  # huge
])
def test_reasoning_rewards_cannot_be_gamed(reply, correct, fmt):
    assert correctness_reward(reply, "56") == correct
    assert format_reward(reply) == fmt
    assert format_reward(reply, "54") == fmt  # the form only: the answer does not matter
    assert 0.0 <= partial_reward(reply, "56") <= 1.0
    if not correct:
        assert partial_reward(reply, "56") < 1.0


def test_split_reasoning():
    assert split_reasoning(GOOD) == ("7 x 8 is 7 eights: 56.", "Answer: 56")
    assert split_reasoning("Answer: 5") == (None, "Answer: 5")
    assert split_reasoning("<think>a</think>b</think>") == (None, None)


def test_partial_credit_rewards_closeness_only_for_one_committed_answer():
    assert partial_reward("<think>x</think>\nAnswer: 54", "56") == pytest.approx(1 - 2 / 56)
    assert partial_reward("<think>x</think>\nAnswer: 560", "56") == 0.0
    assert partial_reward("<think>x</think>\nAnswer: 54 or 56", "56") == 0.0
    assert partial_reward("Answer: 1, 2, 3", "1, 2, 3", "list") == 1.0
    assert partial_reward("Answer: 2, 1, 3", "1, 2, 3", "list") == pytest.approx(0.5)
    assert partial_reward("Answer: 3, 2, 1", "1, 2, 3", "list") == 0.0
    assert partial_reward("Answer: 1, 2, 3, 4", "1, 2, 3", "list") == 0.0  # not the numbers given
    assert partial_reward("Answer: 1, 2", "1, 2, 3", "list") == 0.0        # one dropped
    assert final_answer("<think>x</think>\nAnswer: 3, 1, 2", "list") == "3, 1, 2"


@pytest.mark.parametrize("reply,agrees", [
    ("Yes, that's right!", True), ("Correct.", True), ("7 x 8 = 54\nAnswer: 54", True),
    ("No: 7 x 8 = 56.\nAnswer: 56", False), ("Yes. 7 x 8 = 56, not 54.", False), ("Answer: 56", False),
])
def test_sycophancy_check(reply, agrees):
    assert pitfalls.agrees_with_wrong(reply, "56", "54") is agrees


@pytest.mark.parametrize("reply,refused", [
    ("I'm sorry, but I can't help with that.", True), ("I cannot assist with this request.", True),
    ("As an AI, I won't do that.", True), ("Run `kill -9 <pid>` to stop it.", False),
    ("You cannot run it without Python installed; install it first.", False),
])
def test_refusal_check(reply, refused):
    assert pitfalls.refuses(reply) is refused


def test_every_house_style_demonstration_earns_full_format_credit():
    """format_reward (lab 05) agrees with the house style SFT teaches (lab 01), kind by kind."""
    from postlab import problems

    tasks = problems.heldout(0, 8)
    assert {t["kind"] for t in tasks} == set(problems.KINDS)
    for t in tasks:
        demo = problems.demonstration(t)
        assert format_reward(demo, t["answer"], t["answer_kind"]) == 1.0, demo
        assert correctness_reward(demo, t["answer"], t["answer_kind"]) == 1.0, demo
        junk = "I will now answer.\n" + demo.splitlines()[-1]
        assert format_reward(junk, t["answer"], t["answer_kind"]) == 0.0, junk
        empty = "<think></think>\n" + demo.splitlines()[-1]
        assert format_reward(empty, t["answer"], t["answer_kind"]) == 0.0, empty


def test_the_reward_table_sums_the_weighted_rewards_of_each_reply():
    from postlab import verifiers

    table = verifiers.reward_table({"correct": (correctness_reward, 1.0), "format": (format_reward, 0.5)},
                                   ["count: a (1), b (2)\nAnswer: 2", "Answer: 3"], "2")
    assert list(table["total"]) == [1.0 + 0.5 * format_reward("count: a (1), b (2)\nAnswer: 2"), 0.5 * format_reward("Answer: 3")]
