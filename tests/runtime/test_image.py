"""Image decoding, raw frames, limits and patch shapes of edge.runtime.image, on images made here.

Parity of the pixel values with the HF processor is in tests/build/test_image_reference.py (needs torch).
"""

from __future__ import annotations

import struct

import cv2
import numpy as np
import pytest

from edge.errors import ImageError, InputError
from edge.runtime.image import (
    SUPPORTED_SOFT_TOKENS,
    ImageLimits,
    PixelFormat,
    decode_image,
    preprocess_image,
    probe_image,
    raw_image,
    soft_token_count,
)


def _rgb(h: int = 60, w: int = 80, seed: int = 0) -> np.ndarray:
    """Smooth colours plus a pure red block, so a channel swap cannot go unnoticed."""
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) % 256], -1).astype(np.uint8)
    img[: h // 3, : w // 3] = (255, 0, 0)
    return img


def _encode(rgb: np.ndarray, ext: str, *params: int) -> bytes:
    arr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if rgb.ndim == 3 and rgb.shape[2] == 3 else rgb
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = cv2.cvtColor(rgb, cv2.COLOR_RGBA2BGRA)
    ok, buf = cv2.imencode(ext, arr, list(params))
    assert ok
    return buf.tobytes()


# --- decoding ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", [".png", ".bmp", ".tiff"])
def test_lossless_formats_decode_to_the_same_rgb(ext: str) -> None:
    rgb = _rgb()
    out = decode_image(_encode(rgb, ext))
    assert out.dtype == np.uint8 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, rgb)


def test_jpeg_decodes_to_rgb_not_bgr() -> None:
    rgb = _rgb(96, 128)
    out = decode_image(_encode(rgb, ".jpg", cv2.IMWRITE_JPEG_QUALITY, 95))
    assert out.shape == rgb.shape
    assert np.abs(out.astype(int) - rgb).mean() < 3
    red = out[4:16, 4:36].reshape(-1, 3).mean(axis=0)
    assert red[0] > 240 and red[1] < 15 and red[2] < 15


def test_jpeg_exif_orientation_is_applied() -> None:
    """Orientation 6 (camera turned 90° clockwise) is undone, as PIL's exif_transpose in HF's loader does."""
    if not hasattr(cv2, "imencodeWithMetadata"):
        pytest.skip("this OpenCV cannot write EXIF")
    bgr = np.zeros((20, 40, 3), np.uint8)
    bgr[:, :10] = (0, 0, 255)  # red band on the left
    ifd = struct.pack("<HHHII", 1, 274, 3, 1, 6) + struct.pack("<I", 0)  # one entry: Orientation = 6
    exif = np.frombuffer(b"II*\0" + struct.pack("<I", 8) + ifd, np.uint8)
    ok, buf = cv2.imencodeWithMetadata(".jpg", bgr, [cv2.IMAGE_METADATA_EXIF], [exif])
    assert ok
    out = decode_image(buf.tobytes())
    assert out.shape == (40, 20, 3)
    assert out[:8].reshape(-1, 3).mean(axis=0)[0] > 240 and out[-8:].max() < 15  # the band is now on top


@pytest.mark.parametrize("ext", [".png", ".jpg", ".tiff", ".bmp"])
def test_gray_images_become_three_equal_channels(ext: str) -> None:
    gray = _rgb()[:, :, 1].copy()
    out = decode_image(_encode(gray, ext))
    assert out.shape == (*gray.shape, 3)
    np.testing.assert_array_equal(out[:, :, 0], out[:, :, 2])
    assert np.abs(out[:, :, 0].astype(int) - gray).max() <= (8 if ext == ".jpg" else 0)


@pytest.mark.parametrize("ext", [".png", ".tiff"])
def test_16_bit_images_are_scaled_to_8_bits(ext: str) -> None:
    rgb = _rgb()
    off = np.where(rgb < 128, 100, -100)  # ±100/257 rounds away
    rgb16 = (rgb.astype(np.int32) * 257 + off).astype(np.uint16)
    out = decode_image(_encode(rgb16, ext))
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, rgb)


