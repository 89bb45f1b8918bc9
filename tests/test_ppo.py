"""PPO is proved correct by properties it must have, on the real default model where it matters."""
import pytest
import torch

import postlab
from postlab import ppo, problems


# ---------------------------------------------------------------- the pieces, on tensors


def test_response_mask_stops_at_the_first_end_of_turn_when_pad_is_the_same_token():
    eos = 2
    response = torch.tensor([[5, 6, 2, 2, 2],    # ended, padded with eos
                             [2, 2, 2, 2, 2],    # ended at once
                             [5, 6, 7, 8, 9],    # never ended
                             [5, 2, 7, 2, 2]])   # anything after the first end is padding
    want = torch.tensor([[1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], dtype=torch.bool)
    assert torch.equal(ppo.response_mask(response, eos), want)
    # a mask from `!= pad` would be wrong here: it drops the end token and keeps the 7 after it
    assert not torch.equal(response != eos, want)


def test_masked_whitening_equals_plain_whitening_of_the_kept_values():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 7, generator=g) * 3 + 2
    mask = torch.rand(4, 7, generator=g) > 0.4
    kept = x[mask]
    got = ppo.masked_whiten(x, mask.float())[mask]
    assert torch.allclose(got, (kept - kept.mean()) / kept.std(), atol=1e-5)


def brute_force_gae(rewards, values, lengths, gamma, lam):
    out = torch.zeros_like(rewards)
    for b, n in enumerate(lengths):
        for t in range(n):
            total = 0.0
            for k in range(t, n):
                next_v = values[b, k + 1].item() if k + 1 < n else 0.0
                delta = rewards[b, k].item() + gamma * next_v - values[b, k].item()
                total += (gamma * lam) ** (k - t) * delta
            out[b, t] = total
    return out


@pytest.mark.parametrize("gamma,lam", [(1.0, 0.95), (0.9, 0.8), (1.0, 1.0)])
def test_gae_equals_a_brute_force_loop(gamma, lam):
    g = torch.Generator().manual_seed(1)
    lengths = [5, 2, 7]
    mask = torch.tensor([[i < n for i in range(7)] for n in lengths]).float()
    rewards = torch.randn(3, 7, generator=g) * mask
    values = torch.randn(3, 7, generator=g) * mask
    adv, returns = ppo.gae(rewards, values, gamma, lam)
    want = brute_force_gae(rewards, values, lengths, gamma, lam)
    assert torch.allclose(adv * mask, want, atol=1e-5)
    assert torch.allclose(returns, adv + values)


def test_gae_with_zero_values_and_no_discount_is_the_reward_to_go():
    rewards = torch.tensor([[0.1, -0.2, 0.0, 3.0], [1.0, 2.0, 0.0, 0.0]])
    adv, _ = ppo.gae(rewards, torch.zeros_like(rewards), 1.0, 1.0)
    assert torch.allclose(adv, rewards.flip(1).cumsum(1).flip(1))


def test_token_rewards_put_the_score_on_the_last_answer_token_and_kl_everywhere():
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]]).float()
    logp = torch.tensor([[-1.0, -2.0, -3.0, -9.0], [-1.0, -1.0, -1.0, -1.0]])
    ref = torch.tensor([[-1.5, -2.0, -2.0, -1.0], [-1.0, -1.0, -1.0, -1.0]])
    rewards, kl = ppo.token_rewards(torch.tensor([5.0, 7.0]), logp, ref, mask, beta=0.1)
    assert torch.allclose(kl, torch.tensor([[0.5, 0.0, -1.0, 0.0], [0.0, 0.0, 0.0, 0.0]]))
    assert torch.allclose(rewards, torch.tensor([[-0.05, 0.0, 0.1 + 5.0, 0.0], [0.0, 0.0, 0.0, 7.0]]))


# ---------------------------------------------------------------- on the real default model


@pytest.fixture(scope="module")
def policy():
    return postlab.load_model("default", lora={"top_layers": 4}, verbose=False)


PROMPTS = [t["prompt"] for t in problems.train_tasks(16, 0)]


@torch.no_grad()
def fresh_adapter(net):
    """As after get_peft_model: LoRA's B matrices are zero, so the adapter adds exactly nothing."""
    for name, p in net.named_parameters():
        if "lora_B" in name:
            p.zero_()


def shorter_is_better(prompts, answers):
    return [-len(a) / 40 for a in answers]


