"""Errors the client raises: one class per gRPC code a caller handles differently, all
`MercatorError`s carrying the code and the server's message (which names the field at
fault, e.g. `rows[0].values[orders_90d]`).

Bad arguments found before a call (a value that is not of its field's type) raise
`InvalidArgument` too, naming the field the same way, so one `except` covers both. It
is also a `ValueError`, `NotFound` a `LookupError`, `Unavailable` and `DeadlineExceeded`
`ConnectionError`s and `PermissionDenied`/`Unauthenticated` `PermissionError`s, so
code that catches the built-in kinds keeps working.
"""

from __future__ import annotations

import grpc


class MercatorError(Exception):
    """A call the server refused or could not answer."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


class InvalidArgument(MercatorError, ValueError):
    """A request the server (or the client, before sending it) refused; the message
    names the field."""

    def __init__(self, message: str, code: grpc.StatusCode = grpc.StatusCode.INVALID_ARGUMENT):
        super().__init__(code, message)


class NotFound(MercatorError, LookupError):
    """No such model, version, alias, view or feature."""


class AlreadyExists(MercatorError):
    """The thing created exists already."""


class FailedPrecondition(MercatorError):
    """Refused in the current state (an unapproved version, an apply that would remove)."""


class PermissionDenied(MercatorError, PermissionError):
    """The credential lacks the scope the call needs."""


class Unauthenticated(MercatorError, PermissionError):
    """No credential, or one the server does not accept."""


class ResourceExhausted(MercatorError):
    """Over a rate, size or queue limit; retry later or send less."""


class Unavailable(MercatorError, ConnectionError):
    """The server, or a store behind it, could not be reached; retry."""


class DeadlineExceeded(MercatorError, ConnectionError):
    """The call took longer than its timeout."""


_BY_CODE = {
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
}


def from_status(code: grpc.StatusCode, message: str) -> MercatorError:
    """The error class for a gRPC status (`MercatorError` itself for other codes)."""
    if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.OUT_OF_RANGE):
        return InvalidArgument(message, code)
    return _BY_CODE.get(code, MercatorError)(code, message)


def call(method, request, metadata, timeout):
    """A unary call; a gRPC error raised as its `MercatorError` class."""
    try:
        return method(request, metadata=metadata, timeout=timeout)
    except grpc.RpcError as e:  # a grpc.Call: code() and details()
        raise from_status(e.code(), e.details() or "") from None
