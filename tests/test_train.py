from pathlib import Path

import pytest
import torch

from transformers import TrainerCallback

import postlab
from postlab import chats, evals, problems, synthetic, train


def test_sft_trains_only_the_adapter_and_only_on_completions(tmp_path):
    net, tok = postlab.load_model(lora=True, verbose=False)
    frozen = {n: p.detach().clone() for n, p in net.named_parameters() if not p.requires_grad and "layers.0." in n}
    lora_b = {n: p.detach().clone() for n, p in net.named_parameters() if "lora_B" in n}
    rows = chats.sft_rows(problems.train_tasks(8))
    trainer = train.sft(net, tok, rows, tmp_path, max_steps=2, batch_size=4, disable_tqdm=True)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(losses) == 2 and all(0 < l < 10 for l in losses)
    assert any(not torch.equal(p, lora_b[n]) for n, p in net.named_parameters() if n in lora_b)
    assert all(torch.equal(p, frozen[n]) for n, p in net.named_parameters() if n in frozen)
    # The loss mask covers the assistant reply (and its end-of-turn token), never the prompt.
    ex = trainer.train_dataset[0]
    ids, mask = ex["input_ids"], [label != -100 for label in ex["labels"]]
    completion = tok.decode([i for i, m in zip(ids, mask) if m])
    prompt = tok.decode([i for i, m in zip(ids, mask) if not m])
    assert completion.startswith(rows[0]["completion"][0]["content"]) and "<|im_end|>" in completion
    assert rows[0]["prompt"][0]["content"] in prompt and "Answer:" not in prompt


def test_dpo_moves_toward_chosen_with_the_sft_model_as_reference(tmp_path):
    """On 4 pairs seen three times, DPO's implicit reward margin grows; the reference is the same network with
    the adapter off, so at the first step (adapter still zero) the loss is exactly log 2."""
    import math

    net, tok = postlab.load_model(verbose=False)
    rows = synthetic.made_pairs(problems.train_tasks(4, stream="dpo-test"))
    trainer = train.preference("dpo", net, tok, rows * 3, tmp_path, max_steps=3, batch_size=4, lr=2e-3,
                               lora={"top_layers": 4}, disable_tqdm=True)
    log = [h for h in trainer.state.log_history if "loss" in h]
    assert log[0]["loss"] == pytest.approx(math.log(2), abs=1e-4) and log[0]["rewards/margins"] == pytest.approx(0, abs=1e-4)
    assert log[-1]["rewards/margins"] > 0.05 and log[-1]["loss"] < math.log(2)
    assert trainer.model.peft_config["default"].layers_to_transform == [26, 27, 28, 29]
    # evals.preference_accuracy computes the same margin by hand, against the adapter switched off: the trained
    # pairs now come out preferred (TRL's margin is beta times ours, so the signs agree)
    text = [{"prompt": r["prompt"], "chosen": r["chosen"][-1]["content"], "rejected": r["rejected"][-1]["content"]} for r in rows]
    pref = evals.preference_accuracy(trainer.model, tok, text)
    assert pref["n"] == 4 and pref["accuracy"] == 1.0 and min(pref["margins"]) > 0
    # Only the adapter trains: postlab puts it on itself, since unsloth's patched trainers ignore a peft_config
    # (and trained 79-91% of the weights on a GPU when postlab relied on it).
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    assert 0 < trainable < 0.01 * trainer.model.num_parameters()


def test_reward_training_is_lora_plus_the_score_head(tmp_path):
    from postlab import rewards

    net, tok = rewards.load_reward_base()
    rows = synthetic.made_pairs(problems.train_tasks(4, stream="rm-test"))
    trainer = train.reward(net, tok, rows, tmp_path, max_steps=1, batch_size=4, top_layers=2, disable_tqdm=True)
    names = [n for n, p in trainer.model.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n or "score" in n for n in names)
    assert any("score" in n for n in names)
    assert sum(p.numel() for p in trainer.model.parameters() if p.requires_grad) < 0.01 * trainer.model.num_parameters()


def test_preference_methods_and_kto_rows():
    rows = synthetic.made_pairs(problems.train_tasks(2))
    kto = train.unpaired_rows(rows)
    assert [r["label"] for r in kto] == [True, False, True, False]
    assert kto[1]["completion"] == rows[0]["rejected"] and kto[0]["prompt"] == rows[0]["prompt"]
    with pytest.raises(ValueError, match="use one of dpo, ipo, simpo, orpo, kto"):
        train.preference("ppo", None, None, rows, "/tmp/x")


