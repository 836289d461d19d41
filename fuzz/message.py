"""Fuzz :meth:`Message.decode` on arbitrary bytes.

Property: every input decodes or raises :class:`~idnode.errors.ProtocolViolation`; a message
that decodes re-encodes to bytes that decode to an equal message (``wire`` aside), whose own
encoding is stable.

Run: ``python -m fuzz.message [libFuzzer args] [corpus dirs]`` (see :mod:`fuzz.driver`).
"""

from __future__ import annotations

from idnode.errors import ProtocolViolation
from idnode.protocol.message import Message

__all__ = ["test_one_input"]


def test_one_input(data: bytes) -> None:
    try:
        message = Message.decode(data)
    except ProtocolViolation:
        return
    encoded = message.encode()
    again = Message.decode(encoded)
    assert again == message, f"re-encoded message differs: {message!r} != {again!r}"
    assert again.encode() == encoded, "encoding is not stable"


if __name__ == "__main__":
    from fuzz.driver import fix_lengths, main

    main(test_one_input, fixup=fix_lengths)
