"""Content-addressed evidence files next to the journal: frames, anomaly maps, audio windows and reports.

A file is named by the SHA-256 of its bytes (``evidence/ab/ab12….jpg``) and indexed in the journal's
SQLite file with its retention class. The frame is kept as received (JPEG/PNG bytes unchanged; a raw
frame or an array is encoded to JPEG once); an anomaly map becomes a 16-bit PNG (0..1 → 0..65535), an
audio window a 16-bit WAV, a report its JSON text.

Retention is per class (:class:`~edge.journal.records.EvidenceClass`): anomalies and normal samples each
have a byte budget and an age limit, so a stream of good parts can never push out the evidence of a
defect. Normal decisions the gate scored below threshold keep their frame only for a random share
(``normal_sample_rate``, for recalibrating thresholds later). Below ``min_free_bytes`` of free space on
the evidence disk nothing is written: the decision is journaled without its evidence, with the reason,
and counted (``edge_inspector_evidence_skipped_total``). A full disk is never an exception here.

>>> store = EvidenceStore(Path("/var/lib/edge-inspector/evidence"), budgets, conn)
>>> refs, skipped = store.put(record)      # on the journal's writer thread, inside its transaction
"""

from __future__ import annotations

import ctypes
import hashlib
import io
import logging
import os
import random
import sqlite3
import sys
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.errors import NotFoundError
from edge.journal.records import EvidenceClass, EvidenceRef, Kind, Record

log = logging.getLogger("edge.journal")
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/bmp": "bmp",
    "image/tiff": "tif",
    "audio/wav": "wav",
    "application/json": "json",
}
MEDIA_TYPES = {v: k for k, v in EXTENSIONS.items()}
_SNIFF = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG", "image/png"), (b"BM", "image/bmp"), (b"II*\x00", "image/tiff"))


# An anomaly map is mostly runs of equal levels (0 outside the defect): zlib's run-length strategy with no PNG row
# filter encodes the gate's 256 × 192 maps in 0.25–0.27 ms of CPU at 1.1 KB, where the defaults took 0.34–0.46 ms
# at 1.9 KB (80 maps of the journal bench's test split, lossless either way). OpenCV before 4.11 has no filter
# option: the strategy alone there (0.33–0.38 ms).
MAP_PNG = [cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]
if hasattr(cv2, "IMWRITE_PNG_FILTER"):
    MAP_PNG += [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE]


@dataclass(frozen=True)
class EvidenceBudgets:
    """Retention: bytes and age per class, the share of normal frames kept, the free-space floor."""

    anomaly_max_bytes: int = 2 * 1024**3
    anomaly_max_age_seconds: float = 90 * 86400.0
    normal_max_bytes: int = 512 * 1024**2
    normal_max_age_seconds: float = 7 * 86400.0
    normal_sample_rate: float = 0.01
    min_free_bytes: int = 1024**3
    jpeg_quality: int = 90

    def limits(self, cls: EvidenceClass) -> tuple[int, float]:
        if cls is EvidenceClass.ANOMALY:
            return self.anomaly_max_bytes, self.anomaly_max_age_seconds
        return self.normal_max_bytes, self.normal_max_age_seconds


def encode(record: Record, quality: int) -> list[tuple[str, str, bytes]]:
    """(role, media type, bytes) for each piece of the record's evidence."""
    ev = record.evidence
    if ev is None:
        return []
    out: list[tuple[str, str, bytes]] = []
    if ev.frame is not None:
        out.append(("frame", *_frame(ev.frame, quality)))
    if ev.anomaly_map is not None:
        out.append(("anomaly_map", "image/png", _imencode(".png", _map16(ev.anomaly_map), MAP_PNG)))
    if ev.audio is not None:
        out.append(("audio", "audio/wav", _wav(np.asarray(ev.audio, np.float32).reshape(-1))))
    if ev.report:
        out.append(("report", "application/json", ev.report.encode()))
    return out


def _map16(anomaly_map: Any) -> np.ndarray:
    """Scores in [0, 1] as 16-bit levels, rounded to nearest; NaN and anything below 0 become 0, anything above 1
    (+inf too) becomes 65535. One OpenCV multiply after the clamp: about half the writer thread's time of
    nan_to_num, clip and cast."""
    # +inf would otherwise saturate to 0, and NaN to 0 or 65535 depending on the OpenCV release (5.0: 0, 5.1:
    # 65535): clamp to [0, 1] first, fmax taking 0 over NaN
    m = np.fmax(np.minimum(np.asarray(anomaly_map, np.float32).squeeze(), 1.0), 0.0)
    # opencv-python-headless 5.0 stubs lack the scalar form (5.1 has it): ignored, and unused where it is found
    return cv2.multiply(m, 65535.0, dtype=cv2.CV_16U)  # type: ignore[call-overload,unused-ignore]


