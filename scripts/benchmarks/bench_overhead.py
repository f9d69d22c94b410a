"""What the project adds over plain transformers, on a real-size (random-init) MusicGen-small: time ratios.

1. Generation: the project's ``MusicGenGenerator.generate`` + ``decode`` (conditioning, explicit-cache guided
   ``decoder.generate``, delay pattern) vs transformers' own ``MusicgenForConditionalGeneration.generate`` with
   ``inputs_embeds`` and ``guidance_scale`` (its guided path, through the T5 encoder), same conditioning
   length, audio length, guidance, top-k sampling.
2. Training: one project step (MLP projection -> ``MusicGenGenerator.loss`` -> backward -> clip -> AdamW
   step, as the accelerate loop runs it) vs a bare forward + backward of the same modules on the same batch
   (projection -> ``model(encoder_outputs=..., labels=...)`` -> backward).

    python scripts/benchmarks/bench_overhead.py --work /tmp/overhead [--seconds 2] [--guidance 3] [--batch 2]

Prints both times and the ratio (goal <= 1.1x). Medians of ``--repeats`` runs after one warm-up.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="/tmp/vitmusic_overhead")
    ap.add_argument("--seconds", type=float, default=2.0, help="generated audio length")
    ap.add_argument("--train-seconds", type=float, default=5.0, help="audio length of a training clip")
    ap.add_argument("--guidance", type=float, default=3.0)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=20, help="conditioning tokens (5 s at 4 Hz)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)

    import torch
    from bench_real_size import build_musicgen
    from transformers.modeling_outputs import BaseModelOutput

    from vitmusic.generators.musicgen.model import load_generator
    from vitmusic.projection import build_projection

    gen = load_generator(str(build_musicgen(Path(args.work) / "musicgen-small")))
    model = gen.model
    B, S, D = args.batch, args.tokens, 768  # VideoMAE-base width
    torch.manual_seed(0)
    proj = build_projection("mlp", D, gen.cond_dim, hidden_dim=1024, num_layers=2, dropout=0.0)
    embeds, mask = torch.randn(B, S, D), torch.ones(B, S, dtype=torch.bool)

    # ---------------------------------------------------------------- generation
    frames = gen.num_frames(args.seconds)
    K = gen.num_codebooks
    with torch.no_grad():
        cond, cond_mask = proj(embeds, mask)

    def project_generate():
        codes = gen.generate(cond, cond_mask, num_frames=frames, guidance_scale=args.guidance, seed=0, top_k=250)
        return gen.decode(codes)

    def plain_generate():
        torch.manual_seed(0)
        with torch.no_grad():
            return model.generate(inputs_embeds=cond, attention_mask=cond_mask.long(), guidance_scale=args.guidance,
                                  max_new_tokens=frames + K - 1, do_sample=True, top_k=250)

    n_project = project_generate().shape[-1]
    n_plain = plain_generate().shape[-1]
    print(f"generation: {args.seconds} s of audio at guidance {args.guidance}, batch {B}: samples project "
          f"{n_project}, transformers {n_plain}", flush=True)
    t_plain = _median_time(plain_generate, args.repeats)
    t_project = _median_time(project_generate, args.repeats)
    print(f"  transformers generate {t_plain:.2f} s, project {t_project:.2f} s, ratio {t_project / t_plain:.3f}x",
          flush=True)

    # ---------------------------------------------------------------- training step
    T = gen.num_frames(args.train_seconds)
    codes = torch.randint(0, 2048, (B, K, T))
    optimizer = torch.optim.AdamW(proj.parameters(), lr=1e-4)
    proj.train()

    def project_step():
        tokens, tmask = proj(embeds, mask)
        loss = gen.loss(tokens, tmask, codes)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(proj.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    labels = gen.delayed_labels(codes)  # [B, T + K - 1, K], built once (the bare side gets them for free)

    def bare_step():
        tokens, tmask = proj(embeds, mask)
        out = model(encoder_outputs=BaseModelOutput(last_hidden_state=tokens), attention_mask=tmask.long(),
                    labels=labels)
        out.loss.backward()
        proj.zero_grad(set_to_none=True)
        return out.loss

    print(f"training step: batch {B}, {args.train_seconds} s clips ({T} frames), {S} conditioning tokens",
          flush=True)
    t_bare = _median_time(bare_step, args.repeats)
    t_step = _median_time(project_step, args.repeats)
    print(f"  bare forward + backward {t_bare:.2f} s, project step {t_step:.2f} s, ratio {t_step / t_bare:.3f}x",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
