"""``/api/prefixes`` (spec §5.3; the reference server's ``PrefixesServlet``): server
administrators list, home and unhome prefixes.

* ``GET /api/prefixes`` → ``{"responseCode": 1, "totalCount": "n", "prefixes": ["0.NA/P", ...]}``
  (``page``/``pageSize`` as for handle listing): the dispatcher's list-homed-prefixes request
  (op 302 with a blank handle).
* ``POST /api/prefixes?prefix=0.NA/P`` (or ``/api/prefixes/0.NA/P``, or ``prefix`` in a JSON
  body) → OC_HOME_NA; ``DELETE`` → OC_UNHOME_NA; 200 ``{"responseCode": 1, "handle": "<prefix
  as sent>"}``. A bare ``P`` means ``0.NA/P``. No prefix → 400 responseCode 4.
* ``GET`` naming a prefix → 405.
"""

from __future__ import annotations

from idnode.errors import HandleError
from idnode.http.asgi import HTTPError, Request, Response
from idnode.http.common import (
    ApiEndpoint,
    MethodNotAllowed,
    Params,
    execute,
    paged,
    protocol_error,
    render,
    to_http_error,
)
from idnode.http.handles import decode_path, prefix_handle
from idnode.protocol.bodies import HandleListBody, HandleRequest
from idnode.protocol.codes import OpCode

__all__ = ["PrefixesApi"]

_ALLOW = ("GET", "HEAD", "POST", "DELETE", "OPTIONS")


class PrefixesApi(ApiEndpoint):
    methods = _ALLOW

    def body_params(self, method: str) -> bool:
        return method in ("POST", "DELETE")

    async def __call__(self, request: Request, rest: str, params: Params) -> Response:
        """``rest``: the raw path after ``/api/prefixes/``."""
        prefix = params.first("prefix")
        if prefix is None:
            prefix = decode_path(rest)
        identity = await self.auth.identify(request)
        if request.method in ("GET", "HEAD"):
            if prefix:
                raise MethodNotAllowed(request, ("POST", "DELETE", "OPTIONS"))
            body = HandleRequest("")
            response = await execute(self.dispatcher, OpCode.LIST_DERIVED_PREFIXES, body, identity)
            result = response.body
            assert isinstance(result, HandleListBody)
            return render(
                params, {"responseCode": 1, **paged(list(result.handles), params, "prefixes")}
            )
        action = "homing" if request.method == "POST" else "unhoming"
        if not prefix:
            raise protocol_error(f"Prefix not specified in {action} request")
        op = OpCode.HOME_NA if request.method == "POST" else OpCode.UNHOME_NA
        try:
            await execute(self.dispatcher, op, HandleRequest(prefix_handle(prefix)), identity)
        except HandleError as exc:
            raise to_http_error(exc, handle=prefix) from exc
        except HTTPError as exc:
            exc.handle = prefix
            raise
        return render(params, {"responseCode": 1, "handle": prefix})
