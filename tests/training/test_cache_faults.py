"""A damaged feature cache is found, reported in one line and rebuilt; a failed extraction leaves nothing
that looks finished (and nothing at all when no shard was finished)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
from test_features import RATE_HZ, Counting, env, rows  # noqa: F401 -- env is the module's fixture

from vitmusic import cli
from vitmusic.errors import DataError
from vitmusic.training.features import CHECKSUMS_NAME, DATA_DIR, extract_features, load_cache, verify_cache

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _arrow(folder: Path) -> Path:
    return next((folder / DATA_DIR).glob("*.arrow"))


def _cut_half(folder):
    p = _arrow(folder)
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _cut_tail(folder):
    p = _arrow(folder)
    p.write_bytes(p.read_bytes()[:-64])


def _overwrite(folder):
    p = _arrow(folder)
    data = bytearray(p.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 256] = b"\x7f" * 256  # the same size: only the checksum tells
    p.write_bytes(bytes(data))


DAMAGE = {
    "arrow file cut in half": _cut_half,
    "arrow file cut at its tail": _cut_tail,
    "arrow bytes overwritten": _overwrite,
    "arrow file deleted": lambda f: _arrow(f).unlink(),
    "dataset state deleted": lambda f: (f / DATA_DIR / "state.json").unlink(),
    "dataset_info.json garbage": lambda f: (f / DATA_DIR / "dataset_info.json").write_text("{garbage"),
    "fingerprint.json garbage": lambda f: (f / "fingerprint.json").write_text("nope"),
    "checksums.json garbage": lambda f: (f / CHECKSUMS_NAME).write_text("[1,"),
    "data folder deleted": lambda f: shutil.rmtree(f / DATA_DIR),
}


@pytest.fixture(scope="module")
def reference(env, tmp_path_factory):  # noqa: F811
    folder = extract_features(env["clips"], env["encoder"], env["generator"], tmp_path_factory.mktemp("ref"),
                              rate_hz=RATE_HZ, progress=False)
    return folder, rows(folder)


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_cache_is_reported_in_one_line_and_rebuilt(env, reference, tmp_path, caplog, damage):  # noqa: F811
    folder = Path(shutil.copytree(reference[0], tmp_path / reference[0].name))
    DAMAGE[damage](folder)
    assert verify_cache(folder, len(env["clips"])) is not None
    counting = Counting(env["encoder"])
    with caplog.at_level(logging.WARNING, logger="vitmusic"):
        again = extract_features(env["clips"], counting, env["generator"], tmp_path, rate_hz=RATE_HZ,
                                 progress=False)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and f"{folder} is damaged (" in warnings[0] and "rebuilding it" in warnings[0]
    assert again == folder and counting.calls > 0
    assert rows(again) == reference[1] and verify_cache(again) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder.name]  # no partial, no temporary left


def test_a_cache_without_checksums_is_read_whole_once_and_adopted(env, reference, tmp_path):  # noqa: F811
    """A cache of an older vitmusic (or one whose checksums.json was lost) is checked by reading it."""
    folder = Path(shutil.copytree(reference[0], tmp_path / reference[0].name))
    (folder / CHECKSUMS_NAME).unlink()
    counting = Counting(env["encoder"])
    assert extract_features(env["clips"], counting, env["generator"], tmp_path, rate_hz=RATE_HZ,
                            progress=False) == folder
    assert counting.calls == 0 and (folder / CHECKSUMS_NAME).is_file()
    (folder / CHECKSUMS_NAME).unlink()
    _cut_tail(folder)  # without checksums, a cut file is still found by reading it
    assert verify_cache(folder) is not None


@pytest.mark.parametrize("damage", ["dataset state deleted", "dataset_info.json garbage", "arrow file deleted"])
def test_reading_a_damaged_cache_directly_is_one_line_naming_the_fix(reference, tmp_path, damage):
    folder = Path(shutil.copytree(reference[0], tmp_path / reference[0].name))
    DAMAGE[damage](folder)
    with pytest.raises(DataError) as e:
        load_cache(folder, "train")
    assert "is damaged; rebuild it by running 'vitmusic extract'" in str(e.value) and "\n" not in str(e.value)


def test_a_damaged_shard_of_an_interrupted_run_is_encoded_again(env, reference, tmp_path):  # noqa: F811
    from vitmusic.encoders.video import read_clip_frames

    seen = []

    def interrupted(path, t0, t1, fps):
        if len(seen) == 4:
            raise KeyboardInterrupt
        seen.append(t0)
        return read_clip_frames(path, t0, t1, fps)

    kw = dict(rate_hz=RATE_HZ, shard_size=3, batch_size=3, progress=False)
    with pytest.raises(KeyboardInterrupt):
        extract_features(env["clips"], env["encoder"], env["generator"], tmp_path, read_frames=interrupted, **kw)
    partial = tmp_path / f".{reference[0].name}.partial"
    shard = partial / "shard_00000"
    arrow = next(shard.glob("*.arrow"))
    arrow.write_bytes(arrow.read_bytes()[:100])
    counting = Counting(env["encoder"])
    done = extract_features(env["clips"], counting, env["generator"], tmp_path, **kw)
    assert counting.calls == 3 and rows(done) == reference[1]  # all three shards encoded


def test_a_failure_before_any_shard_leaves_no_partial_folder(env, tmp_path):  # noqa: F811
    def broken(path, t0, t1, fps):
        raise DataError(f"{path}: cannot decode")

    with pytest.raises(DataError):
        extract_features(env["clips"], env["encoder"], env["generator"], tmp_path, rate_hz=RATE_HZ,
                         progress=False, read_frames=broken)
    assert list(tmp_path.iterdir()) == []


def test_cache_dir_naming_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    prep = tmp_path / "prep"
    prep.mkdir()
    (prep / "manifest.jsonl").write_text(json.dumps({"clip_id": "a", "piece": "a", "split": "train", "start_s": 0,
                                                     "end_s": 1, "video": str(tmp_path / "afile"), "mix": None})
                                         + "\n")
    for command in ("extract", "train"):
        assert cli.main([command, "--config", str(CONFIGS / "tiny.yaml"), f"data.manifest={prep}",
                         f"extract.cache_dir={tmp_path / 'afile'}", f"train.output_dir={tmp_path / 'run'}",
                         "--no-progress"]) == 2
        err = capsys.readouterr().err.strip()
        assert err == f"vitmusic {command}: error: extract.cache_dir {tmp_path / 'afile'}: exists and is not a folder"
