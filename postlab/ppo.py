"""PPO for causal language models: the optimiser of RLHF, short enough to read in one sitting.

TRL no longer ships a PPO trainer, so this is ours. One PPO step:

1. Rollout: the policy samples one answer per prompt (top_k=0, top_p=1, temperature T). The answer ends at
   the first end-of-turn token; SmolLM2 also pads with that token, so masks come from its first occurrence,
   never from `!= pad`.
2. Score: a reward function (the reward model of lab 02, or any function of prompt and answer) scores each
   answer; answers that never end lose `missing_eos_penalty`.
3. Per-token reward: -beta * (logp_policy - logp_ref) at every answer token, plus the score on the last one.
   The reference is the policy with its LoRA adapter disabled, so the KL is exactly 0 before any update.
4. Advantages: GAE over the answer tokens, with a value head on the policy's last hidden state (detached:
   the value loss trains the head only); whitened.
5. Update: `ppo_epochs` passes over shuffled minibatches, clipped policy loss + vf_coef * clipped value loss,
   gradient norm clipped.

Every log-prob is computed in fp32 from logits / T: the distribution the answer was sampled from. Metrics use
the names TRL's PPOTrainer logged (objective/kl, objective/scores, policy/clipfrac_avg, ...).
"""
import random
import time
from dataclasses import dataclass
from statistics import stdev

import torch
from tqdm.auto import trange

from . import evals
from .models import chat_text, decode, generate, left_padded
from .rewards import add_scores
from .verifiers import is_correct


@dataclass
class PPOConfig:
    steps: int = 20               # PPO steps; each samples `batch_size` answers
    batch_size: int = 16          # prompts per rollout, one answer each
    minibatch_size: int = 8
    ppo_epochs: int = 2           # passes over each rollout
    lr: float = 2e-4              # LoRA and value head, one rate throughout (no warm-up, no decay)
    beta: float = 0.05            # KL coefficient (TRL's kl_coef)
    cliprange: float = 0.2
    cliprange_value: float = 0.2
    vf_coef: float = 0.1
    gamma: float = 1.0
    lam: float = 0.95
    temperature: float = 0.7
    max_new_tokens: int = 48
    missing_eos_penalty: float = 1.0
    max_grad_norm: float = 1.0
    seed: int = 0

    def budget(self) -> dict:
        """What a PPO run spends, in the units of train.budget (compare.budget_table sets them side by side)."""
        return {"optimizer updates": updates(self), "learning rate": self.lr,
                "schedule": "constant", "rollouts": self.steps,
                "answers per rollout": self.batch_size, "answers per prompt": 1, "answers per update": self.minibatch_size,
                "passes over each rollout": self.ppo_epochs}


class ValueHead(torch.nn.Module):
    """Predicts the return from the policy's last hidden state. Starts at zero weight; its bias is set to
    the mean score of the first rollout, so early advantages are not all of one sign."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.linear = torch.nn.Linear(hidden_size, 1)
        torch.nn.init.zeros_(self.linear.weight)
        torch.nn.init.zeros_(self.linear.bias)
        self.initialized = False

    def forward(self, hidden):
        return self.linear(hidden.float()).squeeze(-1)


# ---------------------------------------------------------------- the pieces, each testable alone


def response_mask(response, eos_id: int):
    """True up to and including the first end-of-turn token of each row (everything after it is padding)."""
    is_eos = (response == eos_id).long()
    return (is_eos.cumsum(1) - is_eos) == 0


def masked_mean(x, mask):
    return (x * mask).sum() / mask.sum()


def masked_whiten(x, mask, eps: float = 1e-8):
    """(x - mean) / std over the kept positions only (unbiased variance, as torch.std)."""
    mean = masked_mean(x, mask)
    n = mask.sum()
    var = ((x - mean) ** 2 * mask).sum() / (n - 1)
    return (x - mean) * torch.rsqrt(var + eps)


def gae(rewards, values, gamma: float, lam: float):
    """Generalised advantage estimation, token by token from the end. rewards and values must be zero past
    each answer's end, so nothing leaks back from the padding. Returns (advantages, returns)."""
    adv = torch.zeros_like(rewards)
    last = torch.zeros_like(rewards[:, 0])
    length = rewards.shape[1]
    for t in reversed(range(length)):
        next_value = values[:, t + 1] if t + 1 < length else 0.0
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        last = delta + gamma * lam * last
        adv[:, t] = last
    return adv, adv + values


