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
    from postlab import models

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(models, "findable", lambda m: (True, "in the Hugging Face cache"))
    gpu, q = presets.lab("03_ppo", "auto"), presets.lab("03_ppo", "gpu-4bit")
    cpu = presets.BUDGETS["cpu"]["03_ppo"]
    assert gpu["preset"] == "gpu" and gpu["steps"] * gpu["batch_size"] > cpu["steps"] * cpu["batch_size"]  # more rollouts
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


def test_auto_on_a_gpu_without_its_model_keeps_the_gpu_budgets_with_the_embedded_model(monkeypatch, capsys):
    from postlab import models

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(models, "findable", lambda m: (False, "not in the Hugging Face cache, and HF_HUB_OFFLINE is set"))
    cfg = presets.lab("01_sft", "auto")
    assert cfg["preset"] == "gpu" and cfg["model"] == "default"
    assert cfg["max_steps"] == presets.BUDGETS["gpu"]["01_sft"]["max_steps"] and cfg["load"] == presets.MODELS["gpu"]["load"]
    assert "using the embedded default model with the gpu budgets" in capsys.readouterr().out
    assert presets.lab("01_sft", "gpu")["model"] == presets.MODELS["gpu"]["model"]  # gpu stays strict
    assert presets.lab("01_sft", "auto", model="my/model")["model"] == "my/model"  # a model given is not second-guessed
    monkeypatch.setattr(models, "findable", lambda m: (True, "in the Hugging Face cache"))
    assert presets.lab("01_sft", "auto")["model"] == presets.MODELS["gpu"]["model"]


def test_findable_knows_the_embedded_model_local_folders_and_an_offline_hub(tmp_path, monkeypatch):
    from postlab.models import findable

    assert findable("default")[0]
    assert not findable(str(tmp_path))[0]  # a folder without a config.json
    (tmp_path / "config.json").write_text("{}")
    assert findable(str(tmp_path))[0]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert findable("nobody/no-such-model-here") == (False, "not in the Hugging Face cache, and HF_HUB_OFFLINE is set")
