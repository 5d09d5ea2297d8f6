"""Decode station images and turn them into Gemma 4 unified vision patches, equal to the HF processor.

Mirrors ``image_processing_gemma4_unified.py`` (transformers 5.23): resize to a soft-token budget
keeping the aspect ratio, ×1/255, 16 px patches merged 3×3 into 48 px patches. HF resizes the uint8
image with torchvision bicubic ``antialias=True``, which on CPU is torch's native uint8 kernel, i.e.
Pillow's resampler: Keys cubic (a = −0.5) stretched by the scale when shrinking, int16 fixed-point
weights, a horizontal then a vertical pass, each rounded to uint8. :func:`_resize` redoes that
arithmetic with banded matrix products kept exact (integer partial sums below 2**24, else float64), so
the patches are bit-identical: ``tests/build/test_image_reference.py`` measures max abs error 0, where
OpenCV INTER_CUBIC / INTER_LINEAR / INTER_AREA are off by up to 0.55 / 0.41 / 0.54 (in [0, 1] units).

>>> img = preprocess_image(decode_image(jpeg_bytes), max_soft_tokens=280)
>>> img.pixel_values.shape, img.position_ids.shape  # (n, 6912) float32, (n, 2) int64 (x, y)
"""

from __future__ import annotations

import enum
import math
import struct
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from edge.errors import ImageError

SUPPORTED_SOFT_TOKENS = (70, 140, 280, 560, 1120)


@dataclass(frozen=True)
class ImageLimits:
    """What an input image may cost before we spend memory on it.

    >>> decode_image(data, ImageLimits(max_pixels=12_000_000))
    """

    max_bytes: int = 64 * 1024 * 1024  # encoded file or raw frame
    max_pixels: int = 50_000_000
    min_side: int = 1


