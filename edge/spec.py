"""The model's shape, resolved once from a Hugging Face config into plain data.

Both sides use it: the build host derives it from ``config.json`` and writes it
into the bundle manifest; the station reads it back from there. It needs
neither torch nor transformers, which is why the per-layer resolution that
transformers does in ``Gemma4UnifiedTextConfig.__post_init__`` is mirrored
here (a test checks the two agree on every preset).

>>> spec = ModelSpec.from_hf_config(json.load(open("config.json")))
>>> spec.text.layers[5].head_dim
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from edge.errors import UnsupportedModelError

SUPPORTED_MODEL_TYPES = ("gemma4_unified",)
SLIDING = "sliding_attention"
FULL = "full_attention"
# how an image block's bidirectional mask meets the sliding window (edge.build.graphs.decoder explains the two);
# a bundle records its own (manifest processor.image_mask), and both the export and the station read this list
IMAGE_MASKS = ("sliding", "all")

_DEFAULT_ROPE: dict[str, dict[str, Any]] = {
    SLIDING: {"rope_type": "default", "rope_theta": 10_000.0},
    FULL: {"rope_type": "proportional", "partial_rotary_factor": 0.25, "rope_theta": 1_000_000.0},
}


@dataclass(frozen=True)
class LayerSpec:
    """One decoder layer: its attention type and KV geometry."""

    kind: str  # SLIDING or FULL
    head_dim: int
    kv_heads: int
    k_eq_v: bool  # keys double as values (no v_proj weight)
    rope_type: str  # "default" or "proportional"
    rope_theta: float
    partial_rotary_factor: float
    rope_factor: float = 1.0


@dataclass(frozen=True)
class TextSpec:
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_heads: int
    layers: tuple[LayerSpec, ...]
    sliding_window: int
    rms_norm_eps: float
    final_logit_softcapping: float | None
    hidden_activation: str
    tie_word_embeddings: bool
    bidirectional: str | None
    pad_token_id: int
    bos_token_id: int
    eos_token_ids: tuple[int, ...]

    @property
    def embed_scale(self) -> float:
        return float(self.hidden_size) ** 0.5

    def layer_param_count(self, i: int) -> int:
        layer = self.layers[i]
        h, q = self.hidden_size, self.num_heads * layer.head_dim
        kv = layer.kv_heads * layer.head_dim
        attn = h * q + h * kv * (1 if layer.k_eq_v else 2) + q * h + 2 * layer.head_dim
        mlp = 3 * h * self.intermediate_size
        return attn + mlp + 4 * h + 1

    def kv_bytes_per_token(self, dtype_bytes: int = 4) -> int:
        """KV-cache bytes one token adds to the full-attention layers (keys and values)."""
        return sum(2 * lay.kv_heads * lay.head_dim * dtype_bytes for lay in self.layers if lay.kind == FULL)

    def sliding_kv_bytes(self, dtype_bytes: int = 4) -> int:
        """Bytes of the sliding layers' caches when full (``window - 1`` tokens each)."""
        per_tok = sum(2 * lay.kv_heads * lay.head_dim * dtype_bytes for lay in self.layers if lay.kind == SLIDING)
        return per_tok * (self.sliding_window - 1)


@dataclass(frozen=True)
class VisionSpec:
    patch_size: int
    pooling_kernel_size: int
    mm_embed_dim: int
    mm_posemb_size: int
    rms_norm_eps: float
    layer_norm_eps: float = 1e-5  # torch.nn.LayerNorm's default, which the embedder uses

    @property
    def model_patch_size(self) -> int:
        return self.patch_size * self.pooling_kernel_size

    @property
    def patch_dim(self) -> int:
        return self.model_patch_size**2 * 3


@dataclass(frozen=True)
class AudioSpec:
    samples_per_token: int
    rms_norm_eps: float
    sampling_rate: int = 16_000
    max_tokens: int = 750


