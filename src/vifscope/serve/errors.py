"""Every error the API returns is JSON ``{"error": one line, "hint": what to do}`` with a 4xx
(or 503 for an unavailable source); a bug is a 500 with the same shape and the traceback
goes to the server's stderr, never to the client. Also the request-body size limit."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from vifscope.serve.schema import ErrorDoc
from vifscope.serve.vifactions import ActionRefused

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Hints for validation errors, keyed by the failing field's location.
FIELD_HINTS: dict[tuple[str, ...], str] = {
    ("path", "mac"): "a MAC address is six hex octets like 52:54:00:12:34:56",
    ("body", "state"): 'send {"state": "up"} or {"state": "down"}',
    ("body",): "send a JSON object, or no body at all for the defaults",
}
STATUS_HINTS: dict[int, str] = {  # these also name the method and path the client used
    404: "see /docs for the endpoints",
    405: "see /docs for the methods each endpoint takes",
    413: "send less (the server's max_body setting)",
}
BODY_HINT = "send a UTF-8 JSON object, or no body at all for the defaults"


class ApiError(Exception):
    def __init__(self, status: int, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.hint = hint


def error_json(status: int, message: str, hint: str = "", **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, "hint": hint, **extra}, status_code=status)


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for these error statuses."""
    return {code: {"model": ErrorDoc} for code in codes}


def _loc(e: Any) -> list[str]:
    return [str(x) for x in e.get("loc", ())]


def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"loc": _loc(e), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))} for e in exc.errors()]
    loc = tuple(errors[0]["loc"]) if errors else ()
    msg = str(errors[0]["msg"]) if errors else "invalid request"
    hint = FIELD_HINTS.get(loc[:2], FIELD_HINTS.get(loc[:1], "see /docs for the expected request"))
    return error_json(422, f"invalid request: {'.'.join(loc)}: {msg}", hint, detail=errors)


def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = str(exc.detail).lower()
    if exc.status_code in STATUS_HINTS:
        message = f"{message}: {request.method} {request.url.path}"
    hint = STATUS_HINTS.get(exc.status_code, BODY_HINT if exc.status_code == 400 else "")
    resp = error_json(exc.status_code, message, hint)
    resp.headers.update(exc.headers or {})  # e.g. Allow on a 405 (RFC 9110)
    return resp


def _api(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError | ActionRefused)
    return error_json(exc.status, str(exc), exc.hint)


def _bug(request: Request, exc: Exception) -> JSONResponse:
    print(f"vifscope serve: {request.method} {request.url.path} failed:", file=sys.stderr)
    traceback.print_exception(exc, file=sys.stderr)
    return error_json(500, f"internal error ({type(exc).__name__})", "a bug in vifscope: the server log has details")


# Keyed by exception type: how each becomes a response.
HANDLERS: dict[type[Exception], Callable[[Request, Exception], JSONResponse]] = {
    RequestValidationError: _validation,
    StarletteHTTPException: _http,
    ApiError: _api,
    ActionRefused: _api,
    Exception: _bug,
}


def install_handlers(app: FastAPI) -> None:
    for exc_type, handler in HANDLERS.items():
        app.add_exception_handler(exc_type, handler)


class BodyLimit:
    """413 for a request body over ``limit`` bytes: by Content-Length up front, or while a
    chunked body streams in (then the app is never called with a truncated body)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.limit:
            await self._refuse(scope, receive, send, declared)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            msg = await receive()
            seen += len(msg.get("body", b""))
            if seen > self.limit:
                # An HTTPException, not ApiError: FastAPI re-raises those from the body reader
                # (anything else becomes its generic 400 "error parsing the body").
                raise HTTPException(413, f"request body over {self.limit} bytes")
            return msg

        await self.app(scope, counted, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, declared: bytes) -> None:
        if declared.isdigit():
            msg, hint = f"request body of {int(declared)} bytes is over the {self.limit} byte limit", "send less"
            status = 413
        else:
            msg, hint, status = "bad Content-Length header", "a decimal byte count", 400
        await error_json(status, msg, hint)(scope, receive, send)


class SecurityHeaders:
    """nosniff everywhere; the page itself gets a CSP allowing only its own scripts and styles
    (Swagger UI at /docs inlines a script, so it is left out)."""

    PAGE_CSP = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'"

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        page = scope["path"] == "/" or scope["path"].startswith("/static/")

        async def with_headers(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                headers = list(msg.get("headers") or [])
                headers.append((b"x-content-type-options", b"nosniff"))
                if page:
                    headers.append((b"content-security-policy", self.PAGE_CSP.encode()))
                msg["headers"] = headers
            await send(msg)

        await self.app(scope, receive, with_headers)