def token_rewards(scores, logp, ref_logp, mask, beta: float):
    """-beta * KL at every answer token, plus the sequence's score on its last token."""
    kl = (logp - ref_logp) * mask
    rewards = -beta * kl
    last = mask.sum(1).long() - 1
    rewards[torch.arange(len(scores), device=rewards.device), last] += scores
    return rewards, kl


def clipped_loss(logp, old_logp, advantages, cliprange: float):
    """PPO's clipped surrogate, per token (to be minimised): max(-A * ratio, -A * clip(ratio, 1 - eps, 1 + eps)),
    ratio = p_new / p_old of the token. Once the ratio leaves [1 - eps, 1 + eps] in the direction A pushes, the
    gradient stops: one batch cannot move the policy far."""
    ratio = torch.exp(logp - old_logp)
    return torch.max(-advantages * ratio, -advantages * ratio.clamp(1 - cliprange, 1 + cliprange))


# ---------------------------------------------------------------- rollouts and forward passes


@torch.no_grad()
def rollout(policy, tok, prompts, temperature: float, max_new_tokens: int) -> dict:
    """Sample one answer per prompt. Returns token ids (prompt left-padded, then answer), the attention mask,
    the prompt length, the answer mask, whether each answer ended, and the answers as text; and, as the decode loop
    computed them (`models.decode(trace=True)`), each answer token's log-prob, entropy and features ("trace"; None
    with unsloth's generate): what `forward` would compute again over the whole rollout."""
    device = next(policy.parameters()).device
    enc = left_padded(tok, [chat_text(tok, p) for p in prompts], device)
    response, trace = decode(policy, enc["input_ids"], enc["attention_mask"], max_new_tokens, tok.eos_token_id,
                             temperature, trace=True)
    q = enc["input_ids"].shape[1]
    out = torch.cat([enc["input_ids"], response], 1)
    mask = response_mask(response, tok.eos_token_id)
    ended = ((response == tok.eos_token_id) & mask).any(1)
    texts = [t.strip() for t in tok.batch_decode(response, skip_special_tokens=True)]
    return {"ids": out, "attention": torch.cat([enc["attention_mask"], mask.long()], 1), "q": q,
            "mask": mask.float(), "ended": ended, "texts": texts, "trace": trace}


def forward(policy, ids, attention, q: int, temperature: float, value_head=None, entropy: bool = False):
    """fp32 log-probs of the answer tokens under logits / T (and values, entropy if asked), aligned so that
    position t holds the prediction of answer token t from everything before it."""
    positions = (attention.cumsum(1) - 1).clamp(min=0)  # as generate() numbers left-padded rows
    out = policy(input_ids=ids, attention_mask=attention, position_ids=positions,
                 output_hidden_states=value_head is not None, logits_to_keep=ids.shape[1] - q + 1)
    logp_all = torch.log_softmax(out.logits[:, :-1].float() / temperature, -1)
    logp = logp_all.gather(-1, ids[:, q:, None]).squeeze(-1)
    # The value head reads the policy's features but does not train them: value-loss gradients in the shared
    # LoRA weights would move the policy for reasons unrelated to the reward (TRL used a separate value model).
    values = value_head(out.hidden_states[-1][:, q - 1:-1].detach()) if value_head is not None else None
    ent = -(logp_all.exp() * logp_all).sum(-1) if entropy else None
    return logp, values, ent


@torch.no_grad()
def _chunked(policy, ro, size, temperature, value_head=None, reference=False):
    """forward() over a rollout in minibatch-sized chunks (the shapes the update will use); reference=True runs
    the policy with its adapter disabled. Returns (logp, values or None, entropy). The policy's own numbers come from
    the rollout's trace when the decode loop kept one (`rollout`): no second pass over the rollout."""
    if not reference and ro.get("trace") is not None:
        trace = ro["trace"]
        return trace["logp"], value_head(trace["hidden"]) if value_head is not None else None, trace["entropy"]
    parts = []
    for i in range(0, len(ro["ids"]), size):
        args = (policy, ro["ids"][i:i + size], ro["attention"][i:i + size], ro["q"], temperature)
        if reference:
            with policy.disable_adapter():
                parts.append(forward(*args))
        else:
            parts.append(forward(*args, value_head=value_head, entropy=True))
    return tuple(None if p[0] is None else torch.cat(p) for p in zip(*parts))


