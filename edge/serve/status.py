"""Domain errors → gRPC status codes: the one table, each message written for a station integrator."""

from __future__ import annotations

import grpc

from edge.errors import (
    BundleError,
    ConfigError,
    EdgeError,
    EngineError,
    InputError,
    JournalError,
    NotFoundError,
    OverloadedError,
    SessionError,
    ShuttingDownError,
)

# Order matters: the first matching class wins. Anything else is a bug: INTERNAL, traceback in the log.
STATUS_TABLE: tuple[tuple[type[EdgeError], grpc.StatusCode], ...] = (
    (InputError, grpc.StatusCode.INVALID_ARGUMENT),  # FieldError, ImageError, AudioError, PromptError
    (ConfigError, grpc.StatusCode.INVALID_ARGUMENT),  # request options out of range (temperature, top_p, …)
    (OverloadedError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (ShuttingDownError, grpc.StatusCode.UNAVAILABLE),
    (SessionError, grpc.StatusCode.FAILED_PRECONDITION),
    (BundleError, grpc.StatusCode.FAILED_PRECONDITION),
    (NotFoundError, grpc.StatusCode.NOT_FOUND),  # an evidence file that retention removed, a malformed id
    (JournalError, grpc.StatusCode.FAILED_PRECONDITION),  # no state_dir, or the journal cannot be read
    (EngineError, grpc.StatusCode.INTERNAL),
)


def status_for(exc: BaseException) -> grpc.StatusCode:
    for cls, code in STATUS_TABLE:
        if isinstance(exc, cls):
            return code
    return grpc.StatusCode.INTERNAL