@dataclass(frozen=True)
class TokenIds:
    boi: int
    eoi: int
    image: int
    video: int
    boa: int
    eoa: int
    audio: int


@dataclass(frozen=True)
class ModelSpec:
    model_type: str
    text: TextSpec
    vision: VisionSpec | None
    audio: AudioSpec | None
    tokens: TokenIds
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_hf_config(cls, cfg: dict[str, Any]) -> ModelSpec:
        model_type = cfg.get("model_type")
        if model_type not in SUPPORTED_MODEL_TYPES:
            raise UnsupportedModelError(
                f"model type {model_type!r} is not supported; supported: {', '.join(SUPPORTED_MODEL_TYPES)}"
            )
        text = _text_spec(cfg.get("text_config") or {})
        vision = _vision_spec(cfg["vision_config"]) if cfg.get("vision_config") is not None else None
        audio = _audio_spec(cfg["audio_config"]) if cfg.get("audio_config") is not None else None
        tokens = TokenIds(
            boi=int(cfg.get("boi_token_id", 255_999)),
            eoi=int(cfg.get("eoi_token_id", 258_882)),
            image=int(cfg.get("image_token_id", 258_880)),
            video=int(cfg.get("video_token_id", 258_884)),
            boa=int(cfg.get("boa_token_id", 256_000)),
            eoa=int(cfg.get("eoa_token_index", cfg.get("eoa_token_id", 258_883))),
            audio=int(cfg.get("audio_token_id", 258_881)),
        )
        return cls(model_type=str(model_type), text=text, vision=vision, audio=audio, tokens=tokens)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelSpec:
        t = dict(d["text"])
        t["layers"] = tuple(LayerSpec(**lay) for lay in t["layers"])
        t["eos_token_ids"] = tuple(t["eos_token_ids"])
        return cls(
            model_type=d["model_type"],
            text=TextSpec(**t),
            vision=VisionSpec(**d["vision"]) if d.get("vision") else None,
            audio=AudioSpec(**d["audio"]) if d.get("audio") else None,
            tokens=TokenIds(**d["tokens"]),
            extra=dict(d.get("extra") or {}),
        )

    def param_counts(self) -> dict[str, int]:
        """Parameters per graph, computed from shapes alone (the 12B plan never builds weights)."""
        t = self.text
        decoder = sum(t.layer_param_count(i) for i in range(len(t.layers))) + t.hidden_size
        counts = {
            "embedding": t.vocab_size * t.hidden_size,
            "decoder": decoder,
            "lm_head": t.vocab_size * t.hidden_size,
        }
        if self.vision is not None:
            v = self.vision
            counts["vision"] = (
                2 * v.patch_dim
                + v.patch_dim * v.mm_embed_dim
                + v.mm_embed_dim
                + 4 * v.mm_embed_dim
                + v.mm_posemb_size * 2 * v.mm_embed_dim
                + v.mm_embed_dim * t.hidden_size
            )
        if self.audio is not None:
            counts["audio"] = self.audio.samples_per_token * t.hidden_size
        return counts


