"""Camera settings: TOML tables, one camera from flags or the environment, and credentials that never show."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge.errors import ConfigError
from edge.serve.config import load_config
from edge.sources.url import redact, scrub


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "edge.toml"
    path.write_text(text)
    return path


def test_cameras_tables_flags_and_environment(tmp_path: Path) -> None:
    toml = write(
        tmp_path,
        """
[serve]
queue_depth = 4

[[cameras]]
id = "press-1"
url = "rtsp://10.0.0.7/stream1"
roi = [10, 20, 330, 260]
trigger = "interval"

[[cameras]]
id = "usb"
url = "/dev/video0"
trigger = "external"
fps = 2
""",
    )
    cfg = load_config(
        {}, {"EDGE_CAMERA_ID": "press-1", "EDGE_CAMERA_URL": "rtsp://admin:s3cret@10.0.0.7/stream1"}, toml
    )
    press, usb = cfg.cameras
    assert press.url == "rtsp://admin:s3cret@10.0.0.7/stream1" and press.roi == (10, 20, 330, 260)  # env overrides
    assert (usb.kind, usb.fps, usb.trigger) == ("device", 2.0, "external") and cfg.queue_depth == 4
    assert "s3cret" not in repr(cfg) and "s3cret" not in str(cfg.redacted())
    flags = {"camera_url": "/data/demo.mp4", "camera_id": "demo", "camera_trigger": "interval", "camera_fps": "1.5"}
    extra = load_config(flags, {}, toml).cameras[-1]
    assert (extra.id, extra.kind, extra.fps) == ("demo", "file", 1.5)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('id = "a"\nurl = "rtsp://h/x"\nfsp = 5', "camera 'a': unknown key 'fsp'"),
        ('id = "a"\nurl = "rtsp://h/x"\ntransport = "quic"', "transport must be tcp or udp"),
        ('id = "a b"\nurl = "rtsp://h/x"', "must be 1-64 letters"),
        ('id = "a"\nurl = "rtsp://h/x"\nroi = [5, 5, 2, 9]', "roi must be [x0, y0, x1, y1] with 0 <= x0 < x1"),
        ('id = "a"\nurl = "rtsp://h/x"\nstall_seconds = 0', "stall_seconds must be > 0"),
        ('id = "a"\nurl = "rtsp://h/x"\nfps = "fast"', "key 'fps': fps must be a float"),
        ('url = "rtsp://h/x"', "id and url are required"),
        ('id = "a"\nurl = "/dev/video0"\naudio = "stream"', "needs a source with an audio track"),
    ],
)
def test_bad_camera_settings_name_the_camera_and_key(tmp_path: Path, table: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config({}, {}, write(tmp_path, f"[[cameras]]\n{table}\n"))
    assert message in str(err.value)


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    text = '[[cameras]]\nid = "a"\nurl = "rtsp://h/1"\n\n[[cameras]]\nid = "a"\nurl = "rtsp://h/2"\n'
    with pytest.raises(ConfigError, match="camera ids must be unique; repeated: a"):
        load_config({}, {}, write(tmp_path, text))


def test_redaction() -> None:
    assert redact("rtsp://admin:pw@10.0.0.7:554/s?channel=1&password=x&token=y") == (
        "rtsp://***@10.0.0.7:554/s?channel=1&password=***&token=***"
    )
    assert redact("http://user@[fe80::1]:8080/mjpg") == "http://***@[fe80::1]:8080/mjpg"
    assert redact("rtsp://a:b@host:bad/x") == "rtsp://(unparsable address)"
    assert redact("/dev/video2") == "/dev/video2"
    assert scrub("401 on rtsp://admin:pw123@h/s (pw123)", "rtsp://admin:pw123@h/s") == "401 on rtsp://***@h/s (***)"


def test_serve_help_lists_the_camera_flags() -> None:
    out = subprocess.run([sys.executable, "-m", "edge", "serve", "--help"], capture_output=True, text=True, check=True)
    assert "--camera-url URL" in out.stdout and "--camera-trigger TRIGGER" in out.stdout
