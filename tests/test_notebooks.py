"""Every lab notebook: committed clean, parameterised, and executed headlessly by papermill (smoke mode)."""
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "labs").glob("[0-9][0-9]_*.ipynb"))
POSTLAB = [sys.executable, "-m", "postlab.runner"]

# What each lab's metrics.json must hold (dotted paths).
REQUIRED = {
    "01_sft": ["before.accuracy", "before.format_rate", "after.accuracy", "after.format_rate", "wall_s", "peak_rss_mb"],
    "02_reward_model": ["heldout_accuracy", "heldout_accuracy_by_kind.wrong_answer", "best_of_n.1", "best_of_n.2",
                        "noise_sweep.0", "weak_reward_model.heldout_accuracy", "weak_reward_model.against_one_sample.delta",
                        "weak_reward_model.against_main.delta", "wall_s", "peak_rss_mb"],
    "03_ppo": ["before.rm_score", "after.rm_score", "after.kl", "before.accuracy", "after.accuracy", "before.sampled_rm_score",
               "after.sampled_accuracy", "truth.delta", "within_prompt_spread", "rollouts", "main_s",
               ("beta_sweep", "0.0", "sampled_rm_score"), ("beta_sweep", "0.0", "kl"), ("beta_sweep", "5.0", "kl"),
               "rloo.rm_score", "rloo.seconds", "weak_teacher.accuracy", "weak_teacher.accuracy_change.delta",
               "weak_teacher.against_main.delta", "wall_s", "peak_rss_mb"],
    "04_dpo_on_your_data": ["win_rate", ("win_rate_ci", 0), ("win_rate_ci", 1), "labels.from_script", "before.accuracy",
                            "before.format_rate", "before.mean_length", "after.accuracy", "after.format_rate",
                            "after.mean_length", "variants.dpo.accuracy", "variants.dpo.win_rate",
                            "variants.kto.win_rate", "reward_model_labels.agreement", "reward_model_labels.accuracy", "reward_model_labels.against_annotator.delta",
                            "reward_model_labels.taste_accuracy", "wall_s", "peak_rss_mb"],
    "05_reasoning_rl": ["before.accuracy", "after.accuracy", "by_kind.count.before", "by_kind.count.after",
                        "by_kind.add.after", ("variants", "dapo, beta=0.0", "heldout_accuracy"), "pass_at_k.before.pass@1",
                        "wall_s", "peak_rss_mb"],
    "06_ai_feedback": [("verdicts", "SFT model", "all", "right"), ("verdicts", "SFT model", "all", "first_picks"),
                       ("verdicts", "SFT model", "all", "consistent"), ("verdicts", "SFT model", "correct", "debiased"),
                       ("verdicts", "reward model (lab 02)", "all", "right"), "revision.outcomes.fixed", "revision.outcomes.broken",
                       "revision.change.delta", "label_accuracy.verifier", ("label_accuracy", "AI judge"), "label_accuracy.coin",
                       ("arms", "AI judge", "accuracy"), "arms.verifier.accuracy", "arms.coin.accuracy", "wall_s", "peak_rss_mb"],
    "07_scoreboard": ["scoreboard.raw.accuracy", "scoreboard.sft.sycophancy_rate", "scoreboard.ppo.kl_to_sft",
                      "scoreboard.dpo.lc_win_rate_vs_sft", "scoreboard.grpo.shift_accuracy", "wall_s", "peak_rss_mb"],
}


