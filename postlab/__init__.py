"""postlab: a Jupyter-first lab kit for LLM post-training. The notebooks in labs/ tell the story; this
package holds the logic they call, one module per idea."""
from .files import DataError, load_demonstrations, load_pairs
from .problems import heldout, train_tasks
from .evals import evaluate
from .models import ModelNotFoundError, choose_backend, generate, load_model
from .runner import start_lab

__version__ = "0.1.0"
