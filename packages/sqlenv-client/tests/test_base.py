"""The I/O-free layer: URLs, frames, reply decoding and error mapping."""

from __future__ import annotations

import json

import pytest
from sqlenv_client import (
    CapacityReachedError,
    ExecutionError,
    InvalidActionError,
    ProtocolError,
    ServerError,
    SessionError,
    SQLAction,
    SQLObservation,
)
from sqlenv_client._base import (
    CLOSING_CODES,
    answer_text,
    closes_connection,
    decode_reply,
    encode_close,
    encode_reset,
    encode_state,
    encode_step,
    is_loopback,
    parse_observation,
    parse_state,
    pending_error,
    server_error,
    ws_url,
)


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("http://localhost:8000", "ws://localhost:8000/ws"),
        ("http://localhost:8000/", "ws://localhost:8000/ws"),
        ("https://owner-sql-env.hf.space", "wss://owner-sql-env.hf.space/ws"),
        ("https://owner-sql-env.hf.space/", "wss://owner-sql-env.hf.space/ws"),
        ("HTTP://Example.com:80", "ws://Example.com:80/ws"),
        ("https://host/envs/sql/", "wss://host/envs/sql/ws"),
        ("  http://localhost:8000  ", "ws://localhost:8000/ws"),
        ("ws://localhost:8000", "ws://localhost:8000/ws"),
        ("ws://localhost:8000/ws", "ws://localhost:8000/ws"),
        ("wss://host/custom/socket", "wss://host/custom/socket"),
        ("wss://host/ws?session_id=abc", "wss://host/ws?session_id=abc"),
        ("http://[::1]:8000", "ws://[::1]:8000/ws"),
    ],
)
def test_ws_url(base_url: str, expected: str) -> None:
    assert ws_url(base_url) == expected


@pytest.mark.parametrize("bad", ["localhost:8000", "ftp://host", "http://", "", "/ws"])
def test_ws_url_rejects_what_is_not_a_server_url(bad: str) -> None:
    with pytest.raises(ValueError, match="base_url must look like http://host:port"):
        ws_url(bad)


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("ws://127.0.0.1:8000/ws", True),
        ("ws://127.1.2.3/ws", True),
        ("ws://localhost:8000/ws", True),
        ("ws://[::1]:8000/ws", True),
        ("wss://owner-sql-env.hf.space/ws", False),
        ("ws://10.0.0.5:8000/ws", False),
    ],
)
def test_is_loopback(url: str, loopback: bool) -> None:
    assert is_loopback(url) is loopback


def test_frames() -> None:
    assert json.loads(encode_reset({"seed": 1, "split": None})) == {
        "type": "reset",
        "data": {"seed": 1},
    }
    assert json.loads(encode_step(SQLAction(action_type="query", argument="SELECT 1"))) == {
        "type": "step",
        "data": {"action_type": "QUERY", "argument": "SELECT 1"},
    }
    assert json.loads(encode_state()) == {"type": "state"}
    assert json.loads(encode_close()) == {"type": "close"}


def test_answer_text() -> None:
    assert answer_text("6") == "6"
    assert answer_text(6) == "6"
    assert answer_text([["Zoë", 1.5]]) == '[["Zoë", 1.5]]'
    assert answer_text((1, 2)) == "[1, 2]"


@pytest.mark.parametrize(
    ("code", "exc_type"),
    [
        ("CAPACITY_REACHED", CapacityReachedError),
        ("FACTORY_ERROR", SessionError),
        ("SESSION_ERROR", SessionError),
        ("VALIDATION_ERROR", InvalidActionError),
        ("EXECUTION_ERROR", ExecutionError),
        ("INVALID_JSON", ServerError),
        ("UNKNOWN_TYPE", ServerError),
        ("SOMETHING_NEW", ServerError),
    ],
)
def test_error_frames_map_to_exceptions(code: str, exc_type: type[ServerError]) -> None:
    raw = json.dumps({"type": "error", "data": {"message": "m", "code": code, "x": 1}})
    with pytest.raises(exc_type) as info:
        decode_reply(raw, "observation")
    assert type(info.value) is exc_type
    assert (info.value.code, info.value.message, info.value.data["x"]) == (code, "m", 1)
    assert closes_connection(info.value) is (code in CLOSING_CODES)


def test_error_frame_without_code_or_message() -> None:
    error = server_error({})
    assert (type(error), error.code, error.message) == (
        ServerError,
        "UNKNOWN",
        "the server sent no message",
    )
    with pytest.raises(ServerError, match="oops"):
        decode_reply('{"type": "error", "data": "oops"}', "state")


def test_binary_frames_are_decoded_as_utf8_json() -> None:
    assert decode_reply(b'{"type": "state", "data": {"step_count": 2}}', "state") == {
        "step_count": 2
    }
    with pytest.raises(ProtocolError, match="not valid JSON"):
        decode_reply(b"\xff\xfe", "state")


def test_long_bad_replies_are_shortened_in_the_message() -> None:
    with pytest.raises(ProtocolError) as info:
        decode_reply("x" * 10_000, "state")
    assert len(str(info.value)) < 400 and str(info.value).endswith("...")


def test_parse_observation() -> None:
    obs = parse_observation(
        {
            "observation": {"question": "q?", "tables": ["a"], "metadata": {}, "new_field": 1},
            "reward": 1,
            "done": True,
            "metadata": {"correct": True},
        }
    )
    assert obs == SQLObservation(
        question="q?", tables=["a"], reward=1.0, done=True, metadata={"correct": True}
    )
    assert isinstance(obs.reward, float)


def test_parse_state_keeps_extras_and_rejects_bad_types() -> None:
    state = parse_state({"episode_id": "e", "step_count": 1, "custom": [1]})
    assert state.model_extra == {"custom": [1]}
    with pytest.raises(ProtocolError, match="EpisodeState"):
        parse_state({"step_count": -1})


def test_pending_error() -> None:
    assert pending_error(None) is None
    assert pending_error("not json") is None
    assert pending_error('{"type": "observation", "data": {}}') is None
    error = pending_error('{"type": "error", "data": {"code": "SESSION_ERROR", "message": "m"}}')
    assert isinstance(error, SessionError)
