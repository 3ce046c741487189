"""Every 4xx and 5xx of the worker's HTTP API is JSON ``{"error": code, "detail": text}`` (SPEC §7),
aiohttp's own included:

- the ``json_errors`` middleware turns aiohttp's HTTP exceptions (404 no such route, 405 method
  not allowed, 413 body over ``client_max_size``), Faust's view errors (``{"error": ...}`` only)
  and unhandled exceptions (500, logged with their traceback: a server fault) into that body;
- malformed HTTP (a bad request line or header) never reaches a handler: aiohttp's
  ``RequestHandler.handle_error`` answers it in text/plain and logs "Error handling request" with a
  traceback at ERROR. ``install_json_errors`` gives the server a handler class that answers JSON
  and logs a client's malformed request at DEBUG, without a traceback.

``error`` is a stable code derived from the status (``bad_request``, ``not_found``, ...);
``detail`` says what was wrong in words.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus
from typing import Any

import orjson
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server

__all__ = ["error_body", "error_code", "error_response", "install_json_errors", "json_errors"]

log = logging.getLogger(__name__)
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_code(status: int) -> str:
    """``bad_request`` for 400, ``not_found`` for 404, ...: the status's phrase, snake_cased."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "client error" if status < 500 else "server error"
    return phrase.lower().replace(" ", "_").replace("-", "_")


def error_body(status: int, detail: str) -> bytes:
    return orjson.dumps({"error": error_code(status), "detail": detail})


def error_response(status: int, detail: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        body=error_body(status, detail), status=status, content_type="application/json", headers=headers
    )


def _is_error_body(body: Any) -> bool:
    try:
        parsed = orjson.loads(body)
    except (orjson.JSONDecodeError, TypeError):
        return False
    return isinstance(parsed, dict) and "error" in parsed and "detail" in parsed


def _detail_of(response: web.Response) -> str:
    """What a non-conforming error response said: Faust's ``{"error": text}``, or its text."""
    raw = response.body if isinstance(response.body, (bytes, bytearray)) else b""
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
        return str(parsed["error"])
    text = bytes(raw).decode("utf-8", "replace").strip()
    return text or response.reason or error_code(response.status)


def _exception_detail(request: web.Request, exc: web.HTTPException) -> str:
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        return f"method {request.method} is not allowed on {request.path} (allowed: {allowed})"
    if isinstance(exc, web.HTTPNotFound):
        return f"no such route: {request.path}"
    text = (exc.text or "").strip()
    return text if text and text != f"{exc.status}: {exc.reason}" else exc.reason


@web.middleware
async def json_errors(request: web.Request, handler: _Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return error_response(exc.status, _exception_detail(request, exc), allow)
    except asyncio.CancelledError:
        raise
    except TimeoutError:
        log.warning("%s %s timed out", request.method, request.path)
        return error_response(504, "the request timed out")
    except Exception:
        log.exception("%s %s failed", request.method, request.path)  # a fault of ours: traceback
        return error_response(500, "internal error (logged by the server)")
    if response.status >= 400 and isinstance(response, web.Response) and not _is_error_body(response.body):
        return error_response(response.status, _detail_of(response))
    return response


class _JsonErrorRequestHandler(RequestHandler):
    """aiohttp's connection handler, answering malformed HTTP in JSON and logging it quietly."""

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500:
            self.log_exception("Error handling request from %s", request.remote, exc_info=exc)
        else:  # the client's mistake (a request aiohttp could not parse): no traceback, no ERROR
            self.logger.debug("bad HTTP request from %s: %s", request.remote, message or exc)
        if request.writer.output_size > 0:  # same as aiohttp: the response has begun, cannot answer
            raise ConnectionError("Response is sent already, cannot send another response with the error message")
        detail = " ".join((message or "").split()) or error_code(status)
        response = error_response(status, f"malformed HTTP request: {detail}" if status < 500 else detail)
        response.force_close()
        return response


class _JsonErrorServer(Server):
    def __call__(self) -> RequestHandler:
        return _JsonErrorRequestHandler(self, loop=self._loop, **self._kwargs)


class _JsonErrorRunner(web.AppRunner):
    async def _make_server(self) -> Server:
        server = await super()._make_server()
        server.__class__ = _JsonErrorServer  # same object, its connections get the JSON handler
        return server


def install_json_errors(faust_web: Any) -> None:
    """Install both on a Faust aiohttp ``Web`` before it starts (``app.web``): the middleware on its
    aiohttp application and the runner that makes its server (Faust makes ``AppRunner(web_app,
    access_log=None)``; this is the same with the JSON error handler)."""
    web_app: web.Application = faust_web.web_app
    if json_errors not in web_app.middlewares:
        web_app.middlewares.append(json_errors)
    if not isinstance(faust_web._runner, _JsonErrorRunner):
        faust_web._runner = _JsonErrorRunner(web_app, access_log=None)
