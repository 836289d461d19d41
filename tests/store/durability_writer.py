"""Child process of test_durability: create handles in a loop, acknowledging each on stdout.

Usage: ``python durability_writer.py DATABASE COUNT``, DATABASE being a SQLite file path or a
``postgresql://`` URL (as for :func:`idnode.store.open_store`). Creates ``DUR/0`` ..
``DUR/<COUNT-1>`` with :func:`values_for` and prints each handle on its own line once
``create_handle`` has returned (the write is acknowledged, so it must survive ``kill -9``).
"""

from __future__ import annotations

import asyncio
import sys

from idnode.protocol.values import HandleValue, Reference
from idnode.store import open_store


def values_for(n: int) -> list[HandleValue]:
    """The values of handle ``DUR/<n>``."""
    return [
        HandleValue(1, "URL", f"https://example.org/{n}".encode()),
        HandleValue(2, "X.BLOB", n.to_bytes(4, "big") * 64, references=(Reference("DUR/0", n),)),
    ]


async def main(database: str, count: int) -> None:
    store = await open_store(database)
    try:
        for n in range(count):
            handle = f"DUR/{n}"
            await store.create_handle(handle, values_for(n))
            sys.stdout.write(handle + "\n")
            sys.stdout.flush()
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
