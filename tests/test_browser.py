"""The labeler in a real JupyterLab, driven by playwright in Debian's chromium: label by click and by key,
check that JupyterLab's own shortcuts did not fire, restart the kernel and check the file and the resumed
position. Skipped where chromium is missing, except in CI (.ci/run installs it), where that is a failure."""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from postlab import labels

from test_labels import PAIRS

CHROMIUM = shutil.which("chromium")
if not CHROMIUM:
    if os.environ.get("CI"):
        raise RuntimeError("CI needs Debian's chromium for the browser test: apt-get install chromium (.ci/run does).")
    pytest.skip("no chromium here (apt-get install chromium to run the browser test)", allow_module_level=True)
playwright = pytest.importorskip("playwright.sync_api")

TOKEN = "postlab-test"
CELL = """from postlab import labels, widgets
store = labels.LabelFile("labels.jsonl", labels.load_pairs_file("pairs.jsonl"))
widgets.Labeler(store)"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    labels.save_pairs(PAIRS, tmp_path / "pairs.jsonl")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CELL)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "label.ipynb")
    port = free_port()
    log = (tmp_path / "jupyter.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1", "--allow-root",
         f"--ServerApp.token={TOKEN}", f"--ServerApp.root_dir={tmp_path}", "--LabApp.expose_app_in_browser=True",
         "--ServerApp.disable_check_xsrf=True"], stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    else:
        server.kill()
        pytest.fail("JupyterLab did not start:\n" + (tmp_path / "jupyter.log").read_text()[-3000:])
    yield url, tmp_path
    server.terminate()
    server.wait(timeout=30)


def run_all(page):
    """Wait for an idle kernel, then run every cell (JupyterLab's own command)."""
    page.wait_for_function("() => { const w = window.jupyterapp.shell.currentWidget;"
                           " return w && w.sessionContext && w.sessionContext.session &&"
                           " w.sessionContext.session.kernel && w.sessionContext.session.kernel.status === 'idle'; }",
                           timeout=120_000)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")


def test_label_by_click_and_key_restart_and_resume(lab):
    url, folder = lab
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(f"{url}/lab/tree/label.ipynb?token={TOKEN}")
        page.wait_for_selector(".jp-Notebook", timeout=120_000)
        run_all(page)
        widget = page.locator(".postlab-labeler")
        widget.locator(".pl-pos", has_text="Pair 1 of 4").wait_for(timeout=120_000)
        assert widget.get_attribute("data-lm-suppress-shortcuts") == "true"
        legend = widget.locator(".pl-legend").inner_text()
        assert "A = left is better" in legend and "U = undo" in legend

        widget.locator("button[data-action=A]").click()  # by click
        widget.locator(".pl-pos", has_text="Pair 2 of 4").wait_for(timeout=30_000)
        page.keyboard.press("b")  # by key (the click left the focus on the labeler)
        widget.locator(".pl-pos", has_text="Pair 3 of 4").wait_for(timeout=30_000)
        page.keyboard.press("t")
        widget.locator(".pl-pos", has_text="Pair 4 of 4").wait_for(timeout=30_000)
        page.keyboard.press("u")  # undo the tie: back to pair 3
        widget.locator(".pl-pos", has_text="Pair 3 of 4").wait_for(timeout=30_000)
        page.keyboard.press("s")
        widget.locator(".pl-pos", has_text="Pair 4 of 4").wait_for(timeout=30_000)
        # In command mode JupyterLab's own A and B insert cells: none may have fired.
        assert page.locator(".jp-Notebook .jp-Cell").count() == 1

        events = [json.loads(x) for x in Path(folder, "labels.jsonl").read_text().splitlines()[1:]]
        assert [(e["pair_id"], e["label"]) for e in events] == [("p0", "A"), ("p1", "B"), ("p2", "tie"),
                                                                 ("p2", "undo"), ("p2", "skip")]
        assert all(e["annotator"] == "me" for e in events)
        assert [e["swap"] for e in events if e["label"] != "undo"] == [labels.swapped(e["pair_id"]) for e in events
                                                                       if e["label"] != "undo"]

        page.evaluate("async () => { await window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.restart(); }")
        run_all(page)
        page.locator(".postlab-labeler .pl-status", has_text="Resuming: 3 pairs").wait_for(timeout=120_000)
        assert "Pair 4 of 4" in page.locator(".postlab-labeler").last.locator(".pl-pos").inner_text()
        browser.close()
    store = labels.LabelFile(folder / "labels.jsonl", PAIRS)
    assert store.next_unlabeled("me") == 3 and len(store.labels("me")["me"]) == 3