# ---------------------------------------------------------------- one PPO step, and the loop


def step(policy, value_head, optimizer, tok, prompts, reward_fn, cfg: PPOConfig):
    """One rollout and its PPO update. Returns (metrics, per-minibatch stats in the order they ran)."""
    t0 = time.time()
    policy.eval()  # no dropout anywhere: old and new log-probs must come from the same function
    ro = rollout(policy, tok, prompts, cfg.temperature, cfg.max_new_tokens)
    mask = ro["mask"]
    scores = torch.tensor(reward_fn(list(prompts), ro["texts"]), dtype=torch.float32, device=mask.device)
    scores = scores - cfg.missing_eos_penalty * (~ro["ended"]).float()
    if not value_head.initialized:
        value_head.linear.bias.data.fill_(scores.mean().item())
        value_head.initialized = True
    old_logp, old_values, entropy = _chunked(policy, ro, cfg.minibatch_size, cfg.temperature, value_head)
    ref_logp = _chunked(policy, ro, cfg.minibatch_size, cfg.temperature, reference=True)[0]
    rewards, kl = token_rewards(scores, old_logp, ref_logp, mask, cfg.beta)
    old_values = old_values * mask
    advantages, returns = gae(rewards * mask, old_values, cfg.gamma, cfg.lam)
    advantages = masked_whiten(advantages, mask) * mask
    t_rollout = time.time() - t0

    stats = []
    for _ in range(cfg.ppo_epochs):
        order = torch.randperm(len(prompts))
        for i in range(0, len(order), cfg.minibatch_size):
            mb = order[i:i + cfg.minibatch_size]
            m = mask[mb]
            logp, vpred, _ = forward(policy, ro["ids"][mb], ro["attention"][mb], ro["q"], cfg.temperature, value_head)
            ratio = torch.exp(logp - old_logp[mb])
            pg_loss = masked_mean(clipped_loss(logp, old_logp[mb], advantages[mb], cfg.cliprange), m)
            v_clipped = old_values[mb] + (vpred - old_values[mb]).clamp(-cfg.cliprange_value, cfg.cliprange_value)
            v_loss = 0.5 * masked_mean(torch.max((vpred - returns[mb]) ** 2, (v_clipped - returns[mb]) ** 2), m)
            loss = pg_loss + cfg.vf_coef * v_loss
            optimizer.zero_grad()
            loss.backward()
            for group in optimizer.param_groups:  # policy and value head each clipped on their own
                torch.nn.utils.clip_grad_norm_(group["params"], cfg.max_grad_norm)
            optimizer.step()
            with torch.no_grad():
                stats.append({"approxkl": 0.5 * masked_mean((logp - old_logp[mb]) ** 2, m).item(),
                              "clipfrac": masked_mean(((ratio - 1).abs() > cfg.cliprange).float(), m).item(),
                              "vf_clipfrac": masked_mean(((vpred - old_values[mb]).abs() > cfg.cliprange_value).float(), m).item(),
                              "ratio": masked_mean(ratio, m).item(), "pg_loss": pg_loss.item(), "v_loss": v_loss.item()})
    avg = lambda k: sum(s[k] for s in stats) / len(stats)  # noqa: E731
    kl_seq = kl.sum(1)
    non_score = (-cfg.beta * kl_seq)
    metrics = {
        "objective/kl": kl_seq.mean().item(),
        "objective/entropy": (entropy * mask).sum(1).mean().item(),
        "objective/non_score_reward": non_score.mean().item(),
        "objective/scores": scores.mean().item(),
        "objective/rlhf_reward": (scores + non_score).mean().item(),
        "policy/approxkl_avg": avg("approxkl"), "policy/clipfrac_avg": avg("clipfrac"),
        "loss/policy_avg": avg("pg_loss"), "loss/value_avg": avg("v_loss"),
        "val/clipfrac_avg": avg("vf_clipfrac"), "val/ratio": avg("ratio"),
        "val/num_eos_tokens": int(ro["ended"].sum()),
        "completions/mean_length": mask.sum(1).mean().item(),
        "time/rollout_s": round(t_rollout, 2), "time/update_s": round(time.time() - t0 - t_rollout, 2),
    }
    return metrics, stats


