import json

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
    """The tables are what the notebooks use: each budget key appears as cfg["key"] in its notebook."""
    for lab, budget in presets.BUDGETS["cpu"].items():
        assert budget.keys() == presets.BUDGETS["gpu"][lab].keys() >= presets.SMOKE[lab].keys()
        source = "\n".join("".join(c["source"]) for c in json.loads((REPO / "labs" / f"{lab}.ipynb").read_text())["cells"])
        assert f'presets.lab("{lab}", preset, smoke)' in source
        missing = [k for k in budget if f'cfg["{k}"]' not in source]
        assert not missing, f"{lab} ignores its preset's {missing}"
        assert "torch.cuda" not in source, f"{lab} branches on hardware itself"
