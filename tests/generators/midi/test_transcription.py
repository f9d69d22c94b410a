"""Transcription head: shapes and masks, roll targets, decoding, loss, a tiny training run, per-part slots."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vitmusic.generators.midi.transcription import (
    HeadConfig,
    TranscriptionHead,
    decode_notes,
    decode_parts,
    instrument_index,
    load_head,
    midi_to_hz,
    notes_to_roll,
    transcription_loss,
)
from vitmusic.metrics import notes as notes_metrics

torch.set_num_threads(1)


def _head(in_dim: int = 8, **kw) -> TranscriptionHead:
    torch.manual_seed(0)
    return TranscriptionHead(HeadConfig(in_dim=in_dim, hidden_dim=16, num_layers=2, dropout=0.0, **kw))


def test_head_shapes_and_padding_does_not_leak():
    head = _head().eval()
    embeds = torch.randn(2, 3, 10, 8)
    mask = torch.ones(2, 3, 10, dtype=torch.bool)
    mask[1, 2] = False  # a padded part
    mask[0, :, 7:] = False  # padded steps
    instruments = torch.tensor([[instrument_index("vn"), instrument_index("vc"), instrument_index(None)]] * 2)
    out = head(embeds, mask, instruments)
    assert set(out) == {"onset", "frame", "offset", "velocity"}
    assert all(v.shape == (2, 3, 10, 88) for v in out.values())
    changed = embeds.clone()
    changed[0, :, 7:] = 100.0  # whatever sits in the padding
    out2 = head(changed, mask, instruments)
    for k in out:
        torch.testing.assert_close(out[k][0, :, :7], out2[k][0, :, :7])
    with pytest.raises(ValueError, match=r"\[B, P, T, 8\]"):
        head(torch.randn(2, 10, 8), mask, instruments)


def test_padded_parts_are_skipped_without_changing_the_real_ones():
    """Parts with no valid step are left out of the stack: the real parts get the values they get alone (as
    in a batch without padding), the padded ones logits of 0, and the gradients match too."""
    head = _head()
    torch.manual_seed(1)
    embeds = torch.randn(2, 3, 10, 8)
    mask = torch.ones(2, 3, 10, dtype=torch.bool)
    mask[1, 1:] = False  # piece 2 has one performer, padded to the batch's three
    instruments = torch.tensor([[instrument_index("vn"), instrument_index("vc"), instrument_index("va")]] * 2)
    head.eval()
    out = head(embeds, mask, instruments)
    alone = head(embeds[1:, :1], mask[1:, :1], instruments[1:, :1])
    full = head(embeds[:1], mask[:1], instruments[:1])
    for k in out:
        torch.testing.assert_close(out[k][1, :1], alone[k][0], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(out[k][:1], full[k], rtol=1e-5, atol=1e-6)
        assert torch.count_nonzero(out[k][1, 1:]) == 0
    targets = (torch.rand(2, 3, 4, 10, 88) < 0.1).float()

    def grads(e, m, i, t):
        head.zero_grad()
        transcription_loss(head(e, m, i), t, m)["total"].backward()
        return [p.grad.clone() for p in head.parameters()]

    # the loss over the padded batch equals the same loss over the real parts only (the same valid steps)
    g_batch = grads(embeds, mask, instruments, targets)
    real = torch.cat([embeds[0], embeds[1, :1]])[None], torch.cat([mask[0], mask[1, :1]])[None]
    g_real = grads(real[0], real[1], torch.cat([instruments[0], instruments[1, :1]])[None],
                   torch.cat([targets[0], targets[1, :1]])[None])
    for a, b in zip(g_batch, g_real):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_instrument_embedding_matters():
    head = _head().eval()
    e, m = torch.randn(1, 1, 6, 8), torch.ones(1, 1, 6, dtype=torch.bool)
    a = head(e, m, torch.tensor([[instrument_index("vn")]]))["frame"]
    b = head(e, m, torch.tensor([[instrument_index("tba")]]))["frame"]
    assert not torch.allclose(a, b)
    assert instrument_index("nope") == instrument_index(None) == len(set(range(13)))


def test_roll_targets_hand_made():
    a4, c4 = 440.0, float(midi_to_hz(60))
    notes = np.array([[0.1, a4, 0.3], [0.5, a4, 0.2], [0.2, c4, 0.1], [0.0, 20.0, 1.0]])  # last: below MIDI 21
    roll = notes_to_roll(notes, 10, 10.0, velocities=np.array([0.5, 1.0, 0.25, 0.9]))
    k_a, k_c = 69 - 21, 60 - 21
    assert roll.onset.shape == (10, 88)
    assert np.nonzero(roll.onset[:, k_a])[0].tolist() == [1, 5]
    assert np.nonzero(roll.frame[:, k_a])[0].tolist() == [1, 2, 3, 5, 6]
    assert np.nonzero(roll.offset[:, k_a])[0].tolist() == [4, 7]
    assert np.nonzero(roll.onset[:, k_c])[0].tolist() == [2]
    assert np.nonzero(roll.frame[:, k_c])[0].tolist() == [2]
    assert np.nonzero(roll.offset[:, k_c])[0].tolist() == [3]
    assert roll.velocity[1, k_a] == 0.5 and roll.velocity[5, k_a] == 1.0 and roll.velocity[2, k_c] == 0.25
    assert roll.onset.sum() == 3  # the out-of-range note is dropped
    # a repeated note without a gap: two onsets, the first note's offset where the second starts; a note
    # that ends past the last step has no offset
    roll = notes_to_roll(np.array([[0.0, a4, 0.3], [0.3, a4, 5.0]]), 6, 10.0)
    assert np.nonzero(roll.onset[:, k_a])[0].tolist() == [0, 3]
    assert roll.frame[:, k_a].tolist() == [1.0] * 6 and np.nonzero(roll.offset)[0].tolist() == [3]
    carried = notes_to_roll(np.array([[0.0, a4, 0.3], [0.3, a4, 5.0]]), 6, 10.0, carried_over=True)
    assert np.nonzero(carried.onset[:, k_a])[0].tolist() == [3] and np.array_equal(carried.frame, roll.frame)


def test_decoding_a_perfect_roll_gives_the_notes_back():
    rng = np.random.default_rng(0)
    rate = 30.0
    notes, t = [], 0.1
    for _ in range(25):  # a monophonic line with repeated notes, rests and legato
        dur = float(rng.uniform(0.1, 0.6))
        notes.append([t, float(midi_to_hz(rng.integers(50, 80))), dur])
        t += dur + float(rng.choice([0.0, 0.0, 0.15]))
    notes = np.array(notes)
    notes[5, 1] = notes[4, 1]  # a repeated pitch with no gap
    roll = notes_to_roll(notes, int(np.ceil(t * rate)) + 5, rate)
    est, vel = decode_notes(roll.onset, roll.frame, roll.offset, rate_hz=rate)
    assert len(est) == len(notes) and np.all(vel == 0.8)
    scores = notes_metrics.evaluate(notes, est)
    assert scores["notes.f1"] == 1.0 and scores["notes.f1_no_offset"] == 1.0
    assert np.max(np.abs(est[:, 0] - notes[:, 0])) <= 0.5 / rate + 1e-9
    # time offset and per-part decoding agree with decode_notes
    parts = decode_parts({k: v[None] for k, v in zip(("onset", "frame", "offset"), roll.stack()[:3])},
                         np.ones((1, roll.onset.shape[0]), bool), rate_hz=rate, min_midi=21)
    np.testing.assert_allclose(parts[0][0], est)
    shifted, _ = decode_notes(roll.onset, roll.frame, rate_hz=rate, t0_s=2.0)
    np.testing.assert_allclose(shifted[:, 0], est[:, 0] + 2.0)


def test_decoding_thresholds_and_offsets():
    T, K = 12, 88
    onset, frame, offset = np.zeros((T, K)), np.zeros((T, K)), np.zeros((T, K))
    onset[2, 40], onset[3, 40] = 0.9, 0.7  # one peak (smeared onset): one note
    frame[2:9, 40] = 0.8
    offset[6, 40] = 0.9  # the offset head ends the note before the frames fade
    onset[5, 10] = 0.4  # below the onset threshold: no note
    frame[5:8, 10] = 0.9
    est, _ = decode_notes(onset, frame, offset, rate_hz=10.0, min_midi=21)
    assert est.shape == (1, 3)
    np.testing.assert_allclose(est[0], [0.15, midi_to_hz(61), 0.4])  # half a step before the onset step
    est, _ = decode_notes(onset, frame, offset, rate_hz=10.0, onset_threshold=0.3)
    assert len(est) == 2
    # frame runs without an onset peak become notes only with frame_onsets, and only when long enough
    frame[3:7, 50] = 0.9
    frame[9, 60] = 0.9
    assert len(decode_notes(onset, frame, offset, rate_hz=10.0)[0]) == 1
    est, _ = decode_notes(onset, frame, offset, rate_hz=10.0, frame_onsets=2)
    # columns 10 (frames without a strong onset), 40 (onset) and 50; column 60 sounds for one step only
    assert sorted(np.round(est[:, 1]).tolist()) == np.round(midi_to_hz([31, 61, 71])).tolist()
    np.testing.assert_allclose(est[est[:, 1] > 400][0], [0.25, midi_to_hz(71), 0.4])
    empty, vel = decode_notes(np.zeros((0, K)), np.zeros((0, K)), rate_hz=10.0)
    assert empty.shape == (0, 3) and vel.shape == (0,)


def test_loss_masks_and_round_trip(tmp_path):
    head = _head()
    embeds, mask = torch.randn(1, 2, 5, 8), torch.ones(1, 2, 5, dtype=torch.bool)
    mask[0, 1] = False
    instruments = torch.tensor([[0, 1]])
    targets = torch.zeros(1, 2, 4, 5, 88)
    with torch.no_grad():
        logits = head(embeds, mask, instruments)
    a = transcription_loss(logits, targets, mask)
    targets[0, 1] = 1.0  # targets of the masked part do not count
    b = transcription_loss(logits, targets, mask)
    assert float(a["total"]) == pytest.approx(float(b["total"]))
    assert float(a["velocity"]) == 0.0  # no velocity annotation: not trained
    head.save_pretrained(tmp_path / "h", extra={"note": "x"})
    again = load_head(tmp_path / "h")
    head.eval()
    for k, v in head(embeds, mask, instruments).items():
        torch.testing.assert_close(v, again.eval()(embeds, mask, instruments)[k])


class _ToyTask:
    """Embeddings that encode the pitch of a monophonic line (one-hot-ish): the head must learn it."""

    def __init__(self, n: int = 24, steps: int = 40) -> None:
        rng = np.random.default_rng(0)
        self.items = []
        proj = rng.normal(size=(12, 8))
        for i in range(n):
            pitches = rng.integers(0, 12, size=steps // 8).repeat(8)
            notes = np.array([[j * 0.8, midi_to_hz(60 + p), 0.8] for j, p in enumerate(pitches[::8])])
            embeds = proj[pitches] + 0.05 * rng.normal(size=(steps, 8))
            roll = notes_to_roll(notes, steps, 10.0).stack()
            self.items.append({"clip_id": str(i), "embeds": torch.tensor(embeds[None], dtype=torch.float32),
                               "mask": torch.ones(1, steps, dtype=torch.bool),
                               "instruments": torch.tensor([instrument_index("vn")]),
                               "targets": torch.tensor(roll[None])})
        self.head = _head()

    def trainable(self):
        return self.head

    def frozen(self):
        return {}

    def train_dataset(self):
        return self.items

    def val_dataset(self):
        return None

    def collate(self, items):
        from vitmusic.training.tasks.transcription import collate_parts

        return collate_parts(items)

    def loss(self, model, batch):
        return transcription_loss(model(batch["embeds"], batch["mask"], batch["instruments"]), batch["targets"],
                                  batch["mask"], onset_pos_weight=5.0)["total"]

    def to(self, device):
        return self

    def describe(self):
        return {}

    def save_pretrained(self, model, out_dir, meta):
        model.save_pretrained(out_dir, extra=meta)


def test_tiny_training_run_reduces_the_loss(tmp_path):
    import json

    from vitmusic.config import load_config
    from vitmusic.training.loop import train

    config = load_config(None, ["task=transcription", f"train.output_dir={tmp_path / 'run'}", "train.max_steps=40",
                                "train.lr=0.01", "train.warmup_steps=2", "train.batch_size=8", "train.log_every=5",
                                "train.save_every=40", "train.eval_every=40", "train.log_with=none",
                                "train.weight_decay=0.0"])
    task = _ToyTask()
    task.head.eval()
    with torch.no_grad():
        before = float(task.loss(task.head, task.collate(task.items)))
    final = train(config, task, progress=False)
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    task.head.eval()
    with torch.no_grad():
        after = float(task.loss(task.head, task.collate(task.items)))
    assert after < 0.5 * before, (before, after)
    assert history[-1]["loss"] < history[0]["loss"]
    assert load_head(final).num_pitches == 88
