import json
import re

import pytest
import torch

from postlab import presets
from postlab.runner import REPO


def test_auto_is_cpu_without_a_gpu_and_gpu_presets_say_what_to_do(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = presets.lab("01_sft", "auto")
    assert cfg["preset"] == "cpu" and cfg["model"] == "default" and cfg["max_steps"] == presets.BUDGETS["cpu"]["01_sft"]["max_steps"]
    with pytest.raises(RuntimeError, match="needs a CUDA GPU.*Fix: preset='cpu'"):
        presets.lab("01_sft", "gpu")
    with pytest.raises(ValueError, match="use one of cpu, gpu, gpu-4bit, auto"):
        presets.lab("01_sft", "tpu")


def test_gpu_presets_when_cuda_is_visible(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    gpu, q = presets.lab("03_ppo", "auto"), presets.lab("03_ppo", "gpu-4bit")
    assert gpu["preset"] == "gpu" and gpu["batch_size"] > presets.BUDGETS["cpu"]["03_ppo"]["batch_size"]
    assert q["load"]["load_in_4bit"] and not gpu["load"].get("load_in_4bit")
    assert presets.lab("03_ppo", "gpu", smoke=True)["steps"] == presets.SMOKE["03_ppo"]["steps"]


def test_every_lab_reads_every_budget_of_its_preset():
    """The tables are what the notebooks use: each budget key appears as cfg["key"] in its notebook, and every budget
    that is also a notebook parameter is handed to start_lab (which asks presets.lab), so a value the user sets wins."""
    for lab, budget in presets.BUDGETS["cpu"].items():
        assert budget.keys() == presets.BUDGETS["gpu"][lab].keys() >= presets.SMOKE[lab].keys()
        cells = json.loads((REPO / "labs" / f"{lab}.ipynb").read_text())["cells"]
        source = "\n".join("".join(c["source"]) for c in cells)
        params = "\n" + next("".join(c["source"]) for c in cells if "parameters" in c["metadata"].get("tags", []))
        assert f'start_lab("{lab}", run_dir, preset, smoke, seed, model=model' in source
        missing = [k for k in budget if f'cfg["{k}"]' not in source]
        assert not missing, f"{lab} ignores its preset's {missing}"
        not_passed = [k for k in budget if f"\n{k} = " in params and f"{k}={k}" not in source]
        assert not not_passed, f"{lab} does not pass its parameters {not_passed} to start_lab"
        assert "torch.cuda" not in source, f"{lab} branches on hardware itself"
        assert not re.search(r"(\w+) = \1 or cfg\[", source), f"{lab} resolves a parameter with `or`, which swallows 0 and []"


def test_a_parameter_set_to_zero_or_empty_wins_over_the_preset(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = presets.lab("05_reasoning_rl", "cpu", eval_every=0, variants=[], steps=None)
    assert cfg["eval_every"] == 0 and cfg["variants"] == [] and cfg["steps"] == presets.BUDGETS["cpu"]["05_reasoning_rl"]["steps"]
    assert presets.lab("02_reward_model", "cpu", smoke=True, noise_levels=[])["noise_levels"] == []
    assert presets.lab("01_sft", "cpu", model="/my/model")["model"] == "/my/model"

