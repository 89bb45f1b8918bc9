"""The model as judge (lab 06): which of two replies follows a principle better, read from the probabilities of the
judge's answer tokens ("A" or "B", no free text parsed), with the pair shown in both orders.

- `judge_pairs(model, tok, pairs, texts)`: a language model as judge; `reward_judge(rm, rm_tok, pairs)`: lab 02's
  reward model as one (it scores each reply alone, so it has no positions to favour).
- Per pair: `right` (the share of the two orders in which the verdict picked the reply that follows the principle),
  `first_picks` (the share of the two verdicts that picked whatever was shown first: position bias), `consistent`
  (1 when both orders picked the same reply) and `debiased` (the verdict of the judge's log-odds summed over both
  orders, which cancels a constant pull toward one position).
- `by_principle` gives those per principle; `rows_from_picks` turns anyone's picks (a judge's, the verifier's, a coin's)
  into preference rows for DPO.
"""
import torch

from .chats import chat, message_text
from .models import chat_text, left_padded

JUDGE_PROMPT = ("Principle: {principle}\n\nQuestion: {prompt}\n\nAnswer A:\n{a}\n\nAnswer B:\n{b}\n\n"
                "Which answer follows the principle better? Reply with A or B.")


def letter_ids(tok) -> tuple[int, int]:
    """The token ids the judge answers with: the first token of "A" and of "B"."""
    return tok("A", add_special_tokens=False)["input_ids"][0], tok("B", add_special_tokens=False)["input_ids"][0]


@torch.no_grad()
def ab_log_odds(model, tok, questions: list[str], batch_size: int = 16) -> list[float]:
    """log p("A") - log p("B") of the judge's first reply token to each question (a user turn in the chat template)."""
    a, b = letter_ids(tok)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    try:
        for i in range(0, len(questions), batch_size):
            enc = left_padded(tok, [chat_text(tok, q) for q in questions[i:i + batch_size]], device)
            logits = model(**enc).logits[:, -1].float()
            out += (logits[:, a] - logits[:, b]).tolist()
    finally:
        model.train(was_training)
    return out


def verdicts(pairs: list[dict], good_first: list[float], good_second: list[float]) -> list[dict]:
    """Each pair with its verdicts, from the judge's log-odds of "A" with the good reply shown first and second."""
    out = []
    for p, x, y in zip(pairs, good_first, good_second, strict=True):
        right = [x > 0, y < 0]  # order 1: the good reply is A; order 2: it is B
        margin = x - y  # the good reply's pull, summed over both positions: a constant pull toward A cancels
        out.append({**p, "log_odds": [x, y], "right": sum(right) / 2, "right_first": float(right[0]),
                    "right_swapped": float(right[1]), "first_picks": ((x > 0) + (y > 0)) / 2,
                    "consistent": float(right[0] == right[1]),
                    "debiased": 1.0 if margin > 0 else 0.0 if margin < 0 else 0.5})
    return out


def judge_pairs(model, tok, pairs: list[dict], texts: dict) -> list[dict]:
    """A language model judges every pair under its principle (`texts[pair["principle"]]`), in both orders."""
    def ask(p, a, b):
        return JUDGE_PROMPT.format(principle=texts[p["principle"]], prompt=p["prompt"], a=a, b=b)

    odds = ab_log_odds(model, tok, [q for p in pairs for q in (ask(p, p["good"], p["bad"]), ask(p, p["bad"], p["good"]))])
    return verdicts(pairs, odds[0::2], odds[1::2])


def reward_judge(rm, rm_tok, pairs: list[dict]) -> list[dict]:
    """Lab 02's reward model as judge: it scores each reply alone (no principle, no positions), so its "log-odds"
    are the score margin, the same in both orders."""
    from .rewards import score

    flat = score(rm, rm_tok, [p["prompt"] for p in pairs for _ in range(2)], [r for p in pairs for r in (p["good"], p["bad"])])
    margins = [flat[2 * i] - flat[2 * i + 1] for i in range(len(pairs))]
    return verdicts(pairs, margins, [-m for m in margins])


FIELDS = ("right", "right_first", "right_swapped", "first_picks", "consistent", "debiased")


def by_principle(judged: list[dict]) -> dict:
    """Per principle and over all pairs: the mean of each verdict field, and the number of pairs."""
    groups = {"all": judged}
    for j in judged:
        groups.setdefault(j["principle"], []).append(j)
    return {name: {"n": len(js), **{f: sum(j[f] for j in js) / len(js) for f in FIELDS}} for name, js in groups.items() if js}


def pairs_from_rows(rows: list[dict], principle: str = "correct") -> list[dict]:
    """Preference rows (chat format, the chosen reply the one that follows `principle`) as pairs to judge."""
    return [{"prompt": message_text(r["prompt"]), "good": message_text(r["chosen"]), "bad": message_text(r["rejected"]),
             "principle": principle} for r in rows]


def rows_from_picks(pairs: list[dict], picks: list[float]) -> list[dict]:
    """TRL preference rows from a labeler's picks, one per pair: 1.0 chooses the good reply, 0.0 the bad one, 0.5 (a
    verdict that could not split them) leaves the pair out. The verifier picks 1.0 always; a judge its `debiased`."""
    rows = []
    for p, pick in zip(pairs, picks, strict=True):
        if pick != 0.5:
            good, bad = (p["good"], p["bad"]) if pick == 1.0 else (p["bad"], p["good"])
            rows.append({"prompt": chat(p["prompt"]), "chosen": [{"role": "assistant", "content": good}],
                         "rejected": [{"role": "assistant", "content": bad}]})
    return rows
