"""Checking answers: the answer a reply commits to, compared with the reference.

The house style that SFT teaches is a line of working, then ``Answer: <answer>`` as the last line. Two questions
are kept apart on purpose:
- ``is_correct``: does the reply commit to the right answer? Its ``Answer:`` line, or, without one, its only
  candidate (one number; one list for a sorting task). A reply that names two candidates ("34 or 78") commits
  to nothing and is wrong whichever of them is right. This is what a model *knows*.
- ``follows_format``: is the reply in the house style? This is what SFT *teaches*.
"""
import re

from .chats import message_text

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
    return [canonical(n) for n in NUMBER.findall(THOUSANDS.sub("", text or "").replace(",", " , "))]


def canonical(n: str) -> str:
    return str(int(float(n))) if float(n).is_integer() else str(float(n))


def _committed(line: str, kind: str) -> str | None:
    """The answer one line states: one number, or for lists the numbers in the order written."""
    nums = numbers(line)
    if kind == "list":
        return ", ".join(nums) if nums else None
    return nums[0] if len(nums) == 1 else None


def extract_answer(reply: str, kind: str = "number") -> str | None:
    """The one answer a reply commits to, as a canonical string ('56', or '2, 5, 9' for lists), or None.

    With ``Answer:`` lines: the answer they state, if they all state the same one ('Answer: 54 or 56' states
    none). Without: the reply's only candidate, its one distinct number, or for lists its one line holding
    several numbers. Two candidates ('It is 54. No, 56.', two different lists) are a hedge: None.
    """
    reply = reply or ""
    found = answer_lines(reply)
    if found:
        stated = {_committed(line, kind) for line in found}
        return stated.pop() if len(stated) == 1 else None
    if kind == "list":
        lists = {", ".join(nums) for nums in map(numbers, reply.splitlines()) if len(nums) > 1}
        return lists.pop() if len(lists) == 1 else None
    candidates = set(numbers(reply))
    return candidates.pop() if len(candidates) == 1 else None


def is_correct(reply: str, reference: str, kind: str = "number") -> bool:
    got = extract_answer(reply, kind)
    return got is not None and got == reference


# ---------------------------------------------------------------- rewards for reasoning RL (lab 05)
# A reasoning reply works the problem out, then commits to one final line "Answer: X". The working goes either
# inside one <think>...</think> block (the form of DeepSeek-R1 and its followers) or, in the house form that
# lab 01's SFT teaches, on a line or two above the answer. Every reward reads only the committed answer: an
# answer inside the thinking earns nothing, several answers earn nothing, a broken or repeated tag earns
# nothing, and so does a reply past MAX_REPLY_CHARS. Every reward is called as fn(reply, answer, kind).

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
MAX_REPLY_CHARS = 1500


def split_reasoning(reply: str) -> tuple[str | None, str | None]:
    """(thinking, final) of a reply. No tags at all: (None, the whole reply). Tags present but not exactly one
    well-formed block at the start: (None, None): nothing in the reply counts."""
    reply = (reply or "").strip()
    n_open, n_close = reply.count(THINK_OPEN), reply.count(THINK_CLOSE)
    if n_open == n_close == 0:
        return None, reply
    if n_open != 1 or n_close != 1 or not reply.startswith(THINK_OPEN):
        return None, None
    thinking, final = reply[len(THINK_OPEN):].split(THINK_CLOSE)
    return thinking.strip(), final.strip()


def final_answer(reply: str, kind: str = "number") -> str | None:
    """The answer a reply commits to: the one 'Answer:' line after the thinking, holding one number (or, for
    lists, the list). None when there is none, several, or the reply is too long to be taken at its word."""
    if len(reply or "") > MAX_REPLY_CHARS:
        return None
    _, final = split_reasoning(reply)
    found = answer_lines(final or "")
    return _committed(found[0], kind) if len(found) == 1 else None


def correctness_reward(reply: str, answer: str, kind: str = "number") -> float:
    """1 when the committed final answer is the reference, else 0."""
    return float(final_answer(reply, kind) == answer)


RELATION = re.compile(r"[=<>]")


def shows_work(working: str, committed: str) -> bool:
    """Working that earns format credit: it holds numbers, the last of them are the committed answer (it arrives
    at what it commits to), and it says more than the answer: another number, or a relation (=, <, >). So
    "7 x 8 = 56", "fox (1), owl (2), cup (3)" and "3 < 45 < 46" count; "Let me think.", "56" and an empty
    thinking block do not."""
    nums, answer = numbers(working), committed.split(", ")
    if len(nums) < len(answer) or nums[len(nums) - len(answer):] != answer:
        return False
    return len(nums) > len(answer) or bool(RELATION.search(working))


def format_reward(reply: str, answer: str = "", kind: str = "number") -> float:
    """1 for a reasoned reply that commits to one answer, right or wrong (the form only: `answer` is not read).
    Either a <think> block of working (`shows_work`), then one line 'Answer: X'; or, without tags, the house form
    of every task kind: one or two lines of working, then 'Answer: X' as the last line."""
    thinking, final = split_reasoning(reply)
    committed = final_answer(reply, kind)
    if committed is None:
        return 0.0
    if thinking is None:  # no tags: working lines above the one answer line
        lines = [line for line in final.splitlines() if line.strip()]
        return float(follows_format(final) and len(lines) >= 2 and shows_work("\n".join(lines[:-1]), committed))
    return float(shows_work(thinking, committed) and len(final.splitlines()) == 1)


def partial_reward(reply: str, answer: str, kind: str = "number") -> float:
    """Credit for being close, in [0, 1], only for one committed answer (no hedging): for a number,
    1 - |error| / |reference| (at least 0); for a sorted list, the share of neighbours in order, and only when
    the list holds exactly the numbers given (so a made-up sorted list earns nothing)."""
    got = final_answer(reply, kind)
    if got is None:
        return 0.0
    if kind == "list":
        mine, ref = got.split(", "), answer.split(", ")
        if sorted(mine) != sorted(ref) or len(ref) < 2:
            return 0.0
        values = [float(x) for x in mine]
        return sum(a <= b for a, b in zip(values, values[1:])) / (len(values) - 1)
    error = abs(float(got) - float(answer))
    return max(0.0, 1.0 - error / max(1.0, abs(float(answer))))


# ---------------------------------------------------------------- the same rewards in TRL's signature


def reward_table(rewards: dict, replies: list[str], answer: str, kind: str = "number"):
    """How a weighted sum of rewards {name: (fn, weight)} scores some replies to one problem: a DataFrame with
    one row per reply, one column per reward, and the weighted total."""
    import pandas as pd

    return pd.DataFrame([{"reply": r.replace("\n", " / "), **{n: fn(r, answer, kind) for n, (fn, _) in rewards.items()},
                          "total": sum(w * fn(r, answer, kind) for fn, w in rewards.values())} for r in replies])


def for_trl(fn, name: str | None = None):
    """`fn(reply, answer, kind)` as a TRL reward function: TRL passes the completions (chat messages) and the
    dataset's columns, here `answer` and `answer_kind`."""
    def reward(completions, answer, answer_kind, **kwargs):
        return [float(fn(message_text(c), a, k)) for c, a, k in zip(completions, answer, answer_kind)]
    reward.__name__ = name or fn.__name__
    return reward


# Importable by dotted path, for TRL's own GRPO script (`reward_funcs: [postlab.verifiers.trl_correctness_reward]`).
trl_correctness_reward = for_trl(correctness_reward)
trl_format_reward = for_trl(format_reward)
trl_partial_reward = for_trl(partial_reward)