def one_step(policy, lr, **cfg):
    net, tok = policy
    cfg = ppo.PPOConfig(batch_size=4, minibatch_size=2, ppo_epochs=2, max_new_tokens=16, lr=lr, **cfg)
    torch.manual_seed(0)
    head = ppo.ValueHead(net.config.hidden_size)
    groups = [{"params": [p for p in net.parameters() if p.requires_grad]}, {"params": list(head.parameters())}]
    opt = torch.optim.AdamW(groups, lr=cfg.lr, eps=1e-5)
    lora = groups[0]["params"]
    before = [p.detach().clone() for p in lora]
    metrics, stats = ppo.step(net, head, opt, tok, PROMPTS[:4], shorter_is_better, cfg)
    changed = any(not torch.equal(a, p) for a, p in zip(before, lora))  # did the policy move?
    return metrics, stats, changed


def test_a_policy_without_an_adapter_is_refused_with_the_fix(base):
    with pytest.raises(ValueError, match="lora=True"):
        ppo.train(base[0], base[1], PROMPTS, shorter_is_better)


def test_first_minibatch_has_ratio_one_no_clipping_and_kl_zero_before_any_update(policy):
    fresh_adapter(policy[0])
    metrics, stats, changed = one_step(policy, lr=1e-3)
    # the reference is the same network with the adapter off; the old log-probs come from the decode loop (with the
    # KV cache), the reference's from a full forward pass: equal up to float rounding
    assert abs(metrics["objective/kl"]) < 1e-3
    first = stats[0]
    assert abs(first["ratio"] - 1) < 1e-4 and first["clipfrac"] == 0.0 and first["approxkl"] < 1e-8
    assert changed and len(stats) == 4  # 2 epochs x 2 minibatches, and the update did something
    assert max(s["approxkl"] for s in stats[1:]) > 0  # later minibatches see the moved policy


def test_the_decode_loop_traces_what_a_forward_pass_over_the_rollout_computes(policy):
    """PPO takes the old log-probs, entropies and value features from the sampling loop instead of a second pass of
    the policy: they must agree with `ppo.forward` (a trained adapter, folded into the weights while decoding)."""
    net, tok = policy
    torch.manual_seed(1)
    for name, p in net.named_parameters():
        if "lora_B" in name:
            p.data.normal_(0, 0.02)
    net.eval()
    head = ppo.ValueHead(net.config.hidden_size)
    torch.nn.init.normal_(head.linear.weight, 0, 0.1)
    torch.manual_seed(0)
    ro = ppo.rollout(net, tok, PROMPTS[:4], 0.7, 16)
    with torch.no_grad():
        logp, values, entropy = ppo.forward(net, ro["ids"], ro["attention"], ro["q"], 0.7, head, entropy=True)
        traced = ro["trace"]
        m = ro["mask"]
        assert m.sum() > 8 and logp.shape == traced["logp"].shape
        assert ((traced["logp"] - logp).abs() * m).max() < 1e-3
        assert ((traced["entropy"] - entropy).abs() * m).max() < 1e-3
        assert ((head(traced["hidden"]) - values).abs() * m).max() < 1e-3
        assert (traced["logp"] * m).sum() < -1  # real log-probs, not zeros
    fresh_adapter(net)


def test_with_learning_rate_zero_the_ratio_stays_one(policy):
    metrics, stats, changed = one_step(policy, lr=0.0)
    assert not changed
    for s in stats:
        assert abs(s["ratio"] - 1) < 1e-4 and s["clipfrac"] == 0.0 and s["approxkl"] < 1e-8


def test_measured_kl_is_zero_for_an_untrained_adapter(policy):
    net, tok = policy
    fresh_adapter(net)
    out = ppo.sampled_kl(net, tok, PROMPTS[:3], shorter_is_better, max_new_tokens=8)
    assert abs(out["kl"]) < 1e-3 and len(out["kl_per_answer"]) == 3
    assert out["rm_score"] == sum(shorter_is_better(None, out["answers"])) / 3


