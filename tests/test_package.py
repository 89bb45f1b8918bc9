"""The package reads from its folder listing: every module says what it holds, and one name means one thing."""
import ast
import collections
from pathlib import Path

MODULES = sorted((Path(__file__).resolve().parents[1] / "postlab").glob("*.py"))


def test_every_module_opens_with_a_docstring():
    for path in MODULES:
        doc = ast.get_docstring(ast.parse(path.read_text()))
        assert doc and len(doc) > 20, f"{path.name} needs a docstring saying what it holds"


def test_no_two_public_functions_or_classes_share_a_name():
    homes = collections.defaultdict(list)
    for path in MODULES:
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                homes[node.name].append(path.name)
    assert not {name: where for name, where in homes.items() if len(where) > 1}


def test_the_readme_package_table_names_every_module():
    readme = (MODULES[0].parents[1] / "README.md").read_text()
    missing = [p.name for p in MODULES if p.name != "__init__.py" and f"| `{p.name}` |" not in readme]
    assert not missing, f"README's package table lacks {missing}"
