"""The one wrapper every RPC runs in: domain errors to status codes, bugs to INTERNAL, and one count per reply.

Handlers are async generators of replies (a unary RPC yields one). :meth:`Rpc.guarded` drives them: an
``EdgeError`` aborts with the status from ``status.STATUS_TABLE`` and its message; anything else is a bug,
logged with its traceback and answered INTERNAL without internals; cancellation is counted as CANCELLED.
``edge_inspector_requests_total{rpc, code}`` gets exactly one count per call, timed inside the generator
(an interceptor's ``finally`` would run before a stream is consumed).

>>> async def Describe(self, raw, context):
...     return await self.rpc.unary("Describe", context, self._describe(raw))
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable
from typing import Any, TypeVar

import grpc

from edge.errors import EdgeError
from edge.serve.status import status_for

log = logging.getLogger("edge.serve")
T = TypeVar("T")


class Rpc:
    def __init__(self, metrics: Any) -> None:
        self.metrics = metrics

    async def guarded(
        self, name: str, context: grpc.aio.ServicerContext, replies: AsyncGenerator[T, None]
    ) -> AsyncGenerator[T, None]:
        code, counted = "OK", False
        try:
            async with contextlib.aclosing(replies):
                async for reply in replies:
                    yield reply
        except EdgeError as exc:
            status = status_for(exc)
            if status == grpc.StatusCode.INTERNAL:
                log.error("%s failed in the engine: %s", name, exc)
            code, counted = status.name, True
            self.metrics.request_done(name, code)  # before abort(): it sends the status to the client at once
            await context.abort(status, str(exc))
        except asyncio.CancelledError:
            code = "CANCELLED"
            raise
        except grpc.aio.AbortError:
            raise
        except Exception:
            log.exception("unexpected error while serving %s", name)
            code, counted = "INTERNAL", True
            self.metrics.request_done(name, code)
            await context.abort(grpc.StatusCode.INTERNAL, "internal error in the daemon; the traceback is in its log")
        finally:
            if not counted:
                self.metrics.request_done(name, code)

    async def unary(self, name: str, context: grpc.aio.ServicerContext, reply: Awaitable[T]) -> T:
        async def one() -> AsyncGenerator[T, None]:
            yield await reply

        async with contextlib.aclosing(self.guarded(name, context, one())) as replies:
            async for r in replies:
                return r
        raise AssertionError("unreachable: a unary handler yields once or aborts")  # pragma: no cover
