"""Every lab on a model that is not the default: a tiny Qwen2 (another architecture) with no chat template (a base
model), built here from the default model's tokenizer with random weights. It measures nothing worth reading; it
proves that smoke and default runs of every lab go through on such a model."""
import json
import shutil
import subprocess
import sys

import nbformat
import pytest
import torch

import postlab
from postlab import models

POSTLAB = [sys.executable, "-m", "postlab.runner"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    out = tmp_path_factory.mktemp("tiny") / "tiny-qwen2-base"
    tok = AutoTokenizer.from_pretrained(models.default_model_dir())
    tok.chat_template = None  # a base model: no chat template
    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                      tie_word_embeddings=True, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    Qwen2ForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    for f in out.glob("chat_template*"):
        f.unlink()
    assert not AutoTokenizer.from_pretrained(out).chat_template
    return out


def test_a_base_model_gets_a_plain_chat_template_that_sft_can_learn(tiny, capsys):
    net, tok = postlab.load_model(str(tiny), lora=True)
    assert "has no chat template" in capsys.readouterr().out and tok.chat_template == models.PLAIN_CHAT_TEMPLATE
    prompt = [{"role": "user", "content": "What is 2 + 2?"}]
    head = tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    full = tok.apply_chat_template(prompt + [{"role": "assistant", "content": "Answer: 4"}], tokenize=False)
    assert head == "User: What is 2 + 2?<|im_end|>\nAssistant: " and full.startswith(head + "Answer: 4" + tok.eos_token)
    assert len(postlab.generate(net, tok, ["Hi"], max_new_tokens=5, progress=False)) == 1
    assert net.peft_config["default"].layers_to_transform is None or max(net.peft_config["default"].layers_to_transform) < 2


@pytest.mark.parametrize("smoke", [True, False], ids=["smoke", "default"])
def test_every_lab_runs_on_another_architecture_without_a_chat_template(tiny, tmp_path, smoke):
    run_dir = tmp_path / "run"
    proc = subprocess.run(POSTLAB + ["run", "--preset", "cpu", "--model", str(tiny), "--run-dir", str(run_dir)]
                          + (["--smoke"] if smoke else []), capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for lab in ("01_sft", "02_reward_model", "03_ppo", "04_dpo_on_your_data", "05_reasoning_rl", "06_ai_feedback", "07_scoreboard"):
        metrics = json.loads((run_dir / lab / "metrics.json").read_text())
        assert metrics["model"] == str(tiny) and metrics["smoke"] is smoke, lab
    assert json.loads((run_dir / "01_sft" / "metrics.json").read_text())["adapter_norm"] > 0
    assert (run_dir / "report.html").exists()
    shutil.rmtree(run_dir)  # a default run's folder holds several copies of the model


def test_lab_04_runs_when_no_label_decides_anything(tiny, tmp_path):
    """A labeling session of ties and skips (a short one, or a model whose answers all look alike) leaves nothing
    to train on: lab 04 says so, trains nothing, and still runs to its end (it used to stop formatting the share of
    longer answers that won, None when no pair was decided)."""
    from postlab import labels, problems

    run_dir = tmp_path / "run"
    lab = run_dir / "04_dpo_on_your_data"
    lab.mkdir(parents=True)
    pairs = [{"id": f"pair-{i:04d}", "prompt": t["prompt"], "answers": [f"Answer: {t['answer']}", "Answer: 0"],
              "source": t["kind"], "answer": t["answer"], "answer_kind": t["answer_kind"]}
             for i, t in enumerate(problems.train_tasks(4, seed=0, stream="pairs"))]
    labels.save_pairs(pairs, lab / "pairs.jsonl")  # the lab reuses the pairs it finds on disk
    store = labels.LabelFile(lab / "labels.jsonl", pairs)
    for i, p in enumerate(pairs):
        store.add(p["id"], "skip" if i == 0 else "tie", "me", labels.swapped(p["id"]))
    proc = subprocess.run(POSTLAB + ["run", "--preset", "cpu", "--smoke", "--model", str(tiny), "--run-dir", str(run_dir),
                                     "--labs", "01", "02", "04"], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    m = json.loads((lab / "metrics.json").read_text())
    assert m["train_rows"] == 0 and m["variants"] == {} and m["labels"]["longer_won"] is None
    assert m["labels"]["from_person"] == 4 and m["labels"]["from_script"] == 0 and (m["labels"]["ties"], m["labels"]["skips"]) == (3, 1)
    printed = "".join(o.get("text", "") for c in nbformat.read(run_dir / "04_dpo_on_your_data.ipynb", 4).cells
                      for o in c.get("outputs", []))
    assert "No pair was decided (all ties or skips)" in printed and "the longer answer won no decided pair" in printed
