"""Fuzz the whole request path: bytes → :func:`idnode.server.wire_io.answer` on a real
:class:`~idnode.server.dispatch.Dispatcher` over a SQLite store made by
:func:`idnode.bootstrap.init_node` (demo data included) in a temporary directory.

Property: ``answer`` never raises; the dispatcher logs no internal error (it turns any
non-HandleError exception into RC_ERROR and logs it: that is a bug, so the harness re-raises
it); the response, if any, decodes to a response (never a request) with the request's id.

The node lives for the whole run, so state can carry from one input to the next (pending
challenges and sessions; writes, though the fuzzer rarely gets past authentication). If a
crash file does not fail on its own in ``tests/test_fuzz.py``, replay the run's corpus.

Run: ``python -m fuzz.dispatch [libFuzzer args] [corpus dirs]`` (see :mod:`fuzz.driver`).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import tempfile
from pathlib import Path
from types import TracebackType

from idnode.bootstrap import init_node
from idnode.protocol.message import Message
from idnode.protocol.types.hs_pubkey import load_private_key
from idnode.server.config import NodeConfig
from idnode.server.dispatch import Dispatcher, NodeIdentity
from idnode.server.node import build_site
from idnode.server.wire_io import answer
from idnode.store import open_store
from idnode.store.base import HandleStore

__all__ = ["PREFIX", "DispatchTarget", "test_one_input"]

PREFIX = "88.118.8"


class _Recorder(logging.Handler):
    """Keeps the records of the dispatcher's ``log.exception`` calls."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class DispatchTarget:
    """A node in a temporary directory and the harness over it; close (or ``with``) it."""

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="idnode-fuzz-")
        self.loop = asyncio.new_event_loop()
        directory = Path(self._tmp.name) / "node"
        self.loop.run_until_complete(init_node(directory, PREFIX, port=0, demo=True))
        config = NodeConfig.load(directory / "idnode.toml")
        self.store: HandleStore = self.loop.run_until_complete(open_store(config.database_location))
        key = load_private_key(config.server_key_path.read_bytes())
        site = build_site(config, key, config.port)
        self.dispatcher = Dispatcher(
            self.store,
            NodeIdentity(site.to_bytes(), site.serial),
            server_admins=config.server_admins,
            server_key=key,
        )
        self._recorder = _Recorder()
        self._logger = logging.getLogger("idnode.server.dispatch")
        self._logger.addHandler(self._recorder)
        self._closed = False

    def __call__(self, data: bytes) -> None:
        self._recorder.records.clear()
        response, request = self.loop.run_until_complete(answer(self.dispatcher, data))
        for record in self._recorder.records:
            if record.exc_info and record.exc_info[1] is not None:
                raise AssertionError(record.getMessage()) from record.exc_info[1]
            raise AssertionError(f"dispatcher logged an error: {record.getMessage()}")
        if not response:
            return
        decoded = Message.decode(response)
        assert not decoded.is_request, f"answered with a request: {decoded!r}"
        if request is not None:
            assert decoded.request_id == request.request_id, "response to another request id"

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._logger.removeHandler(self._recorder)
        self.loop.run_until_complete(self.store.close())
        self.loop.close()
        self._tmp.cleanup()

    def __enter__(self) -> DispatchTarget:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


_target: DispatchTarget | None = None


def test_one_input(data: bytes) -> None:
    """The harness on a node made at the first call (closed at exit)."""
    global _target
    if _target is None:
        _target = DispatchTarget()
        atexit.register(_target.close)
    _target(data)


if __name__ == "__main__":
    from fuzz.driver import fix_lengths, main

    main(test_one_input, fixup=fix_lengths)
