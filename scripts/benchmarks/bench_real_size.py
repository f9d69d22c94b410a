"""Real model sizes through the CLI: extract -> train 2 steps -> generate -> evaluate, time and peak memory per stage.

Random-init models with the published architectures (no hub here), saved with ``save_pretrained`` to a folder
and loaded back through the same ``from_pretrained`` path as the real checkpoints:

- encoders: ``MCG-NJU/videomae-base`` (VideoMAE-base, 16 frames, tubelet 2), ``google/vit-base-patch16-224-in21k``
  (ViT-B/16), ``openai/clip-vit-base-patch32`` (CLIP ViT-B/32 vision tower + 512-d projection);
- generators: ``facebook/musicgen-small`` (T5-base text encoder, 32 kHz Encodec, 24 x 1024 decoder: 587 M
  parameters) and ``facebook/musicgen-melody`` (48 x 1536 decoder, 1.5 B; ``--melody``; heavy on a CPU).

    python scripts/benchmarks/bench_real_size.py --work /tmp/real_size                     # VideoMAE-base + small
    python scripts/benchmarks/bench_real_size.py --encoders videomae-base vit-base clip-vit-base [--melody]

Prints seconds and peak resident memory (GB, sampled every 50 ms) of every stage, and the load average. The
CLI's thread policy applies (``vitmusic.threads``: one thread per available CPU, idle threads asleep); with
torch's own default (busy-waiting threads) guided generation ran more than 10 times slower on a machine other
CPU-bound jobs share (``bench_under_load.py`` compares the two). The CI smoke test
(tests/test_real_size.py) imports the builders from here and runs one encoder with MusicGen-small.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENCODERS = ("videomae-base", "vit-base", "clip-vit-base")


def build_encoder(name: str, folder: Path) -> Path:
    """A random-init encoder with the published config of ``name`` + its Pil processor, saved to ``folder``."""
    import torch
    import transformers as tf

    if (folder / "config.json").is_file():
        return folder
    torch.manual_seed(0)
    if name == "videomae-base":
        model = tf.VideoMAEModel(tf.VideoMAEConfig(use_mean_pooling=False))  # the defaults are videomae-base
        proc = tf.VideoMAEImageProcessorPil(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224})
    elif name == "vit-base":
        model = tf.ViTModel(tf.ViTConfig(), add_pooling_layer=False)  # ViT-B/16 at 224
        proc = tf.ViTImageProcessorPil(size={"height": 224, "width": 224}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    elif name == "clip-vit-base":
        config = tf.CLIPVisionConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                     num_attention_heads=12, image_size=224, patch_size=32, projection_dim=512)
        model = tf.CLIPVisionModelWithProjection(config)
        proc = tf.CLIPImageProcessorPil(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224})
    else:
        raise ValueError(f"unknown encoder {name!r}; known: {ENCODERS}")
    model.save_pretrained(folder)
    proc.save_pretrained(folder)
    return folder


def build_musicgen(folder: Path, melody: bool = False) -> Path:
    """A random-init MusicGen-small (or -melody) with the published configs, saved to ``folder``.

    Random-init Encodec codebooks are zeros (every code would be 0): they are drawn from N(0, 1).
    """
    import torch
    import transformers as tf

    from vitmusic.generators.musicgen.presets import _tiny_tokenizer

    if (folder / "config.json").is_file():
        return folder
    torch.manual_seed(0)
    text = tf.T5Config(vocab_size=32128, d_model=768, d_kv=64, d_ff=3072, num_layers=12, num_heads=12)  # t5-base
    audio = tf.EncodecConfig(sampling_rate=32000, audio_channels=1, normalize=False, chunk_length_s=None,
                             overlap=None, hidden_size=128, num_filters=64, num_residual_layers=1,
                             upsampling_ratios=[8, 5, 4, 4], num_lstm_layers=2, codebook_size=2048,
                             codebook_dim=128, use_causal_conv=False, target_bandwidths=[2.2])  # encodec_32khz
    width, layers, heads = (1536, 48, 24) if melody else (1024, 24, 16)
    dec = dict(vocab_size=2048, max_position_embeddings=2048, num_hidden_layers=layers, ffn_dim=4 * width,
               num_attention_heads=heads, hidden_size=width, num_codebooks=4, pad_token_id=2048,
               bos_token_id=2048, decoder_start_token_id=2048)
    if melody:
        config = tf.MusicgenMelodyConfig(text_encoder=text, audio_encoder=audio,
                                         decoder=tf.MusicgenMelodyDecoderConfig(**dec), num_chroma=12,
                                         chroma_length=235)
        model = tf.MusicgenMelodyForConditionalGeneration(config)
    else:
        config = tf.MusicgenConfig(text_encoder=text, audio_encoder=audio, decoder=tf.MusicgenDecoderConfig(**dec))
        model = tf.MusicgenForConditionalGeneration(config)
    for g in (model.generation_config, model.decoder.generation_config):
        g.pad_token_id = g.bos_token_id = g.decoder_start_token_id = 2048
        g.do_sample, g.top_k, g.guidance_scale = True, 250, None
    with torch.no_grad():
        for layer in model.audio_encoder.quantizer.layers:
            layer.codebook.embed.normal_()
    model.save_pretrained(folder)
    _tiny_tokenizer().save_pretrained(folder)  # a stand-in for the T5 tokenizer (video conditioning needs none)
    return folder


def prepare_data(root: Path, pieces: int = 4, duration_s: float = 4.0, clip_s: float = 2.0) -> Path:
    """A small synthetic benchmark (2 train pieces, 1 val, 1 test per 4), cut into ``clip_s`` clips."""
    from vitmusic.data.manifest import prepare_manifest
    from vitmusic.data.synth import generate_benchmark

    out = root / "prepared"
    if (out / "manifest.jsonl").is_file():
        return out
    folders = generate_benchmark(root / "urmp", pieces, seed=3, duration_s=duration_s, source="melodies",
                                 progress=False, plot=False, width_per_player=96, height=128)
    splits = (["train", "train", "val", "test"] * pieces)[:pieces]
    split = root / "split.csv"
    split.write_text("piece,split\n" + "".join(f"{f.name},{s}\n" for f, s in zip(folders, splits)))
    prepare_manifest(root / "urmp", out, clip_s, split_file=split, plot=False, progress=False)
    return out


class PeakRSS:
    """Peak resident memory (bytes) of this process and its children while the block runs (50 ms samples)."""

    def __init__(self) -> None:
        import psutil

        self.proc, self.peak, self._stop = psutil.Process(), 0, threading.Event()

    def _sample(self) -> None:
        while not self._stop.is_set():
            rss = self.proc.memory_info().rss
            with contextlib.suppress(Exception):
                rss += sum(c.memory_info().rss for c in self.proc.children(recursive=True))
            self.peak = max(self.peak, rss)
            self._stop.wait(0.05)

    def __enter__(self) -> PeakRSS:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def run_stages(work: Path, encoder_dir: Path, generator_dir: Path, manifest: Path, *, guidance: float = 3.0,
               batch_size: int = 2, kind: str = "musicgen") -> dict[str, dict[str, float]]:
    """extract -> train (2 steps) -> generate (test split) -> evaluate through ``vitmusic.cli.main``.

    Returns:
        ``{stage: {"seconds": s, "peak_rss_gb": g}}``; raises if a stage exits non-zero.
    """
    from vitmusic.cli import main as cli

    run, gen = work / "run", work / "generated"
    common = ["--config", str(ROOT / "configs" / "videomae-musicgen-small.yaml"), f"data.manifest={manifest}",
              f"encoder.name={encoder_dir}", "encoder.kind=null", f"generator.name={generator_dir}",
              f"generator.kind={kind}", f"extract.cache_dir={work / 'cache'}", "extract.batch_size=2",
              f"train.output_dir={run}", f"train.batch_size={batch_size}", "train.max_steps=2",
              "train.warmup_steps=0", "train.save_every=2", "train.eval_every=2", "train.log_every=1",
              "train.log_with=none", "train.mixed_precision='no'"]
    stages = {
        "extract": ["extract", *common, "--no-progress"],
        "train": ["train", *common, "--no-progress"],
        "generate": ["generate", "--manifest", str(manifest), "--split", "test", "--checkpoint", str(run),
                     "--out-dir", str(gen), "--guidance", str(guidance), "--no-progress"],
        "evaluate": ["evaluate", "--gen", str(gen), "--manifest", str(manifest), "--out", str(work / "eval"),
                     "--metrics", "chroma,tempo", "--n-boot", "50", "--plot-clips", "0", "--quiet"],
    }
    out = {}
    for name, argv in stages.items():
        t0 = time.perf_counter()
        with PeakRSS() as mem:
            rc = cli(argv)
        out[name] = {"seconds": time.perf_counter() - t0, "peak_rss_gb": mem.peak / 2**30}
        if rc != 0:
            raise RuntimeError(f"vitmusic {name} exited {rc}")
        print(f"  {name:9s} {out[name]['seconds']:7.1f} s   peak RSS {out[name]['peak_rss_gb']:5.2f} GB   "
              f"(load average {os.getloadavg()[0]:.2f})", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="/tmp/vitmusic_real_size")
    ap.add_argument("--encoders", nargs="+", default=["videomae-base"], choices=ENCODERS)
    ap.add_argument("--melody", action="store_true", help="also MusicGen-melody (1.5 B parameters)")
    ap.add_argument("--guidance", type=float, default=3.0)
    ap.add_argument("--threads", type=int, default=0,
                    help="torch threads (0: the CLI's policy, one per available CPU with idle threads asleep)")
    args = ap.parse_args(argv)

    from vitmusic.threads import apply_thread_policy

    apply_thread_policy(args.threads)  # as the CLI does, before torch loads OpenMP
    import torch

    print(f"torch threads {torch.get_num_threads()}, {os.cpu_count()} cores, load average "
          + ", ".join(f"{x:.2f}" for x in os.getloadavg()), flush=True)
    work = Path(args.work)
    os.environ.setdefault("VITMUSIC_CACHE", str(work / "vitmusic-cache"))
    manifest = prepare_data(work)
    generators = [("musicgen-small", "musicgen", False)] + ([("musicgen-melody", "musicgen-melody", True)]
                                                            if args.melody else [])
    results = {}
    for gname, kind, melody in generators:
        t0 = time.perf_counter()
        gdir = build_musicgen(work / "models" / gname, melody=melody)
        print(f"{gname}: built and saved in {time.perf_counter() - t0:.0f} s", flush=True)
        for ename in args.encoders:
            edir = build_encoder(ename, work / "models" / ename)
            print(f"{ename} + {gname} (guidance {args.guidance}):", flush=True)
            results[f"{ename}+{gname}"] = run_stages(work / f"{ename}+{gname}", edir, gdir, manifest,
                                                     guidance=args.guidance, kind=kind)
    (work / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
