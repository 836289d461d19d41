"""The single exception tree of idnode.

::

    HandleError                      (abstract; RC_ERROR)
    ├── ProtocolViolation            bad bytes on the wire (RC_PROTOCOL_ERROR)
    ├── OperationNotSupported        (RC_OPERATION_NOT_SUPPORTED)
    ├── InvalidHandle                (RC_INVALID_HANDLE)
    ├── HandleNotFound               (RC_HANDLE_NOT_FOUND)
    ├── HandleAlreadyExists          (RC_HANDLE_ALREADY_EXISTS)
    ├── ValuesNotFound               (RC_VALUES_NOT_FOUND)
    ├── ValueAlreadyExists           (RC_VALUE_ALREADY_EXISTS)
    │   └── UniqueValueTaken         a unique attribute value another identifier holds
    ├── InvalidValue                 (RC_INVALID_VALUE)
    ├── ServerNotResponsible         (RC_SERVER_NOT_RESP)
    ├── AuthenticationRequired       (RC_AUTHENTICATION_NEEDED)
    ├── AuthenticationFailed         (RC_AUTHENTICATION_FAILED)
    ├── AuthenticationTimeout        answer to an unknown or expired challenge (RC_AUTHEN_TIMEOUT)
    ├── InvalidAdmin                 (RC_INVALID_ADMIN)
    ├── InsufficientPermissions      (RC_INSUFFICIENT_PERMISSIONS)
    ├── ServerBusy                   (RC_SERVER_TOO_BUSY)
    ├── RecursionCountTooHigh        (RC_RECURSION_COUNT_TOO_HIGH)
    ├── RemoteError                  a peer answered with an error code (any code)
    └── StoreError                   storage failure, raised ``from`` the driver error (RC_ERROR)

Every class maps to one protocol response code (``response_code``), so the dispatcher catches
:class:`HandleError` once and answers with that code; the HTTP layer maps the same codes to
HTTP status codes in one table.
"""

from __future__ import annotations

from typing import ClassVar

from idnode.protocol.codes import ResponseCode

__all__ = [
    "AuthenticationFailed",
    "AuthenticationRequired",
    "AuthenticationTimeout",
    "HandleAlreadyExists",
    "HandleError",
    "HandleNotFound",
    "InsufficientPermissions",
    "InvalidAdmin",
    "InvalidHandle",
    "InvalidValue",
    "OperationNotSupported",
    "ProtocolViolation",
    "RecursionCountTooHigh",
    "RemoteError",
    "ServerBusy",
    "ServerNotResponsible",
    "StoreError",
    "UniqueValueTaken",
    "ValueAlreadyExists",
    "ValuesNotFound",
    "error_for_code",
]


class HandleError(Exception):
    """Root of every error idnode raises on purpose. The docstring is the default message."""

    response_code: ClassVar[ResponseCode] = ResponseCode.ERROR

    def __init__(self, message: str | None = None) -> None:
        if type(self) is HandleError:
            raise TypeError("HandleError is abstract; raise a subclass")
        super().__init__(message if message is not None else (self.__doc__ or "").strip())

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class ProtocolViolation(HandleError):
    """Malformed protocol message."""

    response_code = ResponseCode.PROTOCOL_ERROR


class OperationNotSupported(HandleError):
    """Operation not supported."""

    response_code = ResponseCode.OPERATION_NOT_SUPPORTED


class InvalidHandle(HandleError):
    """Invalid handle."""

    response_code = ResponseCode.INVALID_HANDLE


class HandleNotFound(HandleError):
    """Handle not found."""

    response_code = ResponseCode.HANDLE_NOT_FOUND


class HandleAlreadyExists(HandleError):
    """Handle already exists."""

    response_code = ResponseCode.HANDLE_ALREADY_EXISTS


class ValuesNotFound(HandleError):
    """Values not found."""

    response_code = ResponseCode.VALUES_NOT_FOUND


class ValueAlreadyExists(HandleError):
    """Value already exists."""

    response_code = ResponseCode.VALUE_ALREADY_EXISTS


class UniqueValueTaken(ValueAlreadyExists):
    """A unique value is already held by another identifier.

    Raised by a store write whose UNIQUE index entries (:mod:`idnode.store.writectx`) name a
    key that another handle holds, or that two handles of one batch both claim; the write
    changes nothing. ``key`` is the index key (``<template> <attribute> <value>``), ``holder``
    the handle holding it (None if unknown). The code is RC_VALUE_ALREADY_EXISTS (HTTP 409):
    the request is well formed and its value valid on its own, it conflicts with what is
    stored, as a value at an index already present does.
    """

    def __init__(self, key: str, holder: str | None = None, message: str | None = None) -> None:
        if message is None:
            by = f" by {holder}" if holder is not None else ""
            message = f"unique value already held{by}: {key}"
        super().__init__(message)
        self.key = key
        self.holder = holder


class InvalidValue(HandleError):
    """Invalid value."""

    response_code = ResponseCode.INVALID_VALUE


class ServerNotResponsible(HandleError):
    """That prefix doesn't live here."""

    response_code = ResponseCode.SERVER_NOT_RESP


class AuthenticationRequired(HandleError):
    """Authentication needed."""

    response_code = ResponseCode.AUTHENTICATION_NEEDED


class AuthenticationFailed(HandleError):
    """Authentication failed."""

    response_code = ResponseCode.AUTHENTICATION_FAILED


class AuthenticationTimeout(HandleError):
    """No pending challenge matches this answer (unknown, used or expired)."""

    response_code = ResponseCode.AUTHEN_TIMEOUT


class InvalidAdmin(HandleError):
    """Not an administrator for this operation."""

    response_code = ResponseCode.INVALID_ADMIN


class InsufficientPermissions(HandleError):
    """Insufficient permissions."""

    response_code = ResponseCode.INSUFFICIENT_PERMISSIONS


class ServerBusy(HandleError):
    """Server too busy."""

    response_code = ResponseCode.SERVER_TOO_BUSY


class RecursionCountTooHigh(HandleError):
    """Too many recursive steps."""

    response_code = ResponseCode.RECURSION_COUNT_TOO_HIGH


class RemoteError(HandleError):
    """The server answered with an error."""

    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(message or f"server answered response code {code}")
        self.code = code


class StoreError(HandleError):
    """Storage failure."""


def error_for_code(code: int, message: str = "") -> HandleError:
    """The exception a client raises for an error response with ``code``."""
    for cls in _BY_CODE:
        if cls.response_code == code:
            return cls(message or None)
    return RemoteError(code, message)


_BY_CODE: tuple[type[HandleError], ...] = (
    ProtocolViolation,
    OperationNotSupported,
    InvalidHandle,
    HandleNotFound,
    HandleAlreadyExists,
    ValuesNotFound,
    ValueAlreadyExists,
    InvalidValue,
    ServerNotResponsible,
    AuthenticationRequired,
    AuthenticationFailed,
    AuthenticationTimeout,
    InvalidAdmin,
    InsufficientPermissions,
    ServerBusy,
    RecursionCountTooHigh,
)