def test_grpo_scores_sampled_answers_with_the_task_answers_and_evaluates_on_schedule(tmp_path):
    net, tok = postlab.load_model(lora={"top_layers": 2}, verbose=False)
    lora_b = {n: p.detach().clone() for n, p in net.named_parameters() if "lora_B" in n}
    tasks = problems.train_tasks(4, kinds=["multiply"], stream="grpo-test")
    seen = []

    def spy(reply, answer, kind):  # what the reward sees: our text replies and each prompt's own answer
        seen.append((reply, answer, kind))
        return float(len(reply) % 2)  # any reward that differs within a group gives a gradient

    evals_at = []
    trainer = train.grpo(net, tok, tasks, {"spy": (spy, 1.0)}, tmp_path, max_steps=2, batch_size=4, num_generations=2,
                         max_new_tokens=12, eval_fn=lambda m: evals_at.append(m.training) or {"acc": len(evals_at)},
                         eval_every=1, disable_tqdm=True)
    assert len(seen) == 8 and all(isinstance(r, str) for r, _, _ in seen)
    assert {a for _, a, _ in seen} <= {t["answer"] for t in tasks} and {k for _, _, k in seen} == {"number"}
    assert [e["step"] for e in trainer.evals] == [1, 2] and trainer.evals[-1]["acc"] == 2
    log = [h for h in trainer.state.log_history if "reward" in h]
    assert len(log) == 2 and all("frac_reward_zero_std" in h and "completions/mean_length" in h for h in log)
    assert any(not torch.equal(p, lora_b[n]) for n, p in net.named_parameters() if n in lora_b)
    assert train.budget(trainer)["schedule"] == "warm-up over 1 update, then constant"  # train.schedule(2, warmup=1)
    with pytest.raises(ValueError, match="loss_type"):
        train.grpo(net, tok, tasks, {"spy": (spy, 1.0)}, tmp_path, loss_type="ppo")


def test_trl_config_reruns_the_same_sft_through_trls_own_script(tmp_path):
    """The written YAML parses with TRL's parser into the run postlab did, and TRL's sft script trains from it."""
    from trl.scripts import sft as trl_sft

    net, tok = postlab.load_model(lora={"top_layers": 2}, verbose=False)
    rows = chats.sft_rows(problems.train_tasks(8, stream="trl-config"))
    trainer = train.sft(net, tok, rows, tmp_path / "ours", max_steps=1, batch_size=4, lr=2e-4, disable_tqdm=True)
    path = train.trl_config(trainer, "default", tmp_path / "trl")
    assert path.name == "sft.yaml" and "accelerate_config" in path.read_text()
    parser = trl_sft.make_parser()
    script, args, model_args, mixture = parser.parse_args_and_config(
        args=["--config", str(path), "--use_cpu", "true", "--bf16", "false", "--report_to", "none"])
    assert (args.learning_rate, args.max_steps, args.per_device_train_batch_size) == (2e-4, 1, 4)
    assert args.completion_only_loss and args.max_length == trainer.args.max_length
    assert model_args.use_peft and model_args.lora_r == 16 and "q_proj" in model_args.lora_target_modules
    assert model_args.model_name_or_path == postlab.models.model_path("default")
    trl_sft.main(script, args, model_args, mixture)  # real training, one step, from the config alone
    assert (Path(args.output_dir) / "adapter_config.json").exists()
    with pytest.raises(ValueError, match="not importable"):  # a notebook's own reward cannot go into a config
        fake = type("T", (), {"args": __import__("trl").GRPOConfig(output_dir="x", use_cpu=True, bf16=False), "model": trainer.model,
                              "postlab_rows": trainer.postlab_rows, "postlab_rewards": {"mine": (len, 1.0)}})()
        train.trl_config(fake, "default", tmp_path / "grpo")


# ---------------------------------------------------------------- every configured step trains


class FirstStep(TrainerCallback):
    """Snapshots the trainable weights before training and records whether the first optimizer step moved them."""

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.start = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step == 1:
            self.moved = sorted(n for n, p in model.named_parameters() if n in self.start and not torch.equal(p, self.start[n]))


