"""A bounded schemathesis run against the live HTTP listener, driven by the OpenAPI document.

The schema is :func:`~idnode.http.openapi.openapi_document` with the proxy's paths (checked
below to be exactly what
``/api/openapi.json`` serves; loading it at import keeps clear of schemathesis' lazy pytest
loader, which pytest 9 breaks). Every operation gets a few generated requests against the real
listener on 127.0.0.1, anonymous and as the server administrator (so writes get past
authentication and reach validation). Each response must not be a 5xx, must have a documented
status code and content type, and must match the documented schema (errors: exactly the one
error shape). The node is this module's own, so random writes disturb no other test.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config import SchemathesisConfig

from idnode.http.api import api_document
from idnode.http.gs1 import demo_gs1_rules
from idnode.http.proxy import proxy_openapi_paths
from tests.http.conftest import PREFIX_HANDLE, basic, live_client
from tests.server.nodeutil import RunningNode

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
SETTINGS = settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)

#: Methods HTTP/1.1 does not define (PATCH, QUERY) get 501 by the spec (§5), which the
#: coverage phase would count as a server error; it probes the defined ones.
CONFIG = SchemathesisConfig.from_str('[phases.coverage]\nunexpected-methods = ["trace", "put"]\n')
#: What a demo node serves: the API, the browser proxy and the demo's GS1 Digital Link rule.
DOCUMENT = api_document(proxy_openapi_paths(demo_gs1_rules()))
schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)
schemathesis.serializer.alias("application/x-hdl-message", "application/octet-stream")


def _call(case: Any, node: RunningNode, credentials: dict[str, str]) -> None:
    headers = dict(case.headers or {})
    headers.update(credentials)
    base_url = f"http://{node.host}:{node.node.http_port}"
    case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS, timeout=10)


@schema.parametrize()
@SETTINGS
def test_anonymous(case: Any, node: RunningNode) -> None:
    _call(case, node, {})


@schema.parametrize()
@SETTINGS
def test_as_server_admin(case: Any, node: RunningNode) -> None:
    _call(case, node, basic(f"300:{PREFIX_HANDLE}", node.admin_secret))


def test_the_served_document_is_the_tested_one(node: RunningNode) -> None:
    with live_client(node) as client:
        assert client.get("/api/openapi.json").json() == DOCUMENT
