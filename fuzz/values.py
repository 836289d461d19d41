"""Fuzz the value-data codecs (:func:`idnode.protocol.types.parse`) and
:meth:`HandleValue.decode`.

Input layout: one selector byte, then the payload. Selector ``s`` (mod ``len(TYPE_NAMES)+1``)
picks ``TYPE_NAMES[s]`` — every registered type name, sorted — to ``parse`` the payload as,
or (the last choice) :meth:`HandleValue.decode` of the payload, whose data is then parsed as
the value's own type.

Property: everything returns or raises :class:`~idnode.errors.ProtocolViolation`; what
parses re-encodes (``to_bytes``) to data that parses to an equal object; a decoded
HandleValue re-encodes to one that decodes equal.

Run: ``python -m fuzz.values [libFuzzer args] [corpus dirs]`` (see :mod:`fuzz.driver`).
"""

from __future__ import annotations

from idnode.errors import ProtocolViolation
from idnode.protocol import types as value_types
from idnode.protocol.values import HandleValue

__all__ = ["TYPE_NAMES", "selector", "test_one_input"]

#: Every registered value type name, sorted (the selector byte indexes this).
TYPE_NAMES: tuple[str, ...] = tuple(sorted(value_types._REGISTRY))


def selector(type_name: str | None) -> bytes:
    """The selector byte for ``type_name`` (None: HandleValue.decode)."""
    return bytes([len(TYPE_NAMES) if type_name is None else TYPE_NAMES.index(type_name)])


def _check_parse(type_name: str, data: bytes) -> None:
    try:
        parsed = value_types.parse(type_name, data)
    except ProtocolViolation:
        return
    if parsed is None:
        return
    encoded = parsed.to_bytes()
    again = value_types.parse(type_name, encoded)
    assert again == parsed, f"{type_name}: re-encoded data parses differently: {parsed!r}"
    assert again is not None and again.to_bytes() == encoded, f"{type_name}: unstable encoding"


def test_one_input(data: bytes) -> None:
    if not data:
        return
    choice, payload = data[0] % (len(TYPE_NAMES) + 1), data[1:]
    if choice < len(TYPE_NAMES):
        _check_parse(TYPE_NAMES[choice], payload)
        return
    try:
        value = HandleValue.decode(payload)
    except ProtocolViolation:
        return
    encoded = value.encode()
    assert HandleValue.decode(encoded) == value, f"re-encoded value differs: {value!r}"
    _check_parse(value.type, value.data)


if __name__ == "__main__":
    from fuzz.driver import main

    main(test_one_input)
