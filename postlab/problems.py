"""The task world: generated problems with known answers, so every lab trains and measures offline.

Six kinds (add, multiply, count, sort, compare, convert), each with a generator, several phrasings, a reference
answer and a house-style demonstration (one line of working, then `Answer: X`). `heldout` is the fixed
evaluation set of a seed; `train_tasks` draws training problems from a named stream, never a held-out problem
(compared by the problem itself, in any order or phrasing). Lab 04 adds open-ended prompts (`pair_prompts`).
"""
import random

KINDS = ["add", "multiply", "count", "sort", "compare", "convert"]

PHRASINGS = {
    "add": ["What is {a} + {b}?", "Add {a} and {b}.", "Compute the sum of {a} and {b}."],
    "multiply": ["What is {a} x {b}?", "Multiply {a} by {b}.", "What is the product of {a} and {b}?"],
    "count": ["How many items are in this list: {items}?", "Count the words in this list: {items}.",
              "How many things are listed here: {items}?"],
    "sort": ["Sort these numbers from smallest to largest: {nums}.", "Put in increasing order: {nums}.",
             "Arrange from lowest to highest: {nums}."],
    "compare": ["Which is larger, {a} or {b}?", "Which number is bigger: {a} or {b}?",
                "Of {a} and {b}, which is greater?"],
    "convert": ["How many {small} are in {n} {big}?", "Convert {n} {big} to {small}.",
                "{n} {big} is how many {small}?"],
}
WORDS = ["apple", "pear", "fig", "plum", "kiwi", "lime", "cat", "dog", "fox", "owl", "bee", "ant",
         "red", "blue", "green", "pink", "chair", "desk", "lamp", "cup", "book", "pen", "sock", "hat"]
UNITS = [("meters", "centimeters", 100), ("kilometers", "meters", 1000), ("hours", "minutes", 60),
         ("minutes", "seconds", 60), ("kilograms", "grams", 1000), ("days", "hours", 24)]


def make_task(kind: str, rng: random.Random) -> dict:
    """One problem of a kind: prompt, reference answer, answer kind, a working line and a problem key.

    The key names the problem, not its wording: "3 x 7" and "7 x 3" (any phrasing) share one key, and so do
    two orderings of the same items to count or numbers to sort. Held-out problems are kept out of training by it.
    """
    template = rng.choice(PHRASINGS[kind])
    if kind == "add":
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        answer, working, key, fields = str(a + b), f"{a} + {b} = {a + b}", (min(a, b), max(a, b)), dict(a=a, b=b)
    elif kind == "multiply":
        a, b = rng.randint(2, 12), rng.randint(2, 9)
        answer, working, key, fields = str(a * b), f"{a} x {b} = {a * b}", (min(a, b), max(a, b)), dict(a=a, b=b)
    elif kind == "count":
        items = rng.sample(WORDS, rng.randint(3, 9))
        answer = str(len(items))
        working = ", ".join(f"{w} ({i})" for i, w in enumerate(items, 1))
        key, fields = tuple(sorted(items)), dict(items=", ".join(items))
    elif kind == "sort":
        nums = rng.sample(range(1, 100), rng.randint(3, 5))
        answer, working = ", ".join(map(str, sorted(nums))), " < ".join(map(str, sorted(nums)))
        key, fields = tuple(sorted(nums)), dict(nums=", ".join(map(str, nums)))
    elif kind == "compare":
        a, b = rng.sample(range(10, 100), 2)
        answer, working, key, fields = str(max(a, b)), f"{min(a, b)} < {max(a, b)}", (min(a, b), max(a, b)), dict(a=a, b=b)
    elif kind == "convert":
        big, small, factor = rng.choice(UNITS)
        n = rng.randint(2, 20)
        answer = str(n * factor)
        working = f"1 {big[:-1]} = {factor} {small}, so {n} x {factor} = {n * factor}"
        key, fields = (big, n), dict(n=n, big=big, small=small)
    else:
        raise ValueError(f"unknown task kind {kind!r}; known kinds: {', '.join(KINDS)}")
    return {"kind": kind, "prompt": template.format(**fields), "answer": answer,
            "answer_kind": "list" if kind == "sort" else "number", "working": working,
            "key": f"{kind}:{key}"}


