"""The set-up files agree with each other: pyproject, environment.yml, README, .ci/run."""
import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 (pyproject's dev extra installs tomli there)
    import tomli as tomllib

import yaml
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_environment_yml_agrees_with_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda_reqs = {r.name.lower(): r for r in (Requirement(l) for l in pip if not l.startswith(("-", "#")))}
    project = pyproject()
    wanted = [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]]
    for req in wanted:
        assert req.name.lower() in conda_reqs, f"environment.yml lacks {req}"
        got = conda_reqs[req.name.lower()]
        if req.name == "torch":  # the yml pins the CPU build; it must satisfy the project's range
            assert Version(str(got.specifier).lstrip("=")) in req.specifier
        else:
            assert got.specifier == req.specifier, f"{req.name}: pyproject {req.specifier} vs environment.yml {got.specifier}"
    assert set(conda_reqs) == {r.name.lower() for r in wanted}, "environment.yml lists packages pyproject does not"
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    assert Version(python.split("=")[-1]) >= Version(project["requires-python"].lstrip(">="))


def test_stack_pins():
    deps = {Requirement(r).name: Requirement(r).specifier for r in pyproject()["dependencies"]}
    assert str(deps["trl"]) == "==1.14.2"  # 1.15+ cannot train on a CPU
    assert "5.17.0" in deps["transformers"] and "5.18.0" not in deps["transformers"]
    assert "4.9.0" in deps["datasets"] and "5.0.0" not in deps["datasets"]


def readme_commands():
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```(?:bash|sh)\n(.*?)```", text, re.S)[0].strip().splitlines()


def test_readme_opens_with_the_two_commands_and_ci_runs_the_test_one():
    first, second = [l for l in readme_commands() if l and not l.startswith("#")][:2]
    assert "setup.sh" in first and "postlab run" in first
    assert "pytest" in second
    assert second in (ROOT / ".ci" / "run").read_text()