def baseline_scores(policy, tok, prompts, reward_fn, max_new_tokens: int = 48) -> dict:
    """The reward of the policy's own greedy answer to each prompt, to subtract from the scores of its samples.

    A constant per prompt changes nothing about which answer to that prompt is better, so the best policy
    stays the same; but it takes out the part of the score that belongs to the prompt (some task kinds
    score high whatever the answer), which a value head would need many steps to learn (as in ReMax).
    """
    greedy = generate(policy, tok, list(prompts), max_new_tokens=max_new_tokens, desc="baseline answers")
    return dict(zip(prompts, reward_fn(list(prompts), greedy)))


def above_baseline(reward_fn, baseline: dict):
    """`reward_fn` minus the baseline of each prompt (`baseline_scores`): the score PPO sees is "better or worse
    than the policy's own greedy answer"."""
    def shaped(prompts, answers):
        return [s - baseline[p] for p, s in zip(prompts, reward_fn(prompts, answers))]
    return shaped


def updates(cfg: PPOConfig) -> int:
    """Optimizer updates of a PPO run: every step makes ppo_epochs passes over its minibatches."""
    return cfg.steps * cfg.ppo_epochs * -(-cfg.batch_size // cfg.minibatch_size)


def check_policy(policy):
    if not hasattr(policy, "disable_adapter"):
        raise ValueError("PPO needs the policy to carry a LoRA adapter: the reference model is the same network "
                         "with the adapter disabled. Fix: load it with postlab.load_model(..., lora=True).")


def train(policy, tok, prompts, reward_fn, cfg: PPOConfig | None = None, progress: bool = True):
    """PPO on `prompts` (cycled in shuffled order) against `reward_fn(prompts, answers) -> scores`.

    The policy is trained in place; returns the value head and one metrics dict per step.
    """
    cfg = cfg or PPOConfig()
    check_policy(policy)
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    device = next(policy.parameters()).device
    value_head = ValueHead(policy.config.hidden_size).to(device)
    groups = [{"params": [p for p in policy.parameters() if p.requires_grad]}, {"params": list(value_head.parameters())}]
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, eps=1e-5)
    pool, history = [], []
    bar = trange(cfg.steps, desc=f"PPO beta={cfg.beta}", disable=not progress)
    for i in bar:
        batch = []
        while len(batch) < cfg.batch_size:
            if not pool:
                pool = list(prompts)
                rng.shuffle(pool)
            batch.append(pool.pop())
        metrics, _ = step(policy, value_head, optimizer, tok, batch, reward_fn, cfg)
        history.append({"step": i + 1, **metrics})
        bar.set_postfix(score=f"{metrics['objective/scores']:.2f}", kl=f"{metrics['objective/kl']:.2f}")
    return value_head, history


