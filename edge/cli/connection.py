"""The flags every client command shares to reach a daemon (address, TLS, mTLS, bearer token), and the channel.

They mirror the daemon's settings: ``--ca`` verifies its certificate (``tls_cert``), ``--cert``/``--key``
answer its ``tls_client_ca`` (mTLS), and ``--token-file`` (or ``EDGE_TOKEN``) its ``token_file``.
"""

from __future__ import annotations

import argparse
from typing import Any


def add_connection_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", default="localhost:50051", metavar="HOST:PORT", help="daemon address (%(default)s)")
    tls = p.add_argument_group("TLS and auth (mirror the daemon's tls_* and token_file settings)")
    tls.add_argument("--tls", action="store_true", help="use TLS with the system's trusted roots")
    tls.add_argument("--ca", metavar="FILE", help="CA certificate that signed the daemon's certificate (implies TLS)")
    tls.add_argument("--cert", metavar="FILE", help="client certificate for mTLS (with --key)")
    tls.add_argument("--key", metavar="FILE", help="client private key for mTLS")
    tls.add_argument("--server-name", metavar="NAME", help="name to verify in the daemon's certificate")
    tls.add_argument("--token-file", metavar="FILE", help="bearer token file, mode 600 (default: $EDGE_TOKEN)")


def open_channel(args: argparse.Namespace) -> tuple[Any, list[tuple[str, str]]]:
    """(channel, auth metadata) from the flags of :func:`add_connection_args`."""
    import os

    from edge import client

    metadata = client.token_metadata(os.environ.get("EDGE_TOKEN") or None, args.token_file)
    ch = client.channel(
        args.target, tls=args.tls, ca_file=args.ca, cert_file=args.cert, key_file=args.key, server_name=args.server_name
    )
    return ch, metadata
