"""Copy a checkpoint's tokenizer into a bundle and resolve the Gemma 4 special tokens it must carry."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from edge.errors import CheckpointError
from edge.spec import ModelSpec

# Gemma 4's marker strings; the real tokenizer and the fixture tokenizer both carry them.
MARKERS = {"sot": "<|turn>", "eot": "<turn|>", "image": "<|image|>", "audio": "<|audio|>"}


def copy_tokenizer(src: Path, dst: Path, spec: ModelSpec) -> dict[str, Any]:
    """Copy tokenizer files; return the manifest's ``tokenizer`` section (plus ``generation``, popped by the caller)."""
    tok_json = src / "tokenizer.json"
    if not tok_json.exists():
        raise CheckpointError(f"{src}: no tokenizer.json (the station runtime needs the fast tokenizer file)")
    from tokenizers import Tokenizer

    try:
        tok = Tokenizer.from_file(str(tok_json))
    except Exception as exc:
        raise CheckpointError(f"{tok_json}: not a readable tokenizer ({exc})") from exc
    shutil.copyfile(tok_json, dst / "tokenizer.json")
    cfg_path = src / "tokenizer_config.json"
    cfg: dict[str, Any] = json.loads(cfg_path.read_text()) if cfg_path.exists() else {}
    if cfg_path.exists():
        shutil.copyfile(cfg_path, dst / "tokenizer_config.json")
    template = src / "chat_template.jinja"
    if template.exists():
        shutil.copyfile(template, dst / "chat_template.jinja")
    elif isinstance(cfg.get("chat_template"), str):
        (dst / "chat_template.jinja").write_text(cfg["chat_template"])
    vocab = tok.get_vocab()
    bos = cfg.get("bos_token") or "<bos>"
    bos = bos["content"] if isinstance(bos, dict) else bos
    strings = {"bos": bos, **MARKERS}
    missing = [s for s in strings.values() if s not in vocab]
    if missing:
        raise CheckpointError(f"{tok_json}: lacks Gemma 4 special tokens {missing}; is this a Gemma 4 tokenizer?")
    t = spec.tokens
    ids = {
        "bos": vocab[bos],
        "boi": t.boi,
        "eoi": t.eoi,
        "image": t.image,
        "boa": t.boa,
        "eoa": t.eoa,
        "audio": t.audio,
    }
    if vocab[MARKERS["image"]] != t.image or vocab[MARKERS["audio"]] != t.audio:
        raise CheckpointError(
            f"{src}: config.json image/audio token ids ({t.image}, {t.audio}) do not match the tokenizer "
            f"({vocab[MARKERS['image']]}, {vocab[MARKERS['audio']]})"
        )
    gen_path = src / "generation_config.json"
    gen: dict[str, Any] = json.loads(gen_path.read_text()) if gen_path.exists() else {}
    eos = gen.get("eos_token_id", list(spec.text.eos_token_ids))
    eos = [int(e) for e in (eos if isinstance(eos, list) else [eos])]
    if vocab[MARKERS["eot"]] not in eos:
        eos.append(vocab[MARKERS["eot"]])  # a turn ends the answer even if the config forgot it
    generation = {
        "eos_token_ids": eos,
        "temperature": float(gen.get("temperature", 0.0) if gen.get("do_sample") else 0.0),
        "top_k": int(gen.get("top_k", 0) or 0),
        "top_p": float(gen.get("top_p", 1.0) or 1.0),
    }
    return {
        "file": "tokenizer.json",
        "chat_template": "chat_template.jinja" if (dst / "chat_template.jinja").exists() else None,
        "special_tokens": strings,
        "special_ids": ids,
        "vocab_size": tok.get_vocab_size(),
        "generation": generation,
    }