def schedule_rates(updates, **kwargs):
    from transformers import get_scheduler

    s = train.schedule(updates, **kwargs)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = get_scheduler(s["lr_scheduler_type"], opt, num_warmup_steps=s["warmup_steps"], num_training_steps=updates,
                          scheduler_specific_kwargs=s["lr_scheduler_kwargs"])
    rates = []
    for _ in range(updates):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return rates


def test_every_schedule_step_has_a_nonzero_learning_rate():
    for updates in (1, 2, 4, 16, 99, 100, 600):
        rates = schedule_rates(updates)
        assert min(rates) > 0, (updates, rates[:3])
        if updates < train.LONG_RUN:
            assert set(rates) == {1.0}


def test_a_warm_up_rises_from_a_nonzero_rate_and_a_short_run_then_keeps_the_rate():
    rates = schedule_rates(40, warmup=4)
    assert rates[:4] == [0.25, 0.5, 0.75, 1.0] and all(abs(r - 1.0) < 1e-9 for r in rates[4:])
    assert schedule_rates(2, warmup=1) == [1.0, 1.0]
    long = schedule_rates(200, warmup=20)
    assert 0 < long[0] < long[19] and abs(long[-1] - 0.1) < 0.01


PREFERENCE_ROWS = synthetic.made_pairs(problems.train_tasks(4, stream="step-test"))


@pytest.mark.parametrize("method", list(train.PREFERENCE_METHODS))
def test_preference_trainers_move_at_the_first_step_and_lower_a_fixed_batchs_loss(tmp_path, method):
    net, tok = postlab.load_model(verbose=False)
    first = FirstStep()
    trainer = train.preference(method, net, tok, PREFERENCE_ROWS, tmp_path, max_steps=3, batch_size=4, lr=2e-3,
                               lora={"top_layers": 2}, callbacks=[first], disable_tqdm=True)
    assert first.moved and any("lora_B" in n for n in first.moved)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(losses) == 3 and losses[-1] < losses[0], losses  # every step sees the same four pairs
    assert train.budget(trainer)["optimizer updates"] == 3 and train.budget(trainer)["pairs per update"] == 4


def test_sft_and_reward_trainers_move_at_the_first_step_and_lower_a_fixed_batchs_loss(tmp_path):
    from postlab import rewards

    net, tok = postlab.load_model(lora={"top_layers": 2}, verbose=False)
    first = FirstStep()
    rows = chats.sft_rows(problems.train_tasks(4, stream="step-test"))
    trainer = train.sft(net, tok, rows, tmp_path / "sft", max_steps=3, batch_size=4, lr=2e-3, callbacks=[first],
                        disable_tqdm=True)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert first.moved and losses[-1] < losses[0], losses
    rm, rm_tok = rewards.load_reward_base()
    first = FirstStep()
    trainer = train.reward(rm, rm_tok, PREFERENCE_ROWS, tmp_path / "rm", max_steps=3, batch_size=4, lr=2e-3,
                           top_layers=2, callbacks=[first], disable_tqdm=True)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert any("lora_B" in n for n in first.moved) and losses[-1] < losses[0], losses


