"""The inline labeler: two answers side by side, buttons and keys, every label on disk at once.

`Labeler(store)` shows the first pair this annotator has not labeled in a `labels.LabelFile`. A (left), B
(right), T (tie), S (skip) and U (undo) work as buttons and as keys. The widget's element carries
`data-lm-suppress-shortcuts="true"` and stops the key events it handles, so JupyterLab's own single-key
commands (A and B insert cells, D D deletes one) do not fire while you label. Which answer sits on the
left is random per pair and is written with the label.
"""
import anywidget
import traitlets

from .labels import LabelFile, swapped

KEYS = {"a": "A", "b": "B", "t": "tie", "s": "skip", "u": "undo"}

ESM = r"""
function render({ model, el }) {
  el.classList.add("postlab-labeler");
  el.setAttribute("data-lm-suppress-shortcuts", "true");
  el.tabIndex = 0;
  el.innerHTML = `
    <div class="pl-head"><span class="pl-pos"></span><progress class="pl-bar"></progress><span class="pl-count"></span></div>
    <div class="pl-prompt"></div>
    <div class="pl-answers">
      <div class="pl-answer"><div class="pl-tag">A</div><div class="pl-text pl-left"></div></div>
      <div class="pl-answer"><div class="pl-tag">B</div><div class="pl-text pl-right"></div></div>
    </div>
    <div class="pl-buttons">
      <button data-action="A">A is better</button><button data-action="B">B is better</button>
      <button data-action="tie">Tie</button><button data-action="skip">Skip</button><button data-action="undo">Undo</button>
    </div>
    <div class="pl-legend"></div>
    <div class="pl-status"></div>`;
  const $ = (s) => el.querySelector(s);
  const send = (action) => model.send({ action });
  el.querySelectorAll("button").forEach((b) => b.addEventListener("click", (e) => {
    e.stopPropagation(); send(b.dataset.action); el.focus();
  }));
  el.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const action = model.get("shortcuts")[e.key.toLowerCase()];
    if (!action) return;
    e.preventDefault();
    e.stopPropagation();
    send(action);
  });
  const update = () => {
    const total = model.get("total"), done = model.get("labeled");
    $(".pl-pos").textContent = model.get("finished") ? "All pairs labeled" : `Pair ${model.get("position") + 1} of ${total}`;
    $(".pl-bar").max = total; $(".pl-bar").value = done;
    $(".pl-count").textContent = `${done} / ${total} labeled`;
    $(".pl-prompt").textContent = model.get("prompt");
    $(".pl-left").textContent = model.get("left");
    $(".pl-right").textContent = model.get("right");
    $(".pl-status").textContent = model.get("status");
    const names = { A: "left is better", B: "right is better", tie: "tie", skip: "skip", undo: "undo" };
    $(".pl-legend").textContent = "Keys (click the labeler first): " +
      Object.entries(model.get("shortcuts")).map(([k, a]) => `${k.toUpperCase()} = ${names[a] || a}`).join(" · ");
    el.querySelectorAll("button").forEach((b) => { b.disabled = model.get("finished") && b.dataset.action !== "undo"; });
  };
  for (const name of ["prompt", "left", "right", "position", "total", "labeled", "status", "finished", "shortcuts"]) {
    model.on(`change:${name}`, update);
  }
  update();
  setTimeout(() => el.focus(), 0);
}
export default { render };
"""

CSS = """
.postlab-labeler { font-family: var(--jp-ui-font-family, sans-serif); border: 1px solid #ccc; border-radius: 6px;
  padding: 10px; outline: none; max-width: 1100px; }
.postlab-labeler:focus { border-color: #1f77b4; box-shadow: 0 0 0 2px #1f77b455; }
.postlab-labeler .pl-head { display: flex; gap: 12px; align-items: center; font-size: 13px; }
.postlab-labeler .pl-bar { flex: 1; }
.postlab-labeler .pl-prompt { font-weight: 600; margin: 10px 0; white-space: pre-wrap; }
.postlab-labeler .pl-answers { display: flex; gap: 10px; }
.postlab-labeler .pl-answer { flex: 1; border: 1px solid #ddd; border-radius: 4px; padding: 8px; }
.postlab-labeler .pl-tag { font-weight: 700; color: #1f77b4; }
.postlab-labeler .pl-text { white-space: pre-wrap; font-family: var(--jp-code-font-family, monospace); font-size: 12px; }
.postlab-labeler .pl-buttons { margin: 10px 0 4px; display: flex; gap: 6px; }
.postlab-labeler .pl-legend, .postlab-labeler .pl-status { font-size: 12px; color: #555; }
"""


class Labeler(anywidget.AnyWidget):
    """Label the pairs of a `LabelFile` as `annotator`. `act("A")` (or `press("a")`) does what a click or a
    key does in the browser, so the logic is testable without one."""

    _esm = ESM
    _css = CSS
    prompt = traitlets.Unicode("").tag(sync=True)
    left = traitlets.Unicode("").tag(sync=True)
    right = traitlets.Unicode("").tag(sync=True)
    pair_id = traitlets.Unicode("").tag(sync=True)
    position = traitlets.Int(0).tag(sync=True)
    total = traitlets.Int(0).tag(sync=True)
    labeled = traitlets.Int(0).tag(sync=True)
    finished = traitlets.Bool(False).tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)
    shortcuts = traitlets.Dict(KEYS).tag(sync=True)

    def __init__(self, store: LabelFile, annotator: str = "me", seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.store, self.annotator, self.seed = store, annotator, seed
        self.total = len(store.pairs)
        self.on_msg(lambda _widget, content, _buffers: self.act(content.get("action")))
        start = store.next_unlabeled(annotator)
        done = len(store.labels(annotator)[annotator])
        self.status = f"Resuming: {done} pairs already labeled by {annotator}." if done else \
            f"Labels are written to {store.path} as you go."
        self._show(start)

    def _show(self, index):
        self.labeled = len(self.store.labels(self.annotator)[self.annotator])
        if index is None:
            self.finished, self.pair_id, self.prompt, self.left, self.right = True, "", "", "", ""
            self.position = self.total
            return
        pair = self.store.pairs[index]
        self.finished, self.position, self.pair_id = False, index, pair["id"]
        first, second = pair["answers"]
        self.swap = swapped(pair["id"], self.seed)
        self.prompt = pair["prompt"]
        self.left, self.right = (second, first) if self.swap else (first, second)

    def act(self, action: str):
        """What a button or key does: 'A', 'B', 'tie', 'skip' label the pair shown; 'undo' takes back the last."""
        if action == "undo":
            pid = self.store.undo(self.annotator)
            self.status = f"Undid the label of {pid}." if pid else "Nothing to undo."
            if pid:
                self._show(self.store.index[pid])
            return
        if self.finished or action not in KEYS.values():
            return
        self.store.add(self.pair_id, action, self.annotator, self.swap)
        self.status = f"{self.pair_id}: {action} saved."
        self._show(self.store.next_unlabeled(self.annotator))
        if self.finished:
            self.status = f"All {self.total} pairs labeled. Run the next cell."

    def press(self, key: str):
        """A key press, as the browser sends it (unknown keys do nothing)."""
        action = self.shortcuts.get(key.lower())
        if action:
            self.act(action)
