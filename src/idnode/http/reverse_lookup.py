"""``/hrls/handles``: reverse lookup (handles by value), as the B2HANDLE Handle Reverse-Lookup
Servlet (HRLS) that Handle.Net deployments run beside the server answers it, so pyhandle's
``search_handle`` works (spec §6.3: ``GET {server}/hrls/handles?URL=...`` with Basic auth).

* ``GET /hrls/handles?URL=<v>&CHECKSUM=<v>...`` (or ``/hrls/handles/``) → 200 and a JSON array
  of handle names, each having, **for every** search parameter, a value of that type
  (case-insensitive) whose data (UTF-8 text) equals the parameter (case-sensitive);
  ``*`` in it is a wildcard for any run of characters. A parameter repeated for one type must
  all match the same value (the reference's ``type=? and data=? and data=?``). No search
  parameter → ``[]``.
* Special parameters, not search fields: ``limit`` (at most that many handles; default 1000,
  capped at 10000, as the reference), ``page`` (skip that many matches: the reference's SQL
  offset), ``enforcesql`` (ignored: there is one search backend), ``retrieverecords`` (only
  ``false``; ``true`` → 400), and the API's ``pretty`` and ``callback``.
* Credentials are required (the reference servlet sits behind HTTP authentication): Basic or
  the Handle scheme, verified as for ``/api/`` (:class:`~idnode.http.auth.Authenticator`), by
  **any** identity; none → 401 responseCode 402, refused → 401 responseCode 403. Only values
  with PUBLIC_READ are searched, so the answer names no handle through data an anonymous
  resolution would not show (the reference searches its SQL table, hidden values included).

The search is a **linear scan** of the store (:meth:`~idnode.store.base.HandleStore.scan`, in
batches, stopping once ``limit`` handles matched): its cost grows with the number of handles,
which is fine for a node of thousands of handles; a large node needs an index on (type, data).
"""

from __future__ import annotations

import re

from idnode.http.asgi import HTTPError, Request, Response
from idnode.http.common import (
    ApiEndpoint,
    Params,
    parse_int,
    protocol_error,
    render,
    unknown_endpoint,
)
from idnode.protocol.codes import ResponseCode
from idnode.protocol.values import HandleValue

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "ReverseLookupApi"]

#: Handles answered when ``limit`` is not given, and the largest ``limit`` honoured.
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10000
#: Handles read from the store per :meth:`~idnode.store.base.HandleStore.scan` call.
SCAN_BATCH = 500

_ALLOW = ("GET", "HEAD", "OPTIONS")
_NOT_SEARCH_FIELDS = frozenset(
    ("limit", "page", "enforcesql", "retrieverecords", "pretty", "callback")
)


def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in text.split("*")), re.DOTALL)


def _matches(values: tuple[HandleValue, ...], fields: dict[str, list[re.Pattern[str]]]) -> bool:
    for vtype, patterns in fields.items():
        if not any(
            v.public_read
            and v.type.upper() == vtype
            and all(p.fullmatch(v.data.decode("utf-8", "replace")) for p in patterns)
            for v in values
        ):
            return False
    return True


class ReverseLookupApi(ApiEndpoint):
    """The ``/hrls/handles`` endpoint of :class:`~idnode.http.api.JsonApi`."""

    methods = _ALLOW

    async def __call__(self, request: Request, rest: str, params: Params) -> Response:
        """``rest``: the raw path after ``/hrls/handles/`` (must be empty)."""
        if rest:
            raise unknown_endpoint(request)
        if await self.auth.identify(request) is None:
            raise HTTPError(ResponseCode.AUTHENTICATION_NEEDED, "Authentication needed")
        limit = min(_count(params, "limit", DEFAULT_LIMIT), MAX_LIMIT)
        skip = _count(params, "page", 0)
        if (params.first("retrieverecords") or "false").lower() == "true":
            raise protocol_error("retrieverecords is not supported")
        fields: dict[str, list[re.Pattern[str]]] = {}
        for name, value in params.pairs:
            if name not in _NOT_SEARCH_FIELDS:
                fields.setdefault(name.upper(), []).append(_pattern(value))
        found: list[str] = []
        after: str | None = None
        while fields and len(found) < limit:
            batch = await self.dispatcher.store.scan(after, SCAN_BATCH)
            for handle, values in batch:
                if _matches(values, fields):
                    if skip:
                        skip -= 1
                    else:
                        found.append(handle)
                        if len(found) == limit:
                            break
            if len(batch) < SCAN_BATCH:
                break
            after = batch[-1][0]
        return render(params, found)


def _count(params: Params, name: str, default: int) -> int:
    value = params.first(name)
    number = default if value is None else parse_int(value, name)
    if number < 0:
        raise protocol_error(f"{name} must not be negative")
    return number