def _text_spec(tc: dict[str, Any]) -> TextSpec:
    n = int(tc.get("num_hidden_layers", 30))
    if int(tc.get("num_kv_shared_layers", 0) or 0) != 0:
        raise UnsupportedModelError("text_config.num_kv_shared_layers != 0 (KV sharing) is not supported yet")
    bidir = tc.get("use_bidirectional_attention", "vision")
    if bidir not in (None, "vision"):
        raise UnsupportedModelError(f"use_bidirectional_attention={bidir!r} is not supported (only 'vision')")
    layer_types = list(tc.get("layer_types") or [SLIDING if (i + 1) % 6 else FULL for i in range(n)])
    layer_types[-1] = FULL  # transformers forces the last layer to full attention
    rope: dict[str, dict[str, Any]] = tc.get("rope_parameters") or _DEFAULT_ROPE
    head_dim = int(tc.get("head_dim", 256))
    kv_heads = int(tc.get("num_key_value_heads", 4))
    k_eq_v = bool(tc.get("attention_k_eq_v", False))
    overrides = _per_layer_overrides(tc, layer_types, k_eq_v)
    layers = []
    for i, kind in enumerate(layer_types):
        o = overrides.get(i, {})
        r = rope[kind]
        layers.append(
            LayerSpec(
                kind=kind,
                head_dim=int(o.get("head_dim", head_dim)),
                kv_heads=int(o.get("num_key_value_heads", kv_heads)),
                k_eq_v=k_eq_v and kind != SLIDING,
                rope_type=str(r.get("rope_type", "default")),
                rope_theta=float(r["rope_theta"]),
                partial_rotary_factor=float(r.get("partial_rotary_factor", 1.0)),
                rope_factor=float(r.get("factor", 1.0)),
            )
        )
    eos = tc.get("eos_token_id", 1)
    activation = str(tc.get("hidden_activation", "gelu_pytorch_tanh"))
    if activation != "gelu_pytorch_tanh":
        raise UnsupportedModelError(f"hidden_activation={activation!r} is not supported")
    softcap = tc.get("final_logit_softcapping")
    return TextSpec(
        vocab_size=int(tc.get("vocab_size", 262_144)),
        hidden_size=int(tc.get("hidden_size", 2304)),
        intermediate_size=int(tc.get("intermediate_size", 9216)),
        num_heads=int(tc.get("num_attention_heads", 8)),
        layers=tuple(layers),
        sliding_window=int(tc.get("sliding_window", 1024)),
        rms_norm_eps=float(tc.get("rms_norm_eps", 1e-6)),
        final_logit_softcapping=float(softcap) if softcap is not None else None,
        hidden_activation=activation,
        tie_word_embeddings=bool(tc.get("tie_word_embeddings", True)),
        bidirectional=bidir,
        pad_token_id=int(tc.get("pad_token_id", 0) or 0),
        bos_token_id=int(tc.get("bos_token_id", 2)),
        eos_token_ids=tuple(int(e) for e in (eos if isinstance(eos, list) else [eos])),
    )


def _per_layer_overrides(tc: dict[str, Any], layer_types: list[str], k_eq_v: bool) -> dict[int, dict[str, Any]]:
    """Per-layer head_dim / KV-head overrides, from either config dialect.

    Saved 5.23 configs carry ``per_layer_config``; earlier ones (the published 12B) carry
    ``global_head_dim`` and ``num_global_key_value_heads``, which transformers turns into the
    same overrides for the full-attention layers (the KV-head override only with k_eq_v).
    """
    if "per_layer_config" in tc and tc["per_layer_config"] is not None:
        return {int(k): dict(v) for k, v in tc["per_layer_config"].items()}
    o: dict[str, Any] = {"head_dim": int(tc.get("global_head_dim", 512))}
    g_kv = tc.get("num_global_key_value_heads")
    if k_eq_v and g_kv is not None:
        o["num_key_value_heads"] = int(g_kv)
    return {i: o for i, kind in enumerate(layer_types) if kind == FULL}


def _vision_spec(vc: dict[str, Any]) -> VisionSpec:
    return VisionSpec(
        patch_size=int(vc.get("patch_size", 16)),
        pooling_kernel_size=int(vc.get("pooling_kernel_size", 3)),
        mm_embed_dim=int(vc.get("mm_embed_dim", 3840)),
        mm_posemb_size=int(vc.get("mm_posemb_size", 1120)),
        rms_norm_eps=float(vc.get("rms_norm_eps", 1e-6)),
    )


def _audio_spec(ac: dict[str, Any]) -> AudioSpec:
    return AudioSpec(
        samples_per_token=int(ac.get("audio_embed_dim", 640)),
        rms_norm_eps=float(ac.get("rms_norm_eps", 1e-6)),
    )


__all__ = ["FULL", "SLIDING", "AudioSpec", "LayerSpec", "ModelSpec", "TextSpec", "TokenIds", "VisionSpec"]
