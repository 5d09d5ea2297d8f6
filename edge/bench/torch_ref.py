"""PyTorch eager fp32 reference for ``edge bench``; runs as a child process and prints one JSON line.

``python -m edge.bench.torch_ref CHECKPOINT BUNDLE THREADS REPEATS``

Inputs are the bundle engine's own prepared prompts (same ids, pixels and audio features), so
the reference times the model alone: its preprocessing is not counted, which favours PyTorch.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any


def main(argv: list[str]) -> int:
    checkpoint, bundle, threads, repeats = Path(argv[0]), Path(argv[1]), int(argv[2]), int(argv[3])
    import torch
    from transformers import AutoModelForImageTextToText

    from edge.bench.run import AUDIO_SECONDS, FRAME_SIZE, NEW_TOKENS, PREFILL_TOKENS, QUESTION, text_prompt
    from edge.build.parity import torch_inputs
    from edge.runtime.engine import Engine
    from edge.samples import jpeg_bytes, machine_audio, part_image, wav_bytes

    torch.set_num_threads(threads)
    engine = Engine.load(bundle, threads=1, verify=False)
    t0 = time.perf_counter()
    model = AutoModelForImageTextToText.from_pretrained(checkpoint, dtype=torch.float32).eval()
    out: dict[str, Any] = {"load_s": time.perf_counter() - t0, "threads": threads, "torch": torch.__version__}

    def timed(kw: dict[str, Any], new: int) -> float:
        with torch.no_grad():
            t = time.perf_counter()
            model.generate(**kw, max_new_tokens=new, min_new_tokens=new, do_sample=False)
            return time.perf_counter() - t

    def median(fn: Any) -> float:
        fn()  # warm-up
        return statistics.median(fn() for _ in range(repeats))

    jpeg = jpeg_bytes(part_image(*FRAME_SIZE, seed=3))
    image_kw = torch_inputs(engine.prepare(QUESTION, images=[jpeg]))
    out["image_ttft_s"] = median(lambda: timed(image_kw, 1))
    if engine.spec.audio is not None:
        both = engine.prepare(QUESTION, images=[jpeg], audio=[wav_bytes(machine_audio(AUDIO_SECONDS))])
        both_kw = torch_inputs(both)
        out["image_audio_ttft_s"] = median(lambda: timed(both_kw, 1))
    prefill_kw = torch_inputs(text_prompt(engine, PREFILL_TOKENS))
    out["prefill_tok_s"] = PREFILL_TOKENS / median(lambda: timed(prefill_kw, 1))
    short_kw = torch_inputs(text_prompt(engine, 16))

    def decode() -> float:
        return (NEW_TOKENS - 1) / (timed(short_kw, NEW_TOKENS) - timed(short_kw, 1))

    out["decode_tok_s"] = median(decode)
    out["decode_context"] = 16 + NEW_TOKENS
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