def test_there_are_labs():
    assert NOTEBOOKS and NOTEBOOKS[0].name == "01_sft.ipynb"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs_and_with_parameters(nb):
    book = nbformat.read(nb, as_version=4)
    for cell in book.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{nb.name} holds outputs: run nbstripout"
    params = [c for c in book.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, f"{nb.name} needs exactly one cell tagged 'parameters'"
    for name in ("model", "run_dir", "smoke", "seed"):
        assert f"\n{name} = " in "\n" + params[0].source, f"{nb.name}: parameter {name} missing"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_parameters_cell_states_the_presets_values(nb):
    """Where a parameter left at None says what the CPU preset (`cpu: X`) or smoke (`smoke: Y`) gives it, the comment
    must match postlab/presets.py."""
    import re

    from postlab import presets

    def same(text, value):
        return text in (json.dumps(value), str(value))

    book = nbformat.read(nb, as_version=4)
    params = next(c for c in book.cells if "parameters" in c.metadata.get("tags", []))
    checked = 0
    for line in params.source.splitlines():
        name = re.match(r"(\w+)\s*=\s*None\b", line)
        if not name or name[1] == "model" or "#" not in line:
            continue
        comment, name = line.split("#", 1)[1], name[1]
        given = presets.BUDGETS["cpu"][nb.stem].get(name)
        for label, value in (("cpu", given), ("smoke", presets.SMOKE[nb.stem].get(name, given))):
            stated = re.search(label + r": (\[[^\]]*\]|[\w.\-]+)", comment)
            if stated:
                assert same(stated[1], value), f"{nb.name}: {name} says {label}: {stated[1]}, presets.py gives {value!r}"
                checked += 1
    assert checked, f"{nb.name}: no parameter states its preset values"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_lab_ends_with_exercises_whose_solutions_are_hidden_but_run(nb):
    book = nbformat.read(nb, as_version=4)
    solutions = [c for c in book.cells if "solution" in c.metadata.get("tags", [])]
    assert len(solutions) >= 2, f"{nb.name}: at least two exercises with solutions"
    for c in solutions:
        assert c.cell_type == "code" and c.metadata["jupyter"] == {"source_hidden": True, "outputs_hidden": True}
        assert "Predicted:" in c.source and "This run" in c.source  # the prediction next to what happened
    if not nb.name.startswith("07"):  # every training lab checks its loss or advantages by hand against the trainer
        assert "by_hand" in book_source(book) and "assert " in book_source(book)


def book_source(book) -> str:
    return "\n".join(c.source for c in book.cells if c.cell_type == "code")


def get(d, path):
    """d[a][b][c] for the path "a.b.c", or a tuple path where a key holds a dot or indexes a list."""
    for k in (path.split(".") if isinstance(path, str) else path):
        d = d[k]
    return d


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    proc = subprocess.run(POSTLAB + ["run", "--smoke", "--run-dir", str(run_dir)], cwd=ROOT,
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return run_dir


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_smoke_run_writes_metrics_figures_and_executed_notebook(smoke_run, nb):
    lab = smoke_run / nb.stem
    metrics = json.loads((lab / "metrics.json").read_text())
    for key in REQUIRED.get(nb.stem, ["wall_s", "peak_rss_mb"]):
        value = get(metrics, key)
        assert isinstance(value, (int, float)), key
    assert list(lab.glob("*.plotly.json")), "the lab saved no figures"
    executed = nbformat.read(smoke_run / nb.name, as_version=4)
    assert any(c.get("outputs") for c in executed.cells if c.cell_type == "code")


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_lab_writes_headlines_and_prints_its_closing_from_them(smoke_run, nb):
    """Each lab's headlines follow the schema, and its closing section is generated: it quotes the run's numbers."""
    from postlab import headlines

    heads = json.loads((smoke_run / nb.stem / "metrics.json").read_text())["headlines"]
    assert heads and headlines.check(heads)
    for h in heads:
        assert h["delta"] == pytest.approx(h["after"] - h["before"]) and h["ci"][0] <= h["delta"] <= h["ci"][1]
        assert h["test"] and h["n"] >= 1 and h["expect"] in ("up", "down")
    executed = nbformat.read(smoke_run / nb.name, as_version=4)
    shown = [o.get("data", {}).get("text/markdown", "") for c in executed.cells if c.cell_type == "code" for o in c.outputs]
    closing = [t for t in shown if t.startswith("### What this run shows")]
    assert len(closing) == 1, f"{nb.stem}: no generated closing section"
    for h in heads:  # every headline, with its numbers as this run measured them
        assert f"{h['before']:.3f} -> {h['after']:.3f}" in closing[0] and f"{h['delta']:+.3f}" in closing[0]


def test_every_training_of_the_smoke_run_changed_its_model(smoke_run):
    """Smoke runs are short, never fake: every model trained in them moved (its LoRA adapter is no longer zero)."""
    def metrics(lab):
        return json.loads((smoke_run / lab / "metrics.json").read_text())

    norms = {"sft": metrics("01_sft")["adapter_norm"], "reward model": metrics("02_reward_model")["adapter_norm"]}
    norms.update({f"reward model, {k}% noise": v for k, v in metrics("02_reward_model")["sweep_adapter_norms"].items()})
    norms.update({f"PPO beta={b}": r["adapter_norm"] for b, r in metrics("03_ppo")["beta_sweep"].items()})
    norms["RLOO"] = metrics("03_ppo")["rloo"]["adapter_norm"]
    norms["weak reward model"] = metrics("02_reward_model")["weak_reward_model"]["adapter_norm"]
    norms["PPO, weak reward model"] = metrics("03_ppo")["weak_teacher"]["adapter_norm"]
    norms.update({m: r["adapter_norm"] for m, r in metrics("04_dpo_on_your_data")["variants"].items()})
    norms["DPO, reward-model labels"] = metrics("04_dpo_on_your_data")["reward_model_labels"]["adapter_norm"]
    norms.update({f"DPO on the {who}'s labels": r["adapter_norm"] for who, r in metrics("06_ai_feedback")["arms"].items()})
    norms.update({f"GRPO {name}": r["adapter_norm"] for name, r in metrics("05_reasoning_rl")["variants"].items()})
    # sft, reward model, its one smoke noise level, the weak reward model, PPO at three betas and on the weak reward
    # model, RLOO, two preference methods (test_train trains each of the others) and DPO on reward-model labels, GRPO,
    # DPO on the verifier's, the AI judge's and a coin's labels
    assert len(norms) == 16 and all(v > 0 for v in norms.values()), norms


@pytest.mark.parametrize("nb", [nb for nb in NOTEBOOKS if not nb.stem.startswith("07")], ids=lambda p: p.stem)
def test_every_training_lab_times_its_main_experiment(smoke_run, nb):
    """main_s (the time inside `with lab.main():`) is part of the lab's wall time, so a run shows where it went."""
    metrics = json.loads((smoke_run / nb.stem / "metrics.json").read_text())
    assert 0 < metrics["main_s"] < metrics["lesson_s"] <= metrics["wall_s"]


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_exercise_keeps_what_it_printed_and_the_lab_time_counts_them(smoke_run, nb):
    metrics = json.loads((smoke_run / nb.stem / "metrics.json").read_text())
    assert len(metrics["exercises"]) >= 2 and all("Predicted:" in t and "This run" in t for t in metrics["exercises"].values())
    assert metrics["wall_s"] > metrics["lesson_s"] > 0


def test_sft_smoke_artifacts(smoke_run):
    lab = smoke_run / "01_sft"
    assert (lab / "adapter" / "adapter_config.json").exists() and (lab / "sft_data.jsonl").exists()
    m = json.loads((lab / "metrics.json").read_text())
    assert m["smoke"] is True and m["steps"] == 10 and m["before"]["n"] == m["after"]["n"] == 12


def test_reward_model_lab_builds_on_the_sft_lab(smoke_run):
    lab = smoke_run / "02_reward_model"
    m = json.loads((lab / "metrics.json").read_text())
    assert m["started_from"] == "01_sft adapter"
    assert (lab / "reward_model" / "config.json").exists()
    detail = m["best_of_n_detail"]
    assert all(detail[n]["oracle"] >= detail[n]["accuracy"] for n in detail)
    assert detail["2"]["gen_seconds"] > detail["1"]["gen_seconds"]  # smoke: N = 1, 2


def test_dpo_lab_labels_headless_and_exports(smoke_run):
    from postlab import labels

    lab = smoke_run / "04_dpo_on_your_data"
    m = json.loads((lab / "metrics.json").read_text())
    pairs = labels.load_pairs_file(lab / "pairs.jsonl")
    store = labels.LabelFile(lab / "labels.jsonl", pairs)  # a valid labels file, for these pairs
    assert m["labels"]["from_person"] == 0 and m["labels"]["from_script"] == len(pairs) == m["pairs"]
    assert sum(m["labels"]["by_source"].values()) == len(pairs) and store.next_unlabeled("script") is None
    assert m["train_rows"] == len(labels.preference_rows(store, ("me", "script")))
    assert set(m["variants"]) == {"dpo", "kto"}  # smoke: a paired and an unpaired loss (test_train trains the others)
    assert all((lab / "adapters" / method / "adapter_config.json").exists() for method in m["variants"])
    assert 0 <= m["win_rate_ci"][0] <= m["win_rate"] <= m["win_rate_ci"][1] <= 1


def test_reasoning_lab_trains_grpo_on_the_sft_model_and_tracks_heldout_accuracy(smoke_run):
    from postlab import problems

    lab = smoke_run / "05_reasoning_rl"
    m = json.loads((lab / "metrics.json").read_text())
    assert m["started_from"] == "01_sft adapter" and (lab / "adapter" / "adapter_config.json").exists()
    assert set(m["by_kind"]) == set(problems.KINDS)
    # trained on the kind with the most mixed groups among those whose sampled answers are right 20-80% of the time,
    # pass@1 closest to half breaking ties (and alone deciding when no kind is in that range)
    inside = {kd: 0.2 <= p["pass@1"] <= 0.8 for kd, p in m["probe"].items()}
    signal = {kd: (inside[kd], p["mixed"] if inside[kd] else 0.0, p["pass@1"] * (1 - p["pass@1"])) for kd, p in m["probe"].items()}
    assert signal[m["task"]] == max(signal.values())
    task = m["task"]
    assert m["before"]["accuracy"] == m["by_kind"][task]["before"] and m["after"]["accuracy"] == m["by_kind"][task]["after"]
    steps = m["config"]["steps"]
    assert [h["step"] for h in m["history"]] == list(range(steps + 1))  # step 0 is the SFT model
    assert all("heldout_accuracy" in h for h in m["history"])  # smoke evaluates every step
    assert all(0 <= h["frac_reward_zero_std"] <= 1 for h in m["history"][1:])
    assert list(m["variants"]) == ["dapo, beta=0.0"]  # smoke: the main run only
    # the mixed filter sampled twice the training problems it needed and kept as many as the steps use
    mf = m["mixed_filter"]
    assert m["config"]["only_mixed"] and mf["pool"] == 2 * mf["trained"] == 2 * steps * m["config"]["prompts_per_step"]
    assert 0 <= mf["mixed"] <= mf["pool"]


def test_report_holds_every_lab(smoke_run):
    report = (smoke_run / "report.html").read_text()
    assert (smoke_run / "plotly.min.js").exists()
    for nb in NOTEBOOKS:
        assert nb.stem in report
    # it opens with the headlines; the metric dumps sit behind <details>
    assert report.index("Headlines:") < report.index("Plotly.newPlot") and report.count("<details>") == len(NOTEBOOKS)
    assert "Plotly.newPlot" in report


def test_a_failing_lab_names_the_notebook_and_cell(tmp_path):
    labs = tmp_path / "labs"
    labs.mkdir()
    book = nbformat.v4.new_notebook()
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    book.cells = [nbformat.v4.new_code_cell("model = 'x'\nrun_dir = '.'\nsmoke = True\nseed = 0",
                                            metadata={"tags": ["parameters"]}),
                  nbformat.v4.new_code_cell("x = 1"),
                  nbformat.v4.new_code_cell("raise ValueError('boom')")]
    nbformat.write(book, labs / "01_broken.ipynb")
    proc = subprocess.run(POSTLAB + ["run", "--labs-dir", str(labs), "--run-dir", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "01_broken.ipynb failed in cell" in proc.stderr and "ValueError: boom" in proc.stderr


def test_training_labs_write_trl_configs_that_trls_parser_loads(smoke_run):
    """Each training lab leaves the YAML of its run for TRL's own script; TRL's parser reads each one back."""
    import importlib

    configs = sorted(smoke_run.glob("*/trl/**/*.yaml"))
    labs = {p.relative_to(smoke_run).parts[0] for p in configs}
    assert labs == {"01_sft", "02_reward_model", "03_ppo", "04_dpo_on_your_data", "05_reasoning_rl"}
    assert (smoke_run / "01_sft" / "sft_model" / "config.json").exists()
    for path in configs:
        script = importlib.import_module(f"trl.scripts.{path.stem}")
        parsed = script.make_parser().parse_args_and_config(args=["--config", str(path), "--use_cpu", "true",
                                                                  "--bf16", "false"])
        script_args, args, model_args, mixture = parsed
        assert Path(model_args.model_name_or_path, "config.json").exists(), path
        assert Path(mixture.datasets[0].data_files).stat().st_size > 0 and model_args.use_peft
        if path.stem == "grpo":
            assert script_args.reward_funcs and all(importlib.import_module(f.rsplit(".", 1)[0]) for f in script_args.reward_funcs)
        if path.stem == "rloo":
            assert Path(script_args.reward_model_name_or_path, "config.json").exists()


def test_scoreboard_has_every_model_and_the_pitfalls_and_the_report_shows_it(smoke_run):
    board = json.loads((smoke_run / "scoreboard.json").read_text())
    assert set(board) == {"raw", "sft", "best_of_n", "ppo", "dpo", "kto", "grpo", "dpo_verifier_labels", "dpo_ai_labels", "dpo_coin_labels"}
    for name, row in board.items():
        for metric in ("accuracy", "format_rate", "sycophancy_rate", "refusal_rate", "harmful_refusal_rate", "shift_accuracy"):
            assert 0 <= row[metric] <= 1, (name, metric)
        assert 0 < row["mean_length"] <= 12 and isinstance(row["rm_score"], float)  # smoke replies: at most 12 tokens
        assert any(k.startswith("accuracy:") for k in row)
    adapters = {"ppo", "dpo", "kto", "grpo", "dpo_verifier_labels", "dpo_ai_labels", "dpo_coin_labels"}  # the SFT model with a stage's adapter on top
    assert {n for n, row in board.items() if "kl_to_sft" in row} == adapters
    assert all(0 <= board[n]["win_rate_vs_sft"] <= 1 for n in adapters | {"raw", "best_of_n"})
    assert board["ppo"]["train_s"] > 0
    report = (smoke_run / "report.html").read_text()
    assert "Scoreboard: every model on one evaluation" in report and "sycophancy_rate" in report


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_notebook_is_mostly_the_story(nb):
    """Issue 18's bar: under a quarter of the statements show or keep books in the notebook itself (the package draws
    the figures and tables), and no code cell runs far past 15 lines."""
    from notebook_counts import count

    c = count(nb)
    assert c["presentation_and_bookkeeping"] < 0.25, c
    assert c["longest"] <= 20, c