def test_the_evaluation_samples_as_ppo_trains_and_pairs_its_values_per_task(policy):
    """Lab 03's headline: k answers per held-out task sampled at the training temperature, the same seed for every model;
    per task the mean score, the verifier's share right and the KL, in the order of the tasks."""
    net, tok = policy
    fresh_adapter(net)
    tasks = problems.heldout(0, 1)[:3]
    out = ppo.evaluate_policy(net, tok, shorter_is_better, tasks, samples=2, max_new_tokens=8, seed=3, desc="test")
    assert len(out["sampled_rows"]) == 6 and [a["prompt"] for a in out["sampled_rows"]] == [t["prompt"] for t in tasks for _ in "ab"]
    for i in range(3):
        pair = out["sampled_rows"][2 * i:2 * i + 2]
        assert out["sampled_reward"][i] == pytest.approx(sum(shorter_is_better(None, [a["answer"] for a in pair])) / 2)
        assert out["sampled_correct"][i] == sum(a["correct"] for a in pair) / 2
    assert max(abs(k) for k in out["kl_per_prompt"]) < 1e-3 and len(out["kl_per_prompt"]) == 3  # the untrained adapter is the reference
    assert out["by_kind"][tasks[0]["kind"]]["sampled_rm_score"] == pytest.approx(out["sampled_reward"][0])
    again = ppo.evaluate_policy(net, tok, shorter_is_better, tasks, samples=2, max_new_tokens=8, seed=3, desc="test")
    assert [a["answer"] for a in again["sampled_rows"]] == [a["answer"] for a in out["sampled_rows"]]  # same seed, same draws
    assert len(out["rows"]) == 3 and all("reward" in r for r in out["rows"])  # greedy replies, scored too
    # greedy replies to a subset only, and no KL forward passes: the same sampled answers, the greedy rows of the subset
    short = ppo.evaluate_policy(net, tok, shorter_is_better, tasks, samples=2, max_new_tokens=8, seed=3, desc="test",
                                greedy=tasks[1:2], kl=False)
    assert [a["answer"] for a in short["sampled_rows"]] == [a["answer"] for a in out["sampled_rows"]]
    assert [r["prompt"] for r in short["rows"]] == [tasks[1]["prompt"]] and "reward" in short["rows"][0]
    assert short["kl"] is None and short["kl_per_prompt"] is None and set(short["by_kind"]) == set(out["by_kind"])


def test_a_simple_reward_rises_within_twenty_steps():
    """Reward: shorter answers. The raw model rambles past the 24-token limit; PPO should learn to stop sooner."""
    torch.manual_seed(0)  # the adapter's initial A matrices: with whatever state earlier tests left, some never learned to stop in 20 steps
    net, tok = postlab.load_model("default", lora={"top_layers": 6}, verbose=False)
    cfg = ppo.PPOConfig(steps=20, batch_size=4, minibatch_size=4, ppo_epochs=2, max_new_tokens=24, lr=1e-3,
                        beta=0.0, missing_eos_penalty=0.5)
    _, history = ppo.train(net, tok, PROMPTS, shorter_is_better, cfg, progress=False)
    scores = [h["objective/scores"] for h in history]
    first, last = sum(scores[:5]) / 5, sum(scores[-5:]) / 5
    assert last > first + 0.2, scores
    lengths = [h["completions/mean_length"] for h in history]  # 4 answers a step: one step's mean is noisy
    assert sum(lengths[-5:]) < sum(lengths[:5]), lengths


def test_the_baseline_is_the_reward_of_the_greedy_answer(policy):
    net, tok = policy
    fresh_adapter(net)
    base = ppo.baseline_scores(net, tok, PROMPTS[:2], shorter_is_better, max_new_tokens=8)
    greedy = postlab.generate(net, tok, PROMPTS[:2], max_new_tokens=8, progress=False)
    assert base == dict(zip(PROMPTS[:2], shorter_is_better(None, greedy)))


def test_the_clipped_objective_stops_pushing_past_the_clip_range():
    import math

    old = torch.tensor([0.0, 0.0, 0.0])
    new = torch.tensor([0.3, 0.3, 0.1])  # ratios e^0.3 = 1.35 (past 1.2) and e^0.1 = 1.105 (inside)
    loss = ppo.clipped_loss(new, old, torch.tensor([1.0, -1.0, 1.0]), 0.2)
    assert loss.tolist() == pytest.approx([-1.2, math.exp(0.3), -math.exp(0.1)])


def test_the_spread_of_scores_is_the_standard_deviation_among_the_answers_to_one_prompt(policy):
    net, tok = policy
    fresh_adapter(net)
    prompts = [t["prompt"] for t in problems.heldout(0, 1)[:3]]
    seen = []

    def length_score(ps, answers):  # records what it scored, so the test can recompute the spread
        seen.extend(zip(ps, answers))
        return [float(len(a)) for a in answers]

    out = ppo.score_spread(net, tok, length_score, prompts, samples=2, max_new_tokens=8, seed=3)
    assert [p for p, _ in seen] == [p for p in prompts for _ in "ab"]
    lengths = [len(a) for _, a in seen]
    spreads = [abs(a - b) / 2 ** 0.5 for a, b in zip(lengths[::2], lengths[1::2])]  # the standard deviation of two values
    assert out["within_prompt_spread"] == pytest.approx(sum(spreads) / 3) and out["samples"] == 2