@torch.no_grad()
def evaluate_policy(policy, tok, reward_fn, tasks, samples: int = 4, temperature: float = 0.7, max_new_tokens: int = 48,
                    seed: int = 0, desc: str = "evaluating", batch_size: int = 48, greedy: bool | list = True,
                    kl: bool = True) -> dict:
    """How lab 03 measures a policy, on the same held-out tasks every time.

    - As PPO trains: `samples` answers per task sampled at `temperature` (the same seed for every model), each scored by
      `reward_fn(prompts, answers)` (lab 03: the reward model), checked by the verifier and measured in KL to the SFT
      model (`sampled_kl`). Per task the mean of each: `sampled_reward`, `sampled_correct` and `kl_per_prompt`, the
      values a paired headline compares.
    - As every lab evaluates: greedy replies, verifier accuracy, format, length and reward-model score (`rows`), to
      every task (greedy=True), to a list of them (greedy=[...]: a subset, to save time) or to none (greedy=False).
    Per task kind (`by_kind`): sampled_rm_score and sampled_accuracy, and with greedy replies rm_score and accuracy.
    kl=False skips the two forward passes of the KL (for the SFT model itself, whose KL is 0 by construction):
    `kl` and `kl_per_prompt` are then None."""
    result = {"by_kind": {t["kind"]: {} for t in tasks}}
    if greedy:
        answered = evals.evaluate(policy, tok, tasks if greedy is True else greedy, desc=desc, max_new_tokens=max_new_tokens,
                                  batch_size=batch_size)
        add_scores(answered, reward_fn([r["prompt"] for r in answered["rows"]], [r["reply"] for r in answered["rows"]]))
        result = {**answered, "by_kind": {kind: answered["by_kind"].get(kind, {}) for kind in result["by_kind"]}}
    repeated = [t for t in tasks for _ in range(samples)]
    prompts = [t["prompt"] for t in repeated]
    drawn = sampled_kl(policy, tok, prompts, temperature=temperature, max_new_tokens=max_new_tokens, batch_size=batch_size,
                       seed=seed, measure_kl=kl)
    scores = list(reward_fn(prompts, drawn["answers"]))
    right = [float(is_correct(a, t["answer"], t["answer_kind"])) for t, a in zip(repeated, drawn["answers"])]

    def per_task(values):
        return [sum(values[i:i + samples]) / samples for i in range(0, len(values), samples)]

    reward, correct = per_task(scores), per_task(right)
    for kind, summary in result["by_kind"].items():
        mine = [i for i, t in enumerate(tasks) if t["kind"] == kind]
        summary.update(sampled_rm_score=sum(reward[i] for i in mine) / len(mine),
                       sampled_accuracy=sum(correct[i] for i in mine) / len(mine))
    return {**result, "sampled_reward": reward, "sampled_correct": correct,
            "kl_per_prompt": per_task(drawn["kl_per_answer"]) if kl else None,
            "sampled_rm_score": sum(scores) / len(scores), "sampled_accuracy": sum(right) / len(right), "kl": drawn["kl"],
            "sampled_length": drawn["mean_length"],
            "sampled_rows": [{"prompt": p, "answer": a, "reward": s, "correct": c}
                                for p, a, s, c in zip(prompts, drawn["answers"], scores, right)]}


def score_spread(policy, tok, reward_fn, prompts, samples: int = 4, temperature: float = 0.7, max_new_tokens: int = 48,
                 seed: int = 0) -> dict:
    """Can the reward tell the policy's answers apart? `samples` answers to each prompt, sampled as PPO samples them
    and scored by `reward_fn`. `within_prompt_spread`: the mean over prompts of the standard deviation of one prompt's
    scores (near zero, PPO has nothing to climb); `score_spread`: the standard deviation over all answers."""
    repeated = [p for p in prompts for _ in range(samples)]
    torch.manual_seed(seed)
    scores = list(reward_fn(repeated, rollout(policy, tok, repeated, temperature, max_new_tokens)["texts"]))
    return {"within_prompt_spread": sum(stdev(scores[i:i + samples]) for i in range(0, len(scores), samples)) / len(prompts),
            "score_spread": stdev(scores), "prompts": len(prompts), "samples": samples}


def sampled_kl(policy, tok, prompts, reward_fn=None, temperature: float = 0.7, max_new_tokens: int = 48,
            batch_size: int = 16, seed: int = 0, measure_kl: bool = True) -> dict:
    """Sample one answer per prompt, as in training, and measure: the mean per-answer KL(policy || reference)
    (sum over tokens of logp_policy - logp_ref, an unbiased estimate on the policy's own samples; skipped, None, with
    measure_kl=False), the mean answer length in tokens and, given a reward function, the mean score."""
    check_policy(policy)
    torch.manual_seed(seed)
    kls, lengths, answers = [], [], []
    for i in range(0, len(prompts), batch_size):
        ro = rollout(policy, tok, prompts[i:i + batch_size], temperature, max_new_tokens)
        if measure_kl:
            logp = _chunked(policy, ro, batch_size, temperature)[0]
            ref = _chunked(policy, ro, batch_size, temperature, reference=True)[0]
            kls += ((logp - ref) * ro["mask"]).sum(1).tolist()
        lengths += ro["mask"].sum(1).tolist()
        answers += ro["texts"]
    out = {"kl": sum(kls) / len(kls) if measure_kl else None, "mean_length": sum(lengths) / len(lengths),
           "kl_per_answer": kls if measure_kl else None, "answers": answers}
    if reward_fn is not None:
        out["scores"] = reward_fn(list(prompts), answers)
        out["rm_score"] = sum(out["scores"]) / len(answers)
    return out
