"""Parity of an exported bundle against transformers on fixed synthetic inputs.

Five cases: text, image + text, audio + text, image + audio + text, and a prompt
longer than the sliding window. For each: per-graph max abs error, first-step
logit cosine, and greedy tokens (end-of-turn banned until ``new_tokens``, in
both engines, so every case runs the full length). The station engine prepares
the inputs; the reference gets exactly the same ids, pixels and audio frames, so
this measures the graphs and the decode loop. Image preprocessing has its own
test against the processor's algorithm.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.build.fixtures.corpus import pairs
from edge.build.progress import Progress, library_bars_to_terminals
from edge.errors import ParityError

log = logging.getLogger(__name__)
CASES = ("text", "image", "audio", "image_audio", "long")


@dataclass
class CaseReport:
    case: str
    prompt_tokens: int
    tokens_equal: bool
    first_divergence: int | None
    agreement: float  # matching prefix length / new tokens
    tf_top1_agreement: float  # teacher-forced on the reference tokens: share of steps with the same argmax
    tf_mean_cosine: float  # teacher-forced: mean logit cosine over all steps
    tf_mean_kl: float  # teacher-forced: mean KL(reference || bundle) of the next-token distributions, nats
    logits_max_abs: float
    logits_cosine: float
    top1_equal: bool
    graph_max_abs: dict[str, float]
    reference_tokens: list[int]
    engine_tokens: list[int]


def synthetic_image(height: int = 240, width: int = 320) -> np.ndarray:
    """A deterministic RGB test card: gradients, a bright disc and a dark 'scratch'."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.stack([255 * x / width, 255 * y / height, 128 + 100 * np.sin(x / 17.0) * np.cos(y / 23.0)], axis=-1)
    disc = (x - width * 0.6) ** 2 + (y - height * 0.4) ** 2 < (min(height, width) * 0.2) ** 2
    img[disc] = (240, 220, 60)
    scratch = np.abs((y - 0.3 * x) - height * 0.5) < 2
    img[scratch] = (20, 20, 20)
    return np.clip(img, 0, 255).astype(np.uint8)


def synthetic_audio(seconds: float = 1.5, rate: int = 16_000) -> np.ndarray:
    """A 440 Hz tone with a 1.2 kHz rattle in its second half, plus a little seeded noise."""
    t = np.arange(int(seconds * rate), dtype=np.float64) / rate
    wave = 0.4 * np.sin(2 * np.pi * 440 * t) + np.where(t > seconds / 2, 0.2 * np.sin(2 * np.pi * 1200 * t), 0)
    wave += 0.01 * np.random.default_rng(0).standard_normal(t.size)
    return wave.astype(np.float32)


def _long_prompt(engine: Any) -> str:
    """Report text just longer than the sliding window, so the prefill and decode both cross it."""
    window = engine.spec.text.sliding_window
    text, i = "", 0
    prompts = pairs(4 * window, seed=7)
    while len(engine.tokenizer.encode(text).ids) < window + 8:
        text += prompts[i][1] + " "
        i += 1
    return text + "Summarize."


def _inputs(case: str, engine: Any) -> dict[str, Any]:
    if case.startswith("corpus-"):
        # in-distribution prompts for the trained preset (held out: a seed training never uses)
        i = int(case.split("-", 1)[1])
        prompt = pairs(i + 1, seed=99)[i][0]
        images = [synthetic_image(144 + 48 * (i % 3), 192 + 32 * (i % 4))] if i % 3 == 0 else []
        audio = [synthetic_audio(0.5 + 0.25 * (i % 3))] if i % 4 == 1 else []
        return {"prompt": prompt, "images": images, "audio": audio}
    prompt = "Describe any defect in this part."
    images = [synthetic_image()] if case in ("image", "image_audio") else []
    audio = [synthetic_audio()] if case in ("audio", "image_audio") else []
    if case == "long":
        prompt = _long_prompt(engine)
    return {"prompt": prompt, "images": images, "audio": audio}


