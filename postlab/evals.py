"""The held-out evaluation every lab uses: accuracy, format compliance and length, overall and per kind."""
import random
from collections import defaultdict

from . import verifiers
from .models import generate


def check_replies(tasks: list[dict], replies: list[str], tokenizer=None) -> dict:
    """Metrics of replies to tasks: accuracy, format_rate, mean_length (tokens, or words without a tokenizer)."""
    rows = []
    for t, r in zip(tasks, replies, strict=True):
        length = len(tokenizer(r, add_special_tokens=False)["input_ids"]) if tokenizer else len(r.split())
        rows.append({"id": t.get("id"), "kind": t["kind"], "prompt": t["prompt"], "answer": t["answer"], "reply": r,
                     "correct": verifiers.is_correct(r, t["answer"], t["answer_kind"]),
                     "formatted": verifiers.follows_format(r), "length": length})
    by_kind = defaultdict(list)
    for row in rows:
        by_kind[row["kind"]].append(row)
    return {**summary(rows), "by_kind": {k: summary(v) for k, v in by_kind.items()}, "rows": rows}


def summary(rows: list[dict]) -> dict:
    n = len(rows)
    return {"n": n,
            "accuracy": sum(r["correct"] for r in rows) / n,
            "format_rate": sum(r["formatted"] for r in rows) / n,
            "mean_length": sum(r["length"] for r in rows) / n}


def evaluate(model, tokenizer, tasks: list[dict], max_new_tokens: int = 64, batch_size: int = 32,
             desc: str = "evaluating") -> dict:
    """Greedy replies to the held-out tasks, scored. Works for a model with or without a LoRA adapter."""
    replies = generate(model, tokenizer, [t["prompt"] for t in tasks], max_new_tokens=max_new_tokens,
                       batch_size=batch_size, desc=desc)
    return check_replies(tasks, replies, tokenizer)


def open_replies(model, tokenizer, prompts: list[str], max_new_tokens: int = 64, desc: str = "open prompts") -> dict:
    """Greedy replies to prompts with no checkable answer, as rows (no verdict) that `changed_answers` can set side
    by side with another model's."""
    replies = generate(model, tokenizer, prompts, max_new_tokens=max_new_tokens, desc=desc)
    return {"rows": [{"prompt": p, "reply": r, "correct": None, "kind": "open"} for p, r in zip(prompts, replies)]}


def without_rows(result: dict) -> dict:
    """The numbers that go into metrics.json: no per-reply rows (`rows`, and `sampled_rows` of sampled answers)."""
    return {k: v for k, v in result.items() if k not in ("rows", "sampled_rows")}


def per_problem(result: dict, field: str) -> list:
    """One value per held-out problem, in the order of the tasks: what a paired headline compares."""
    return [r[field] for r in result["rows"]]


def kind_changes(before: dict, after: dict, metric: str = "accuracy") -> str:
    """'add 0.20 -> 0.60, count ...': a metric per task kind before -> after, for a lab's closing lines."""
    return ", ".join(f"{k} {before['by_kind'][k][metric]:.2f} -> {a[metric]:.2f}" for k, a in after["by_kind"].items())


CHANGES = ("right -> wrong", "wrong -> right", "other change", "unchanged")


def changed_answers(before: dict, after: dict, labels=("before", "after"), limit: int = 12):
    """What training changed, reply by reply, on the same held-out prompts: right to wrong first, then wrong to
    right, then any other change of text, as a table that shows whole replies (a pandas Styler). Rows without a
    verdict (open prompts: "correct" None) count as "other change" when their text changed. Returns (table, counts
    of each kind of change, unchanged included); the caption says the counts."""
    import pandas as pd

    groups = {k: [] for k in CHANGES}
    for b, a in zip(before["rows"], after["rows"], strict=True):
        if b["reply"] == a["reply"]:
            groups["unchanged"].append((b, a))
        elif b.get("correct") is not None and b["correct"] != a["correct"]:
            groups["right -> wrong" if b["correct"] else "wrong -> right"].append((b, a))
        else:
            groups["other change"].append((b, a))
    shown = [(k, b, a) for k in CHANGES[:3] for b, a in groups[k]][:limit]
    table = pd.DataFrame([{"change": k, "kind": b.get("kind"), "prompt": b["prompt"], "reference": b.get("answer"),
                           labels[0]: b["reply"], labels[1]: a["reply"]} for k, b, a in shown],
                         columns=["change", "kind", "prompt", "reference", *labels])
    counts = {k: len(v) for k, v in groups.items()}
    caption = ", ".join(f"{v} {k}" for k, v in counts.items()) + f" (of {len(before['rows'])} prompts)" + (
        f"; the first {limit} changes shown" if sum(counts[k] for k in CHANGES[:3]) > limit else "")
    style = {"white-space": "pre-wrap", "text-align": "left", "vertical-align": "top"}
    return table.style.set_caption(caption).set_properties(**style).hide(axis="index"), counts


