from pathlib import Path

import pytest
import torch

import postlab
from postlab import data, train


def test_sft_trains_only_the_adapter_and_only_on_completions(tmp_path):
    net, tok = postlab.load_model(lora=True, verbose=False)
    frozen = {n: p.detach().clone() for n, p in net.named_parameters() if not p.requires_grad and "layers.0." in n}
    lora_b = {n: p.detach().clone() for n, p in net.named_parameters() if "lora_B" in n}
    rows = data.sft_rows(data.train_tasks(8))
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
    rows = data.preference_rows(data.train_tasks(4, stream="dpo-test"))
    trainer = train.preference("dpo", net, tok, rows * 3, tmp_path, max_steps=3, batch_size=4, lr=2e-3,
                               lora={"top_layers": 4}, disable_tqdm=True)
    log = [h for h in trainer.state.log_history if "loss" in h]
    assert log[0]["loss"] == pytest.approx(math.log(2), abs=1e-4) and log[0]["rewards/margins"] == pytest.approx(0, abs=1e-4)
    assert log[-1]["rewards/margins"] > 0.05 and log[-1]["loss"] < math.log(2)
    assert trainer.model.peft_config["default"].layers_to_transform == [26, 27, 28, 29]
    # Only the adapter trains: postlab puts it on itself, since unsloth's patched trainers ignore a peft_config
    # (and trained 79-91% of the weights on a GPU when postlab relied on it).
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    assert 0 < trainable < 0.01 * trainer.model.num_parameters()


def test_reward_training_is_lora_plus_the_score_head(tmp_path):
    from postlab import rewards

    net, tok = rewards.load_reward_base()
    rows = data.preference_rows(data.train_tasks(4, stream="rm-test"))
    trainer = train.reward(net, tok, rows, tmp_path, max_steps=1, batch_size=4, top_layers=2, disable_tqdm=True)
    names = [n for n, p in trainer.model.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n or "score" in n for n in names)
    assert any("score" in n for n in names)
    assert sum(p.numel() for p in trainer.model.parameters() if p.requires_grad) < 0.01 * trainer.model.num_parameters()


def test_preference_methods_and_kto_rows():
    rows = data.preference_rows(data.train_tasks(2))
    kto = train.unpaired_rows(rows)
    assert [r["label"] for r in kto] == [True, False, True, False]
    assert kto[1]["completion"] == rows[0]["rejected"] and kto[0]["prompt"] == rows[0]["prompt"]
    with pytest.raises(ValueError, match="use one of dpo, ipo, simpo, orpo, kto"):
        train.preference("ppo", None, None, rows, "/tmp/x")


def test_grpo_scores_sampled_answers_with_the_task_answers_and_evaluates_on_schedule(tmp_path):
    net, tok = postlab.load_model(lora={"top_layers": 2}, verbose=False)
    lora_b = {n: p.detach().clone() for n, p in net.named_parameters() if "lora_B" in n}
    tasks = data.train_tasks(4, kinds=["multiply"], stream="grpo-test")
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
    with pytest.raises(ValueError, match="loss_type"):
        train.grpo(net, tok, tasks, {"spy": (spy, 1.0)}, tmp_path, loss_type="ppo")


def test_trl_config_reruns_the_same_sft_through_trls_own_script(tmp_path):
    """The written YAML parses with TRL's parser into the run postlab did, and TRL's sft script trains from it."""
    from trl.scripts import sft as trl_sft

    net, tok = postlab.load_model(lora={"top_layers": 2}, verbose=False)
    rows = data.sft_rows(data.train_tasks(8, stream="trl-config"))
    trainer = train.sft(net, tok, rows, tmp_path / "ours", max_steps=1, batch_size=4, lr=2e-4, disable_tqdm=True)
    path = train.trl_config(trainer, "default", tmp_path / "trl")
    assert path.name == "sft.yaml" and "accelerate_config" in path.read_text()
    parser = trl_sft.make_parser()
    script, args, model_args, mixture = parser.parse_args_and_config(
        args=["--config", str(path), "--use_cpu", "true", "--bf16", "false", "--report_to", "none"])
    assert (args.learning_rate, args.max_steps, args.per_device_train_batch_size) == (2e-4, 1, 4)
    assert args.completion_only_loss and args.max_length == trainer.args.max_length
    assert model_args.use_peft and model_args.lora_r == 16 and "q_proj" in model_args.lora_target_modules
    assert model_args.model_name_or_path == postlab.models.resolve("default")
    trl_sft.main(script, args, model_args, mixture)  # real training, one step, from the config alone
    assert (Path(args.output_dir) / "adapter_config.json").exists()
    with pytest.raises(ValueError, match="not importable"):  # a notebook's own reward cannot go into a config
        fake = type("T", (), {"args": __import__("trl").GRPOConfig(output_dir="x", use_cpu=True, bf16=False), "model": trainer.model,
                              "postlab_rows": trainer.postlab_rows, "postlab_rewards": {"mine": (len, 1.0)}})()
        train.trl_config(fake, "default", tmp_path / "grpo")
