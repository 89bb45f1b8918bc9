"""Who labels, and how well: a scripted annotator that stands in for a person, and the numbers a labeling
session should report.

- `scripted_pick` / `scripted_labels`: a taste code can check (the verifier where the prompt has a checkable answer,
  then optionally the clearly shorter answer, then the reward model), with settable noise, written to a `LabelFile`
  like any person's clicks.
- `reward_model_labels`: the same pairs labeled by a reward model instead; `verifier_agreement`: how often any
  labels pick the right answer where the verifier can tell.
- `stats`: counts by annotator and label, ties, skips, length bias, and Cohen's kappa between annotators.
"""
import random
from collections import Counter

from . import verifiers
from .chats import chat, message_text
from .labels import LabelFile, swapped


def scripted_pick(pair: dict, rewards=None, tie_margin: float = 0.25, verifier: bool = True, shorter: float | None = None) -> int | None:
    """Which answer (0 or 1) is better, or None for a tie, by a taste code can check: the verifier first where the
    prompt has a reference answer (a right answer beats a wrong one, then the house format wins); then, with
    `shorter` given, the shorter answer when it has at most `shorter` times the other's words (a concise taste);
    then the reward-model scores `rewards` (a pair of floats) if given."""
    if verifier and pair.get("answer") is not None:
        kind = pair.get("answer_kind") or "number"
        marks = [2 * verifiers.is_correct(a, pair["answer"], kind) + verifiers.follows_format(a) for a in pair["answers"]]
        if marks[0] != marks[1]:
            return int(marks[1] > marks[0])
    if shorter is not None:
        words = [len(a.split()) for a in pair["answers"]]
        if min(words) <= shorter * max(words):
            return int(words[1] < words[0])
    if rewards is not None and abs(rewards[0] - rewards[1]) > tie_margin:
        return int(rewards[1] > rewards[0])
    return None


def scripted_labels(store: LabelFile, rm=None, rm_tok=None, noise: float = 0.0, annotator: str = "script",
                    seed: int = 0, verifier: bool = True, pair_ids=None, shorter: float | None = None) -> int:
    """Label pairs as `annotator` with `scripted_pick` (the verifier; then, with `shorter`, the clearly shorter answer;
    then the reward model where those cannot tell; `verifier=False`: the reward model alone), and with
    probability `noise` a coin flip instead.
    By default it labels every pair nobody has labeled; `pair_ids` names the pairs instead. The reward model
    scores only the pairs the verifier leaves undecided. Returns how many labels it wrote."""
    mine = store.labels(annotator)[annotator]
    taken = store.final() if pair_ids is None else mine
    todo = [p for p in store.pairs if p["id"] not in taken and (pair_ids is None or p["id"] in pair_ids)]
    decided = {p["id"]: scripted_pick(p, verifier=verifier, shorter=shorter) for p in todo}
    ask = [p for p in todo if decided[p["id"]] is None]
    if rm is not None and ask:
        from .rewards import score

        flat = score(rm, rm_tok, [p["prompt"] for p in ask for _ in range(2)], [a for p in ask for a in p["answers"]])
        for i, p in enumerate(ask):
            decided[p["id"]] = scripted_pick(p, flat[2 * i:2 * i + 2], verifier=False)
    rng = random.Random(f"postlab-annotator-{seed}-{annotator}")
    for p in todo:
        best = decided[p["id"]]
        if rng.random() < noise:
            best = rng.choice([0, 1])
        swap = swapped(p["id"], seed)
        label = "tie" if best is None else ("A" if (best == 1) == swap else "B")
        store.add(p["id"], label, annotator, swap)
    return len(todo)


def decided_pairs(pairs: list[dict], shorter: float | None = None) -> list[dict]:
    """Preference rows {prompt, chosen, rejected} from sampled pairs, for the pairs `scripted_pick`'s taste decides
    (ties left out): a held-out test of what labels with that taste teach."""
    out = []
    for p in pairs:
        best = scripted_pick(p, shorter=shorter)
        if best is not None:
            out.append({"prompt": p["prompt"], "chosen": p["answers"][best], "rejected": p["answers"][1 - best]})
    return out


