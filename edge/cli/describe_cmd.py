"""``edge describe --target HOST:PORT --image F [--audio F] [--prompt …]``: ask a running daemon, stream the answer.

TLS options mirror the daemon's: ``--ca`` verifies its certificate (``tls_cert``), ``--cert``/``--key``
answer its ``tls_client_ca`` (mTLS), and ``--token-file`` (or ``EDGE_TOKEN``) its ``token_file``.
gRPC failures print ``edge describe: error: STATUS: details`` and exit with the code of the matching
error class in ``edge.errors``: 6 bad input, 7 engine failure, 2 authentication, 8 anything else.
"""

from __future__ import annotations

import argparse

EXIT_CODES = {"INVALID_ARGUMENT": 6, "OUT_OF_RANGE": 6, "INTERNAL": 7, "UNAUTHENTICATED": 2, "PERMISSION_DENIED": 2}


def configure(p: argparse.ArgumentParser) -> None:
    from edge.cli.connection import add_connection_args

    p.add_argument("--image", action="append", default=[], help="image file (JPEG/PNG/BMP/TIFF); repeatable")
    p.add_argument("--audio", action="append", default=[], help="WAV file; repeatable")
    p.add_argument("--prompt", default="", help="instruction (default: the daemon's default instruction)")
    p.add_argument("--system", default="", help="system prompt")
    p.add_argument("--max-new-tokens", type=int, default=0, help="0 = the daemon's default")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    p.add_argument("--seed", type=int, help="sampling seed")
    p.add_argument("--station", default="", help="station id recorded with the description")
    p.add_argument("--part", default="", help="part id recorded with the description")
    p.add_argument("--no-stream", action="store_true", help="use Describe and print the answer when complete")
    p.add_argument("--timings", action="store_true", help="print the daemon's timings to stderr")
    p.add_argument("--timeout", type=float, help="give up after this many seconds (default: no limit)")
    p.add_argument(
        "--schema",
        metavar="FILE|default",
        help="answer as JSON constrained to this JSON Schema file; 'default' = the station's report schema",
    )
    add_connection_args(p)


def run(args: argparse.Namespace) -> int:
    import os
    import sys

    import grpc

    from edge import client
    from edge.cli.safe_text import for_stream
    from edge.errors import ConfigError
    from edge.v1 import inspector_pb2 as pb
    from edge.v1 import inspector_pb2_grpc as pb_grpc

    if not (args.image or args.audio or args.prompt):
        raise ConfigError("give at least one of --image, --audio or --prompt")
    if args.max_new_tokens < 0 or (args.seed is not None and args.seed < 0):
        raise ConfigError("--max-new-tokens and --seed must be >= 0")
    request = pb.DescribeRequest(
        images=[client.image_message(f) for f in args.image],
        audio=[client.audio_message(f) for f in args.audio],
        prompt=args.prompt,
        system=args.system,
        context=pb.PartContext(station_id=args.station, part_id=args.part),
        options=pb.GenerationOptions(max_new_tokens=args.max_new_tokens, temperature=args.temperature),
    )
    if args.schema == "default":
        request.options.structured = True
    elif args.schema:
        from edge.cli.run_cmd import schema_text

        request.options.response_schema = schema_text(args.schema, None)
    if args.seed is not None:
        request.options.seed = args.seed
    metadata = client.token_metadata(os.environ.get("EDGE_TOKEN") or None, args.token_file)

    streamed = False
    show = for_stream(sys.stdout)  # control characters escaped on a terminal, bytes unchanged in a pipe

    def on_text(text: str) -> None:
        nonlocal streamed
        streamed = True
        print(show(text), end="", flush=True)

    with client.channel(
        args.target,
        tls=args.tls,
        ca_file=args.ca,
        cert_file=args.cert,
        key_file=args.key,
        server_name=args.server_name,
    ) as ch:
        try:
            response = client.describe(
                pb_grpc.InspectorServiceStub(ch), request, metadata, not args.no_stream, on_text, timeout=args.timeout
            )
        except grpc.RpcError as exc:
            code = exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNKNOWN
            details = (exc.details() if isinstance(exc, grpc.Call) else None) or str(exc)
            if code == grpc.StatusCode.UNAVAILABLE:
                details = f"cannot reach {args.target}: {details}"
            elif code == grpc.StatusCode.INVALID_ARGUMENT:
                details = name_files(details, args.image, args.audio)
            if streamed:
                print(flush=True)  # end the partly streamed answer before the error
            print(f"edge describe: error: {code.name}: {details}", file=sys.stderr)
            return EXIT_CODES.get(code.name, 8)
    print(flush=True)
    if args.timings:
        print_timings(response, sys.stderr)
    if args.schema and not response.report_json:
        print(f"edge describe: no report: {response.report_error}", file=sys.stderr)
        return 6
    return 0


def name_files(details: str, images: list[str], audio: list[str]) -> str:
    """The daemon names request fields (``images[1].encoded: …``); the user gave files: name the file first.

    >>> name_files("images[1].encoded: cannot decode the JPEG image", ["a.jpg", "b.jpg"], [])
    'image b.jpg: cannot decode the JPEG image (images[1].encoded)'
    """
    import re

    field, sep, rest = details.partition(": ")
    match = re.match(r"(images|audio)\[(\d+)\]", field)
    if not sep or match is None:
        return details
    kind, files = ("image", images) if match.group(1) == "images" else ("audio", audio)
    index = int(match.group(2))
    if index >= len(files):
        return details
    return f"{kind} {files[index]}: {rest} ({field})"


def print_timings(response: object, stream: object) -> None:
    from edge.v1 import inspector_pb2 as pb

    assert isinstance(response, pb.DescribeResponse)
    t = response.timings
    lines = [
        f"model: {response.model.bundle_id or '?'} ({response.model.quantization or '?'})  "
        f"stop: {pb.StopReason.Name(response.stop_reason)}",
        f"prompt tokens: {t.prompt_tokens}  new tokens: {t.generated_tokens}",
        f"preprocess {t.preprocess_seconds * 1e3:.1f} ms | queue {t.queue_seconds * 1e3:.1f} ms | "
        f"embed {t.embed_seconds * 1e3:.1f} ms | prefill {t.prefill_seconds * 1e3:.1f} ms | "
        f"first token {t.time_to_first_token_seconds * 1e3:.1f} ms | decode {t.decode_seconds * 1e3:.1f} ms | "
        f"total {t.total_seconds * 1e3:.1f} ms",
    ]
    print("\n".join(lines), file=stream)  # type: ignore[call-overload]
