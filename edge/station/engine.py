"""What the station pipeline needs from an engine, as a typed interface, and a description request.

``edge.runtime.engine.Engine`` implements :class:`DescriptionEngine`; the pipeline never reaches past it
into onnxruntime sessions or the tokenizer. Requests carry images still encoded (:class:`PendingImage`):
they are decoded on the engine thread when the description starts, so a waiting job holds bytes, not
pixels, and a request that cannot fit the context is refused before any pixel is decoded.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np


class PendingImage(Protocol):
    """An image checked on arrival (header, size, limits) but not decoded yet."""

    @property
    def field(self) -> str:
        """The request field it came from, e.g. ``images[0].encoded``."""
        ...

    @property
    def width(self) -> int: ...

    @property
    def height(self) -> int: ...

    def decode(self) -> np.ndarray:
        """RGB ``uint8 [H, W, 3]``; raises ``FieldError`` naming ``field`` if the data turns out corrupt."""
        ...


class DescriptionEngine(Protocol):
    """The engine as the station pipeline sees it (one thread at a time)."""

    context: int

    @property
    def default_soft_tokens(self) -> int:
        """The bundle's image budget when a request does not set one."""
        ...

    def image_tokens(self, width: int, height: int, max_soft_tokens: int | None = None) -> int:
        """Soft tokens an image of this size becomes, from its size alone."""
        ...

    def audio_tokens(self, samples: int) -> int:
        """Soft tokens of a 16 kHz mono clip of ``samples`` samples."""
        ...

    def prompt_tokens(
        self, prompt: str, system: str | None, image_tokens: Sequence[int], audio_tokens: Sequence[int]
    ) -> int:
        """Length of the whole chat prompt with media placeholders expanded, without decoding any media."""
        ...

    def prepare(
        self,
        prompt: str,
        images: Sequence[Any] = (),
        audio: Sequence[Any] = (),
        system: str | None = None,
        max_soft_tokens: int | None = None,
    ) -> Any: ...

    def stream(self, prompt: Any, params: Any = None) -> Iterator[Any]: ...

    def compile_schema(self, schema_text: str) -> Any:
        """A response schema for ``GenerationParams(schema=…)``; SchemaError with llguidance's reason."""
        ...


@dataclass(frozen=True)
class Crop:
    """A close-up of another image of the same request: decoded with it, cut around ``region`` (frame pixels)."""

    source: Any  # a PendingImage or an RGB array
    region: tuple[int, int, int, int]


@dataclass
class Request:
    """One description in domain terms (no protobuf)."""

    prompt: str
    images: list[Any] = field(default_factory=list)  # PendingImage, RGB arrays, Crop, or PreparedImage
    audio: list[np.ndarray] = field(default_factory=list)  # float32 16 kHz mono
    system: str | None = None
    params: Any = None  # edge.runtime.engine.GenerationParams
    max_soft_tokens: int | None = None
    inputs_sha256: str = ""  # edge.station.report.inputs_sha256 of exactly these inputs

    def decoded_images(self) -> list[Any]:
        """Every image decoded once (a crop reuses its source's pixels); prepared images pass through."""
        from edge.gate.result import crop_region

        decoded: dict[int, np.ndarray] = {}

        def pixels(im: Any) -> np.ndarray:
            if isinstance(im, np.ndarray):
                return im
            if id(im) not in decoded:
                decoded[id(im)] = im.decode()
            return decoded[id(im)]

        out = []
        for im in self.images:
            if isinstance(im, Crop):
                out.append(crop_region(pixels(im.source), im.region))
            elif isinstance(im, np.ndarray) or hasattr(im, "decode"):
                out.append(pixels(im))
            else:
                out.append(im)  # a PreparedImage: already patches at its own budget
        return out
