"""The tasks compute their losses themselves: MusicGen's per-codebook cross-entropy, logged term by term."""

import pytest
import torch

from vitmusic.generators.musicgen.model import load_generator
from vitmusic.generators.musicgen.presets import materialize_tiny_generator
from vitmusic.training.loop import split_loss
from vitmusic.training.tasks.musicgen import codebook_cross_entropy

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("preset", ["tiny-musicgen", "tiny-musicgen-melody"])
def test_codebook_cross_entropy_is_transformers_loss(preset, tmp_path):
    """The task's loss (mean of the per-codebook CE) equals the loss transformers computes from labels."""
    gen = load_generator(materialize_tiny_generator(preset, root=tmp_path))
    torch.manual_seed(0)
    cond, mask = torch.randn(2, 5, gen.cond_dim), torch.ones(2, 5, dtype=torch.long)
    codes = torch.randint(0, 64, (2, gen.num_codebooks, 7))
    logits, labels = gen.teacher_forced(cond, mask, codes)
    K = gen.num_codebooks
    assert logits.shape[:3] == (2, K, 7 + K - 1) and labels.shape == (2, 7 + K - 1, K)
    assert (labels == -100).sum() == 2 * K * (K - 1)  # the delay pattern's padding is not predicted
    ce = codebook_cross_entropy(logits, labels)
    assert ce.shape == (K,) and torch.isfinite(ce).all()
    # transformers' own loss, labels through the decoder (what the generator returned before)
    hidden, hmask = gen.condition(cond, mask)
    delayed = gen.delayed_labels(codes)
    pad = torch.full((2, 1, K), gen.pad_token_id, dtype=torch.long)
    inputs = torch.cat([pad, delayed[:, :-1]], 1).transpose(1, 2).reshape(2 * K, -1)
    out = gen.model.decoder(input_ids=inputs, labels=delayed, use_cache=False, **gen._decoder_cond(hidden, hmask))
    torch.testing.assert_close(ce.mean(), out.loss, rtol=1e-5, atol=1e-6)
    # a codebook predicted better lowers only its own term
    better = logits.clone()
    better[:, 1].scatter_(-1, labels[..., 1].clamp(min=0).unsqueeze(-1), 50.0)
    ce2 = codebook_cross_entropy(better, labels)
    assert ce2[1] < 0.01 and torch.allclose(ce2[[0, 2, 3]], ce[[0, 2, 3]])


def test_split_loss():
    loss = torch.tensor(2.0)
    assert split_loss(loss) == (loss, {})
    total, terms = split_loss({"loss": loss, "ce_codebook_0": torch.tensor(1.0)})
    assert total is loss and set(terms) == {"ce_codebook_0"}
    with pytest.raises(TypeError, match="'loss'"):
        split_loss({"ce": loss})
