"""Checking answers: extract the final answer from a reply and compare it with the reference.

The house style that SFT teaches is a reply whose last line is ``Answer: <answer>``, optionally after
one short line of working. Two questions are kept apart on purpose:
- ``is_correct``: does the reply contain the right answer (lenient: the ``Answer:`` line if there is
  one, else the last number, or the last line for list answers)? This is what a model *knows*.
- ``follows_format``: is the reply in the house style? This is what SFT *teaches*.
"""
import re

ANSWER_LINE = re.compile(r"^\s*answer\s*:\s*(.*?)\s*$", re.IGNORECASE | re.MULTILINE)
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
MAX_FORMAT_LINES = 3  # working + answer, with a little slack


def answer_lines(reply: str) -> list[str]:
    return ANSWER_LINE.findall(reply or "")


def follows_format(reply: str) -> bool:
    """House style: non-empty, at most 3 lines, exactly one ``Answer:`` line, and it is the last line."""
    lines = [l for l in (reply or "").strip().splitlines() if l.strip()]
    if not lines or len(lines) > MAX_FORMAT_LINES:
        return False
    found = answer_lines(reply)
    return len(found) == 1 and found[0] != "" and ANSWER_LINE.match(lines[-1]) is not None


THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")


def numbers(text: str) -> list[str]:
    """The numbers in a text, canonical ('1,200' and '1200.0' are '1200'; '3,45' is two numbers)."""
    return [_canon(n) for n in NUMBER.findall(THOUSANDS.sub("", text or "").replace(",", " , "))]


def _canon(n: str) -> str:
    return str(int(float(n))) if float(n).is_integer() else str(float(n))


def extract_answer(reply: str, kind: str = "number") -> str | None:
    """The answer a reply gives, as a canonical string ('56', or '2, 5, 9' for lists), or None.

    Uses the last ``Answer:`` line when present; otherwise the last number (or, for lists, the numbers on
    the last line that has any). A number answer must be a single number: 'Answer: 54 or 56' gives None.
    """
    reply = reply or ""
    found = answer_lines(reply)
    if found:
        nums = numbers(found[-1])
        if kind == "list":
            return ", ".join(nums) if nums else None
        return nums[0] if len(nums) == 1 else None
    if kind == "list":
        for line in reversed(reply.strip().splitlines()):
            nums = numbers(line)
            if len(nums) > 1:
                return ", ".join(nums)
        return None
    nums = numbers(reply)
    return nums[-1] if nums else None


def is_correct(reply: str, reference: str, kind: str = "number") -> bool:
    got = extract_answer(reply, kind)
    return got is not None and got == reference