class PixelFormat(enum.Enum):
    """Channel layout of a raw 8-bit frame.

    >>> raw_image(frame_bytes, 1920, 1080, None, PixelFormat.BGR8)
    """

    GRAY8 = "gray8"
    RGB8 = "rgb8"
    BGR8 = "bgr8"
    RGBA8 = "rgba8"
    BGRA8 = "bgra8"

    @property
    def bytes_per_pixel(self) -> int:
        return {"gray8": 1, "rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4}[self.value]


@dataclass(frozen=True)
class PreparedImage:
    """Vision-graph inputs for one image: only the valid merged patches, no padding."""

    pixel_values: np.ndarray  # float32 [n, (pooling·patch)² · 3], each a 48×48 block in (row, col, RGB) order
    position_ids: np.ndarray  # int64 [n, 2], (x, y) of each merged patch
    num_soft_tokens: int
    resized_size: tuple[int, int]  # (height, width) after the resize


def decode_image(data: bytes, limits: ImageLimits | None = None) -> np.ndarray:
    """Decode JPEG/PNG/BMP/TIFF bytes into ``uint8`` RGB ``[H, W, 3]``; every failure is an ImageError.

    Headers are parsed first, so oversized images are refused before any pixel is allocated. JPEG EXIF
    orientation is applied (as HF's loader does), alpha composited over white (as HF's ``convert_to_rgb``).
    """
    limits = limits or ImageLimits()
    if not data:
        raise ImageError("the image is empty (0 bytes)")
    if len(data) > limits.max_bytes:
        raise ImageError(f"the image is {len(data)} bytes, over the limit of {limits.max_bytes} (max_bytes)")
    data = data if isinstance(data, bytes) else bytes(data)
    kind, width, height = _header_size(data)
    _check_size(width, height, limits, kind)
    _check_complete(kind, data)
    flag = cv2.IMREAD_COLOR_RGB if kind == "JPEG" else cv2.IMREAD_UNCHANGED
    try:
        arr = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    except cv2.error as exc:
        raise ImageError(f"cannot decode the {kind} image: {getattr(exc, 'err', None) or exc}") from None
    if arr is None:
        raise ImageError(f"cannot decode the {kind} image: the data is corrupt or truncated")
    _check_size(arr.shape[1], arr.shape[0], limits, kind)
    return arr if kind == "JPEG" else _to_rgb8(arr, bgr=True)


def probe_image(data: bytes, limits: ImageLimits | None = None) -> tuple[str, int, int]:
    """Format, width and height from the header alone, with the size limits applied (no pixels decoded)."""
    limits = limits or ImageLimits()
    if not data:
        raise ImageError("the image is empty (0 bytes)")
    if len(data) > limits.max_bytes:
        raise ImageError(f"the image is {len(data)} bytes, over the limit of {limits.max_bytes} (max_bytes)")
    data = data if isinstance(data, bytes) else bytes(data)
    kind, width, height = _header_size(data)
    _check_size(width, height, limits, kind)
    _check_complete(kind, data)
    return kind, width, height


def _check_complete(kind: str, data: bytes) -> None:
    """Refuse a file cut off in transit, from its end markers (OpenCV would decode a truncated JPEG's top part)."""
    end = data.rstrip(b"\0")  # some cameras pad after the end marker
    if kind == "JPEG" and not end.endswith(b"\xff\xd9"):
        raise ImageError("the JPEG is truncated: it does not end with the end-of-image marker (FFD9)")
    if kind == "PNG" and b"IEND" not in data[-64:]:
        raise ImageError("the PNG is truncated: it has no IEND chunk")
    if kind == "BMP" and len(data) < struct.unpack_from("<I", data, 2)[0]:
        raise ImageError(f"the BMP is truncated: its header says {struct.unpack_from('<I', data, 2)[0]} bytes")


def raw_image(
    data: bytes,
    width: int,
    height: int,
    stride: int | None,
    fmt: PixelFormat,
    limits: ImageLimits | None = None,
) -> np.ndarray:
    """Copy a raw 8-bit frame (rows ``stride`` bytes apart; None = tightly packed) into RGB ``[H, W, 3]``.

    The buffer may omit the last row's padding. Alpha is composited over white, like encoded images.
    """
    stride = check_raw(len(data), width, height, stride, fmt, limits)
    bpp = fmt.bytes_per_pixel
    flat = np.frombuffer(data, np.uint8)
    pix = np.lib.stride_tricks.as_strided(flat, (height, width, bpp), (stride, bpp, 1), writeable=False)
    return _to_rgb8(pix, bgr=fmt in (PixelFormat.BGR8, PixelFormat.BGRA8))


def check_raw(
    nbytes: int, width: int, height: int, stride: int | None, fmt: PixelFormat, limits: ImageLimits | None = None
) -> int:
    """The checks of :func:`raw_image` without touching the pixels; returns the effective stride."""
    limits = limits or ImageLimits()
    if not isinstance(fmt, PixelFormat):
        raise ImageError(f"unknown pixel format {fmt!r}; use one of {[f.value for f in PixelFormat]}")
    _check_size(width, height, limits, "raw")
    row = width * fmt.bytes_per_pixel
    stride = row if stride is None else stride
    if stride < row:
        raise ImageError(f"stride {stride} is below one row of {width} {fmt.value} pixels ({row} bytes)")
    need, most = stride * (height - 1) + row, stride * height
    if not need <= nbytes <= most:
        raise ImageError(
            f"a {width}x{height} {fmt.value} frame with stride {stride} needs {need}..{most} bytes, got "
            f"{nbytes}; check width, height, stride and pixel format"
        )
    if nbytes > limits.max_bytes:
        raise ImageError(f"the frame is {nbytes} bytes, over the limit of {limits.max_bytes} (max_bytes)")
    return stride


def aspect_ratio_preserving_size(
    height: int, width: int, patch_size: int, max_patches: int, pooling_kernel_size: int
) -> tuple[int, int]:
    """HF's ``get_aspect_ratio_preserving_size``, same arithmetic: largest (pooling·patch)-multiple size."""
    target_px = max_patches * (patch_size**2)
    factor = math.sqrt(target_px / (height * width))
    side_mult = pooling_kernel_size * patch_size
    target_height = math.floor(factor * height / side_mult) * side_mult
    target_width = math.floor(factor * width / side_mult) * side_mult
    if target_height == 0 and target_width == 0:
        raise ImageError(f"a {width}x{height} image would be resized to 0x0")
    max_side_length = (max_patches // pooling_kernel_size**2) * side_mult
    if target_height == 0:
        target_height = side_mult
        target_width = min(math.floor(width / height) * side_mult, max_side_length)
    elif target_width == 0:
        target_width = side_mult
        target_height = min(math.floor(height / width) * side_mult, max_side_length)
    if target_height * target_width > target_px:
        raise ImageError(f"a {width}x{height} image cannot fit {max_patches} patches of {patch_size} px")
    return target_height, target_width


def soft_token_count(
    height: int, width: int, max_soft_tokens: int = 280, patch_size: int = 16, pooling_kernel_size: int = 3
) -> int:
    """Soft tokens an image of this size becomes (``_get_num_multimodal_tokens`` in HF's processor)."""
    th, tw = _target(height, width, max_soft_tokens, patch_size, pooling_kernel_size)
    return (th // patch_size) * (tw // patch_size) // pooling_kernel_size**2


def preprocess_image(
    rgb: np.ndarray, max_soft_tokens: int = 280, patch_size: int = 16, pooling_kernel_size: int = 3
) -> PreparedImage:
    """Resize, rescale and patchify an RGB ``uint8`` image exactly as ``Gemma4UnifiedImageProcessor``."""
    if not (isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3):
        got = f"{rgb.dtype} {rgb.shape}" if isinstance(rgb, np.ndarray) else type(rgb).__name__
        raise ImageError(f"preprocess_image needs a uint8 RGB array [H, W, 3], got {got}")
    k = patch_size * pooling_kernel_size
    th, tw = _target(rgb.shape[0], rgb.shape[1], max_soft_tokens, patch_size, pooling_kernel_size)
    img = _resize(np.ascontiguousarray(rgb), th, tw)
    ny, nx = th // k, tw // k
    # One 48×48 block per merged patch, flattened (row, col, channel): the (k, p, k, q, c) order that
    # convert_image_to_patches + patches_merge produce, merged patches row-major over the grid.
    blocks = img.reshape(ny, k, nx, k * 3).transpose(0, 2, 1, 3)
    pixel_values = np.empty((ny, nx, k, k * 3), np.float32)
    np.multiply(blocks, np.float32(1 / 255), out=pixel_values, dtype=np.float32)  # HF: uint8 * (1/255)
    xs, ys = np.meshgrid(np.arange(nx, dtype=np.int64), np.arange(ny, dtype=np.int64), indexing="xy")
    positions = np.stack([xs, ys], axis=-1).reshape(-1, 2)
    return PreparedImage(pixel_values.reshape(ny * nx, -1), positions, ny * nx, (th, tw))


def _check_size(width: int, height: int, limits: ImageLimits, kind: str) -> None:
    if min(width, height) < max(limits.min_side, 1):
        raise ImageError(f"{kind} image of {width}x{height} is smaller than {limits.min_side} px on a side")
    if width * height > limits.max_pixels:
        msg = f"{kind} image of {width}x{height} exceeds the limit of {limits.max_pixels} pixels (max_pixels)"
        raise ImageError(msg + "; scale it down at the source")


def _target(height: int, width: int, max_soft_tokens: int, patch: int, pooling: int) -> tuple[int, int]:
    if max_soft_tokens not in SUPPORTED_SOFT_TOKENS:
        raise ImageError(f"max_soft_tokens must be one of {SUPPORTED_SOFT_TOKENS}, got {max_soft_tokens}")
    if min(height, width) < 1:
        raise ImageError(f"the image is empty ({width}x{height})")
    return aspect_ratio_preserving_size(height, width, patch, max_soft_tokens * pooling**2, pooling)


def _header_size(head: bytes) -> tuple[str, int, int]:
    """Format and (width, height) read from the headers alone (segments are skipped, not read)."""
    try:
        if head[:3] == b"\xff\xd8\xff":
            return "JPEG", *_jpeg_size(head)
        if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
            return "PNG", *struct.unpack_from(">II", head, 16)
        if head[:2] == b"BM":
            if struct.unpack_from("<I", head, 14)[0] == 12:  # OS/2 BITMAPCOREHEADER
                return "BMP", *struct.unpack_from("<HH", head, 18)
            w, h = struct.unpack_from("<ii", head, 18)
            return "BMP", w, abs(h)  # negative height = top-down rows
        if head[:4] in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"):
            return "TIFF", *_tiff_size(head)
    except (struct.error, IndexError):
        raise ImageError("the image header is truncated or corrupt") from None
    raise ImageError(f"unsupported image format (starts with {head[:8].hex()}); send JPEG, PNG, BMP or TIFF")


def _jpeg_size(b: bytes) -> tuple[int, int]:
    i = 2
    while i + 9 <= len(b):
        if b[i] != 0xFF:
            break
        marker = b[i + 1]
        if marker == 0xFF or marker == 0x01 or 0xD0 <= marker <= 0xD7:  # fill byte / standalone markers
            i += 1 if marker == 0xFF else 2
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # SOFn: P, Y, X
            h, w = struct.unpack_from(">HH", b, i + 5)
            if h == 0:
                raise ImageError("JPEG images whose height is set by a DNL marker are not supported")
            return w, h
        if marker in (0xD9, 0xDA):
            break
        i += 2 + struct.unpack_from(">H", b, i + 2)[0]
    raise ImageError("the JPEG has no frame header; the data is corrupt or truncated")


def _tiff_size(b: bytes) -> tuple[int, int]:
    order = "<" if b[:2] == b"II" else ">"
    big = b[2:4] in (b"+\0", b"\0+")  # BigTIFF: 8-byte offsets and counts, 20-byte entries
    off = struct.unpack_from(order + ("Q" if big else "I"), b, 8 if big else 4)[0]
    count = struct.unpack_from(order + ("Q" if big else "H"), b, off)[0]
    first, size, value_at = off + (8 if big else 2), (20 if big else 12), (12 if big else 8)
    found: dict[int, int] = {}
    for at in range(first, first + size * min(count, (len(b) - first) // size), size):
        tag, typ = struct.unpack_from(order + "HH", b, at)
        if tag in (256, 257) and typ in (3, 4, 16):  # ImageWidth, ImageLength as SHORT, LONG, LONG8
            found[tag] = struct.unpack_from(order + {3: "H", 4: "I", 16: "Q"}[typ], b, at + value_at)[0]
    if len(found) < 2:
        raise ImageError("the TIFF has no width/height; the data is corrupt or truncated")
    return found[256], found[257]


def _to_rgb8(arr: np.ndarray, bgr: bool) -> np.ndarray:
    """Any decoded or raw array (gray, 3 or 4 channels, 8 or 16 bit) → contiguous ``uint8`` RGB."""
    if arr.dtype == np.uint16:
        arr = cv2.convertScaleAbs(np.ascontiguousarray(arr), alpha=255 / 65535)  # rounds to nearest
    elif arr.dtype != np.uint8:
        raise ImageError(f"{arr.dtype} samples are not supported; send 8- or 16-bit integer images")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 2:
        return cv2.cvtColor(np.ascontiguousarray(arr), cv2.COLOR_GRAY2RGB)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ImageError(f"images with {arr.shape[2:]} channels are not supported; send gray, RGB or RGBA")
    if arr.shape[2] == 4:  # composite over white, rounded: c·a/255 + 255·(1 − a/255)
        alpha = arr[:, :, 3:].astype(np.uint32)
        arr = ((arr[:, :, :3] * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)
    elif not bgr:
        return np.array(arr, order="C")  # an owned copy, never a view of the caller's buffer
    return cv2.cvtColor(np.ascontiguousarray(arr), cv2.COLOR_BGR2RGB) if bgr else arr


def _resize(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """torch uint8 ``interpolate(bicubic, antialias=True)``: horizontal pass, then vertical, each → uint8."""
    h, w, c = img.shape
    if width != w:  # rows of the transposed image are the columns; channels ride along
        cols = _resample_rows(cv2.transpose(img).reshape(w, h * c), width)
        img = cv2.transpose(cols.reshape(width, h, c))
    if height != h:
        img = _resample_rows(img.reshape(h, width * c), height).reshape(height, width, c)
    return img


def _resample_rows(x: np.ndarray, n_out: int) -> np.ndarray:
    """``out[o] = clamp((2**(p-1) + Σ_j wint[o, j]·x[j]) >> p)``, as band blocks ``m @ x[s:e]``."""
    dtype, blocks = _plan(x.shape[0], n_out)
    out = np.empty((n_out, x.shape[1]), np.uint8)
    for o0, s, m in blocks:
        acc = m @ x[s : s + m.shape[1]].astype(dtype)  # weights carry 2**-p, so this is acc / 2**p exactly
        acc += 0.5
        np.floor(acc, out=acc)
        np.clip(acc, 0, 255, out=acc)
        out[o0 : o0 + m.shape[0]] = acc
    return out


@lru_cache(maxsize=64)
def _plan(n_in: int, n_out: int, block: int = 8) -> tuple[type, list[tuple[int, int, np.ndarray]]]:
    """torch's ``_compute_indices_int16_weights_aa`` (UpSampleKernel.cpp) for bicubic, same double
    arithmetic, cut into bands of ``block`` output rows: ``(first row, first input row, weights)``."""
    scale = n_in / n_out
    support, inv = (2.0 * scale, 1.0 / scale) if scale >= 1.0 else (2.0, 1.0)
    taps = math.ceil(support) * 2 + 1
    center = scale * (np.arange(n_out) + 0.5)
    xmin = np.maximum((center - support + 0.5).astype(np.int64), 0)
    xsize = np.minimum((center + support + 0.5).astype(np.int64), n_in) - xmin
    j = np.arange(taps)
    t = np.abs(((j + xmin[:, None]).astype(np.float64) - center[:, None] + 0.5) * inv)
    a = -0.5
    w = np.where(t < 1.0, ((a + 2) * t - (a + 3)) * t * t + 1, ((a * t - 5 * a) * t + 8 * a) * t - 4 * a)
    w = np.where((t < 2.0) & (j < xsize[:, None]), w, 0.0)
    total = np.zeros(n_out)
    for k in range(taps):  # sequential, like the C++ loop
        total += w[:, k]
    w = w / np.where(total != 0.0, total, 1.0)[:, None]
    p = 0
    while p < 22 and int(0.5 + w.max() * (1 << (p + 1))) < (1 << 15):
        p += 1
    wint = np.trunc(w * (1 << p) + np.where(w < 0, -0.5, 0.5))
    # Exact when |every partial sum| < 2**24 (in units of 2**-p): float32, else float64.
    exact32 = 255 * np.abs(wint).sum(axis=1).max() + (1 << p) < 2**24
    dtype = np.float32 if exact32 else np.float64
    wf = wint * 2.0**-p
    blocks = []
    for o0 in range(0, n_out, block):
        o1 = min(o0 + block, n_out)
        s, e = int(xmin[o0]), int((xmin[o0:o1] + xsize[o0:o1]).max())
        m = np.zeros((o1 - o0, e - s), dtype)
        for r, o in enumerate(range(o0, o1)):
            m[r, xmin[o] - s : xmin[o] - s + xsize[o]] = wf[o, : xsize[o]]
        blocks.append((o0, s, m))
    return dtype, blocks
