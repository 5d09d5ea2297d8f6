"""``edge events list|tail|evidence``: read a daemon's event journal (ListEvents, WatchEvents, GetEvidence).

``list`` prints one page of journaled decisions (``--since N``, ``--kind``, ``--source``, ``--limit``);
``tail`` prints the last ``-n`` and then follows new ones as they are journaled, resuming after a daemon
restart without a gap; ``evidence ID -o FILE`` saves a stored frame, anomaly map, audio window or report.
``--json`` prints each event's JSON document on its own line (what MQTT publishes), for ``jq``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

KINDS = ("scored", "finished", "dropped", "error")


def configure(p: argparse.ArgumentParser) -> None:
    from edge.cli.connection import add_connection_args

    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, text in (
        ("list", "print journaled events after a sequence (one page)"),
        ("tail", "print the last events, then follow new ones as they are journaled"),
    ):
        a = sub.add_parser(name, help=text, description=text)
        a.add_argument("--kind", action="append", choices=KINDS, default=[], help="only this kind; repeatable")
        a.add_argument("--source", default="", help="only events of this source (e.g. inspect:3)")
        a.add_argument("--json", action="store_true", help="print each event's JSON document (NDJSON)")
        add_connection_args(a)
    lst, tail = sub.choices["list"], sub.choices["tail"]
    lst.add_argument("--since", type=int, default=0, help="events after this sequence (0 = the oldest kept)")
    lst.add_argument("--limit", type=int, default=100, help="at most this many (max 1000; default %(default)s)")
    tail.add_argument("-n", type=int, default=10, help="start with the last N events (default %(default)s)")
    tail.add_argument("--since", type=int, default=None, help="start after this sequence instead of -n")
    ev = sub.add_parser("evidence", help="save one evidence file named in an event", description="GetEvidence")
    ev.add_argument("id", help="the evidence id (64 hex digits, from an event's evidence[].id)")
    ev.add_argument("-o", "--output", help="file to write (default: stdout when it is not a terminal)")
    add_connection_args(ev)


def summary(event: Any) -> str:
    """One line: sequence, UTC time, kind, source, and what was decided."""
    import datetime
    import json

    doc = json.loads(event.json)
    kind = doc.get("kind", "?")
    body = doc.get(kind, {})
    if kind == "finished":
        what = body.get("report_json") or body.get("text", "")
    elif kind == "dropped":
        what = f"{body.get('reason')}: {body.get('detail', '')}"
    elif kind == "error":
        what = f"{body.get('error_type')}: {body.get('message', '')}"
    else:
        what = f"score {body.get('score', 0):.3f} ({'ANOMALY' if body.get('label') else 'ok'})"
    what = " ".join(str(what).split())
    what = "".join(c if c.isprintable() else "?" for c in what)[:100]
    t = datetime.datetime.fromtimestamp(doc.get("time", 0), datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    part = doc.get("context", {}).get("part_id", "")
    return f"{doc.get('sequence'):>8} {t} {kind:<8} {doc.get('source', '')}{' ' + part if part else ''}  {what}"


def run(args: argparse.Namespace) -> int:
    import grpc

    from edge.cli.connection import open_channel
    from edge.cli.describe_cmd import EXIT_CODES
    from edge.v1 import inspector_pb2_grpc as pb_grpc

    ch, metadata = open_channel(args)
    with ch:
        stub = pb_grpc.InspectorServiceStub(ch)
        try:
            if args.action == "evidence":
                return _evidence(stub, metadata, args)
            if args.action == "list":
                return _list(stub, metadata, args)
            return _tail(stub, metadata, args)
        except grpc.RpcError as exc:
            code = exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNKNOWN
            details = (exc.details() if isinstance(exc, grpc.Call) else None) or str(exc)
            print(f"edge events: error: {code.name}: {details}", file=sys.stderr)
            return EXIT_CODES.get(code.name, 8)


def _print(event: Any, as_json: bool) -> None:
    print(event.json if as_json else summary(event), flush=True)


def _list(stub: Any, metadata: list[tuple[str, str]], args: argparse.Namespace) -> int:
    from edge import client

    page = client.list_events(stub, metadata, args.since, args.kind, args.source, args.limit, timeout=30)
    for e in page.events:
        _print(e, args.json)
    if not args.json:
        print(
            f"# {len(page.events)} event(s); journal holds {page.oldest_sequence}..{page.head_sequence}; "
            f"next page: --since {page.next_sequence}",
            file=sys.stderr,
        )
    return 0


def _tail(stub: Any, metadata: list[tuple[str, str]], args: argparse.Namespace) -> int:
    import time

    import grpc

    from edge import client

    since = args.since
    if since is None:
        since = max(client.list_events(stub, metadata, limit=1, timeout=30).head_sequence - max(args.n, 0), 0)
    while True:
        try:
            for e in client.watch_events(stub, metadata, since, args.kind, args.source):
                _print(e, args.json)
                since = e.sequence
        except grpc.RpcError as exc:
            if not isinstance(exc, grpc.Call) or exc.code() != grpc.StatusCode.UNAVAILABLE:
                raise
            print(f"# the daemon went away ({exc.details()}); resuming after {since}", file=sys.stderr)
            time.sleep(1.0)


def _evidence(stub: Any, metadata: list[tuple[str, str]], args: argparse.Namespace) -> int:
    from pathlib import Path

    from edge import client
    from edge.errors import ConfigError

    if args.output is None and sys.stdout.isatty():
        raise ConfigError("evidence is binary: give -o FILE (or redirect stdout)")
    got = client.get_evidence(stub, metadata, args.id, timeout=60)
    if args.output is None:
        sys.stdout.buffer.write(got.data)
        sys.stdout.buffer.flush()
    else:
        try:
            Path(args.output).write_bytes(got.data)
        except OSError as exc:
            raise ConfigError(f"--output {args.output}: cannot write ({exc.strerror or exc})") from exc
        print(f"{args.output}: {len(got.data)} bytes, {got.media_type}", file=sys.stderr)
    return 0
