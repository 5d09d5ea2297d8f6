"""ModelSpec resolves per-layer shapes exactly as transformers' Gemma4UnifiedTextConfig does."""

from __future__ import annotations

import json

import pytest

from edge.build.fixtures.presets import PRESETS, REAL_TOKEN_IDS, hf_config
from edge.errors import UnsupportedModelError
from edge.spec import FULL, ModelSpec


def _hf_layers(config: dict) -> list[tuple[str, int, int]]:
    from transformers import Gemma4UnifiedConfig

    cfg = Gemma4UnifiedConfig(**json.loads(json.dumps(config))).text_config
    return [
        (cfg.layer_types[i], cfg.per_layer_config[i].head_dim, cfg.per_layer_config[i].num_key_value_heads)
        for i in range(cfg.num_hidden_layers)
    ]


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_layers_match_transformers(preset: str) -> None:
    config = hf_config(PRESETS[preset], REAL_TOKEN_IDS)
    spec = ModelSpec.from_hf_config(config)
    ours = [(lay.kind, lay.head_dim, lay.kv_heads) for lay in spec.text.layers]
    assert ours == _hf_layers(config)


def test_saved_config_dialect_matches_published_dialect(tiny_ckpt) -> None:
    # transformers 5.23 saves per_layer_config; the published 12B config.json has global_head_dim instead
    saved = json.loads((tiny_ckpt / "config.json").read_text())
    assert "per_layer_config" in saved["text_config"]
    published = hf_config(PRESETS["tiny"], {k: saved[k] for k in REAL_TOKEN_IDS})
    assert "per_layer_config" not in published["text_config"]
    a, b = ModelSpec.from_hf_config(saved), ModelSpec.from_hf_config(published)
    assert a.text.layers == b.text.layers


def test_k_eq_v_only_on_full_layers() -> None:
    spec = ModelSpec.from_hf_config(hf_config(PRESETS["12b"], REAL_TOKEN_IDS))
    assert [lay.k_eq_v for lay in spec.text.layers] == [lay.kind == FULL for lay in spec.text.layers]
    assert spec.text.layers[-1].kind == FULL
    assert sum(lay.kind == FULL for lay in spec.text.layers) == 8  # 5 sliding : 1 full over 48 layers
    assert spec.tokens.image == 258_880


def test_spec_roundtrips_through_manifest_dict() -> None:
    spec = ModelSpec.from_hf_config(hf_config(PRESETS["tiny"], REAL_TOKEN_IDS))
    assert ModelSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"model_type": "llama"}, "supported: gemma4_unified"),
        ({"text_config": {"num_kv_shared_layers": 4}}, "KV sharing"),
        ({"text_config": {"use_bidirectional_attention": "all"}}, "only 'vision'"),
    ],
)
def test_unsupported_configs_are_named(patch: dict, message: str) -> None:
    config = hf_config(PRESETS["tiny"], REAL_TOKEN_IDS)
    for key, value in patch.items():
        if isinstance(value, dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    with pytest.raises(UnsupportedModelError, match=message):
        ModelSpec.from_hf_config(config)


def test_rope_inverse_frequencies_match_transformers() -> None:
    import torch
    from transformers import Gemma4UnifiedConfig
    from transformers.models.gemma4_unified.modeling_gemma4_unified import Gemma4UnifiedTextRotaryEmbedding

    from edge.build.graphs.decoder import rope_inv_freq

    config = hf_config(PRESETS["bench"], REAL_TOKEN_IDS)
    rope = Gemma4UnifiedTextRotaryEmbedding(Gemma4UnifiedConfig(**config).text_config)
    spec = ModelSpec.from_hf_config(config)
    for layer in {lay.kind: lay for lay in spec.text.layers}.values():
        ref = getattr(rope, f"{layer.kind}_inv_freq")
        assert torch.equal(torch.from_numpy(rope_inv_freq(layer)), ref)