def length_changes(before: dict, after: dict) -> dict:
    """Of the replies whose text changed, how many got shorter, longer, or kept their length (in tokens)."""
    out = {"shorter": 0, "longer": 0, "same length": 0}
    for b, a in zip(before["rows"], after["rows"], strict=True):
        if a["reply"] != b["reply"]:
            out["shorter" if a["length"] < b["length"] else "longer" if a["length"] > b["length"] else "same length"] += 1
    return out


def table(result: dict):
    """A result as a DataFrame: one row per task kind, then 'overall'."""
    import pandas as pd

    rows = {**result["by_kind"], "overall": {k: result[k] for k in ("n", "accuracy", "format_rate", "mean_length")}}
    return pd.DataFrame(rows).T.round(3)


def group_stats(tasks: list[dict], replies: list[str], k: int) -> dict:
    """`k` replies per task (task by task), checked as reasoning RL checks them (verifiers.correctness_reward: one
    committed answer). pass@1: share of replies right; pass@k: share of tasks with at least one right; mixed: share
    of tasks whose k replies are neither all right nor all wrong; per_task: each task's share of right replies. Only mixed groups teach GRPO anything: in a
    group whose rewards are all equal every answer's advantage is zero."""
    if len(replies) != k * len(tasks):
        raise ValueError(f"{len(replies)} replies for {len(tasks)} tasks: expected {k} per task.")
    rows = []
    for i, t in enumerate(tasks):
        right = [verifiers.correctness_reward(r, t["answer"], t["answer_kind"]) for r in replies[i * k:(i + 1) * k]]
        rows.append({"kind": t["kind"], "right": sum(right)})

    def summary_k(rs):
        return {"n": len(rs), "pass@1": sum(r["right"] for r in rs) / (k * len(rs)),
                f"pass@{k}": sum(r["right"] > 0 for r in rs) / len(rs),
                "mixed": sum(0 < r["right"] < k for r in rs) / len(rs)}

    by_kind = defaultdict(list)
    for r in rows:
        by_kind[r["kind"]].append(r)
    return {**summary_k(rows), "by_kind": {kind: summary_k(rs) for kind, rs in by_kind.items()},
            "per_task": [r["right"] / k for r in rows]}  # each task's share of right replies, for paired comparisons


