"""Handle names as the trust rules compare them (the reference's ``Util`` rules).

A handle's prefix (before the first ``/``) is case-insensitive, its suffix is not; a global
handle (``0.NA/...``) is case-insensitive as a whole. A value reference is ``index:handle``;
without a numeric index before the first ``:`` it is a handle and index 0.
"""

from __future__ import annotations

__all__ = [
    "ValueRef",
    "handle_key",
    "is_derived_from",
    "is_under_prefix",
    "same_handle",
    "zero_na_handle",
]

_NA = "0.NA/"


def handle_key(handle: str) -> str:
    """``handle`` with its prefix (or all of a ``0.NA/`` handle) in upper case."""
    if handle.upper().startswith(_NA):
        return handle.upper()
    prefix, sep, suffix = handle.partition("/")
    return prefix.upper() + sep + suffix


def same_handle(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a is b
    return handle_key(a) == handle_key(b)


def zero_na_handle(handle: str) -> str:
    """The prefix handle (``0.NA/<prefix>``) a handle belongs to."""
    prefix, sep, _suffix = handle.partition("/")
    return (_NA + prefix).upper() if sep else "0.NA/0.NA"


def is_under_prefix(handle: str, prefix_handle: str) -> bool:
    """Whether ``handle`` is an identifier under the prefix of ``prefix_handle``
    (``0.NA/88.118.8`` covers ``88.118.8/anything``)."""
    prefix_handle = prefix_handle.upper()
    if not prefix_handle.startswith(_NA):
        return False
    return handle_key(handle).startswith(prefix_handle[len(_NA) :] + "/")


def is_derived_from(handle: str, ancestor: str) -> bool:
    """Whether ``handle`` is a prefix handle derived from ``ancestor``
    (``0.NA/88.118.8`` from ``0.NA/88.118``)."""
    handle, ancestor = handle.upper(), ancestor.upper()
    return handle.startswith(_NA) and handle.startswith(ancestor + ".")


class ValueRef:
    """``index:handle`` (index 0: the whole handle)."""

    __slots__ = ("handle", "index")

    def __init__(self, handle: str, index: int = 0) -> None:
        self.handle = handle
        self.index = index

    @classmethod
    def parse(cls, text: str) -> ValueRef:
        head, sep, rest = text.partition(":")
        if sep and head.isdigit() and rest:
            return cls(rest, int(head))
        return cls(text, 0)

    def __str__(self) -> str:
        return f"{self.index}:{self.handle}" if self.index else self.handle

    def __repr__(self) -> str:
        return f"ValueRef({self.handle!r}, {self.index})"