def torch_inputs(prepared: Any) -> dict[str, Any]:
    """``generate()`` keyword arguments for a PreparedPrompt: the same ids, pixels and features the bundle gets."""
    import torch

    kw: dict[str, Any] = {
        "input_ids": torch.from_numpy(prepared.input_ids),
        "attention_mask": torch.ones_like(torch.from_numpy(prepared.input_ids)),
        "mm_token_type_ids": torch.from_numpy(prepared.token_types),
    }
    if prepared.images:
        kw["pixel_values"] = torch.from_numpy(np.stack([im.pixel_values for im in prepared.images]))
        kw["image_position_ids"] = torch.from_numpy(np.stack([im.position_ids for im in prepared.images]))
    if prepared.audio:
        kw["input_features"] = torch.from_numpy(np.stack(prepared.audio))
        kw["input_features_mask"] = torch.ones(kw["input_features"].shape[:2], dtype=torch.bool)
    return kw


def _reference(model: Any, prepared: Any, new_tokens: int, image_mask: str) -> tuple[list[int], np.ndarray]:
    """Greedy tokens and the raw logits of every step, ``[steps, vocab]``."""
    import torch

    kw = torch_inputs(prepared)
    # a static cache makes generate() build create_masks_for_vision_model's mask ("sliding");
    # the default dynamic cache takes the generic block overlay ("all"). See graphs/decoder.py.
    cache = {"cache_implementation": "static"} if image_mask == "sliding" else {}
    with torch.no_grad():
        out = model.generate(
            **kw,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            output_logits=True,
            return_dict_in_generate=True,
            **cache,
        )
    tokens = out.sequences[0, prepared.input_ids.shape[1] :].tolist()
    return tokens, np.stack([step[0].float().numpy() for step in out.logits])


def _teacher_forced(engine: Any, prepared: Any, tokens: list[int]) -> np.ndarray:
    """The bundle's logits at every step when fed the reference tokens, ``[steps, vocab]``."""
    logits, cache = engine.prefill(prepared)
    steps = [logits[0, -1]]
    for tok in tokens[:-1]:
        step_ids = np.array([[tok]], dtype=np.int64)
        logits, cache = engine.sessions.decode_step(engine.embed_ids(step_ids), cache, np.zeros((1, 1), dtype=np.int64))
        steps.append(logits[0, -1])
    return np.stack(steps).astype(np.float64)


def _kl(ref: np.ndarray, got: np.ndarray) -> np.ndarray:
    def log_softmax(x: np.ndarray) -> np.ndarray:
        z = x - x.max(axis=-1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))

    lp, lq = log_softmax(ref), log_softmax(got)
    return (np.exp(lp) * (lp - lq)).sum(axis=-1)


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1) + 1e-30)


def _graph_errors(model: Any, engine: Any, prepared: Any) -> dict[str, float]:
    import torch

    errs: dict[str, float] = {}
    with torch.no_grad():
        ids = torch.from_numpy(prepared.input_ids)
        ref = model.model.language_model.embed_tokens(ids).numpy()
        got = engine.sessions.run("embedding", {"input_ids": prepared.input_ids})[0]
        errs["embedding"] = float(np.abs(ref - got).max())
        for im in prepared.images:
            r = (
                model.model.get_image_features(
                    torch.from_numpy(im.pixel_values[None]), torch.from_numpy(im.position_ids[None])
                )
                .pooler_output[0]
                .numpy()
            )
            g = engine.sessions.run(
                "vision", {"pixel_values": im.pixel_values[None], "image_position_ids": im.position_ids[None]}
            )[0][0]
            errs["vision"] = max(errs.get("vision", 0.0), float(np.abs(r - g).max()))
        for frames in prepared.audio:
            r = model.model.embed_audio(inputs_embeds=torch.from_numpy(frames[None]))[0].numpy()
            g = engine.sessions.run("audio", {"input_features": frames[None]})[0][0]
            errs["audio"] = max(errs.get("audio", 0.0), float(np.abs(r - g).max()))
    return errs


