"""schemathesis against the real server's ``/openapi.json``: no request may get a 5xx.

Every operation gets ``SQLENV_FUZZ_EXAMPLES`` generated requests (25 here; the full run
in ``docs/reliability.md`` uses 1000), bodies and headers included, against a server
process on the bundled data. The session cap is raised so that the many ``POST /reset``
calls never meet the (deliberate) 503 of a full session table.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from support import DATA, Server

EXAMPLES = int(os.environ.get("SQLENV_FUZZ_EXAMPLES", "25"))


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("openapi") / "server.log"
    flags = ("--max-sessions", "1000000", "--idle-timeout", "30")
    with Server(DATA, Path(log), *flags) as server:
        yield server
        assert server.health() == 200
        assert "Traceback" not in server.log(), server.log()[-4000:]


def _openapi() -> dict[str, object]:
    """The server's OpenAPI document, built in process (no data is read to build it)."""
    from sqlenv_server.app import create_app
    from sqlenv_server.settings import ServerSettings

    return create_app(ServerSettings(data_dir=DATA)).openapi()


# Loaded at collection: schemathesis' lazy ``from_fixture`` does not work with pytest 9
# (it reads ``request.node._nodeid``). Requests still go to the real process.
schema = schemathesis.openapi.from_dict(_openapi())


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_request_gets_a_server_error(case: schemathesis.Case, api_server: Server) -> None:
    case.call_and_validate(base_url=api_server.base, checks=[not_a_server_error], timeout=30)


def test_the_fuzzed_document_is_the_servers(api_server: Server) -> None:
    import json

    from support import http_get

    status, body = http_get(f"{api_server.base}/openapi.json")
    assert status == 200 and json.loads(body) == _openapi()