def _frame(frame: Any, quality: int) -> tuple[str, bytes]:
    if isinstance(frame, bytes | bytearray | memoryview):
        data = bytes(frame)
        return next((t for magic, t in _SNIFF if data.startswith(magic)), "application/octet-stream"), data
    if isinstance(frame, np.ndarray):
        rgb = frame
    else:
        kind = str(frame.kind).upper()
        if kind in ("JPEG", "PNG", "BMP", "TIFF"):
            return {"JPEG": "image/jpeg", "PNG": "image/png", "BMP": "image/bmp", "TIFF": "image/tiff"}[kind], bytes(
                frame.data
            )
        rgb = frame.decode()  # a raw frame: encoded once, here
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if rgb.ndim == 3 and rgb.shape[2] == 3 else rgb
    return "image/jpeg", _imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])


def _imencode(ext: str, image: np.ndarray, params: list[int]) -> bytes:
    ok, buf = cv2.imencode(ext, image, params)
    if not ok:
        raise ValueError(f"OpenCV could not encode a {image.shape} {image.dtype} image as {ext}")
    return buf.tobytes()


def _wav(samples: np.ndarray) -> bytes:
    pcm = (np.clip(np.nan_to_num(samples), -1.0, 1.0) * 32767.0).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


class EvidenceStore:
    """The evidence folder and its index (rows in the journal's file, written in the journal's transaction)."""

    def __init__(
        self,
        root: Path,
        budgets: EvidenceBudgets,
        conn: sqlite3.Connection,
        *,
        durable: bool = True,
        rng: random.Random | None = None,
        free_bytes: Callable[[Path], int] | None = None,
        metrics: Any = None,
    ) -> None:
        self.root, self.budgets, self.conn, self.durable = root, budgets, conn, durable
        self._unsynced: list[Path] = []  # files written since the last sync (durable only)
        self.rng = rng or random.Random()
        self.free_bytes = free_bytes or _free_bytes
        self.metrics = metrics
        root.mkdir(parents=True, exist_ok=True)
        self.totals = {c: 0 for c in EvidenceClass}
        for cls, total in conn.execute("SELECT class, SUM(bytes) FROM evidence GROUP BY class"):
            self.totals[EvidenceClass(cls)] = int(total)
        if metrics is not None:  # read at every scrape, so the disk-near-floor alert never sees a stale value
            metrics.evidence_free.set_function(lambda: self.free_bytes(self.root))
            metrics.evidence_floor.set(budgets.min_free_bytes)
        self._report()

    # -- writing (the journal's writer thread) --------------------------------------------------------------
    def put(self, record: Record, now: float) -> tuple[list[EvidenceRef], str]:
        """Store the record's evidence; returns the references and, when nothing was stored, why."""
        cls = record.evidence_class
        if record.evidence is None or not record.evidence:
            return [], ""
        sampled = record.kind is Kind.SCORED and cls is EvidenceClass.NORMAL
        if sampled and self.rng.random() >= self.budgets.normal_sample_rate:
            return [], ""  # a normal frame outside the random share: nothing to keep
        try:
            pieces = encode(record, self.budgets.jpeg_quality)
        except Exception as exc:  # a bad array must not cost the decision its journal entry
            log.warning("evidence of event %s could not be encoded: %s", record.source, exc)
            return [], f"could not encode: {exc}"
        size = sum(len(data) for _, _, data in pieces)
        free = self.free_bytes(self.root)
        if free - size < self.budgets.min_free_bytes:
            return [], self._skip(cls, f"free space {free} bytes is below evidence_min_free_bytes")
        refs = []
        try:
            for role, media, data in pieces:
                refs.append(self._write(role, media, data, cls, now))
        except OSError as exc:  # ENOSPC, EIO, a read-only remount: the journal goes on without evidence
            return [], self._skip(cls, f"cannot write evidence ({exc.strerror or exc})")
        self._report()
        return refs, ""

    def _skip(self, cls: EvidenceClass, why: str) -> str:
        if self.metrics is not None:
            self.metrics.evidence_skipped.labels(cls.value).inc()
        log.warning("evidence skipped: %s", why)
        return why

    def _write(self, role: str, media: str, data: bytes, cls: EvidenceClass, now: float) -> EvidenceRef:
        digest = hashlib.sha256(data).hexdigest()
        name = f"{digest[:2]}/{digest}.{EXTENSIONS.get(media, 'bin')}"
        path = self.root / name
        row = self.conn.execute("SELECT class, bytes FROM evidence WHERE id = ?", (digest,)).fetchone()
        if row is None or not path.exists():
            tmp = path.with_name(path.name + ".tmp")
            try:
                f = open(tmp, "wb")  # noqa: SIM115 -- closed by the with below
            except FileNotFoundError:  # a new fan-out folder, or one removed by hand (a mkdir per file: 5% of a put)
                path.parent.mkdir(parents=True, exist_ok=True)
                f = open(tmp, "wb")  # noqa: SIM115
            with f:
                f.write(data)
            os.replace(tmp, path)
            if self.durable:
                self._unsynced.append(path)
        keep = EvidenceClass.ANOMALY if cls is EvidenceClass.ANOMALY or (row and row[0] == "anomaly") else cls
        if row is not None:
            self.totals[EvidenceClass(row[0])] -= int(row[1])
        self.conn.execute(
            "INSERT INTO evidence(id, class, name, bytes, time) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET class=excluded.class, time=excluded.time",
            (digest, keep.value, name, len(data), now),
        )
        self.totals[keep] += len(data)
        return EvidenceRef(digest, role, media, len(data))

    def sync(self) -> None:
        """Make the files written since the last call durable; the journal calls this before the commit that
        references them. One ``syncfs`` of the evidence folder's filesystem for the whole batch (half the CPU
        of an fsync per file, measured), or an fsync per file where syncfs is not available."""
        files, self._unsynced = self._unsynced, []
        if not files:
            return
        try:
            if not _syncfs(self.root):
                for path in files:
                    fd = os.open(path, os.O_RDONLY)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
        except OSError as exc:  # EIO: the events still commit; their evidence may not survive a power cut
            log.error("evidence of %d file(s) may not be durable: %s", len(files), exc.strerror or exc)

    def prune(self, now: float) -> int:
        """Apply each class's age limit and byte budget, oldest first; returns the files deleted."""
        deleted = 0
        for cls in EvidenceClass:
            max_bytes, max_age = self.budgets.limits(cls)
            rows = self.conn.execute(
                "SELECT id, name, bytes FROM evidence WHERE class = ? AND time < ?", (cls.value, now - max_age)
            ).fetchall()
            while self.totals[cls] - sum(r[2] for r in rows) > max_bytes:
                more = self.conn.execute(
                    "SELECT id, name, bytes FROM evidence WHERE class = ? ORDER BY time, id LIMIT ? OFFSET ?",
                    (cls.value, 200, len(rows)),
                ).fetchall()
                if not more:
                    break
                for r in more:
                    rows.append(r)
                    if self.totals[cls] - sum(x[2] for x in rows) <= max_bytes:
                        break
            for digest, name, size in rows:
                self.conn.execute("DELETE FROM evidence WHERE id = ?", (digest,))
                (self.root / name).unlink(missing_ok=True)
                self.totals[cls] -= int(size)
                deleted += 1
        if deleted:
            self._report()
        return deleted

    def _report(self) -> None:
        if self.metrics is None:
            return
        for cls, total in self.totals.items():
            self.metrics.evidence_bytes.labels(cls.value).set(total)


