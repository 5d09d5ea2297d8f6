"""The station engine: a verified bundle in onnxruntime, prompts in, streamed tokens out.

>>> engine = Engine.load("bundle/")
>>> for chunk in engine.stream("Describe any defect.", images=[jpeg_bytes]):
...     print(chunk.text, end="")
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import EngineError, PromptError
from edge.runtime import media
from edge.runtime.image import soft_token_count
from edge.runtime.kv_cache import BoundCache, KVCache, prefill_chunks
from edge.runtime.prompt import Message, SpecialTokens, encode, render, user_message
from edge.runtime.sampling import Sampler, SamplingParams
from edge.runtime.sessions import BundleSessions
from edge.runtime.structured import ResponseSchema, StructuredOutput

PREFILL_CHUNK = 512  # tokens per prefill call (an image block is never split); the memory plan assumes it


@dataclass(frozen=True)
class GenerationParams:
    max_new_tokens: int = 128
    min_new_tokens: int = 0  # end-of-turn tokens are banned until this many tokens exist (not with a schema)
    sampling: SamplingParams = field(default_factory=SamplingParams)
    schema: ResponseSchema | None = None  # from Engine.compile_schema: the output must be a document of it


@dataclass
class PreparedPrompt:
    """Everything the graphs need for one prompt, built on the station side."""

    input_ids: np.ndarray  # [1, n] int64
    token_types: np.ndarray  # [1, n] int64, mm_token_type_ids
    images: list[media.PreparedImage]
    audio: list[np.ndarray]  # [frames, samples_per_token] float32 each
    preprocess_s: float = 0.0


@dataclass
class Timings:
    preprocess_s: float = 0.0
    embed_s: float = 0.0
    prefill_s: float = 0.0
    ttft_s: float = 0.0  # from the start of generate, inputs already decoded
    decode_s: float = 0.0
    grammar_s: float = 0.0  # with a schema: masking, sampling and following the token (the grammar's share of decode_s)
    prompt_tokens: int = 0
    new_tokens: int = 0

    @property
    def prefill_tok_s(self) -> float:
        return self.prompt_tokens / self.prefill_s if self.prefill_s > 0 else 0.0

    @property
    def decode_tok_s(self) -> float:
        steps = max(self.new_tokens - 1, 0)  # the first token comes from the prefill
        return steps / self.decode_s if self.decode_s > 0 else 0.0


@dataclass
class Generation:
    text: str
    token_ids: list[int]
    stop_reason: str  # "eos" | "max_new_tokens"
    timings: Timings
    report: Any = None  # with a schema: the parsed, validated document (never an invalid one)
    report_error: str = ""  # with a schema: why there is no report (e.g. max_new_tokens ran out first)


@dataclass
class Chunk:
    """One streamed step: a token and the text it completed (may be empty mid-character).

    The last chunk has ``done=True``, the result, and any text still owed (a cut-off character).
    """

    token_id: int
    text: str
    done: bool = False
    result: Generation | None = None


class Engine:
    """Runs one bundle. Not thread-safe: the daemon serializes calls."""

    def __init__(
        self,
        bundle: str | Path | BundleSessions,
        threads: int | None = None,
        verify: bool = True,
        prefill_chunk: int = PREFILL_CHUNK,
    ) -> None:
        sessions = bundle if isinstance(bundle, BundleSessions) else BundleSessions.open(Path(bundle), threads, verify)
        self.sessions = sessions
        self.spec = sessions.spec
        self.manifest = sessions.manifest
        self.tokens = SpecialTokens.from_manifest(self.manifest.tokenizer)
        gen = self.manifest.generation
        self.eos_ids = [int(e) for e in gen["eos_token_ids"]]
        self.defaults = GenerationParams(max_new_tokens=int(gen.get("max_new_tokens", 128)))
        self.context = int(self.manifest.context)
        self.processor = dict(self.manifest.processor)
        if prefill_chunk < 1:
            raise EngineError(f"prefill_chunk must be at least 1, got {prefill_chunk}")
        self.prefill_chunk = prefill_chunk

    @classmethod
    def load(
        cls, bundle: str | Path, threads: int | None = None, verify: bool = True, tuning: dict[str, str] | None = None
    ) -> Engine:
        return cls(BundleSessions.open(Path(bundle), threads=threads, verify=verify, tuning=tuning))

    # -- inputs ---------------------------------------------------------------------------------
    def prepare(
        self,
        prompt: str,
        images: Sequence[Any] = (),
        audio: Sequence[Any] = (),
        system: str | None = None,
        max_soft_tokens: int | None = None,
    ) -> PreparedPrompt:
        """Decode and preprocess media, build the chat prompt, and expand placeholders.

        ``images`` and ``audio`` take one item or a list of them (see ``edge.runtime.media``).
        """
        t0 = time.perf_counter()
        images, audio = _items(images), _items(audio)
        budget = int(max_soft_tokens or self.processor["max_soft_tokens"])
        prepared_images = [media.as_prepared_image(img, budget, self.processor) for img in images]
        if audio and self.spec.audio is None:
            raise PromptError("this bundle has no audio embedder")
        if images and self.spec.vision is None:
            raise PromptError("this bundle has no vision embedder")
        frames = [media.as_audio_frames(a, self.processor) for a in audio]
        ids, types = self._encode(
            prompt, system, [im.num_soft_tokens for im in prepared_images], [len(f) for f in frames]
        )
        return PreparedPrompt(ids, types, prepared_images, frames, time.perf_counter() - t0)

    def _encode(
        self, prompt: str, system: str | None, image_tokens: Sequence[int], audio_tokens: Sequence[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        messages = [user_message(prompt, len(image_tokens), len(audio_tokens))]
        if system:
            messages.insert(0, Message("system", (("text", system),)))
        text = render(messages, self.tokens)
        return encode(text, self.sessions.tokenizer, self.tokens, list(image_tokens), list(audio_tokens))

    # -- budgets, from sizes alone (nothing decoded) ----------------------------------------------------
    def image_tokens(self, width: int, height: int, max_soft_tokens: int | None = None) -> int:
        """Soft tokens an image of ``width`` × ``height`` becomes (what :meth:`prepare` would produce)."""
        return soft_token_count(
            height,
            width,
            int(max_soft_tokens or self.processor["max_soft_tokens"]),
            int(self.processor["patch_size"]),
            int(self.processor["pooling_kernel_size"]),
        )

    def audio_tokens(self, samples: int) -> int:
        """Soft tokens of a 16 kHz mono clip of ``samples`` samples (one per 40 ms frame)."""
        return -(-int(samples) // int(self.processor["audio_samples_per_token"]))

    def prompt_tokens(
        self, prompt: str, system: str | None, image_tokens: Sequence[int], audio_tokens: Sequence[int]
    ) -> int:
        """Length of the chat prompt with media placeholders expanded to the given soft-token counts."""
        return int(self._encode(prompt, system, image_tokens, audio_tokens)[0].shape[1])

    @property
    def default_soft_tokens(self) -> int:
        return int(self.processor["max_soft_tokens"])

    @property
    def tokenizer(self) -> Any:
        """The bundle's ``tokenizers.Tokenizer``."""
        return self.sessions.tokenizer

    def embed(self, p: PreparedPrompt) -> np.ndarray:
        """Text embeddings with image and audio soft tokens scattered into their placeholders."""
        tk = self.spec.tokens
        ids = p.input_ids
        is_img, is_aud = ids == tk.image, ids == tk.audio
        embeds = self.embed_ids(ids)
        if p.images:
            feats = [
                self.sessions.run(
                    "vision",
                    {"pixel_values": im.pixel_values[None], "image_position_ids": im.position_ids[None]},
                )[0][0]
                for im in p.images
            ]
            embeds[is_img] = np.concatenate(feats, axis=0)
        if p.audio:
            feats = [self.sessions.run("audio", {"input_features": f[None]})[0][0] for f in p.audio]
            embeds[is_aud] = np.concatenate(feats, axis=0)
        return embeds

    def embed_ids(self, ids: np.ndarray) -> np.ndarray:
        """Token embeddings; media placeholder ids embed as pad, as ``Gemma4UnifiedModel.forward`` does
        (also for a generated placeholder token, which the model then sees as pad)."""
        tk = self.spec.tokens
        # three compares, not np.isin: its setup cost 0.18 ms of every decode step's 1-token call
        media_ids = (ids == tk.image) | (ids == tk.audio) | (ids == tk.video)
        return self.sessions.run("embedding", {"input_ids": np.where(media_ids, self.spec.text.pad_token_id, ids)})[0]

    # -- generation -----------------------------------------------------------------------------
    def prefill(self, p: PreparedPrompt, embeds: np.ndarray | None = None) -> tuple[np.ndarray, KVCache | BoundCache]:
        """Run the prompt through the decoder in chunks; returns the last position's logits and the cache."""
        embeds = self.embed(p) if embeds is None else embeds
        cache = self.sessions.empty_cache()
        logits = None
        for a, b in prefill_chunks(p.token_types, self.prefill_chunk):
            logits, cache = self.sessions.decode_step(embeds[:, a:b], cache, p.token_types[:, a:b])
        if logits is None:
            raise PromptError("the prompt is empty")
        return logits, cache

    def stream(
        self,
        prompt: str | PreparedPrompt,
        images: Sequence[Any] = (),
        audio: Sequence[Any] = (),
        params: GenerationParams | None = None,
        system: str | None = None,
    ) -> Iterator[Chunk]:
        """Yield a Chunk per generated token; the last one has ``done=True`` and the result."""
        p = prompt if isinstance(prompt, PreparedPrompt) else self.prepare(prompt, images, audio, system)
        params = params or self.defaults
        t = Timings(preprocess_s=p.preprocess_s, prompt_tokens=int(p.input_ids.shape[1]))
        if t.prompt_tokens + params.max_new_tokens > self.context:
            raise PromptError(
                f"prompt of {t.prompt_tokens} tokens + max_new_tokens {params.max_new_tokens} exceeds the bundle's "
                f"context of {self.context} tokens; shorten the prompt, use fewer soft tokens per image, "
                "or shorten audio"
            )
        start = time.perf_counter()
        embeds = self.embed(p)
        t.embed_s = time.perf_counter() - start
        logits, cache = self.prefill(p, embeds)
        t.prefill_s = time.perf_counter() - start - t.embed_s
        sampler = Sampler(params.sampling)
        constraint = self.structured.constraint(params.schema) if params.schema is not None else None
        decoder = self.sessions.detokenizer()
        out: list[int] = []
        text: list[str] = []
        stop = "max_new_tokens"
        decode_start = time.perf_counter()
        while True:
            if constraint is None:
                banned = self.eos_ids if len(out) < params.min_new_tokens else None
                token = sampler(logits[0, -1], banned)
            else:  # the grammar decides when end-of-turn may come
                g = time.perf_counter()
                token = sampler(constraint.masked(logits[0, -1]))
                constraint.accept(token)
                t.grammar_s += time.perf_counter() - g
            if not out:
                t.ttft_s = time.perf_counter() - start
                decode_start = time.perf_counter()
            out.append(token)
            if token in self.eos_ids:
                stop = "eos"
                break
            delta = decoder.step(self.sessions.tokenizer, token) or ""
            text.append(delta)
            yield Chunk(token, delta)
            if len(out) >= params.max_new_tokens:
                break
            step_embeds = self.embed_ids(np.array([[token]], dtype=np.int64))
            logits, cache = self.sessions.decode_step(step_embeds, cache, np.zeros((1, 1), dtype=np.int64))
        t.decode_s = time.perf_counter() - decode_start
        t.new_tokens = len(out)
        # bytes of a character cut off by the end of generation are still owed to the caller
        streamed = "".join(text)
        answer = out[:-1] if stop == "eos" else out
        full = self.sessions.tokenizer.decode(answer, skip_special_tokens=True)
        tail = full[len(streamed) :] if full.startswith(streamed) else ""
        result = Generation(streamed + tail, out, stop, t)
        if params.schema is not None:
            if stop == "eos":
                result.report, result.report_error = params.schema.parse(result.text)
            else:
                result.report_error = (
                    f"max_new_tokens ({params.max_new_tokens}) ran out before the JSON report was complete; "
                    "raise options.max_new_tokens"
                )
        yield Chunk(out[-1], tail, done=True, result=result)

    # -- structured output ---------------------------------------------------------------------------
    @cached_property
    def structured(self) -> StructuredOutput:
        """Schema compiler and token masks for this bundle's tokenizer (built on first use)."""
        return StructuredOutput(self.tokenizer.to_str(), self.spec.text.vocab_size, self.eos_ids)

    def compile_schema(self, schema_text: str) -> ResponseSchema:
        """A JSON Schema ready for ``GenerationParams(schema=…)``; SchemaError with the reason otherwise."""
        return self.structured.compile(schema_text)

    def generate(
        self,
        prompt: str | PreparedPrompt,
        images: Sequence[Any] = (),
        audio: Sequence[Any] = (),
        params: GenerationParams | None = None,
        system: str | None = None,
    ) -> Generation:
        for chunk in self.stream(prompt, images, audio, params, system):
            if chunk.done and chunk.result is not None:
                return chunk.result
        raise EngineError("generation ended without a result")  # pragma: no cover


_SINGLE = (bytes, bytearray, memoryview, str, Path, np.ndarray, media.PreparedImage)


def _items(x: Any) -> list[Any]:
    """One image/clip or a sequence of them, as a list (an ndarray is one item, not its rows)."""
    if x is None:
        return []
    if isinstance(x, _SINGLE):
        return [x]
    return list(x)
