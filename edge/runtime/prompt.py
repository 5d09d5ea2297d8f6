"""Gemma 4 prompts as token ids: the chat turn format plus image and audio placeholder expansion.

It reproduces what ``tokenizer.apply_chat_template`` followed by
``Gemma4UnifiedProcessor`` produce (transformers 5.23), without jinja or torch:
the turn format is ``<bos><|turn>user\\n…<turn|>\\n<|turn>model\\n``; each image
becomes ``<|image>`` + ``<|image|>`` × n + ``<image|>`` and each audio clip
``<|audio>`` + ``<|audio|>`` × frames + ``<audio|>``. The exporter checks this
against the bundle's own chat template on the build host.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge.errors import PromptError

# mm_token_type_ids values, as ProcessorMixin.create_mm_token_type_ids assigns them
TEXT, IMAGE, VIDEO, AUDIO = 0, 1, 2, 3


@dataclass(frozen=True)
class SpecialTokens:
    """Token strings and ids the prompt format needs, read from the bundle manifest."""

    bos: str
    sot: str
    eot: str
    image_placeholder: str
    audio_placeholder: str
    ids: dict[str, int] = field(default_factory=dict)  # boi, eoi, image, boa, eoa, audio, bos

    @classmethod
    def from_manifest(cls, tok: dict[str, Any]) -> SpecialTokens:
        s = tok["special_tokens"]
        return cls(
            bos=s["bos"],
            sot=s["sot"],
            eot=s["eot"],
            image_placeholder=s["image"],
            audio_placeholder=s["audio"],
            ids={k: int(v) for k, v in tok["special_ids"].items()},
        )


@dataclass(frozen=True)
class Message:
    """One chat turn. ``content`` items are ``("text", str)``, ``("image", None)`` or ``("audio", None)``."""

    role: str
    content: tuple[tuple[str, str | None], ...]


def user_message(text: str, n_images: int = 0, n_audio: int = 0) -> Message:
    """Media first, then the instruction: the order Gemma's model cards recommend."""
    none: str | None = None
    items: list[tuple[str, str | None]] = [("image", none)] * n_images + [("audio", none)] * n_audio
    if text:
        items.append(("text", text))
    return Message("user", tuple(items))


def render(messages: list[Message], sp: SpecialTokens, add_generation_prompt: bool = True) -> str:
    """The chat-template text, with one placeholder per image/audio clip (before expansion)."""
    parts = [sp.bos]
    for m in messages:
        role = "model" if m.role == "assistant" else m.role
        if role not in ("system", "user", "model"):
            raise PromptError(f"unknown chat role {m.role!r}; use system, user or assistant")
        parts.append(f"{sp.sot}{role}\n")
        for kind, value in m.content:
            if kind == "image":
                parts.append(sp.image_placeholder)
            elif kind == "audio":
                parts.append(sp.audio_placeholder)
            elif kind == "text":
                parts.append((value or "").strip())
            else:
                raise PromptError(f"unknown content item {kind!r}")
        parts.append(f"{sp.eot}\n")
    if add_generation_prompt:
        parts.append(f"{sp.sot}model\n")
    return "".join(parts)


def encode(
    text: str, tokenizer: Any, sp: SpecialTokens, image_tokens: list[int], audio_tokens: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Token ids and mm_token_type_ids ``[1, n]`` for rendered text, media placeholders expanded.

    ``image_tokens[i]`` / ``audio_tokens[i]`` are the soft-token counts of the i-th image / clip.
    The text between placeholders is tokenized on its own: added special tokens split the
    input before the BPE model runs, so this equals tokenizing the expanded string.
    """
    ids: list[int] = []
    types: list[int] = []
    images, audios = iter(image_tokens), iter(audio_tokens)
    n_img = text.count(sp.image_placeholder)
    n_aud = text.count(sp.audio_placeholder)
    if n_img != len(image_tokens) or n_aud != len(audio_tokens):
        raise PromptError(
            f"prompt has {n_img} image and {n_aud} audio placeholders but {len(image_tokens)} images and "
            f"{len(audio_tokens)} audio clips were given"
        )
    for kind, piece in _split(text, sp):
        if kind == "text":
            if piece:
                seg = tokenizer.encode(piece, add_special_tokens=False).ids
                ids.extend(seg)
                types.extend([TEXT] * len(seg))
        elif kind == "image":
            n = next(images)
            ids.extend([sp.ids["boi"], *([sp.ids["image"]] * n), sp.ids["eoi"]])
            types.extend([TEXT, *([IMAGE] * n), TEXT])
        else:
            n = next(audios)
            ids.extend([sp.ids["boa"], *([sp.ids["audio"]] * n), sp.ids["eoa"]])
            types.extend([TEXT, *([AUDIO] * n), TEXT])
    return np.asarray([ids], dtype=np.int64), np.asarray([types], dtype=np.int64)


def _split(text: str, sp: SpecialTokens) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    i = 0
    marks = {sp.image_placeholder: "image", sp.audio_placeholder: "audio"}
    while i < len(text):
        hits = [(text.find(m, i), m) for m in marks if text.find(m, i) >= 0]
        if not hits:
            out.append(("text", text[i:]))
            break
        pos, mark = min(hits)
        out.append(("text", text[i:pos]))
        out.append((marks[mark], mark))
        i = pos + len(mark)
    return out
