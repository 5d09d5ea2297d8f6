"""The station engine on a real exported bundle: streaming, sampling, stopping and bad input."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.build.parity import synthetic_audio, synthetic_image
from edge.errors import AudioError, ImageError, PromptError
from edge.runtime.engine import Engine, GenerationParams
from edge.runtime.sampling import SamplingParams


@pytest.fixture(scope="module")
def engine(fp32_bundle: Path) -> Engine:
    return Engine.load(fp32_bundle, threads=1)


def test_stream_yields_the_text_of_the_result(engine: Engine) -> None:
    chunks = list(engine.stream("Describe any defect.", params=GenerationParams(max_new_tokens=12, min_new_tokens=12)))
    final = chunks[-1]
    assert final.done and final.result is not None
    assert [c.token_id for c in chunks[:-1]] == final.result.token_ids
    assert "".join(c.text for c in chunks) == final.result.text
    assert final.result.stop_reason == "max_new_tokens"
    assert final.result.text == engine.tokenizer.decode(final.result.token_ids, skip_special_tokens=True)


def test_image_and_audio_from_encoded_files(engine: Engine, tmp_path: Path) -> None:
    jpg = tmp_path / "f.jpg"
    cv2.imwrite(str(jpg), synthetic_image()[:, :, ::-1])
    prepared = engine.prepare("What is wrong?", images=[jpg.read_bytes()], audio=[synthetic_audio(1.0)])
    ids = prepared.input_ids[0]
    assert (ids == engine.spec.tokens.image).sum() == prepared.images[0].num_soft_tokens
    assert (ids == engine.spec.tokens.audio).sum() == 25  # 1 s at 16 kHz / 640 samples per token
    result = engine.generate(prepared, params=GenerationParams(max_new_tokens=4, min_new_tokens=4))
    assert len(result.token_ids) == 4
    assert result.timings.prompt_tokens == ids.size and result.timings.ttft_s > 0


def test_sampling_is_reproducible_with_a_seed(engine: Engine) -> None:
    def run(seed: int) -> list[int]:
        params = GenerationParams(
            max_new_tokens=16,
            min_new_tokens=16,
            sampling=SamplingParams(temperature=1.5, top_k=50, top_p=0.95, seed=seed),
        )
        return engine.generate("Inspect the part.", params=params).token_ids

    assert run(1) == run(1)
    assert run(1) != run(2)
    greedy = engine.generate("Inspect the part.", params=GenerationParams(max_new_tokens=16, min_new_tokens=16))
    assert greedy.token_ids != run(1)


def test_stop_token_ends_generation_and_is_not_printed(fp32_bundle: Path) -> None:
    engine = Engine.load(fp32_bundle, threads=1, verify=False)
    params = GenerationParams(max_new_tokens=8, min_new_tokens=0)
    first = engine.generate("Is this part good?", params=params).token_ids
    k = next(i for i in range(1, len(first)) if first[i] not in first[:i])
    engine.eos_ids = [first[k]]  # make a later greedy token a stop token
    result = engine.generate("Is this part good?", params=params)
    assert result.stop_reason == "eos"
    assert result.token_ids == first[: k + 1]
    assert result.text == engine.tokenizer.decode(first[:k], skip_special_tokens=True)
    banned = engine.generate("Is this part good?", params=GenerationParams(max_new_tokens=8, min_new_tokens=8))
    assert len(banned.token_ids) == 8 and first[k] not in banned.token_ids


def test_context_overflow_is_a_prompt_error(engine: Engine) -> None:
    with pytest.raises(PromptError, match="context"):
        engine.generate("word " * 2000, params=GenerationParams(max_new_tokens=8))


@pytest.mark.parametrize("data", [b"", b"\xff\xd8\xff\xe0 not really a jpeg", b"GIF89a" + b"\0" * 40])
def test_bad_images_are_input_errors(engine: Engine, data: bytes) -> None:
    with pytest.raises(ImageError):
        engine.prepare("x", images=[data])


def test_bad_audio_is_an_input_error(engine: Engine) -> None:
    with pytest.raises(AudioError, match="NaN"):
        engine.prepare("x", audio=[np.array([0.0, np.nan], dtype=np.float32)])
    with pytest.raises(AudioError, match="empty"):
        engine.prepare("x", audio=[np.zeros(0, dtype=np.float32)])


def test_single_items_and_lists_are_both_accepted(fp32_bundle: Path) -> None:
    engine = Engine(fp32_bundle, threads=1)  # the constructor takes a bundle path too
    wave = synthetic_audio(0.5)
    one = engine.prepare("x", images=synthetic_image(), audio=wave)
    many = engine.prepare("x", images=[synthetic_image()], audio=[wave])
    assert np.array_equal(one.input_ids, many.input_ids)
    assert len(one.audio) == 1 and len(one.images) == 1