@pytest.mark.parametrize("ext", [".png", ".tiff", ".bmp"])
def test_alpha_is_composited_over_white(ext: str) -> None:
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[0] = (200, 100, 0, 255)  # opaque
    rgba[1] = (200, 100, 0, 0)  # transparent → white
    rgba[2] = (0, 0, 0, 128)  # half black → ~127
    rgba[3] = (255, 0, 0, 51)  # 20 % red
    out = decode_image(_encode(rgba, ext))
    np.testing.assert_array_equal(out[0, 0], (200, 100, 0))
    np.testing.assert_array_equal(out[1, 0], (255, 255, 255))
    np.testing.assert_array_equal(out[2, 0], (127, 127, 127))
    np.testing.assert_array_equal(out[3, 0], (255, 204, 204))


def test_decode_accepts_bytearray_and_memoryview() -> None:
    data = _encode(_rgb(), ".png")
    np.testing.assert_array_equal(decode_image(bytearray(data)), decode_image(memoryview(data)))


# --- raw frames -------------------------------------------------------------------------------------------


def _raw(rgb: np.ndarray, fmt: PixelFormat, pad: int, alpha: int = 255) -> tuple[bytes, int]:
    h, w, _ = rgb.shape
    px = {
        PixelFormat.GRAY8: rgb[:, :, :1],
        PixelFormat.RGB8: rgb,
        PixelFormat.BGR8: rgb[:, :, ::-1],
        PixelFormat.RGBA8: np.dstack([rgb, np.full((h, w), alpha, np.uint8)]),
        PixelFormat.BGRA8: np.dstack([rgb[:, :, ::-1], np.full((h, w), alpha, np.uint8)]),
    }[fmt]
    rows = np.zeros((h, w * fmt.bytes_per_pixel + pad), np.uint8)
    rows[:, : w * fmt.bytes_per_pixel] = px.reshape(h, -1)
    return rows.tobytes(), rows.shape[1]


@pytest.mark.parametrize("fmt", list(PixelFormat))
@pytest.mark.parametrize("pad", [0, 3, 64])
def test_raw_frames_in_every_layout_and_stride(fmt: PixelFormat, pad: int) -> None:
    rgb = _rgb(7, 13)
    if fmt is PixelFormat.GRAY8:
        rgb = np.repeat(rgb[:, :, 1:2], 3, axis=2)
    data, stride = _raw(rgb, fmt, pad)
    out = raw_image(data, 13, 7, stride, fmt)
    np.testing.assert_array_equal(out, rgb)
    assert out.flags.c_contiguous and out.flags.writeable
    # the last row's padding may be missing
    np.testing.assert_array_equal(raw_image(data[: len(data) - pad], 13, 7, stride, fmt), rgb)
    if pad == 0:
        np.testing.assert_array_equal(raw_image(data, 13, 7, None, fmt), rgb)


@pytest.mark.parametrize("fmt", [PixelFormat.RGBA8, PixelFormat.BGRA8])
def test_raw_alpha_is_composited_over_white(fmt: PixelFormat) -> None:
    rgb = np.zeros((2, 2, 3), np.uint8)
    data, stride = _raw(rgb, fmt, 0, alpha=0)
    np.testing.assert_array_equal(raw_image(data, 2, 2, stride, fmt), np.full((2, 2, 3), 255))


@pytest.mark.parametrize(
    ("width", "height", "stride", "size", "match"),
    [
        (10, 5, 29, 150, "stride 29 is below one row of 10 rgb8 pixels"),
        (10, 5, 30, 149, r"needs 150\.\.150 bytes, got 149"),
        (10, 5, 30, 151, r"needs 150\.\.150 bytes, got 151"),
        (10, 5, 32, 157, r"needs 158\.\.160 bytes"),
        (0, 5, None, 0, "smaller than 1 px"),
        (10, -1, None, 0, "smaller than 1 px"),
        (10, 5, None, 0, "needs 150"),
    ],
)
def test_raw_frame_errors(width: int, height: int, stride: int | None, size: int, match: str) -> None:
    with pytest.raises(ImageError, match=match):
        raw_image(bytes(size), width, height, stride, PixelFormat.RGB8)


def test_raw_frame_limits_and_bad_format() -> None:
    with pytest.raises(ImageError, match="exceeds the limit of 100 pixels"):
        raw_image(bytes(303), 101, 1, None, PixelFormat.RGB8, ImageLimits(max_pixels=100))
    with pytest.raises(ImageError, match="over the limit of 100"):
        raw_image(bytes(120), 40, 1, None, PixelFormat.RGB8, ImageLimits(max_bytes=100))
    with pytest.raises(ImageError, match="unknown pixel format"):
        raw_image(bytes(30), 10, 1, None, "rgb8")  # type: ignore[arg-type]


