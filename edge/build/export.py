"""``edge export``: a checkpoint folder in, a verified per-modality ONNX bundle out.

The bundle is written into a temporary sibling folder and renamed into place only
after every graph, the manifest and (by default) the parity check succeeded, so a
failure never leaves a half-written bundle behind.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.build.graphs.builder import GraphBuilder, graph_io, weight_matmuls
from edge.build.graphs.decoder import build_decoder
from edge.build.graphs.embedders import (
    build_audio,
    build_embedding,
    build_shared_embedding,
    build_vision,
    check_shared_embedding,
)
from edge.build.graphs.fused import build_fused_decoder
from edge.build.progress import Progress
from edge.build.quantize import QuantRecipe
from edge.build.reader import CheckpointReader, resolve_source
from edge.build.tokenizer_files import copy_tokenizer
from edge.bundle.manifest import SCHEMA_VERSION, file_table, graph_bytes, write_manifest
from edge.bundle.memory import plan_memory
from edge.bundle.recipe import WeightMatMul
from edge.errors import CheckpointError, ConfigError, EdgeError, OutputSpaceError
from edge.runtime.image import SUPPORTED_SOFT_TOKENS
from edge.spec import ModelSpec

log = logging.getLogger(__name__)
DECODERS = ("fused", "reference")


@dataclass(frozen=True)
class ExportOptions:
    recipe: QuantRecipe
    max_soft_tokens: int = 280
    context: int = 4096
    image_mask: str = "sliding"
    decoder: str = "fused"  # fused (GroupQueryAttention, in-place KV) | reference (plain ONNX ops)
    parity: bool = True
    random_weights: bool = False  # random quantized weights at the config's shapes (no checkpoint needed)
    parity_tokens: int = 32
    budget_bytes: int = 16 * 2**30
    max_new_tokens: int = 256
    force: bool = False
    threads: int | None = None
    source_id: str = ""  # --model-id: the hub id the station reports (default: found in the checkpoint)
    source_revision: str = ""  # --model-revision


def export_bundle(source: str, out: Path, opts: ExportOptions) -> dict[str, Any]:
    """Export ``source`` into ``out``; returns the manifest dict."""
    if opts.max_soft_tokens not in SUPPORTED_SOFT_TOKENS:
        raise ConfigError(f"--max-soft-tokens must be one of {SUPPORTED_SOFT_TOKENS}, got {opts.max_soft_tokens}")
    if opts.decoder not in DECODERS:
        raise ConfigError(f"--decoder must be one of {', '.join(DECODERS)}, got {opts.decoder!r}")
    if opts.context < 64:
        raise ConfigError(f"--context must be at least 64 tokens, got {opts.context}")
    out = Path(out)
    if out.exists() and not opts.force:
        raise ConfigError(f"{out} already exists; pass --force to replace it")
    folder = resolve_source(source)
    reader: Any
    if opts.random_weights:
        from edge.build.random_weights import RandomReader

        if opts.recipe.name == "fp32" or opts.parity:
            raise ConfigError("--random-weights builds quantized bundles without parity: use --quant int4 or int8")
        reader = RandomReader(folder)
    else:
        reader = CheckpointReader(folder)
    spec = ModelSpec.from_hf_config(reader.config)
    if opts.recipe.embedding == "lm_head":
        check_shared_embedding(spec, opts.recipe)
    if not reader.has_weights():
        raise CheckpointError(
            f"{folder}: no model.safetensors or {folder.name}/model.safetensors.index.json; "
            "config-only checkpoints (such as the 12b preset) can be planned with `edge plan` but not exported"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    _check_space(out.parent, spec, opts.recipe)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    tmp.chmod(0o755)  # mkdtemp makes it 0700; the station daemon runs as its own user
    try:
        manifest = _export_into(tmp, folder, reader, spec, opts)
        _replace(tmp, out)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if exc.errno == errno.ENOSPC:
            raise OutputSpaceError(
                f"{out.parent}: the disk filled up while writing the bundle; free space and retry"
            ) from exc
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _export_into(tmp: Path, folder: Path, reader: Any, spec: ModelSpec, opts: ExportOptions) -> dict[str, Any]:
    t0 = time.perf_counter()
    rec = opts.recipe
    graphs: dict[str, dict[str, Any]] = {}
    shared = rec.embedding == "lm_head"
    builders: list[tuple[str, Any]] = [] if shared else [("embedding", build_embedding)]
    if spec.vision is not None:
        builders.append(("vision", build_vision))
    if spec.audio is not None:
        builders.append(("audio", build_audio))
    for name, fn in builders:
        with Progress(f"export {name}", total=1) as bar, GraphBuilder(name, tmp) as g:
            fn(g, spec, reader, rec)
            g.save()
            bar.update(1)
        graphs[name] = {"file": f"{name}.onnx", **graph_io(tmp / f"{name}.onnx")}
    n_layers = len(spec.text.layers)
    with Progress("export decoder", total=n_layers, unit="layer") as bar, GraphBuilder("decoder", tmp) as g:
        build = build_fused_decoder if opts.decoder == "fused" else build_decoder
        build(g, spec, reader, rec, image_mask=opts.image_mask, progress=lambda i, n: bar.update(1))
        g.save()
        head = {t.name: t for t in g.initializers if t.name.startswith("lm_head.")}
    graphs["decoder"] = {"file": "decoder.onnx", "kind": opts.decoder, **graph_io(tmp / "decoder.onnx")}
    if shared:  # the embedding gathers rows of the tied LM head's int8 blocks, stored once in decoder.onnx.data
        with GraphBuilder("embedding", tmp) as g:
            build_shared_embedding(g, spec, rec, head)
            g.save()
        graphs["embedding"] = {
            "file": "embedding.onnx",
            "shares": "decoder.onnx.data",
            **graph_io(tmp / "embedding.onnx"),
        }
    tokenizer = copy_tokenizer(folder, tmp, spec)
    export_s = time.perf_counter() - t0
    files = file_table(tmp, sorted(p.name for p in tmp.iterdir() if p.is_file()))
    weight_bytes = graph_bytes(files, graphs)
    matmuls = [m for name, g in graphs.items() for m in weight_matmuls(tmp / g["file"], name)]
    data: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "source": _source_info(folder, reader.config, opts),
        "tools": _tool_versions(),
        "model": spec.to_dict(),
        "graphs": graphs,
        "files": files,
        "quantization": rec.to_dict(),
        "tokenizer": tokenizer,
        "processor": {
            "max_soft_tokens": opts.max_soft_tokens,
            "patch_size": spec.vision.patch_size if spec.vision else 16,
            "pooling_kernel_size": spec.vision.pooling_kernel_size if spec.vision else 3,
            "audio_sampling_rate": 16_000,
            "audio_samples_per_token": spec.audio.samples_per_token if spec.audio else 640,
            "max_audio_tokens": spec.audio.max_tokens if spec.audio else 750,
            "image_mask": opts.image_mask,
        },
        "generation": {**tokenizer.pop("generation"), "max_new_tokens": opts.max_new_tokens},
        "context": opts.context,
        "parity": {"status": "pending"},
        "weight_matmuls": matmuls,
        # the plan for our int4 kernels, the default where they load (`edge plan BUNDLE --kernels` for others)
        "memory_plan": plan_memory(
            spec,
            context=opts.context,
            recipe=rec,
            weight_bytes=weight_bytes,
            matmuls=[WeightMatMul(**m) for m in matmuls],
            budget_bytes=opts.budget_bytes,
            decoder=opts.decoder,
        ),
        "export_seconds": round(export_s, 2),
    }
    write_manifest(tmp, data)
    if opts.parity:
        from edge.build.parity import check_bundle

        data["parity"] = check_bundle(
            tmp,
            folder,
            exact=rec.name == "fp32",
            image_mask=opts.image_mask,
            new_tokens=opts.parity_tokens,
            threads=opts.threads,
        )
    else:
        data["parity"] = {"status": "skipped"}
    manifest = write_manifest(tmp, data)
    return manifest.to_dict()


def _check_space(folder: Path, spec: ModelSpec, rec: QuantRecipe) -> None:
    need = plan_memory(spec, context=64, recipe=rec)["weights_bytes"]
    free = shutil.disk_usage(folder).free
    if free < need * 1.1 + 64 * 2**20:
        raise OutputSpaceError(
            f"{folder}: {free / 2**30:.2f} GiB free, but the bundle needs about {need / 2**30:.2f} GiB; free space or "
            "choose another output folder"
        )


def _replace(tmp: Path, out: Path) -> None:
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out)


def _source_info(folder: Path, config: dict[str, Any], opts: ExportOptions) -> dict[str, Any]:
    import json

    from edge.build.provenance import identify

    who = identify(folder, config, model_id=opts.source_id, revision=opts.source_revision)
    # model_id is what the station reports (GetInfo, build_info); path is only the build host's provenance
    info: dict[str, Any] = {"model_id": who.model_id, "revision": who.revision, "model_id_from": who.origin}
    info["path"] = str(folder)
    fixture = folder / "edge_fixture.json"
    if fixture.exists():
        info["fixture"] = json.loads(fixture.read_text())
    return info


def _tool_versions() -> dict[str, str]:
    import importlib.metadata as md

    versions = {}
    for pkg in (
        "edge-inspector",
        "onnx",
        "onnxruntime",
        "torch",
        "transformers",
        "safetensors",
        "tokenizers",
        "numpy",
    ):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            continue
    return versions


__all__ = ["EdgeError", "ExportOptions", "export_bundle"]