def sampled(model, tokenizer, tasks: list[dict], k: int = 4, temperature: float = 0.7, max_new_tokens: int = 64,
            seed: int = 0, batch_size: int = 64, desc: str = "sampling") -> dict:
    """`group_stats` of k replies per task sampled at `temperature`, as GRPO samples them in training."""
    replies = generate(model, tokenizer, [t["prompt"] for t in tasks], max_new_tokens=max_new_tokens,
                       batch_size=max(1, batch_size // k), temperature=temperature, num_return_sequences=k,
                       seed=seed, desc=desc)
    return group_stats(tasks, replies, k)


def room_to_learn(greedy: dict, probe: dict, k: int, low: float = 0.2, high: float = 0.8) -> tuple[dict, str]:
    """Per task kind: greedy accuracy, pass@1, pass@k and the share of mixed groups of sampled answers, and the room
    (pass@k minus greedy accuracy: what the model can do minus what it does). Returns (that table, the kind to train).

    The kind to train is the one whose sampled answers are right between `low` and `high` of the time and whose groups
    of answers to one problem were most often mixed (neither all right nor all wrong), pass@1 closest to half breaking
    ties: only mixed groups teach GRPO, and a model sure of itself problem by problem (always right on some, always
    wrong on others) gives few of them even at a pass@1 of one half. With no kind in that range, the one closest to
    half."""
    table = {kind: {"greedy accuracy": greedy["by_kind"][kind]["accuracy"], "pass@1": s["pass@1"], f"pass@{k}": s[f"pass@{k}"],
                    "mixed groups": s["mixed"], "room": s[f"pass@{k}"] - greedy["by_kind"][kind]["accuracy"]}
             for kind, s in probe["by_kind"].items()}

    def signal(kind):
        p = table[kind]["pass@1"]
        inside = low <= p <= high
        return (inside, table[kind]["mixed groups"] if inside else 0.0, p * (1 - p))

    return table, max(table, key=signal)


def mixed_first(model, tokenizer, tasks: list[dict], need: int, k: int = 4, temperature: float = 0.7,
                max_new_tokens: int = 64, seed: int = 0) -> tuple[list[dict], dict]:
    """The `need` training tasks to use, those whose k sampled answers are mixed (neither all right nor all wrong:
    the only groups that teach GRPO) first, the rest in their order. Returns (tasks, {"pool", "mixed", "trained"})."""
    pool = sampled(model, tokenizer, tasks, k=k, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed,
                   desc="mixed filter")["per_task"]
    mixed = [0 < share < 1 for share in pool]
    kept = [t for _, t in sorted(zip(mixed, tasks), key=lambda x: not x[0])][:need]  # stable: mixed first
    return kept, {"pool": len(pool), "mixed": sum(mixed), "trained": len(kept)}


# ---------------------------------------------------------------- paired comparisons


def bootstrap_ci(values, n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> list[float]:
    """A percentile-bootstrap interval of the mean of `values` (one value per problem: for a paired comparison,
    the per-problem difference, so both models are resampled together)."""
    values = list(values)
    rng = random.Random(f"postlab-bootstrap-{seed}")
    means = sorted(sum(rng.choices(values, k=len(values))) / len(values) for _ in range(n_boot))
    tail = (1 - level) / 2
    return [means[int(tail * n_boot)], means[int((1 - tail) * n_boot) - 1]]


def outcomes(new_rows: list[dict], old_rows: list[dict]) -> list[float]:
    """Per prompt, does the new reply beat the old one by the judge's score ('reward')? 1 win, 0 loss, 1/2 tie. A
    tie is the same reply text: the same reply scored in another batch need not get a bit-identical float."""
    out = []
    for new, old in zip(new_rows, old_rows, strict=True):
        if new["prompt"] != old["prompt"]:
            raise ValueError("both results must answer the same prompts in the same order")
        if new["reply"].strip() == old["reply"].strip():
            out.append(0.5)
        else:
            out.append(1.0 if new["reward"] > old["reward"] else 0.0 if new["reward"] < old["reward"] else 0.5)
    return out


def win_rate(new_rows: list[dict], old_rows: list[dict], n_boot: int = 2000, seed: int = 0) -> dict:
    """How often one model's replies beat another's on the same prompts (rows with 'prompt', 'reply' and the judge's
    'reward', e.g. from `rewards.evaluate_scored`), with a paired bootstrap 95% interval over prompts."""
    o = outcomes(new_rows, old_rows)
    return {"win_rate": sum(o) / len(o), "ci": bootstrap_ci(o, n_boot, seed), "wins": o.count(1.0),
            "ties": o.count(0.5), "losses": o.count(0.0), "n": len(o)}


def length_controlled_win_rate(new_rows: list[dict], old_rows: list[dict], l2: float = 0.1) -> dict:
    """The win rate (`outcomes`), raw and controlled for length: a logistic regression of the outcome on the
    length difference (in units of its spread), read at zero difference. A judge that likes long answers gives a
    raw win rate above the controlled one."""
    import math

    wins = outcomes(new_rows, old_rows)
    diff = [a["length"] - b["length"] for a, b in zip(new_rows, old_rows)]
    spread = (sum(d * d for d in diff) / len(diff)) ** 0.5 or 1.0
    x = [d / spread for d in diff]
    w0 = w1 = 0.0
    for _ in range(50):  # Newton's method on the L2-penalised log-likelihood (2 parameters)
        p = [1 / (1 + math.exp(-(w0 + w1 * xi))) for xi in x]
        g0 = sum(pi - yi for pi, yi in zip(p, wins)) + l2 * w0
        g1 = sum((pi - yi) * xi for pi, yi, xi in zip(p, wins, x)) + l2 * w1
        h00 = sum(pi * (1 - pi) for pi in p) + l2
        h01 = sum(pi * (1 - pi) * xi for pi, xi in zip(p, x))
        h11 = sum(pi * (1 - pi) * xi * xi for pi, xi in zip(p, x)) + l2
        det = h00 * h11 - h01 * h01
        w0, w1 = w0 - (h11 * g0 - h01 * g1) / det, w1 - (h00 * g1 - h01 * g0) / det
    return {"win_rate_vs_sft": sum(wins) / len(wins), "lc_win_rate_vs_sft": 1 / (1 + math.exp(-w0)),
            "length_slope": w1}


def preference_accuracy(model, tokenizer, pairs: list[dict]) -> dict:
    """Does a model trained on preferences prefer, on new pairs, what the labels would? For each pair ({"prompt",
    "chosen", "rejected"} as text) the implicit reward margin of DPO, against the model with its LoRA adapter off
    (the reference): [log p(chosen) - log p_ref(chosen)] - [log p(rejected) - log p_ref(rejected)]. Per pair: 1
    when the margin is positive, 0 when negative, 1/2 at zero (so an untrained adapter scores exactly 0.5).
    `per_prompt` averages the pairs of each prompt (an interval over it resamples prompts, not pairs of one)."""
    from .models import answer_logprobs

    prompts = [p["prompt"] for p in pairs] * 2
    answers = [p["chosen"] for p in pairs] + [p["rejected"] for p in pairs]
    policy = answer_logprobs(model, tokenizer, prompts, answers)
    with model.disable_adapter():
        reference = answer_logprobs(model, tokenizer, prompts, answers)
    n = len(pairs)
    margins = [(policy[i] - reference[i]) - (policy[n + i] - reference[n + i]) for i in range(n)]
    outcomes = [1.0 if m > 1e-6 else 0.0 if m < -1e-6 else 0.5 for m in margins]
    by_prompt = {}
    for p, o in zip(pairs, outcomes):
        by_prompt.setdefault(str(p["prompt"]), []).append(o)  # a prompt may be chat messages
    return {"accuracy": sum(outcomes) / n if n else None, "outcomes": outcomes, "margins": margins, "n": n,
            "per_prompt": [sum(v) / len(v) for v in by_prompt.values()]}