def length_labels(pairs: list[dict], longer: bool = True) -> list[dict]:
    """Preference rows from a judge who only looks at length: in every pair whose answers differ in words, the longer
    (or, with longer=False, the shorter) answer is chosen. What labels with a length bias teach (lab 04's exercise)."""
    rows = []
    for p in pairs:
        words = [len(a.split()) for a in p["answers"]]
        if words[0] != words[1]:
            best = int((words[1] > words[0]) == longer)
            rows.append({"prompt": chat(p["prompt"]), "chosen": [{"role": "assistant", "content": p["answers"][best]}],
                         "rejected": [{"role": "assistant", "content": p["answers"][1 - best]}]})
    return rows


def reward_model_labels(rows: list[dict], rm, rm_tok) -> tuple[list[dict], list[float]]:
    """The same preference rows labeled again by a reward model: in each, the answer it scores higher is chosen (the
    row's own order on an exact tie). Returns (the relabeled rows, per row 1.0 where it kept the row's label):
    synthetic labels on the very pairs a person or a script labeled, for training on one against the other."""
    from .rewards import score

    flat = score(rm, rm_tok, [r["prompt"] for r in rows for _ in range(2)],
                 [message_text(r[k]) for r in rows for k in ("chosen", "rejected")])
    out, kept = [], []
    for i, r in enumerate(rows):
        keep = flat[2 * i] >= flat[2 * i + 1]
        kept.append(float(keep))
        out.append({**r, "annotator": "reward model"} if keep else
                   {**r, "chosen": r["rejected"], "rejected": r["chosen"], "annotator": "reward model"})
    return out, kept


def verifier_agreement(rows: list[dict], pairs: list[dict]) -> list[float]:
    """How often labels pick the right answer: per row whose pair (`pair_id` in `pairs`) has a checkable answer and
    exactly one right reply, 1.0 when the row chose that one. Rows the verifier cannot decide are left out."""
    by_id = {p["id"]: p for p in pairs}
    out = []
    for r in rows:
        p = by_id[r["pair_id"]]
        if p.get("answer") is None:
            continue
        right = [verifiers.is_correct(a, p["answer"], p.get("answer_kind") or "number") for a in p["answers"]]
        if right[0] != right[1]:
            out.append(float(message_text(r["chosen"]) == p["answers"][right.index(True)]))
    return out


def cohen_kappa(a: list, b: list) -> float | None:
    """Agreement of two annotators beyond chance: 1 perfect, 0 as good as chance. None if undefined."""
    if not a:
        return None
    n = len(a)
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    ca, cb = Counter(a), Counter(b)
    expected = sum(ca[k] * cb[k] for k in ca) / n ** 2
    return None if expected == 1 else (observed - expected) / (1 - expected)


def stats(store: LabelFile, tok=None) -> dict:
    """Counts by annotator and label, ties, skips, length bias (how often the longer answer won, over decided
    pairs of different lengths) and Cohen's kappa for every two annotators over the pairs both decided."""
    per = store.labels()
    final = store.final()
    length = (lambda s: len(tok(s, add_special_tokens=False)["input_ids"])) if tok else (lambda s: len(s.split()))
    longer_won = decided = 0
    for pid, e in final.items():
        a = store.pairs[store.index[pid]]["answers"]
        la, lb = length(a[0]), length(a[1])
        if e["chosen"] is not None and la != lb:
            decided += 1
            longer_won += (la > lb) == (e["chosen"] == 0)
    outcome = lambda e: e["chosen"] if e["chosen"] is not None else "tie"  # noqa: E731
    names = list(per)
    kappa = {}
    for i, x in enumerate(names):
        for y in names[i + 1:]:
            both = [pid for pid in per[x] if pid in per[y] and "skip" not in (per[x][pid]["label"], per[y][pid]["label"])]
            kappa[f"{x} vs {y}"] = {"pairs": len(both), "kappa": cohen_kappa([outcome(per[x][p]) for p in both],
                                                                           [outcome(per[y][p]) for p in both])}
    final_counts = Counter(e["label"] for e in final.values())
    return {"pairs": len(store.pairs), "labeled": len(final),
            "by_annotator": {a: dict(Counter(e["label"] for e in v.values())) for a, v in per.items()},
            "source": dict(Counter(e["annotator"] for e in final.values())),
            "ties": final_counts["tie"], "skips": final_counts["skip"],
            "longer_won": longer_won / decided if decided else None, "kappa": kappa}


def by_source(final: dict) -> dict:
    """The final labels per annotator: how many pairs each decided, called a tie, or skipped."""
    out = {}
    for e in final.values():
        counts = out.setdefault(e["annotator"], {"decided": 0, "tie": 0, "skip": 0})
        counts[e["label"] if e["label"] in ("tie", "skip") else "decided"] += 1
    return out
