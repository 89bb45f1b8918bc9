import pytest

import postlab


@pytest.fixture(scope="session")
def base():
    """The embedded default model and tokenizer, loaded once for the whole test session (no adapter)."""
    return postlab.load_model("default", verbose=False)
