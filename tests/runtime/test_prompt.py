"""The station prompt builder equals transformers' chat template + Gemma 4 processor expansion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.errors import PromptError
from edge.runtime.prompt import AUDIO, IMAGE, TEXT, Message, SpecialTokens, encode, render, user_message


@pytest.fixture(scope="module")
def tokens(tiny_ckpt: Path) -> tuple[SpecialTokens, object]:
    import json

    from tokenizers import Tokenizer

    from edge.build.tokenizer_files import copy_tokenizer
    from edge.spec import ModelSpec

    spec = ModelSpec.from_hf_config(json.loads((tiny_ckpt / "config.json").read_text()))
    out = tiny_ckpt.parent / "tok-copy"
    out.mkdir(exist_ok=True)
    section = copy_tokenizer(tiny_ckpt, out, spec)
    return SpecialTokens.from_manifest(section), Tokenizer.from_file(str(tiny_ckpt / "tokenizer.json"))


def _hf_render(ckpt: Path, messages: list[dict]) -> str:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(ckpt))
    return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


@pytest.mark.parametrize(
    ("ours", "hf"),
    [
        (
            [user_message("  Describe any defect.  ", 1, 1)],
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "image"},
                        {"type": "audio"},
                        {"type": "text", "text": "  Describe any defect.  "},
                    ],
                }
            ],
        ),
        ([user_message("Hello")], [{"role": "user", "content": "Hello"}]),
        (
            [Message("system", (("text", "You inspect gears."),)), user_message("Report as JSON.", 2, 0)],
            [
                {"role": "system", "content": "You inspect gears."},
                {
                    "role": "user",
                    "content": [
                        {"type": "image"},
                        {"type": "image"},
                        {"type": "text", "text": "Report as JSON."},
                    ],
                },
            ],
        ),
    ],
)
def test_render_equals_chat_template(tiny_ckpt: Path, tokens, ours, hf) -> None:
    sp, _ = tokens
    assert render(ours, sp) == _hf_render(tiny_ckpt, hf)


def test_encode_equals_tokenizing_the_expanded_text(tokens) -> None:
    sp, tok = tokens
    text = render([user_message("Is this part good?", 1, 1)], sp)
    ids, types = encode(text, tok, sp, image_tokens=[6], audio_tokens=[4])
    # what Gemma4UnifiedProcessor does: expand placeholders in the text, then tokenize it whole
    expanded = text.replace(sp.image_placeholder, "<|image>" + "<|image|>" * 6 + "<image|>")
    expanded = expanded.replace(sp.audio_placeholder, "<|audio>" + "<|audio|>" * 4 + "<audio|>")
    assert ids[0].tolist() == tok.encode(expanded, add_special_tokens=False).ids
    assert (types[0] == IMAGE).sum() == 6 and (types[0] == AUDIO).sum() == 4
    assert types[0][ids[0] == sp.ids["boi"]].tolist() == [TEXT]  # markers are text, as the processor marks them
    assert np.all(types[0][ids[0] == sp.ids["image"]] == IMAGE)


def test_placeholder_count_mismatch_is_refused(tokens) -> None:
    sp, tok = tokens
    text = render([user_message("x", 2, 0)], sp)
    with pytest.raises(PromptError, match="2 image"):
        encode(text, tok, sp, image_tokens=[4], audio_tokens=[])


def test_unknown_role_is_refused(tokens) -> None:
    sp, _ = tokens
    with pytest.raises(PromptError, match="role"):
        render([Message("robot", (("text", "hi"),))], sp)
