"""The exception tree: its shape, its messages, and that its docstring draws it."""

from __future__ import annotations

import inspect
import pickle
import re

import pytest
from sqlenv_client import errors
from sqlenv_client.errors import (
    CapacityReachedError,
    ClientClosedError,
    ConnectError,
    ConnectionLostError,
    ExecutionError,
    InvalidActionError,
    ProtocolError,
    ReplyTimeoutError,
    ServerError,
    SessionError,
    SQLEnvClientError,
    TransportError,
)

PARENTS = {
    TransportError: SQLEnvClientError,
    ConnectError: TransportError,
    ConnectionLostError: TransportError,
    ReplyTimeoutError: TransportError,
    ProtocolError: SQLEnvClientError,
    ClientClosedError: SQLEnvClientError,
    ServerError: SQLEnvClientError,
    CapacityReachedError: ServerError,
    SessionError: ServerError,
    InvalidActionError: ServerError,
    ExecutionError: ServerError,
}


@pytest.mark.parametrize(("exc_type", "parent"), PARENTS.items())
def test_tree(exc_type: type[Exception], parent: type[Exception]) -> None:
    assert exc_type.__bases__[0] is parent


def test_builtin_bases() -> None:
    assert issubclass(ReplyTimeoutError, TimeoutError)
    assert issubclass(ClientClosedError, RuntimeError)
    assert str(ReplyTimeoutError("no reply")) == "no reply"


def test_every_exception_is_exported_and_drawn_in_the_docstring() -> None:
    classes = {
        name
        for name, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, Exception) and obj.__module__ == errors.__name__
    }
    assert classes == set(errors.__all__)
    doc = errors.__doc__ or ""
    for name in classes:
        drawn = re.search(rf"^[\s│]*(├── |└── )?{name}\b", doc, re.MULTILINE)
        assert drawn, f"{name} is missing from the tree in the docstring"


def test_execution_error_type() -> None:
    data = {"error_type": "ResetNeeded"}
    assert ExecutionError("EXECUTION_ERROR", "reset first", data).error_type == "ResetNeeded"
    assert ExecutionError("EXECUTION_ERROR", "boom").error_type is None


def test_server_error_fields_and_message() -> None:
    error = ServerError("EXECUTION_ERROR", "boom", {"message": "boom", "code": "EXECUTION_ERROR"})
    assert str(error) == "boom (code: EXECUTION_ERROR)"
    capacity = CapacityReachedError(
        "CAPACITY_REACHED", "full", {"active_sessions": 2, "max_sessions": 2}
    )
    assert (capacity.active_sessions, capacity.max_sessions) == (2, 2)
    assert CapacityReachedError("CAPACITY_REACHED", "full").active_sessions is None


def test_invalid_action_error_summarises_pydantic_errors() -> None:
    details = [{"loc": ["data", "action_type"], "msg": f"bad {i}"} for i in range(5)]
    error = InvalidActionError("VALIDATION_ERROR", "Invalid message", {"errors": details})
    assert error.errors == details
    assert str(error) == (
        "Invalid message (code: VALIDATION_ERROR): data.action_type: bad 0; "
        "data.action_type: bad 1; data.action_type: bad 2 (+2 more)"
    )
    # A server whose message already carries the details does not get them twice.
    said = InvalidActionError(
        "VALIDATION_ERROR",
        "Invalid action: action_type: bad",
        {"errors": [*details[:1], {"loc": ["action_type"], "msg": "bad"}]},
    )
    assert str(said) == (
        "Invalid action: action_type: bad (code: VALIDATION_ERROR): data.action_type: bad 0"
    )
    assert InvalidActionError("VALIDATION_ERROR", "Invalid message").errors == []
    assert str(InvalidActionError("VALIDATION_ERROR", "x", {"errors": "?"})) == (
        "x (code: VALIDATION_ERROR)"
    )


@pytest.mark.parametrize(
    "error",
    [
        ConnectError("cannot connect to ws://h/ws", url="ws://h/ws"),
        CapacityReachedError("CAPACITY_REACHED", "full", {"max_sessions": 1}),
        ReplyTimeoutError("no reply"),
        ClientClosedError("closed"),
    ],
)
def test_errors_pickle(error: Exception) -> None:
    # Trainers move exceptions between processes.
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error) and str(copy) == str(error)
    assert vars(copy) == vars(error)
