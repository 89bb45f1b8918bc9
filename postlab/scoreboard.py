"""The scoreboard: every model a run produced, on one held-out evaluation, with the known pitfalls measured.

`stages(run_dir)` finds the models in a run folder (raw, SFT, PPO, the DPO family, GRPO; best-of-N is the SFT
model with the lab-02 reward model choosing among N samples). `probe_sets` builds one evaluation: held-out
task-world problems, sycophancy questions, harmless requests with alarming words and harmful ones, and problems
in phrasings and a kind that no stage trained on. `measure` answers all of it greedily in one batch and scores
it; `best_of_n` does the same with the reward model picking each reply.
"""
import json
import time
from pathlib import Path

import torch

from . import evals, pitfalls, problems, reranking, rewards, verifiers
from .evals import bootstrap_ci
from .headlines import verdict
from .models import generate

METRICS = ["accuracy", "format_rate", "mean_length", "rm_score", "sycophancy_rate", "refusal_rate",
           "harmful_refusal_rate", "shift_accuracy", "kl_to_sft", "win_rate_vs_sft", "lc_win_rate_vs_sft", "train_s"]


def stages(run_dir) -> dict[str, dict]:
    """{name: {"adapter": path or None, "base": "raw" | "sft", "lab": lab that trained it}} for what is in run_dir."""
    run = Path(run_dir)
    found = {"raw": {"adapter": None, "base": "raw", "lab": None}}
    if (run / "01_sft" / "sft_model" / "config.json").exists():
        found["sft"] = {"adapter": None, "base": "sft", "lab": "01_sft"}
        if (run / "02_reward_model" / "reward_model" / "config.json").exists():
            found["best_of_n"] = {"adapter": None, "base": "sft", "lab": "02_reward_model"}
        candidates = [("ppo", run / "03_ppo" / "adapter", "03_ppo")]
        candidates += [(p.name, p, "04_dpo_on_your_data") for p in sorted((run / "04_dpo_on_your_data" / "adapters").glob("*"))]
        candidates += [("grpo", run / "05_reasoning_rl" / "adapter", "05_reasoning_rl")]
        candidates += [(p.name, p, "06_ai_feedback") for p in sorted((run / "06_ai_feedback" / "adapters").glob("*"))]
        for name, path, lab in candidates:
            if (path / "adapter_config.json").exists():
                found[name] = {"adapter": path, "base": "sft", "lab": lab}
    return found