# --- errors and limits ------------------------------------------------------------------------------------


def _png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + b"\0\0\0\0"


def _with_jpeg_size(data: bytes, width: int, height: int) -> bytes:
    i = data.index(b"\xff\xc0")  # baseline SOF0 as OpenCV writes it
    return data[: i + 5] + struct.pack(">HH", height, width) + data[i + 9 :]


def _with_tiff_size(data: bytes, width: int, height: int) -> bytes:
    assert data[:4] == b"II*\0"
    off = struct.unpack_from("<I", data, 4)[0]
    out = bytearray(data)
    for n in range(struct.unpack_from("<H", data, off)[0]):
        at = off + 2 + 12 * n
        tag, typ = struct.unpack_from("<HH", data, at)
        if tag in (256, 257):
            struct.pack_into("<H" if typ == 3 else "<I", out, at + 8, width if tag == 256 else height)
    return bytes(out)


def _with_bmp_size(data: bytes, width: int, height: int) -> bytes:
    return data[:18] + struct.pack("<ii", width, height) + data[26:]


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(_png_header(100_000, 100_000), id="png"),
        pytest.param(_with_jpeg_size(_encode(_rgb(), ".jpg"), 65_000, 65_000), id="jpeg"),
        pytest.param(_with_tiff_size(_encode(_rgb(), ".tiff"), 65_000, 65_000), id="tiff"),
        pytest.param(_with_bmp_size(_encode(_rgb(), ".bmp"), 90_000, -90_000), id="bmp-top-down"),
    ],
)
def test_oversized_images_are_refused_from_the_header(data: bytes) -> None:
    with pytest.raises(ImageError, match=r"exceeds the limit of 50000000 pixels \(max_pixels\)"):
        decode_image(data)


def test_limits_are_configurable() -> None:
    data = _encode(_rgb(60, 80), ".png")
    with pytest.raises(ImageError, match="PNG image of 80x60 exceeds the limit of 4000 pixels"):
        decode_image(data, ImageLimits(max_pixels=4000))
    with pytest.raises(ImageError, match=f"{len(data)} bytes, over the limit of 1000"):
        decode_image(data, ImageLimits(max_bytes=1000))
    with pytest.raises(ImageError, match="smaller than 64 px on a side"):
        decode_image(data, ImageLimits(min_side=64))
    assert decode_image(data, ImageLimits(max_pixels=4800, min_side=60)).shape == (60, 80, 3)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "empty"),
        (b"hello, this is not an image", "unsupported image format"),
        (b"GIF89a" + bytes(64), "unsupported image format"),
        (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0", "truncated or corrupt"),
        (b"\xff\xd8\xff\xe0\0\x10JFIF\0", "no frame header"),
        (b"II*\0\x08\0\0\0\x01\0", "corrupt"),
        (b"BM" + bytes(10), "truncated or corrupt"),
        (_png_header(10, 10) + bytes(50), "the PNG is truncated"),
        (_encode(_rgb(), ".png")[:-20], "the PNG is truncated"),
        (_encode(_rgb(), ".jpg")[:-300], "the JPEG is truncated"),
        (_png_header(0, 10), "smaller than 1 px"),
    ],
)
def test_bad_bytes_raise_image_error(data: bytes, match: str) -> None:
    with pytest.raises(ImageError, match=match):
        decode_image(data)
    if match.startswith("the ") and "truncated" in match:  # cut off in transit: refused from the header alone
        with pytest.raises(ImageError, match=match):
            probe_image(data)


def test_unsupported_sample_types_and_formats() -> None:
    with pytest.raises(ImageError, match="float32 samples are not supported"):
        decode_image(_encode(_rgb().astype(np.float32) / 255, ".tiff"))
    ok, webp = cv2.imencode(".webp", _rgb())
    if ok:  # WebP decodes in OpenCV but is not an accepted station format
        with pytest.raises(ImageError, match="send JPEG, PNG, BMP or TIFF"):
            decode_image(webp.tobytes())