def run_case(case: str, model: Any, engine: Any, new_tokens: int, image_mask: str) -> CaseReport:
    from edge.runtime.engine import GenerationParams

    prepared = engine.prepare(**_inputs(case, engine))
    ref_tokens, ref_steps = _reference(model, prepared, new_tokens, image_mask)
    tf_steps = _teacher_forced(engine, prepared, ref_tokens)
    gen = engine.generate(prepared, params=GenerationParams(max_new_tokens=new_tokens, min_new_tokens=new_tokens))
    got = gen.token_ids
    div = next((i for i, (a, b) in enumerate(zip(ref_tokens, got, strict=False)) if a != b), None)
    if div is None and len(ref_tokens) != len(got):
        div = min(len(ref_tokens), len(got))
    r = ref_steps.astype(np.float64)
    got_logits = tf_steps[0]
    cos = float(_cosine(r[0], got_logits))
    errs = _graph_errors(model, engine, prepared)
    errs["decoder_logits"] = float(np.abs(r[0] - got_logits).max())
    return CaseReport(
        case=case,
        prompt_tokens=int(prepared.input_ids.shape[1]),
        tokens_equal=div is None,
        first_divergence=div,
        agreement=(new_tokens if div is None else div) / new_tokens,
        logits_max_abs=errs["decoder_logits"],
        tf_top1_agreement=float(np.mean(r.argmax(-1) == tf_steps.argmax(-1))),
        tf_mean_cosine=float(np.mean(_cosine(r, tf_steps))),
        tf_mean_kl=float(np.mean(_kl(r, tf_steps))),
        logits_cosine=cos,
        top1_equal=int(np.argmax(r[0])) == int(np.argmax(got_logits)),
        graph_max_abs=errs,
        reference_tokens=ref_tokens,
        engine_tokens=got,
    )


def check_bundle(
    bundle: Path,
    source: Path,
    *,
    exact: bool,
    image_mask: str = "sliding",
    new_tokens: int = 32,
    cases: tuple[str, ...] = CASES,
    threads: int | None = None,
    kernels: str | None = None,
    kv_cache: str | None = None,
) -> dict[str, Any]:
    """Run every case; with ``exact`` (fp32) any token difference raises ParityError naming the case.

    ``kernels``: the weight-matmul path (``edge.kernels.library``; None reads EDGE_KERNELS, default ours);
    ``kv_cache``: the KV cache's type (``library.half_kv_cache``; None reads EDGE_KV_CACHE, default auto).
    """
    import torch
    from transformers import Gemma4UnifiedForConditionalGeneration

    from edge.runtime.engine import Engine
    from edge.runtime.sessions import BundleSessions

    torch.set_num_threads(threads or torch.get_num_threads())
    library_bars_to_terminals()
    model = Gemma4UnifiedForConditionalGeneration.from_pretrained(str(source), dtype=torch.float32).eval()
    engine = Engine(BundleSessions.open(bundle, threads=threads, kernels=kernels, kv_cache=kv_cache))
    reports = []
    runnable = [
        case
        for case in cases
        if not (case in ("image", "image_audio") and engine.spec.vision is None)
        and not (case in ("audio", "image_audio") and engine.spec.audio is None)
    ]
    with Progress("parity vs transformers", total=len(runnable), unit="case") as bar:
        for case in runnable:
            rep = run_case(case, model, engine, new_tokens, image_mask)
            log.debug(
                "parity %-12s tokens %s  cosine %.6f  logits max|Δ| %.2e",
                case,
                "equal" if rep.tokens_equal else f"diverge at {rep.first_divergence}",
                rep.logits_cosine,
                rep.logits_max_abs,
            )
            reports.append(rep)
            bar.update(1, last=case)
    summary = {
        "reference": "transformers generate, fp32, greedy",
        "kernels": engine.sessions.kernels.label,
        "new_tokens": new_tokens,
        "image_mask": image_mask,
        "all_tokens_equal": all(r.tokens_equal for r in reports),
        "min_logits_cosine": min(r.logits_cosine for r in reports),
        "mean_agreement": float(np.mean([r.agreement for r in reports])),
        "tf_top1_agreement": float(np.mean([r.tf_top1_agreement for r in reports])),
        "tf_mean_cosine": float(np.mean([r.tf_mean_cosine for r in reports])),
        "tf_mean_kl": float(np.mean([r.tf_mean_kl for r in reports])),
        "cases": [asdict(r) for r in reports],
    }
    if exact and not summary["all_tokens_equal"]:
        bad = next(r for r in reports if not r.tokens_equal)
        raise ParityError(
            f"fp32 bundle diverges from transformers in case {bad.case!r} at new token {bad.first_divergence} "
            f"(reference {bad.reference_tokens[bad.first_divergence or 0]}, engine "
            f"{bad.engine_tokens[bad.first_divergence or 0] if bad.engine_tokens else None}); "
            f"max |Δlogits| {bad.logits_max_abs:.3g}, per-graph {bad.graph_max_abs}"
        )
    return summary
