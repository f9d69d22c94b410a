"""What the project adds over plain transformers, on a real-size (random-init) MusicGen-small: time ratios.

1. Generation: the project's ``MusicGenGenerator.generate`` + ``decode`` (conditioning, explicit-cache guided
   ``decoder.generate``, delay pattern, Encodec) vs transformers' own ``MusicgenForConditionalGeneration.generate``
   with ``inputs_embeds`` and ``guidance_scale`` (its guided path: T5 encoder, decoder, Encodec), same
   conditioning, audio length, guidance, top-k sampling. Like for like, the project side uses the
   ``inputs_embeds`` entry (the tokens pass through the same T5 encoder); the default ``encoder_outputs`` entry
   skips T5 and is timed once for information. Both sides use the KV cache (one position per decoder forward;
   the forwards are counted and printed with the time per forward).
   transformers 5.24's composite ``generate`` runs its prefill forward twice (``MusicgenForConditionalGeneration
   .generate`` calls ``_prefill`` and passes the result on as ``prefill_outputs``, which the generic ``_sample``
   never reads: it prefills again), so its side does one decoder forward more than the project's.
2. Training: one project step as the accelerate loop runs it (MLP projection -> ``MusicGenGenerator.loss`` ->
   backward -> clip -> AdamW step) vs a bare step of the same modules on the same batch (projection ->
   ``model(encoder_outputs=..., labels=..., use_cache=False)`` -> backward -> the same clip + AdamW step: a
   training step without its optimizer step is not a training step; the delayed labels are built once, outside
   the bare timing).

    python scripts/benchmarks/bench_overhead.py --work /tmp/overhead [--seconds 2] [--guidance 3] [--batch 2]
        [--threads 1]

Prints both times and the ratio (goal <= 1.1x): medians of ``--repeats`` runs after one warm-up, the two sides
interleaved (A B A B ...) so that a change in the machine's load hits both alike. On a machine that other
CPU-bound jobs share, torch's default (one thread per core) makes every matrix product wait for a thread the
scheduler has parked: measured here, a decoder forward took 0.4-3 s with 2 threads against 0.22 s with 1 thread
under the same load (0.12 s with 2 threads on an idle machine). That was torch's busy-waiting threads: the script
now applies the CLI's thread policy (``vitmusic.threads``: idle threads asleep), and ``--threads 1`` remains
available; the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _interleaved(fns: dict[str, Callable[[], object]], repeats: int, warm_up: bool = True) -> dict[str, list[float]]:
    """Wall times of each function, ``repeats`` times, the functions alternating; one warm-up each first."""
    for fn in fns.values() if warm_up else ():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def _load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


class _ForwardCounter:
    """Counts the forwards of a module (here: decoder steps of one generate call)."""

    def __init__(self, module) -> None:
        self.n = 0
        module.register_forward_pre_hook(self._hook)

    def _hook(self, module, args) -> None:
        self.n += 1

    def count(self, fn: Callable[[], object]) -> tuple[int, object]:
        self.n = 0
        out = fn()
        return self.n, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="/tmp/vitmusic_overhead")
    ap.add_argument("--seconds", type=float, default=2.0, help="generated audio length")
    ap.add_argument("--train-seconds", type=float, default=5.0, help="audio length of a training clip")
    ap.add_argument("--guidance", type=float, default=3.0)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=20, help="conditioning tokens (5 s at 4 Hz)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0,
                    help="torch threads (0: the CLI's policy, one per available CPU with idle threads asleep)")
    ap.add_argument("--skip", choices=("generation", "training"), help="leave one of the two comparisons out")
    args = ap.parse_args(argv)

    from vitmusic.threads import apply_thread_policy

    apply_thread_policy(args.threads)  # as the CLI does, before torch loads OpenMP
    import torch
    from bench_real_size import build_musicgen
    from transformers.modeling_outputs import BaseModelOutput

    from vitmusic.generators.musicgen.model import MusicGenGenerator, load_generator
    from vitmusic.projection import build_projection

    print(f"torch threads {torch.get_num_threads()}, {os.cpu_count()} cores, {_load()}", flush=True)
    gen = load_generator(str(build_musicgen(Path(args.work) / "musicgen-small")))
    model = gen.model
    B, S, D = args.batch, args.tokens, 768  # VideoMAE-base width
    torch.manual_seed(0)
    proj = build_projection("mlp", D, gen.cond_dim, hidden_dim=1024, num_layers=2, dropout=0.0)
    embeds, mask = torch.randn(B, S, D), torch.ones(B, S, dtype=torch.bool)

    # ---------------------------------------------------------------- generation
    if args.skip != "generation":
        frames = gen.num_frames(args.seconds)
        K = gen.num_codebooks
        with torch.no_grad():
            cond, cond_mask = proj(embeds, mask)
        # the same frozen model behind the entry transformers' inputs_embeds path takes (through T5)
        gen_t5 = MusicGenGenerator(model, name=gen.name, kind=gen.kind, entry="inputs_embeds")

        def project_generate(g=gen_t5):
            codes = g.generate(cond, cond_mask, num_frames=frames, guidance_scale=args.guidance, seed=0, top_k=250)
            return g.decode(codes)

        def plain_generate():
            torch.manual_seed(0)
            with torch.no_grad():
                return model.generate(inputs_embeds=cond, attention_mask=cond_mask.long(),
                                      guidance_scale=args.guidance, max_new_tokens=frames + K - 1, do_sample=True,
                                      top_k=250)

        counter = _ForwardCounter(model.decoder)
        (steps_project, wav_project), (steps_plain, wav_plain) = (counter.count(project_generate),
                                                                  counter.count(plain_generate))  # the warm-up
        n_project, n_plain = wav_project.shape[-1], wav_plain.shape[-1]
        print(f"generation: {args.seconds} s of audio ({frames} frames) at guidance {args.guidance}, batch {B}: "
              f"samples project {n_project}, transformers {n_plain}; decoder forwards project {steps_project}, "
              f"transformers {steps_plain}", flush=True)
        times = _interleaved({"plain": plain_generate, "project": project_generate}, args.repeats, warm_up=False)
        t_plain, t_project = statistics.median(times["plain"]), statistics.median(times["project"])
        t0 = time.perf_counter()
        project_generate(gen)
        t_default = time.perf_counter() - t0
        print(f"  transformers generate {t_plain:.2f} s ({t_plain / steps_plain:.3f} s per decoder forward), "
              f"project {t_project:.2f} s ({t_project / steps_project:.3f} s per forward), "
              f"ratio {t_project / t_plain:.3f}x", flush=True)
        print(f"  all runs: transformers {[round(t, 2) for t in times['plain']]}, project "
              f"{[round(t, 2) for t in times['project']]}; the project's default entry (encoder_outputs, no T5): "
              f"{t_default:.2f} s once; {_load()}", flush=True)

    # ---------------------------------------------------------------- training step
    if args.skip != "training":
        K = gen.num_codebooks
        T = gen.num_frames(args.train_seconds)
        codes = torch.randint(0, 2048, (B, K, T))
        optimizer = torch.optim.AdamW(proj.parameters(), lr=1e-4)
        proj.train()

        from vitmusic.training.tasks.musicgen import codebook_cross_entropy

        def optimizer_step():
            torch.nn.utils.clip_grad_norm_(proj.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        def project_step():
            tokens, tmask = proj(embeds, mask)
            loss = codebook_cross_entropy(*gen.teacher_forced(tokens, tmask, codes)).mean()  # the task's loss
            loss.backward()
            optimizer_step()
            return loss

        labels = gen.delayed_labels(codes)  # [B, T + K - 1, K], built once (milliseconds)

        def bare_step():
            tokens, tmask = proj(embeds, mask)
            out = model(encoder_outputs=BaseModelOutput(last_hidden_state=tokens), attention_mask=tmask.long(),
                        labels=labels, use_cache=False)
            out.loss.backward()
            optimizer_step()
            return out.loss

        print(f"training step: batch {B}, {args.train_seconds} s clips ({T} frames), {S} conditioning tokens",
              flush=True)
        times = _interleaved({"bare": bare_step, "project": project_step}, args.repeats)
        t_bare, t_step = statistics.median(times["bare"]), statistics.median(times["project"])
        print(f"  bare forward + backward + optimizer step {t_bare:.2f} s, project step {t_step:.2f} s, "
              f"ratio {t_step / t_bare:.3f}x", flush=True)
        print(f"  all runs: bare {[round(t, 2) for t in times['bare']]}, project "
              f"{[round(t, 2) for t in times['project']]}; {_load()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