@pytest.mark.parametrize("ext", [".jpg", ".png", ".bmp", ".tiff"])
def test_damaged_files_never_leak_cv2_errors(ext: str) -> None:
    """Truncations and flipped bytes either decode or raise ImageError; never cv2.error or a crash."""
    data = _encode(_rgb(40, 56), ext)
    rng = np.random.default_rng(len(data))
    variants = [data[:n] for n in range(0, len(data), max(1, len(data) // 60))]
    for _ in range(60):
        b = bytearray(data)
        for at in rng.integers(0, len(b), 4):
            b[at] = int(rng.integers(0, 256))
        variants.append(bytes(b))
    for v in variants:
        try:
            out = decode_image(v, ImageLimits(max_pixels=20_000))
        except InputError as exc:
            assert isinstance(exc, ImageError)
        else:
            assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3


# --- preprocessing ----------------------------------------------------------------------------------------


def _hf_tokens(h: int, w: int, budget: int) -> int:
    """HF's count, from the processor module (it does not need torchvision)."""
    from transformers.models.gemma4_unified.processing_gemma4_unified import get_aspect_ratio_preserving_size

    th, tw = get_aspect_ratio_preserving_size(h, w, 16, budget * 9, 3)
    return (th // 16) * (tw // 16) // 9


SIZES = [(1, 1), (1, 5000), (4000, 3), (48, 48), (480, 640), (1080, 1920), (2160, 3840), (3000, 4000),
         (1000, 1000), (333, 777), (100, 10_000), (7, 13)]  # fmt: skip


@pytest.mark.parametrize("budget", SUPPORTED_SOFT_TOKENS)
def test_token_counts_equal_hf(budget: int) -> None:
    for h, w in SIZES:
        assert soft_token_count(h, w, budget) == _hf_tokens(h, w, budget), (h, w)
        assert 0 < soft_token_count(h, w, budget) <= budget


@pytest.mark.parametrize(
    ("h", "w", "budget"),
    [(60, 80, 280), (1080, 1920, 70), (5, 700, 140), (900, 40, 1120)],
)
def test_preprocess_shapes_and_positions(h: int, w: int, budget: int) -> None:
    rgb = np.random.default_rng(h).integers(0, 256, (h, w, 3), dtype=np.uint8)
    out = preprocess_image(rgb, budget)
    n = out.num_soft_tokens
    assert n == _hf_tokens(h, w, budget)
    assert out.pixel_values.shape == (n, 6912) and out.pixel_values.dtype == np.float32
    assert out.position_ids.shape == (n, 2) and out.position_ids.dtype == np.int64
    assert out.pixel_values.min() >= 0.0 and out.pixel_values.max() <= 1.0
    th, tw = out.resized_size
    assert th % 48 == 0 and tw % 48 == 0 and (th // 48) * (tw // 48) == n
    xs, ys = out.position_ids[:, 0], out.position_ids[:, 1]
    np.testing.assert_array_equal(xs, np.tile(np.arange(tw // 48), th // 48))  # x varies fastest
    np.testing.assert_array_equal(ys, np.repeat(np.arange(th // 48), tw // 48))


def test_patches_are_48px_blocks_in_row_col_channel_order() -> None:
    """672x912 is already its own target size (HF then skips the resize), so patches are plain crops."""
    rgb = np.random.default_rng(3).integers(0, 256, (672, 912, 3), dtype=np.uint8)
    out = preprocess_image(rgb)
    assert out.resized_size == (672, 912)
    for i in (0, 1, 18, 19, out.num_soft_tokens - 1):
        x, y = out.position_ids[i]
        block = rgb[48 * y : 48 * y + 48, 48 * x : 48 * x + 48].astype(np.float32) * np.float32(1 / 255)
        np.testing.assert_array_equal(out.pixel_values[i].reshape(48, 48, 3), block)


def test_preprocess_accepts_views_and_rejects_bad_input() -> None:
    rgb = _rgb(200, 300)
    np.testing.assert_array_equal(
        preprocess_image(rgb[::-1]).pixel_values, preprocess_image(rgb[::-1].copy()).pixel_values
    )
    for bad in (rgb.astype(np.float32), rgb[:, :, :2], rgb[:, :, 0], rgb[:0], [[1, 2, 3]]):
        with pytest.raises(ImageError):
            preprocess_image(bad)  # type: ignore[arg-type]
    with pytest.raises(ImageError, match="empty"):
        soft_token_count(0, 10)
    for budget in (0, 256, 281, 2240):
        with pytest.raises(ImageError, match="max_soft_tokens must be one of"):
            preprocess_image(rgb, budget)
        with pytest.raises(ImageError, match="max_soft_tokens must be one of"):
            soft_token_count(10, 10, budget)
