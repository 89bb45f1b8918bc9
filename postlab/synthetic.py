"""Made preference pairs: the house-style demonstration against a worse reply of a named kind (lab 02).

The rejected kinds take turns: a wrong answer in the house style, the right answer in the wrong format, a verbose
reply, no answer at all. `flip_labels` swaps a share of the pairs: label noise, for the noise sweep.
"""
import random

from .problems import demonstration
from .chats import chat

REJECTED_KINDS = ["wrong_answer", "wrong_format", "verbose", "no_answer"]
CHATTY = ["Sure! The answer to your question is {a}. Let me know if you need anything else.",
          "Great question! I believe it is {a}.", "{a}, I think. Hope that helps!"]
RAMBLE = ["Let me think about this step by step.", "First, I will read the question carefully.",
          "This kind of problem comes up often, so it is worth being careful.",
          "There are several ways to approach it, and I will pick a simple one.", "Now let me work it out."]
EVASIVE = ["I'm not sure how to answer that.", "That depends on many factors, so I cannot say.",
           "Could you rephrase the question?", "I would rather not guess."]


def wrong_answer(task: dict, rng: random.Random) -> str:
    """A plausible mistake for a task, different from the reference."""
    if task["kind"] == "sort":
        nums = task["answer"].split(", ")
        i = rng.randrange(len(nums) - 1)
        nums[i], nums[i + 1] = nums[i + 1], nums[i]
        return ", ".join(nums)
    if task["kind"] == "compare":
        a, b = (int(x) for x in task["key"].split(":")[1].strip("()").split(","))
        return str(min(a, b))
    value = int(task["answer"])
    delta = {"add": rng.choice([1, 2, 10, -1, -2, -10]), "multiply": rng.choice([-1, 1]) * rng.randint(2, 9),
             "count": rng.choice([1, -1]), "convert": rng.choice([1, -1]) * value // rng.randint(2, 10) or 1}
    return str(value + delta[task["kind"]])


def rejected_reply(task: dict, how: str, rng: random.Random) -> str:
    """A worse reply of a labelled kind: wrong answer (house style), wrong format, verbose, or no answer."""
    if how == "wrong_answer":
        wrong = wrong_answer(task, rng)
        working = task["working"]
        if task["kind"] in ("add", "multiply", "convert"):  # the working agrees with the mistake
            working = working.rsplit("= ", 1)[0] + f"= {wrong}"
        return f"{working}\nAnswer: {wrong}" if working else f"Answer: {wrong}"
    if how == "wrong_format":
        return rng.choice(CHATTY).format(a=task["answer"])
    if how == "verbose":
        return "\n".join(rng.sample(RAMBLE, 3) + [demonstration(task)])
    if how == "no_answer":
        return rng.choice(EVASIVE)
    raise ValueError(f"unknown rejected kind {how!r}; known: {', '.join(REJECTED_KINDS)}")


def made_pairs(tasks: list[dict], seed: int = 0) -> list[dict]:
    """TRL preference rows (prompt, chosen, rejected) from tasks; the rejected kinds take turns."""
    rng = random.Random(f"postlab-pairs-{seed}")
    rows = []
    for i, t in enumerate(tasks):
        how = REJECTED_KINDS[i % len(REJECTED_KINDS)]
        rows.append({"prompt": chat(t["prompt"]), "chosen": [{"role": "assistant", "content": demonstration(t)}],
                     "rejected": [{"role": "assistant", "content": rejected_reply(t, how, rng)}],
                     "kind": how, "task_kind": t["kind"]})
    return rows


def flip_labels(rows: list[dict], share: float, seed: int = 0) -> list[dict]:
    """A copy of preference rows with a share of them swapped (chosen <-> rejected): label noise."""
    rng = random.Random(f"postlab-flip-{seed}")
    flipped = set(rng.sample(range(len(rows)), round(share * len(rows))))
    return [{**r, "chosen": r["rejected"], "rejected": r["chosen"]} if i in flipped else r
            for i, r in enumerate(rows)]


def wrong_demonstrations(tasks: list[dict], seed: int = 0) -> list[dict]:
    """SFT rows in the house style whose answers are all wrong (one line of working that arrives at a wrong answer):
    lab 01's exercise on what SFT copies, the style or the truth."""
    rng = random.Random(f"postlab-wrong-demos-{seed}")
    return [{"prompt": chat(t["prompt"]), "completion": [{"role": "assistant", "content": rejected_reply(t, "wrong_answer", rng)}],
             "kind": t["kind"]} for t in tasks]
