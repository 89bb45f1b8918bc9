"""Best-of-N: sample N answers, keep the one the reward model likes best. The cheapest use of a reward model
(no training), and the baseline every RL method should beat at the same compute.

`sample_groups` draws the answers in rounds so the cost of each N is measured; `favourite` is the pick; lab 02's
`best_of_n` measures accuracy against N with the verifier, and `scoreboard` uses the same two steps on its probes.
"""
import time

from . import verifiers
from .models import generate
from .rewards import score


def sample_groups(policy, tok, prompts: list[str], ns=(4,), temperature: float = 1.0, max_new_tokens: int = 48,
                  seed: int = 0, batch_size: int = 32) -> tuple[list[list[str]], dict]:
    """Up to max(ns) sampled answers per prompt, drawn in rounds (up to 1, then 2, 4, 8 in all), so the
    generation time at each N is measured, not estimated. Returns (answers per prompt, {N: cumulative seconds})."""
    groups = [[] for _ in prompts]
    seconds, have, total = {}, 0, 0.0
    for n in sorted(ns):
        t0 = time.time()
        k = n - have
        if k > 0:
            out = generate(policy, tok, prompts, max_new_tokens=max_new_tokens, temperature=temperature,
                           num_return_sequences=k, seed=seed + n, batch_size=batch_size, desc=f"sampling to N={n}")
            for i in range(len(prompts)):
                groups[i] += out[i * k:(i + 1) * k]
            have = n
        total += time.time() - t0
        seconds[n] = total
    return groups, seconds


def favourite(rewards: list[float], n: int) -> int:
    """The pick of best-of-n: the index of the highest reward among the first n answers (the first on a tie)."""
    return max(range(n), key=lambda j: rewards[j])


def best_of_n(policy, tok, rm, rm_tok, tasks, ns=(1, 2, 4, 8), temperature: float = 1.0, max_new_tokens: int = 48,
              seed: int = 0) -> dict:
    """Sample up to max(ns) answers per task, keep the reward model's favourite among the first N.

    Returns per N: verifier accuracy of the pick, mean reward of the pick, oracle accuracy (any of the N correct)
    and cumulative generation seconds; plus every sample with its reward and correctness, and the mean reward of
    right and of wrong samples.
    """
    prompts = [t["prompt"] for t in tasks]
    samples, seconds = sample_groups(policy, tok, prompts, ns, temperature, max_new_tokens, seed)
    flat = [(i, s) for i, group in enumerate(samples) for s in group]
    rewards = score(rm, rm_tok, [prompts[i] for i, _ in flat], [s for _, s in flat], progress=True)
    table = [[] for _ in tasks]
    for (i, s), r in zip(flat, rewards):
        t = tasks[i]
        table[i].append({"reply": s, "reward": r, "correct": verifiers.is_correct(s, t["answer"], t["answer_kind"]),
                         "formatted": verifiers.follows_format(s), "kind": t["kind"]})
    result, picked = {}, {}
    for n in ns:
        picks = [group[favourite([x["reward"] for x in group], n)] for group in table]
        picked[n] = [float(p["correct"]) for p in picks]
        result[n] = {"accuracy": sum(p["correct"] for p in picks) / len(picks),
                     "mean_reward": sum(p["reward"] for p in picks) / len(picks),
                     "oracle": sum(any(x["correct"] for x in group[:n]) for group in table) / len(table),
                     "gen_seconds": round(seconds[n], 1)}
    # per problem, the accuracy of one sample at this temperature: the mean over all its samples (the paired
    # baseline of best-of-N, with less noise than the first sample alone)
    one_sample = [sum(x["correct"] for x in group) / len(group) for group in table]
    flat_rows = [x for group in table for x in group]

    def mean_reward(correct):
        values = [x["reward"] for x in flat_rows if x["correct"] == correct]
        return sum(values) / len(values) if values else None

    return {"by_n": result, "picked": picked, "one_sample": one_sample, "groups": table, "samples": flat_rows,
            "reward_correct_mean": mean_reward(True), "reward_wrong_mean": mean_reward(False)}


def rerank(groups, prompts: list[str], rm, rm_tok, n: int) -> list[float]:
    """Best-of-n again on the same samples (`best_of_n`'s groups) with another judge: per problem, 1.0 when that
    judge's favourite among the first n answers is correct. Only the judge changes, so the two picks compare paired."""
    flat = score(rm, rm_tok, [p for p, group in zip(prompts, groups, strict=True) for _ in group[:n]],
                 [x["reply"] for group in groups for x in group[:n]])
    return [float(group[favourite(flat[i * n:(i + 1) * n], n)]["correct"]) for i, group in enumerate(groups)]


def on_policy_pairwise(groups) -> list[float]:
    """Per problem whose samples hold both right and wrong answers (the verifier's verdict), the share of
    (right, wrong) pairs the reward model ranks right first: pairwise accuracy on the policy's own answers to
    held-out problems, one value per problem (so an interval resamples problems, not pairs of one problem)."""
    out = []
    for group in groups:
        right = [x["reward"] for x in group if x["correct"]]
        wrong = [x["reward"] for x in group if not x["correct"]]
        if right and wrong:
            out.append(sum((r > w) + 0.5 * (r == w) for r in right for w in wrong) / (len(right) * len(wrong)))
    return out
