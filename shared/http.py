"""The one mapping from errors to RFC 9457 problem+json responses, plus request ids.

Every error response carries `type`, `title`, `status`, `detail`, a stable `code`, the
`request_id`, and where relevant `errors` (field paths) and an `action` (what to do next).
"""

from __future__ import annotations

import os
import re
import secrets
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from shared.errors import (
    AppError,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    RuleViolation,
    ServiceUnavailable,
    StaleVersion,
    Unauthorized,
)
from shared.logging import bind_context, clear_context, get_contextvars, get_logger

log = get_logger("shared.http")

PROBLEM_JSON = "application/problem+json"
REQUEST_ID_HEADER = "x-request-id"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

# (status, title) per error type: the single table the architecture asks for.
ERROR_TABLE: dict[type[AppError], tuple[int, str]] = {
    BadRequest: (400, "Bad request"),
    Unauthorized: (401, "Unauthorized"),
    Forbidden: (403, "Forbidden"),
    NotFound: (404, "Not found"),
    StaleVersion: (409, "Stale version"),
    Conflict: (409, "Conflict"),
    RuleViolation: (422, "Unprocessable request"),
    ServiceUnavailable: (503, "Service unavailable"),
}


def _status_for(exc: AppError) -> tuple[int, str]:
    for klass in type(exc).__mro__:
        if klass in ERROR_TABLE:
            return ERROR_TABLE[klass]
    return 500, "Internal error"


class Problem(msgspec.Struct, omit_defaults=True):
    type: str
    title: str
    status: int
    detail: str
    code: str
    request_id: str | None = None
    errors: list[dict[str, str]] | None = None
    action: str | None = None


def problem_response(
    status: int,
    title: str,
    detail: str,
    code: str,
    *,
    request_id: str | None,
    errors: list[dict[str, str]] | None = None,
    action: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response[Any]:
    body = Problem(
        type=f"https://mtm-billing.dev/problems/{code.replace('_', '-')}",
        title=title,
        status=status,
        detail=detail,
        code=code,
        request_id=request_id,
        errors=errors,
        action=action,
    )
    return Response(
        content=msgspec.json.encode(body),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _request_id(request: Request[Any, Any, Any]) -> str | None:
    rid = request.scope.get("state", {}).get("request_id")
    if not isinstance(rid, str):
        # Routing errors (404/405) can be raised before the scope state is shared.
        rid = get_contextvars().get("request_id")
    return rid if isinstance(rid, str) else None


def app_error_handler(request: Request[Any, Any, Any], exc: AppError) -> Response[Any]:
    status, title = _status_for(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return problem_response(
        status,
        title,
        exc.message,
        exc.code,
        request_id=_request_id(request),
        errors=[{"field": e.field, "message": e.message, "code": e.code} for e in exc.errors]
        or None,
        action=exc.action,
        headers=headers,
    )


def validation_handler(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    extra = exc.extra if isinstance(exc.extra, list) else []
    errors = [
        {
            "field": str(item.get("key") or "$"),
            "message": str(item.get("message", "invalid")),
            "code": "invalid",
        }
        for item in extra
        if isinstance(item, dict)
    ]
    malformed = not errors
    return problem_response(
        400 if malformed else 422,
        "Bad request" if malformed else "Validation failed",
        str(exc.detail) if malformed else "the request body does not match the schema",
        "malformed_body" if malformed else "validation_failed",
        request_id=_request_id(request),
        errors=errors or None,
        action="fix the listed fields and send the request again" if errors else None,
    )


def http_exception_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    detail = str(exc.detail)
    code = {
        400: "malformed_body",
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        413: "payload_too_large",
        415: "unsupported_media_type",
    }.get(status, "http_error")
    return problem_response(
        status,
        {400: "Bad request", 404: "Not found", 405: "Method not allowed"}.get(
            status, "Request error"
        ),
        detail,
        code,
        request_id=_request_id(request),
    )


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    # The exception type is logged, never its message: messages can carry request values.
    log.error(
        "http.unhandled_error",
        error_type=type(exc).__name__,
        path=request.url.path,
        exc_info=os.environ.get("MTM_DEBUG_ERRORS") == "1",
    )
    return problem_response(
        500,
        "Internal error",
        "an unexpected error occurred; the request id identifies it in the logs",
        "internal_error",
        request_id=_request_id(request),
    )


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    AppError: app_error_handler,
    ValidationException: validation_handler,
    NotAuthorizedException: http_exception_handler,
    PermissionDeniedException: http_exception_handler,
    NotFoundException: http_exception_handler,
    MethodNotAllowedException: http_exception_handler,
    HTTPException: http_exception_handler,
    Exception: internal_error_handler,
}


def new_request_id() -> str:
    return secrets.token_hex(8)


class RequestIdMiddleware:
    """Assigns (or accepts a well-formed) request id, binds it to the log context and
    echoes it on every response, including errors produced by other middleware."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # type: ignore[comparison-overlap]
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        rid = incoming if incoming and _SAFE_REQUEST_ID.match(incoming) else new_request_id()
        scope.setdefault("state", {})["request_id"] = rid
        clear_context()
        bind_context(request_id=rid)
        raw = rid.encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", raw))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            clear_context()