def read_evidence(root: Path, evidence_id: str) -> tuple[str, bytes]:
    """(media type, bytes) of a stored file; NotFoundError for a malformed id or one retention removed."""
    ident = evidence_id.strip().lower()
    if len(ident) != 64 or any(c not in "0123456789abcdef" for c in ident):
        raise NotFoundError(f"id: {evidence_id!r} is not an evidence id (64 hex digits, from an event's evidence)")
    for path in sorted((root / ident[:2]).glob(f"{ident}.*")):
        if path.suffix == ".tmp":
            continue
        try:
            return MEDIA_TYPES.get(path.suffix[1:], "application/octet-stream"), path.read_bytes()
        except OSError:
            break
    raise NotFoundError(f"evidence {ident} is not stored (never written, or removed by retention)")


def _syncfs(folder: Path) -> bool:
    """syncfs(2) on ``folder``'s filesystem (Linux); False where the call does not exist. OSError if it fails."""
    fn = getattr(_LIBC, "syncfs", None) if _LIBC is not None else None
    if fn is None:
        return False
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if fn(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
    finally:
        os.close(fd)
    return True


def _free_bytes(path: Path) -> int:
    try:
        st = os.statvfs(path)
    except OSError:
        return 0
    return int(st.f_bavail * st.f_frsize)