def probe_sets(seed: int = 0, per_kind: int = 3, probes: int = 6) -> dict[str, list[dict]]:
    """The one evaluation every model gets: held-out problems (per_kind of each kind), `probes` sycophancy
    questions, `probes` harmless-but-alarming requests plus half as many harmful ones (at most 6), and `probes`
    shifted problems (a quarter of them of each shift kind)."""
    return {"heldout": problems.heldout(seed, per_kind), "sycophancy": pitfalls.sycophancy_probes(probes, seed),
            "refusal": pitfalls.refusal_probes(probes, max(1, probes // 2), seed),
            "shift": pitfalls.shift_tasks(max(1, -(-probes // len(pitfalls.SHIFT_PHRASINGS))), seed)}


def _prompts(sets) -> list[str]:
    return [row["prompt"] for rows in sets.values() for row in rows]


def summarize(sets, replies: list[str], tok, rm=None, rm_tok=None) -> dict:
    """Metrics of one model's replies (in the order of _prompts(sets))."""
    out, i = {}, 0
    split = {}
    for name, rows in sets.items():
        split[name], i = replies[i:i + len(rows)], i + len(rows)
    held = evals.check_replies(sets["heldout"], split["heldout"], tok)
    out.update({k: held[k] for k in ("accuracy", "format_rate", "mean_length")})
    out["by_kind"] = {k: v["accuracy"] for k, v in held["by_kind"].items()}
    if rm is not None:
        rewards.add_scores(held, rewards.score(rm, rm_tok, [t["prompt"] for t in sets["heldout"]], split["heldout"]))
        out["rm_score"] = held["rm_score"]
    out["rows"] = held["rows"]
    syc = [pitfalls.agrees_with_wrong(r, t["answer"], t["wrong"]) for t, r in zip(sets["sycophancy"], split["sycophancy"])]
    out["sycophancy_rate"] = sum(syc) / len(syc)
    refused = [(t["should_refuse"], pitfalls.refuses(r)) for t, r in zip(sets["refusal"], split["refusal"])]
    harmless = [r for should, r in refused if not should]
    harmful = [r for should, r in refused if should]
    out["refusal_rate"] = sum(harmless) / len(harmless)  # over-refusal: harmless requests refused
    out["harmful_refusal_rate"] = sum(harmful) / len(harmful)
    shift = [verifiers.is_correct(r, t["answer"], t["answer_kind"]) for t, r in zip(sets["shift"], split["shift"])]
    out["shift_accuracy"] = sum(shift) / len(shift)
    # per item, for paired comparisons between models (every model answers the same items)
    out["items"] = {"accuracy": [r["correct"] for r in held["rows"]], "format_rate": [r["formatted"] for r in held["rows"]],
                    "mean_length": [r["length"] for r in held["rows"]], "sycophancy_rate": syc,
                    "refusal_rate": harmless, "harmful_refusal_rate": harmful, "shift_accuracy": shift}
    if rm is not None:
        out["items"]["rm_score"] = [r["reward"] for r in held["rows"]]
    out["samples"] = {name: [{"prompt": t["prompt"], "reply": r} for t, r in zip(sets[name][:2], split[name][:2])]
                      for name in sets}
    return out


def measure(net, tok, sets, rm=None, rm_tok=None, max_new_tokens: int = 48, kl_prompts: int = 0, seed: int = 0,
            desc: str = "scoring") -> dict:
    """Greedy replies to every probe in one pass, scored; with kl_prompts > 0 and a LoRA model, also the KL to
    the model with the adapter off (the SFT model) on that many sampled answers, as lab 03 measures it."""
    replies = generate(net, tok, _prompts(sets), max_new_tokens=max_new_tokens, batch_size=64, desc=desc)
    out = summarize(sets, replies, tok, rm, rm_tok)
    if kl_prompts and hasattr(net, "disable_adapter"):
        from .ppo import sampled_kl

        prompts = [t["prompt"] for t in sets["heldout"]][::max(1, len(sets["heldout"]) // kl_prompts)][:kl_prompts]
        kl = sampled_kl(net, tok, prompts, max_new_tokens=min(32, max_new_tokens), batch_size=64, seed=seed)
        out["kl_to_sft"], out["kl_per_answer"] = kl["kl"], kl["kl_per_answer"]
    return out


def measure_best_of_n(net, tok, sets, rm, rm_tok, n: int = 4, temperature: float = 0.7, max_new_tokens: int = 48,
                      seed: int = 0) -> dict:
    """The SFT model samples n replies to every probe; the reward model keeps its favourite of each (reranking)."""
    prompts = _prompts(sets)
    groups, _ = reranking.sample_groups(net, tok, prompts, (n,), temperature, max_new_tokens, seed, batch_size=max(1, 64 // n))
    scores = rewards.score(rm, rm_tok, [p for p in prompts for _ in range(n)], [a for group in groups for a in group])
    picks = [group[reranking.favourite(scores[i * n:(i + 1) * n], n)] for i, group in enumerate(groups)]
    return summarize(sets, picks, tok, rm, rm_tok)


def compare_to(result: dict, reference: dict) -> dict:
    """A model against the reference (the SFT model) on the same items: every metric's paired difference with a
    95% bootstrap interval and its verdict ("vs_sft"; a difference only where the interval excludes zero), the
    KL to the reference against zero, and the win rate by reward-model score, raw (with its interval) and
    controlled for length (evals.length_controlled_win_rate)."""
    out = evals.length_controlled_win_rate(result["rows"], reference["rows"])
    out["win_rate_ci"] = evals.win_rate(result["rows"], reference["rows"])["ci"]
    out["vs_sft"] = {m: difference([float(a) - float(b) for a, b in zip(result["items"][m], reference["items"][m], strict=True)])
                     for m in result["items"] if m in reference["items"] and result["items"][m]}
    if result.get("kl_per_answer"):
        out["vs_sft"]["kl_to_sft"] = difference(result["kl_per_answer"])
    return out


def difference(values) -> dict:
    """Mean of per-item differences, its 95% bootstrap interval, and 'up', 'down' or 'no measurable change'."""
    values = [float(v) for v in values]
    ci = bootstrap_ci(values)
    return {"delta": sum(values) / len(values), "ci": ci, "n": len(values), "verdict": verdict({"ci": ci})}


def differences_table(results: dict[str, dict]):
    """A DataFrame, model by metric, of each difference from SFT: 'delta [low, high]', with '~' in front where the
    interval includes zero (no measurable change)."""
    import pandas as pd

    cells = {}
    for name, r in results.items():
        if "vs_sft" in r:
            cells[name] = {m: ("" if d["verdict"] != "no measurable change" else "~ ")
                           + f"{d['delta']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}]" for m, d in r["vs_sft"].items()}
            w = r["win_rate_vs_sft"]
            cells[name]["win_rate_vs_sft"] = (("" if not r["win_rate_ci"][0] <= 0.5 <= r["win_rate_ci"][1] else "~ ")
                                              + f"{w:.3f} [{r['win_rate_ci'][0]:.3f}, {r['win_rate_ci'][1]:.3f}]")
    return pd.DataFrame(cells).T


def replies_table(results: dict[str, dict], sets=("sycophancy", "refusal", "shift"), n: int = 1):
    """The first `n` replies of every model to each probe set, whole: read them before trusting any rate."""
    import pandas as pd

    return pd.DataFrame([{"model": name, "set": s, "prompt": x["prompt"], "reply": x["reply"]}
                         for name, r in results.items() for s in sets for x in r["samples"][s][:n]]).style  # whole text


def moved_from_sft(result: dict) -> str:
    """A model's differences from SFT whose interval excludes zero, as text ('no measurable difference' if none),
    and its KL to SFT."""
    moved = [f"{m} {d['delta']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}]" for m, d in result["vs_sft"].items()
             if d["verdict"] != "no measurable change" and m != "kl_to_sft"]
    kl = result["vs_sft"].get("kl_to_sft")
    return (("; ".join(moved) if moved else "no measurable difference on any metric")
            + (f"; KL to SFT {kl['delta']:.3f} [{kl['ci'][0]:.3f}, {kl['ci'][1]:.3f}]" if kl else ""))


def metrics_table(results: dict[str, dict]) -> dict[str, dict]:
    """{model: {metric: value}}: the numbers of scoreboard.json (no per-reply lists)."""
    out = {}
    for name, r in results.items():
        row = {m: r[m] for m in METRICS if m in r and r[m] is not None}
        if "vs_sft" in r:
            row["vs_sft"] = r["vs_sft"]
            row["win_rate_ci"] = r["win_rate_ci"]
        row.update({f"accuracy:{k}": v for k, v in r.get("by_kind", {}).items()})
        out[name] = {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}
    return out


def write(results: dict[str, dict], run_dir) -> Path:
    path = Path(run_dir) / "scoreboard.json"
    path.write_text(json.dumps(metrics_table(results), indent=1))
    return path


def free():
    """Between models: hand the GPU's cached memory back (the caller drops its own reference first)."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def load_stage(spec: dict, model, run_dir, **load):
    """The model of one stage: raw, the merged SFT model, or the SFT model with a stage's LoRA adapter on top
    (not merged: with the adapter off it is the SFT model again, which the KL needs)."""
    from .models import load_model

    if spec["base"] == "raw":
        return load_model(model, verbose=False, **load)
    net, tok = load_model(str(Path(run_dir) / "01_sft" / "sft_model"), verbose=False, **load)
    if spec["adapter"] is not None:
        from peft import PeftModel

        net = PeftModel.from_pretrained(net, str(spec["adapter"]))
    return net, tok


def train_seconds(run_dir) -> dict[str, float]:
    """Training wall time of each stage, from the labs' metrics.json."""
    run, out = Path(run_dir), {}

    def metrics(lab):
        p = run / lab / "metrics.json"
        return json.loads(p.read_text()) if p.exists() else {}

    out["sft"] = metrics("01_sft").get("train_s")
    out["best_of_n"] = metrics("02_reward_model").get("train_s")  # training the reward model that picks
    out["ppo"] = metrics("03_ppo").get("train_s")
    out.update({m: v.get("train_s") for m, v in metrics("04_dpo_on_your_data").get("variants", {}).items()})
    out["grpo"] = metrics("05_reasoning_rl").get("grpo_seconds")
    out.update({a["adapter"]: a.get("seconds") for a in metrics("06_ai_feedback").get("arms", {}).values()})
    return {k: v for k, v in out.items() if v is not None}


def measure_all(stages: dict, sets, rm, rm_tok, run_dir, model: str, load: dict, best_of: int = 4, kl_prompts: int = 0,
                max_new_tokens: int = 48, seed: int = 0) -> tuple[dict, dict]:
    """Every stage of a run measured the same way, one model in memory at a time: (results, seconds per stage).
    `model` and `load` are the preset's (the raw model; load_model's arguments). Best-of-N samples `best_of` replies
    from the SFT model and keeps the reward model's favourite; every other stage answers greedily, and its KL to SFT
    comes from `kl_prompts` sampled answers. Each later model is then compared with SFT (`compare_to`), and its
    training time is added from the labs' metrics."""
    results, seconds = {}, {}
    for name, spec in stages.items():
        t0 = time.time()
        net, tok = load_stage(spec, model, run_dir, **load)
        if name == "best_of_n":
            results[name] = measure_best_of_n(net, tok, sets, rm, rm_tok, n=best_of, seed=seed, max_new_tokens=max_new_tokens)
        else:
            results[name] = measure(net, tok, sets, rm, rm_tok, kl_prompts=kl_prompts, seed=seed, desc=name,
                                    max_new_tokens=max_new_tokens)
        del net
        free()
        seconds[name] = time.time() - t0
        print(f"{name}: accuracy {results[name]['accuracy']:.3f}, reward-model score {results[name]['rm_score']:.3f} "
              f"({seconds[name]:.0f} s)")
    for name, r in results.items():
        if "sft" in results and name != "sft":
            r.update(compare_to(r, results["sft"]))
    for name, s in train_seconds(run_dir).items():
        if name in results:
            results[name]["train_s"] = s
    return results, seconds
