"""The main job: runs/latest, resuming a run that stopped, the report, peak memory."""
import json
import subprocess
import sys

import nbformat

from postlab import runner

POSTLAB = [sys.executable, "-m", "postlab.runner"]


def lab_notebook(path, body):
    book = nbformat.v4.new_notebook()
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    book.cells = [nbformat.v4.new_code_cell("model = None\npreset = 'auto'\nrun_dir = '../runs/latest'\nsmoke = False\nseed = 0",
                                            metadata={"tags": ["parameters"]}),
                  nbformat.v4.new_code_cell(body)]
    nbformat.write(book, path)


def test_latest_points_at_the_newest_run_and_resume_skips_finished_labs(tmp_path):
    labs = tmp_path / "labs"
    labs.mkdir()
    gate = tmp_path / "gate"
    lab_notebook(labs / "01_first.ipynb", "from postlab.runner import start_lab\nimport pathlib\n"
                 "lab = start_lab('01_first', run_dir)\n"
                 "count = lab.dir / 'count'\ncount.write_text(str(int(count.read_text()) + 1 if count.exists() else 1))\n"
                 "lab.finish({'seed': seed})")
    lab_notebook(labs / "02_second.ipynb", f"import pathlib\nassert pathlib.Path({str(gate)!r}).exists(), 'gate closed'\n"
                 "from postlab.runner import start_lab\nstart_lab('02_second', run_dir).finish({})")
    run = subprocess.run(POSTLAB + ["run", "--labs-dir", str(labs), "--run-dir", str(tmp_path / "runs" / "a"), "--seed", "3"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode != 0 and "02_second.ipynb failed" in run.stderr and "--resume" in run.stderr
    latest = tmp_path / "runs" / "latest"
    assert latest.is_symlink() and latest.resolve() == (tmp_path / "runs" / "a").resolve()
    state = json.loads((tmp_path / "runs" / "a" / "run.json").read_text())
    assert list(state["done"]) == ["01_first"] and state["settings"]["seed"] == 3

    clash = subprocess.run(POSTLAB + ["run", "--labs-dir", str(labs), "--resume", str(tmp_path / "runs" / "a"), "--seed", "1"],
                           capture_output=True, text=True, timeout=600)
    assert clash.returncode != 0 and "keeps those settings" in clash.stderr
    other = subprocess.run(POSTLAB + ["run", "--labs-dir", str(labs), "--run-dir", str(tmp_path / "runs" / "a"), "--seed", "1"],
                           capture_output=True, text=True, timeout=600)  # a new run into that folder, other settings
    assert other.returncode != 0 and "other settings" in other.stderr and "--resume" in other.stderr
    assert json.loads((tmp_path / "runs" / "a" / "run.json").read_text()) == state  # left as it was
    gate.touch()
    resumed = subprocess.run(POSTLAB + ["run", "--labs-dir", str(labs), "--resume", str(tmp_path / "runs" / "a")],
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "01_first finished in an earlier run" in resumed.stdout
    assert (tmp_path / "runs" / "a" / "01_first" / "count").read_text() == "1"  # not run again
    assert json.loads((tmp_path / "runs" / "a" / "02_second" / "metrics.json").read_text())["wall_s"] >= 0
    assert json.loads((tmp_path / "runs" / "a" / "01_first" / "metrics.json").read_text())["seed"] == 3
    report = (tmp_path / "runs" / "a" / "report.html").read_text()
    assert "01_first" in report and "02_second" in report

    again = subprocess.run(POSTLAB + ["run", "--labs-dir", str(labs), "--run-dir", str(tmp_path / "runs" / "b")],
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and latest.resolve() == (tmp_path / "runs" / "b").resolve()


def test_a_folder_of_labs_run_by_hand_is_not_replaced(tmp_path, capsys):
    runs = tmp_path / "runs"
    (runs / "latest").mkdir(parents=True)
    (runs / "latest" / "mine.txt").write_text("keep")
    runner.point_latest(runs / "new", runs)
    assert (runs / "latest" / "mine.txt").read_text() == "keep" and "left as it is" in capsys.readouterr().out


def test_peak_memory_is_in_megabytes(monkeypatch):
    import resource

    class Usage:
        ru_maxrss = 2 * 2**20  # 2 GiB on Linux (KiB), 2 MiB on macOS (bytes)

    monkeypatch.setattr(resource, "getrusage", lambda who: Usage)
    monkeypatch.setattr(sys, "platform", "linux")
    assert runner.peak_rss_mb() == 2048
    monkeypatch.setattr(sys, "platform", "darwin")
    assert runner.peak_rss_mb() == 2


def test_a_lab_with_a_preset_records_its_settings_figures_and_earlier_metrics(tmp_path, capsys):
    import plotly.graph_objects as go

    lab, cfg = runner.start_lab("01_sft", tmp_path, "cpu", True, 3, max_steps=7)
    assert cfg["max_steps"] == 7 and cfg["preset"] == "cpu"  # a given parameter wins over the preset
    lab.show(go.Figure(go.Bar(x=[1], y=[2])), "bars")
    assert (lab.dir / "bars.plotly.json").exists()
    import pandas as pd

    lab.show(pd.DataFrame({"reply": ["a long reply"]}).style, "replies")
    assert "a long reply" in (lab.dir / "replies.table.html").read_text()
    lab.write_rows([{"a": 1}, {"a": 2}], "rows.jsonl")
    assert [json.loads(x) for x in (lab.dir / "rows.jsonl").read_text().splitlines()] == [{"a": 1}, {"a": 2}]
    metrics = lab.finish({"steps": 7})
    assert {k: metrics[k] for k in ("model", "preset", "smoke", "seed", "steps")} == {
        "model": cfg["model"], "preset": "cpu", "smoke": True, "seed": 3, "steps": 7}
    later = runner.start_lab("02_reward_model", tmp_path)
    assert later.metrics_of("01_sft")["seed"] == 3 and later.metrics_of("03_ppo") is None
    lab.t0 -= 5  # the exercises took five seconds: the lab's wall time counts them, lesson_s does not
    lab.exercise("1", "Predicted: up.\nThis run: 0.5 -> 0.7.")
    lab.exercise("2", "Predicted: down.\nThis run: 3 -> 2.")
    saved = json.loads((lab.dir / "metrics.json").read_text())
    assert saved["exercises"] == {"1": "Predicted: up.\nThis run: 0.5 -> 0.7.", "2": "Predicted: down.\nThis run: 3 -> 2."}
    assert saved["lesson_s"] == metrics["wall_s"] and saved["wall_s"] >= metrics["wall_s"] + 5 and saved["steps"] == 7
    assert "This run: 3 -> 2." in capsys.readouterr().out


def test_the_main_experiment_is_timed_apart_and_the_report_shows_its_share(tmp_path, monkeypatch):
    """Lab.main() adds the seconds spent inside it (twice here: training, then its measurement) to main_s; the rest of
    the lab (figures, hand checks, exercises) counts in wall_s only, and report.html shows both."""
    from postlab import report

    clock = iter([100.0, 110.0, 150.0, 160.0, 175.0, 200.0])  # start; main 10 -> 50; main 60 -> 75; finish at 100
    monkeypatch.setattr(runner.time, "time", lambda: next(clock))
    lab = runner.Lab("03_ppo", tmp_path)
    with lab.main():
        pass
    with lab.main():
        pass
    metrics = lab.finish({"headlines": []})
    assert metrics["main_s"] == 55.0 and metrics["wall_s"] == 100.0
    page = report.build(tmp_path, [{"lab": "03_ppo", "wall_s": 101.0}]).read_text()
    assert "<td>55.0 (55%)</td>" in page
