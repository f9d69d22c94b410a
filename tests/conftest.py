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


@pytest.fixture
def no_plugins_env(monkeypatch):
    """``VITMUSIC_PLUGINS`` unset during the test and restored after it, even when a command of the test sets it
    (``--plugin`` does, for the processes a command starts; a bare ``delenv`` of an absent variable is not undone)."""
    from vitmusic import plugins

    monkeypatch.setenv(plugins.ENV_VAR, "")
    monkeypatch.delenv(plugins.ENV_VAR)
