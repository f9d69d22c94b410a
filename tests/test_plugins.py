"""Model kinds by name: the registry, plug-in loading (module, .py file, environment) and config validation."""

import sys

import pytest

from vitmusic import plugins
from vitmusic.config import load_config
from vitmusic.errors import ConfigError
from vitmusic.workflow.kinds import ModelKind, System, get_kind

PLUGIN = '''
from vitmusic.plugins import register_kind
from vitmusic.workflow.kinds import ModelKind, pipeline_systems

KIND = register_kind(ModelKind(name="dummy", description="d", build_task=lambda config, progress=True: None,
                               systems=pipeline_systems()))
'''


@pytest.fixture
def registry(monkeypatch, no_plugins_env):
    """The test's plug-ins and VITMUSIC_PLUGINS do not outlive it."""
    monkeypatch.setattr(plugins, "_KINDS", dict(plugins._KINDS))
    monkeypatch.setattr(plugins, "_LOADED", dict(plugins._LOADED))
    monkeypatch.setattr(plugins, "_SCANNED", [True])
    yield
    for name in [m for m in sys.modules if m.startswith("vitmusic_plugin_") or m == "dummy_kind"]:
        del sys.modules[name]


def test_builtin_kinds():
    assert {"musicgen", "transcription", "diffusion"} <= set(plugins.kind_names())
    for name in ("musicgen", "transcription", "diffusion"):
        kind = get_kind(name)
        assert kind.name == name and "model" in kind.systems
    assert get_kind("transcription").writes_midi and get_kind("transcription").score is not None
    assert get_kind("musicgen").system("shuffled").uses == "model"
    with pytest.raises(ConfigError, match="has no system 'nope'; its systems: model"):
        get_kind("musicgen").system("nope")


def test_unknown_kind_is_one_line(registry):
    with pytest.raises(ConfigError, match="config key 'task' must be a registered model kind.*--plugin"):
        load_config(None, ["task=dummy"])
    with pytest.raises(ConfigError, match="unknown model kind 'dummy'"):
        get_kind("dummy")


def test_plugin_from_a_file_and_from_the_environment(registry, tmp_path, monkeypatch):
    (tmp_path / "dummy_kind.py").write_text(PLUGIN)
    plugins.load_plugins([str(tmp_path / "dummy_kind.py")])
    assert load_config(None, ["task=dummy"]).task == "dummy"
    assert get_kind("dummy").system("shuffled").uses == "model"
    plugins.load_plugins([str(tmp_path / "dummy_kind.py")])  # idempotent: loaded once
    # a module name from $VITMUSIC_PLUGINS, read the first time kinds are listed
    monkeypatch.setattr(plugins, "_KINDS", dict(plugins.BUILTIN_KINDS))
    monkeypatch.setattr(plugins, "_LOADED", {})
    monkeypatch.setattr(plugins, "_SCANNED", [])
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(plugins.ENV_VAR, "dummy_kind")
    assert "dummy" in plugins.kind_names()


def test_registration_errors(registry, tmp_path):
    kind = ModelKind(name="musicgen", description="", build_task=lambda c, progress=True: None)
    with pytest.raises(ConfigError, match="already registered"):
        plugins.register_kind(kind)
    with pytest.raises(ConfigError, match="needs a name"):
        plugins.register_kind(ModelKind(name="a b", description="", build_task=lambda c, progress=True: None))
    (tmp_path / "broken.py").write_text("raise RuntimeError('boom')\n")
    with pytest.raises(ConfigError, match="plug-in .*broken.py failed on import: RuntimeError: boom"):
        plugins.load_plugins([str(tmp_path / "broken.py")])
    with pytest.raises(ConfigError, match="plug-in file does not exist"):
        plugins.load_plugins([str(tmp_path / "missing.py")])
    with pytest.raises(ValueError, match="System.uses"):
        System("x", lambda ctx: [], uses="sometimes")


def test_kind_options(registry):
    import dataclasses

    @dataclasses.dataclass
    class Opts:
        size: int = 3

    plugins.register_kind(ModelKind(name="opt", description="", build_task=lambda c, progress=True: None,
                                    options=Opts))
    assert get_kind("opt").options_of(load_config(None, ["task=opt", "kind_options.size=5"])) == Opts(5)
    with pytest.raises(ConfigError, match="unknown config key 'kind_options.sise'"):
        get_kind("opt").options_of(load_config(None, ["task=opt", "kind_options.sise=5"]))
    with pytest.raises(ConfigError, match="takes no kind_options"):
        get_kind("musicgen").options_of(load_config(None, ["kind_options.size=5"]))


def test_cli_plugin_option(registry, tmp_path, capsys):
    from vitmusic import cli

    (tmp_path / "dummy_kind.py").write_text(PLUGIN)
    # before or after the command; a missing plug-in is one line, exit 2
    assert cli.main(["--plugin", str(tmp_path / "missing.py"), "extract"]) == 2
    assert "plug-in file does not exist" in capsys.readouterr().err
    assert cli.main(["extract", "--plugin", str(tmp_path / "dummy_kind.py"), "task=dummy"]) == 2
    assert "has no cache to extract" in capsys.readouterr().err  # the kind was found, it caches nothing
