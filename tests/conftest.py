"""Shared pytest fixtures."""

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def vitmusic_cache(tmp_path_factory):
    """One ``VITMUSIC_CACHE`` (tiny presets materialised once) for the whole session, never the user's
    ``~/.cache``. A test that checks the variable itself overrides it with ``monkeypatch.setenv``."""
    root = tmp_path_factory.getbasetemp() / "vitmusic-cache"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VITMUSIC_CACHE", str(root))
        yield root


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run a module's torch work on one thread: the tiny models are dominated by per-step overhead, and extra
    threads only fight over the shared cores."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
