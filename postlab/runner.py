"""The lab contract and the main job.

- `start_lab(name, run_dir, preset, smoke, seed, **params)` gives a lab its folder in the run directory, a clock
  and its settings (`presets.lab`); `lab.show` shows a figure or a table and keeps it for the report; `lab.finish(metrics)`
  writes metrics.json with the settings, the wall time and the peak memory added; `lab.exercise` adds an exercise's
  outcome and the time the exercises took.
- `postlab run` executes every notebook in labs/ with papermill, in order, into a run directory, then
  writes report.html (`report.build`). runs/latest points at the newest run (the notebooks'
  default run_dir), and `postlab run --resume RUN_DIR` goes on with a run that stopped, skipping finished labs.
"""
import argparse
import json
import os
import resource
import sys
import time
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB (getrusage reports KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


class Lab:
    def __init__(self, name: str, run_dir, cfg: dict | None = None, smoke: bool = False, seed: int = 0):
        self.name, self.run_dir = name, Path(run_dir).resolve()
        self.dir = self.run_dir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.t0 = time.time()
        self.main_s = 0.0  # seconds inside `with lab.main():`, the lab's main experiment
        self.about = {"model": cfg["model"], "preset": cfg["preset"], "smoke": smoke, "seed": seed} if cfg else {}

    @contextmanager
    def main(self):
        """Count the time inside as the lab's main experiment: the training and the measurements its headlines compare.
        `finish` writes the sum as `main_s` next to `wall_s`, so a run shows where each lab's time went."""
        t0 = time.time()
        try:
            yield
        finally:
            self.main_s += time.time() - t0

    def show(self, shown, name: str) -> None:
        """Show a Plotly figure or a table (a pandas Styler) in the notebook and save it in the lab's folder, where
        report.html finds it: `name.plotly.json` for a figure, `name.table.html` for a table."""
        from IPython.display import display

        from .plots import save

        if hasattr(shown, "write_json"):
            save(shown, self.dir, name)
        else:
            (self.dir / f"{name}.table.html").write_text(shown.to_html())
        display(shown)

    def write_rows(self, rows: list[dict], name: str) -> Path:
        """Save training rows as JSONL in the lab's folder (what TRL's scripts and a reader can open)."""
        path = self.dir / name
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return path

    def artifact(self, lab: str, relpath: str):
        """An earlier lab's artifact in this run directory, or None (saying so) when it is missing."""
        path = self.run_dir / lab / relpath
        if path.exists():
            print(f"{self.name}: using {path}")
            return path
        print(f"{self.name}: {path} is missing (run {lab} first with the same run_dir); falling back.")
        return None

    def metrics_of(self, lab: str) -> dict | None:
        """An earlier lab's metrics.json in this run directory, or None when that lab has not run."""
        path = self.run_dir / lab / "metrics.json"
        return json.loads(path.read_text()) if path.exists() else None

    def sft_model(self, cfg: dict, lora: dict | None = None, seed: int | None = None):
        """A fresh (model, tokenizer): lab 01's SFT model of this run (the preset's base model when lab 01 has not
        run), plus a new LoRA adapter when `lora` is given. With a seed, every call starts from the same adapter,
        so the arms of a comparison differ only by what they are asked to change; with the adapter switched off
        the model is the SFT model again (the reference of PPO, DPO and GRPO costs no memory)."""
        import torch

        from .models import load_model

        adapter = self.run_dir / "01_sft" / "adapter"
        if seed is not None:
            torch.manual_seed(seed)
        return load_model(cfg["model"], adapter=adapter if adapter.exists() else None, lora=lora, verbose=False,
                          **cfg["load"])

    def reward_model(self, name: str = "reward_model"):
        """(reward model, its tokenizer): the one lab 02 trained in this run (`name="weak_reward_model"`: its weak one)."""
        from .rewards import load_reward_model

        return load_reward_model(self.run_dir / "02_reward_model" / name)

    def trl_base(self, cfg: dict) -> str:
        """The model TRL's own scripts should start from: lab 01's merged SFT model, else the preset's model."""
        return str(self.artifact("01_sft", "sft_model") or cfg["model"])

    def finish(self, metrics: dict) -> dict:
        from .headlines import check

        check(metrics.get("headlines", []))
        metrics = {**self.about, **metrics, "wall_s": round(time.time() - self.t0, 1), "peak_rss_mb": round(peak_rss_mb(), 1)}
        if self.main_s:
            metrics["main_s"] = round(self.main_s, 1)
        (self.dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
        print(f"{self.name}: wrote {self.dir / 'metrics.json'} (wall {metrics['wall_s']} s, "
              f"peak RSS {metrics['peak_rss_mb']} MB)")
        return metrics

    def exercise(self, name: str, text: str) -> None:
        """Print an exercise's outcome and keep it in metrics.json under "exercises" (after `finish`), with the wall
        time and peak memory updated: `wall_s` is the whole lab, exercises included; `lesson_s` the part before them."""
        print(text)
        path = self.dir / "metrics.json"
        metrics = json.loads(path.read_text())
        metrics.setdefault("lesson_s", metrics["wall_s"])
        metrics.setdefault("exercises", {})[name] = text
        metrics.update(wall_s=round(time.time() - self.t0, 1), peak_rss_mb=round(peak_rss_mb(), 1))
        if self.main_s:
            metrics["main_s"] = round(self.main_s, 1)
        path.write_text(json.dumps(metrics, indent=2))


def start_lab(name: str, run_dir, preset: str | None = None, smoke: bool = False, seed: int = 0, **params):
    """A lab's folder and clock. With a preset, also its settings: returns (lab, cfg), where cfg is `presets.lab`
    (the preset's model and budgets, each of `params` that is not None winning over them)."""
    if preset is None:
        return Lab(name, run_dir)
    from .presets import lab as settings

    cfg = settings(name, preset, smoke, **params)
    return Lab(name, run_dir, cfg, smoke, seed), cfg


# ---------------------------------------------------------------- postlab run


def labs_dir() -> Path:
    for d in (REPO / "labs", Path.cwd() / "labs"):
        if d.is_dir():
            return d
    raise SystemExit("postlab: no labs/ folder found next to the package or in the current directory. "
                     "Fix: run from the postlab checkout, or pass --labs-dir.")


def run_notebooks(notebooks, run_dir: Path, settings: dict) -> list[dict]:
    """Execute the notebooks in order into run_dir with papermill. Each lab that finishes is recorded in
    run_dir/run.json, so `postlab run --resume run_dir` skips it."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError
    from tqdm.auto import tqdm

    state = read_state(run_dir) or {"settings": settings, "done": {}}
    for nb in tqdm(notebooks, desc="labs", unit="lab"):
        if nb.stem in state["done"]:
            print(f"postlab run: {nb.stem} finished in an earlier run of {run_dir}; skipped", flush=True)
            continue
        out = run_dir / nb.name
        t0 = time.time()
        print(f"postlab run: {nb.stem} -> {out}", flush=True)
        try:
            pm.execute_notebook(str(nb), str(out), kernel_name="python3", cwd=str(nb.parent), progress_bar=True,
                                parameters=dict(**settings, run_dir=str(run_dir)))
        except PapermillExecutionError as e:
            sys.exit(f"postlab run: {nb.name} failed in cell {e.cell_index} (execution count {e.exec_count}): "
                     f"{e.ename}: {e.evalue}\nThe executed notebook with the traceback is {out}\n"
                     f"Once it is fixed, go on where it stopped: postlab run --resume {run_dir}")
        state["done"][nb.stem] = round(time.time() - t0, 1)
        (run_dir / "run.json").write_text(json.dumps(state, indent=1))
    return [{"lab": lab, "wall_s": s} for lab, s in state["done"].items()]


def read_state(run_dir: Path) -> dict | None:
    """What `postlab run` recorded in run_dir: its settings and the labs that finished, with their wall times."""
    path = Path(run_dir) / "run.json"
    return json.loads(path.read_text()) if path.exists() else None


def point_latest(run_dir: Path, runs: Path) -> None:
    """Make runs/latest point at run_dir: the notebooks' default run_dir, so a lab opened in JupyterLab after
    `postlab run` finds that run. A real folder there (labs run by hand) is left alone, and said so."""
    latest = runs / "latest"
    runs.mkdir(parents=True, exist_ok=True)
    if latest.exists() and not latest.is_symlink():
        print(f"postlab run: {latest} is a folder of its own (labs run by hand); it is left as it is. Open the labs "
              f"with run_dir={str(run_dir)!r} to use this run.")
        return
    target = run_dir.relative_to(runs) if run_dir.parent == runs else run_dir
    tmp = runs / f".latest-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target, target_is_directory=True)
    tmp.replace(latest)  # atomic: latest always points at a run


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:  # postlab bench ...: training throughput (postlab/bench.py)
        from .bench import command as bench

        return bench(argv[1:])
    if argv[:1] == ["summarize"]:  # postlab summarize RUN_DIR ...: the results table (postlab/summary.py)
        from .summary import cli as summarize

        return summarize(argv[1:])
    p = argparse.ArgumentParser(prog="postlab", description="postlab: a Jupyter-first lab kit for LLM post-training")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run every lab headlessly with papermill, then write report.html")
    r.add_argument("--run-dir", default=None, help="where executed notebooks and results go (default runs/<time>); "
                   "runs/latest points at the newest run")
    r.add_argument("--resume", metavar="RUN_DIR", default=None,
                   help="go on with an interrupted run: the labs it finished are skipped, its settings are kept")
    r.add_argument("--model", default=None, help="the preset's model if not given; 'default' (embedded "
                   "SmolLM2-135M-Instruct), a Hugging Face id or a local directory")
    r.add_argument("--preset", default=None, choices=["auto", "cpu", "gpu", "gpu-4bit"],
                   help="model and budgets of every lab (postlab/presets.py); auto (the default): gpu when CUDA is visible")
    r.add_argument("--smoke", action="store_true", default=None, help="short runs (a few real training steps) for a quick check")
    r.add_argument("--seed", type=int, default=None)
    r.add_argument("--labs", nargs="*", default=None, help="only these labs, by prefix (e.g. 01 02)")
    r.add_argument("--labs-dir", default=None, help="folder of lab notebooks (default: the checkout's labs/)")
    sub.add_parser("bench", help="training throughput, peak memory and wall time (postlab bench --help)")
    sub.add_parser("summarize", help="several runs' headlines side by side, as Markdown (postlab summarize RUN_DIR ...)")
    a = p.parse_args(argv)

    folder = Path(a.labs_dir) if a.labs_dir else labs_dir()
    notebooks = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if a.labs:
        notebooks = [nb for nb in notebooks if any(nb.name.startswith(x) for x in a.labs)]
    if not notebooks:
        sys.exit(f"postlab run: no lab notebooks matched in {folder}")
    given = {"model": a.model, "preset": a.preset, "smoke": a.smoke, "seed": a.seed}
    if a.resume:
        run_dir = Path(a.resume).resolve()
        state = read_state(run_dir)
        if state is None:
            sys.exit(f"postlab run: {run_dir} holds no run.json, so there is nothing to resume. Fix: pass the folder "
                     "of a run started by `postlab run`, or start a new run without --resume.")
        clash = {k: v for k, v in given.items() if v is not None and v != state["settings"][k]}
        if clash:
            sys.exit(f"postlab run: {run_dir} was run with {state['settings']}; --resume keeps those settings, and "
                     f"{clash} differ. Fix: drop them, or start a new run without --resume.")
        settings = state["settings"]
    else:
        run_dir = Path(a.run_dir or folder.resolve().parent / "runs" / time.strftime("%Y%m%d-%H%M%S")).resolve()
        settings = {"model": a.model, "preset": a.preset or "auto", "smoke": bool(a.smoke), "seed": a.seed or 0}
        earlier = read_state(run_dir)
        if earlier is not None and earlier["settings"] != settings:  # it would skip that run's labs and mix the two
            sys.exit(f"postlab run: {run_dir} already holds a run with other settings ({earlier['settings']}; finished: "
                     f"{', '.join(earlier['done']) or 'no lab'}), so a run there now would skip those labs and mix two "
                     f"runs' results. Fix: pass another --run-dir for a new run, or --resume {run_dir} to go on with "
                     "that run's settings.")
    run_dir.mkdir(parents=True, exist_ok=True)
    point_latest(run_dir, folder.resolve().parent / "runs")
    t0 = time.time()
    from .presets import choose

    choose(settings["preset"])  # a preset this machine cannot run stops here, before any lab starts
    timings = run_notebooks(notebooks, run_dir, settings)
    from .report import build

    report = build(run_dir, timings)
    print(f"postlab run: {len(timings)} labs in {time.time() - t0:.0f} s; report: {report}")


if __name__ == "__main__":
    main()
