"""postlab summarize: several runs' headlines side by side, from their metrics.json."""
import json
import re
from pathlib import Path

import pytest

from postlab import runner, summary

ROOT = Path(__file__).resolve().parents[1]


def headline(name, delta, low, high, n=40, expect="up"):
    return {"name": name, "before": 0.5, "after": 0.5 + delta, "delta": delta, "ci": [low, high], "n": n,
            "test": "paired bootstrap over problems, 2000 resamples", "expect": expect}


def test_the_table_has_a_column_per_run_and_counts_the_runs_that_cleared(tmp_path, capsys):
    a, b = tmp_path / "run-a", tmp_path / "run-b"
    (a / "03_ppo").mkdir(parents=True)  # the layout postlab run writes
    (a / "03_ppo" / "metrics.json").write_text(json.dumps({"wall_s": 500.0, "main_s": 400.0, "headlines": [
        headline("score", 0.3, 0.1, 0.5), headline("leash", 1.0, -0.2, 2.0)]}))
    b.mkdir()  # the layout of docs/results
    (b / "03_ppo.metrics.json").write_text(json.dumps({"wall_s": 600.0, "headlines": [
        headline("score", -0.3, -0.5, -0.1), headline("leash", 2.0, 0.5, 3.0)]}))
    runner.main(["summarize", str(a), str(b)])
    table = capsys.readouterr().out
    score = next(line for line in table.splitlines() if line.startswith("| 03_ppo | score"))
    assert "+0.300 [+0.100, +0.500] **up**" in score and "down (untaught)" in score and score.endswith("| 1 of 2 |")
    leash = next(line for line in table.splitlines() if line.startswith("| 03_ppo | leash"))
    assert "n.s." in leash and "**up**" in leash and leash.endswith("| 1 of 2 |")
    assert "| 03_ppo | 500 (80%) | 600 |" in table  # wall time and the main experiment's share
    with pytest.raises(SystemExit, match="holds no lab's metrics.json"):
        runner.main(["summarize", str(tmp_path / "nothing")])


def test_the_readme_results_table_is_what_summarize_writes_from_the_committed_runs():
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"<!-- results: (.+?) -->\n(.*?)<!-- /results -->", readme, re.S)
    assert found, "README.md lacks its results table between <!-- results: RUN_DIR ... --> and <!-- /results -->"
    runs = [ROOT / d for d in found.group(1).split()]
    assert summary.results_table(runs) == found.group(2), "README's results table differs: paste `postlab summarize " \
        + found.group(1) + "`"
