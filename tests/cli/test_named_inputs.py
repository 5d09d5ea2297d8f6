"""With two ``--image`` flags, an error about one of them names its file: ``edge run``, ``edge describe``, the API."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge import samples
from edge.cli import main as cli
from edge.errors import AudioError, ImageError


@pytest.fixture(scope="module")
def engine(fp32_bundle: Path) -> Any:
    from edge.runtime.engine import Engine

    return Engine(fp32_bundle, threads=1)


@pytest.fixture(scope="module")
def daemon(fp32_bundle: Path, engine: Any) -> Iterator[Any]:
    from tests.serve.conftest import RunningDaemon, serve_config

    d = RunningDaemon(serve_config(fp32_bundle), engine)
    yield d
    d.stop()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A good JPEG and WAV, a JPEG cut in half (its header parses, its pixels do not), and a WAV that is not one."""
    folder = tmp_path_factory.mktemp("inputs")
    jpeg = samples.jpeg_bytes(samples.part_image())
    out = {
        "good.jpg": jpeg,
        "cut.jpg": jpeg[: len(jpeg) // 2],
        "good.wav": samples.wav_bytes(samples.machine_audio()),
        "fake.wav": b"RIFF\x00\x00\x00\x00WAVEjunk",
    }
    for name, data in out.items():
        (folder / name).write_bytes(data)
    return {name: folder / name for name in out}


def test_engine_names_the_bad_file(engine: Any, files: dict[str, Path]) -> None:
    with pytest.raises(ImageError, match=rf"^image {re.escape(str(files['cut.jpg']))}: .*JPEG"):
        engine.prepare("x", images=[files["good.jpg"], files["cut.jpg"]])
    with pytest.raises(AudioError, match=rf"^audio {files['fake.wav']}: the WAV has no"):
        engine.prepare("x", audio=[str(files["good.wav"]), str(files["fake.wav"])])
    with pytest.raises(ImageError, match=rf"^image {files['good.jpg']}x: cannot read \(No such file"):
        engine.prepare("x", images=[f"{files['good.jpg']}x"])


def test_edge_run_names_the_bad_file(
    fp32_bundle: Path, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["run", str(fp32_bundle), "--prompt", "x", "--image", str(files["good.jpg"])]
    assert cli.main([*argv, "--image", str(files["cut.jpg"])]) == ImageError.exit_code
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"edge run: error: image {files['cut.jpg']}: ") and "JPEG" in line


def test_edge_describe_names_the_bad_file(
    daemon: Any, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["describe", "--target", daemon.target, "--image", str(files["good.jpg"]), "--timeout", "60"]
    assert cli.main([*argv, "--image", str(files["cut.jpg"])]) == ImageError.exit_code
    err = capsys.readouterr().err
    assert err.startswith(f"edge describe: error: INVALID_ARGUMENT: image {files['cut.jpg']}: ") and "JPEG" in err
    assert err.rstrip().endswith("(images[1].encoded)")
    assert cli.main([*argv, "--audio", str(files["good.wav"]), "--audio", str(files["fake.wav"])]) == 6
    assert f"INVALID_ARGUMENT: audio {files['fake.wav']}: " in capsys.readouterr().err