def completion_logp(net, tok, prompt, completion) -> float:
    """Mean log-probability per token of `completion` as the assistant's reply to `prompt`."""
    from postlab.models import chat_text

    head = tok(chat_text(tok, prompt), add_special_tokens=False)["input_ids"]
    full = tok(chat_text(tok, prompt) + completion, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([full])
    with torch.no_grad():
        logp = torch.log_softmax(net(input_ids=ids).logits[0, :-1].float(), -1)
    target = ids[0, 1:]
    token_logp = logp.gather(-1, target[:, None])[:, 0][len(head) - 1:]
    return token_logp.mean().item()


def shorter_is_better(prompts, answers):
    return [-len(a) / 40 for a in answers]


def advantage_weighted_gain(net, tok, group) -> float:
    """sum_i A_i * (logp_after_i - logp_before_i) over one recorded group of sampled answers (A_i = reward minus the
    group's mean): positive when training raised the better answers' probability relative to the worse ones'. The
    start is the same network with its adapter off (the adapter began at zero)."""
    mean = sum(r for _, _, r in group) / len(group)
    gain = 0.0
    for prompt, answer, r in group:
        after = completion_logp(net, tok, prompt, answer)
        with net.disable_adapter():
            before = completion_logp(net, tok, prompt, answer)
        gain += (r - mean) * (after - before)
    return gain


def recording(reward_fn, seen):
    def fn(prompts, answers):
        scores = reward_fn(prompts, answers)
        seen.append(list(zip(prompts, answers, scores)))
        return scores
    return fn


def test_rloo_moves_at_the_first_step_and_favours_the_better_answers_of_a_fixed_batch(tmp_path):
    net, tok = postlab.load_model(lora={"top_layers": 2}, verbose=False)
    prompt = "Tell me about cats."
    seen, first = [], FirstStep()
    trainer = train.rloo(net, tok, [prompt] * 4, recording(shorter_is_better, seen), tmp_path, steps=1, batch_size=4,
                         minibatch_size=2, epochs=2, num_generations=4, lr=2e-3, beta=0.0, max_new_tokens=16,
                         callbacks=[first], disable_tqdm=True)
    b = train.budget(trainer)
    assert (b["optimizer updates"], b["rollouts"], b["answers per rollout"], b["answers per update"]) == (4, 1, 4, 2)
    assert len(seen) == 1 and len(seen[0]) == 4  # one rollout, four updates on it: a fixed batch
    assert first.moved and advantage_weighted_gain(net, tok, seen[0]) > 0


def test_grpo_moves_at_the_first_step_and_favours_the_better_answers_of_a_fixed_batch(tmp_path):
    net, tok = postlab.load_model(lora={"top_layers": 2}, verbose=False)
    task = problems.train_tasks(1, kinds=["count"], stream="step-test")[0]
    seen, first = [], FirstStep()

    def short(reply, answer, kind):
        seen.append((task["prompt"], reply, -len(reply) / 40))
        return -len(reply) / 40

    train.grpo(net, tok, [task], {"short": (short, 1.0)}, tmp_path, max_steps=3, batch_size=4, num_generations=4,
               lr=2e-3, max_new_tokens=16, callbacks=[first], num_iterations=3, disable_tqdm=True)
    assert len(seen) == 4  # one group, sampled once, trained on three times: a fixed batch
    assert first.moved and advantage_weighted_gain(net, tok, seen) > 0


def test_ppo_moves_at_the_first_step_and_favours_the_better_answers_of_a_fixed_batch():
    from postlab import ppo

    net, tok = postlab.load_model(lora={"top_layers": 2}, verbose=False)
    seen = []
    cfg = ppo.PPOConfig(steps=1, batch_size=4, minibatch_size=2, ppo_epochs=2, lr=2e-3, beta=0.0, max_new_tokens=16)
    lora = [p for p in net.parameters() if p.requires_grad]
    start = [p.detach().clone() for p in lora]
    _, history = ppo.train(net, tok, ["Tell me about cats."] * 4, recording(shorter_is_better, seen), cfg, progress=False)
    assert any(not torch.equal(a, p) for a, p in zip(start, lora))
    assert cfg.budget()["optimizer updates"] == 4 and history[0]["policy/clipfrac_avg"] >= 0
    assert advantage_weighted_gain(net, tok, seen[0]) > 0


def test_an_untrained_adapter_prefers_nothing():
    net, tok = postlab.load_model(lora={"top_layers": 2}, verbose=False)
    rows = synthetic.made_pairs(problems.train_tasks(3, stream="dpo-test"))
    text = [{"prompt": r["prompt"], "chosen": r["chosen"][-1]["content"], "rejected": r["rejected"][-1]["content"]} for r in rows]
    pref = evals.preference_accuracy(net, tok, text + text[:1])  # the first prompt twice: one value per prompt
    assert pref["outcomes"] == [0.5] * 4 and pref["margins"] == [0.0] * 4
    assert pref["n"] == 4 and pref["per_prompt"] == [0.5] * 3


def test_a_history_joins_each_step_with_its_evaluation():
    log = [{"step": 1, "reward": 0.1}, {"step": 2, "reward": 0.3}]
    history = train.with_evals(log, [{"step": 2, "heldout_accuracy": 0.5}], start={"step": 0, "heldout_accuracy": 0.25})
    assert history == [{"step": 0, "heldout_accuracy": 0.25}, {"step": 1, "reward": 0.1},
                       {"step": 2, "reward": 0.3, "heldout_accuracy": 0.5}]