MAX_HELDOUT_PER_KIND = 40  # 40 of the 60 canonical multiplication facts; lab 05 evaluates 40 of its trained kind


def heldout(seed: int = 0, per_kind: int = 16, kinds=KINDS) -> list[dict]:
    """The fixed held-out evaluation set: the same problems for the same seed, every lab, every run.

    A smaller set is the start of a larger one, so smoke runs measure a subset of the full evaluation.
    """
    if per_kind > MAX_HELDOUT_PER_KIND:
        raise ValueError(f"per_kind={per_kind}: at most {MAX_HELDOUT_PER_KIND} problems per kind are held out.")
    out, seen = [], set()
    for kind in kinds:
        rng, n = random.Random(f"postlab-heldout-{seed}-{kind}"), 0
        while n < per_kind:
            t = make_task(kind, rng)
            if t["key"] not in seen:
                seen.add(t["key"])
                out.append({"id": f"{kind}-{n:03d}", **t})
                n += 1
    return out


def train_tasks(n: int, seed: int = 0, kinds=KINDS, stream: str = "train") -> list[dict]:
    """n training problems, spread evenly over kinds, none of them a problem of the largest held-out set.
    Another `stream` name gives other problems (lab 04 asks for new prompts, not lab 01's)."""
    banned = {t["key"] for t in heldout(seed, MAX_HELDOUT_PER_KIND, KINDS)}
    rng = random.Random(f"postlab-{stream}-{seed}")
    out = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        while True:
            t = make_task(kind, rng)
            if t["key"] not in banned:
                break
        out.append({"id": f"train-{i:05d}", **t})
    return out


# Open-ended prompts for lab 04: no checkable answer, so a person (or a reward model) decides.
OPEN_PROMPTS = [
    "Give me one tip for remembering people's names.", "How do I keep basil alive on a windowsill?",
    "Suggest a name for a grey kitten.", "What should I pack for a day hike?",
    "Explain what a prime number is to a ten-year-old.", "Write a one-line birthday wish for my sister.",
    "How can I fall asleep faster?", "What is a good first programming language, and why?",
    "Describe the smell of rain in one sentence.", "Give me an idea for a quick vegetarian dinner.",
    "How do I politely decline a meeting?", "Why is the sky blue? Keep it short.",
    "Recommend a habit that improves focus.", "What is the difference between weather and climate?",
    "Write a haiku about Monday mornings.", "How do I make my bike chain stop squeaking?",
    "Give me a fun fact about octopuses.", "What is a polite way to ask a neighbour to turn the music down?",
    "How should I start learning to draw?", "Summarise why exercise is good for you in two sentences.",
    "What is one way to save money on groceries?", "Explain recursion in one sentence.",
    "Suggest a title for a short story about a lighthouse.", "How do I remove a coffee stain from a shirt?",
]


def pair_prompts(n: int, open_share: float = 0.2, seed: int = 0) -> list[dict]:
    """Prompts for lab 04: task-world problems (new ones, checkable) mixed with open-ended prompts."""
    n_open = min(round(n * open_share), len(OPEN_PROMPTS))
    opened = random.Random(f"postlab-open-{seed}").sample(OPEN_PROMPTS, n_open)
    return train_tasks(n - n_open, seed, stream="pairs") + [{"prompt": p, "kind": "open"} for p in opened]


def demonstration(task: dict) -> str:
    """The house-style reply to a task: one line of working that arrives at the answer, then 'Answer: X'."""
    answer = f"Answer: {task['answer']}"
    return f"{task['working']}\n{answer}" if task["working"] else answer
