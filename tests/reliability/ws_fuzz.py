"""A WebSocket fuzzer for ``/ws``: malformed JSON, wrong types, binary frames, oversized
frames, unknown message types, deep nesting, odd Unicode, and floods.

Rules checked for every message (except ``close``): exactly one reply, in order, that is
a JSON object of type observation / state / error / mcp; an ``EXECUTION_ERROR`` frame
always names its ``error_type`` (one without is a server bug reported as such); after
each batch the same connection still plays an episode. Frames over the transport limit
(16 MiB) close that connection with 1009 and nothing else. Meanwhile another session
plays real episodes and must get correct replies, and the server's log stays free of
tracebacks.

    uv run python tests/reliability/ws_fuzz.py --messages 20000 --flood 10000   # full run
"""

from __future__ import annotations

import asyncio
import json
import random
import string
import time
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

REPLY_TYPES = {"observation", "state", "error", "mcp"}
ERROR_CODES = {"INVALID_JSON", "UNKNOWN_TYPE", "VALIDATION_ERROR", "EXECUTION_ERROR"}
ODD_TEXT = ["\x00", "\ud800", "\udfff", "\u202e", "\ufeff", "🙂", "\u0301", "名前", "\\", '"', "\n", "\x7f"]


def _random_text(rng: random.Random, n: int) -> str:
    pool = string.printable + "".join(ODD_TEXT)
    return "".join(rng.choice(pool) for _ in range(n))


def _random_json(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth > 4 or roll < 0.35:
        return rng.choice(
            [None, True, False, 0, -1, 2**63, 1e308, -0.0, 3.5, "", "x", _random_text(rng, 8),
             "DESCRIBE", "QUERY", "ANSWER", "SAMPLE", "reset", "step", "state", "mcp", "close"]
        )  # fmt: skip
    if roll < 0.65:
        return [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    keys = ["type", "data", "action_type", "argument", "seed", "budget", "question_id",
            "split", "db_id", "episode_id", "metadata", "jsonrpc", "method", "params", "id",
            _random_text(rng, 5)]  # fmt: skip
    return {rng.choice(keys): _random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def make_message(rng: random.Random, max_bytes: int) -> tuple[str, str | bytes]:
    """One fuzz message: (category, payload). Never ``{"type": "close"}``.

    A text frame must be UTF-8, so raw text holding a lone surrogate goes out as a
    binary frame of its ``surrogatepass`` bytes (not UTF-8: ``INVALID_JSON``).
    """
    kind, payload = _make(rng, max_bytes)
    if isinstance(payload, str):
        try:
            payload.encode("utf-8")
        except UnicodeEncodeError:
            payload = payload.encode("utf-8", "surrogatepass")
    return kind, payload


def _make(rng: random.Random, max_bytes: int) -> tuple[str, str | bytes]:
    kind = rng.choice(
        ["not-json", "truncated-json", "binary-garbage", "binary-json", "unknown-type",
         "wrong-type-field", "not-object", "extra-keys", "step-bad-data", "reset-bad-data",
         "random-json", "deep-nesting", "odd-unicode", "mcp-garbage", "oversized",
         "valid-step", "huge-number"]
    )  # fmt: skip
    if kind == "not-json":
        return kind, "{" + _random_text(rng, rng.randint(0, 40))
    if kind == "truncated-json":
        full = json.dumps({"type": "step", "data": {"action_type": "QUERY", "argument": "SELECT 1"}})
        return kind, full[: rng.randint(1, len(full) - 1)]
    if kind == "binary-garbage":
        return kind, bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64))) + b"\xff"
    if kind == "binary-json":
        return kind, json.dumps({"type": "state"}).encode()
    if kind == "unknown-type":
        return kind, json.dumps({"type": _random_text(rng, 6).replace("\ud800", "?") + "x"})
    if kind == "wrong-type-field":
        return kind, json.dumps({"type": rng.choice([1, None, [], {}, True, 2.5])})
    if kind == "not-object":
        return kind, json.dumps(rng.choice([[], [1, 2], 3, "state", None, True]))
    if kind == "extra-keys":
        return kind, json.dumps({"type": "state", "data": None, _random_text(rng, 4) + "k": 1})
    if kind == "step-bad-data":
        data = rng.choice(
            [None, [], 5, "x", {"action_type": 7}, {"action_type": "FLY", "argument": "x"},
             {"action_type": "QUERY", "argument": 12}, {"action_type": "QUERY", "argument": None},
             {"action_type": "QUERY", "argument": ["SELECT 1"]}, {"argument": "SELECT 1"},
             _random_json(rng)]
        )  # fmt: skip
        return kind, json.dumps({"type": "step", "data": data})
    if kind == "reset-bad-data":
        data = rng.choice(
            [[], 5, "x", {"seed": "abc"}, {"seed": -1}, {"budget": 0}, {"budget": 10**9},
             {"question_id": 5}, {"split": "nope"}, {"db_id": "nope"}, {"difficulty": 3},
             {"episode_id": "e" * 1000}, {"seed": 2**80}, _random_json(rng)]
        )  # fmt: skip
        return kind, json.dumps({"type": "reset", "data": data})
    if kind == "random-json":
        return kind, json.dumps(_random_json(rng))
    if kind == "deep-nesting":
        depth = rng.choice([100, 1000, 10_000, 100_000])
        inner = "[" * depth + "]" * depth
        return kind, rng.choice([inner, '{"type": "step", "data": ' + inner + "}"])
    if kind == "odd-unicode":
        text = "".join(rng.choice(ODD_TEXT) for _ in range(rng.randint(1, 12)))
        field_ = rng.choice(["argument", "action_type", "episode_id"])
        if field_ == "episode_id":
            return kind, json.dumps({"type": "reset", "data": {"episode_id": text, "split": "eval"}})
        data = {"action_type": "QUERY", "argument": f"SELECT '{text}'"}
        if field_ == "action_type":
            data["action_type"] = text
        return kind, json.dumps({"type": "step", "data": data})
    if kind == "mcp-garbage":
        return kind, json.dumps({"type": "mcp", "data": _random_json(rng)})
    if kind == "oversized":
        return kind, json.dumps({"type": "step", "data": {"action_type": "QUERY",
                                 "argument": "SELECT '" + "a" * (max_bytes + 10) + "'"}})  # fmt: skip
    if kind == "huge-number":
        return kind, '{"type": "reset", "data": {"seed": 1' + "0" * 5000 + "}}"
    return kind, json.dumps({"type": "step", "data": {"action_type": "QUERY", "argument": "SELECT 1"}})


@dataclass
class Report:
    sent: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    by_reply: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    normal_episodes: int = 0
    flood_messages: int = 0
    flood_seconds: float = 0.0

    def count(self, table: dict[str, int], key: str) -> None:
        table[key] = table.get(key, 0) + 1


def check_reply(raw: str | bytes, kind: str, report: Report) -> None:
    try:
        frame = json.loads(raw)
    except ValueError:
        report.problems.append(f"{kind}: reply is not JSON: {raw[:200]!r}")
        return
    if not isinstance(frame, dict) or frame.get("type") not in REPLY_TYPES:
        report.problems.append(f"{kind}: odd reply {str(frame)[:200]}")
        return
    key = frame["type"]
    if key == "error":
        code = frame["data"].get("code")
        key = f"error:{code}"
        if code not in ERROR_CODES:
            report.problems.append(f"{kind}: unexpected error code {code}: {str(frame)[:300]}")
        elif code == "EXECUTION_ERROR" and "error_type" not in frame["data"]:
            report.problems.append(f"{kind}: server bug: {frame['data']['message'][:300]}")
    report.count(report.by_reply, key)


async def still_plays(ws: ClientConnection) -> None:
    await ws.send(json.dumps({"type": "reset", "data": {"split": "eval", "seed": 1}}))
    frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
    assert frame["type"] == "observation", frame
    table = frame["data"]["observation"]["tables"][0]
    await ws.send(json.dumps({"type": "step", "data": {"action_type": "DESCRIBE", "argument": table}}))
    frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
    assert frame["type"] == "observation" and frame["data"]["observation"]["error"] == "", frame


async def fuzz(url: str, messages: int, seed: int, max_bytes: int, report: Report, batch: int = 50) -> None:
    """Send ``messages`` fuzz messages on one connection, one reply expected for each."""
    rng = random.Random(seed)
    async with connect(url, max_size=None) as ws:
        await still_plays(ws)
        sent = 0
        while sent < messages:
            n = min(batch, messages - sent)
            kinds = []
            for _ in range(n):  # pipelined: a batch goes out before any reply is read
                kind, payload = make_message(rng, max_bytes)
                kinds.append(kind)
                report.count(report.by_kind, kind)
                await ws.send(payload)
            for kind in kinds:
                raw = await asyncio.wait_for(ws.recv(), 60)
                check_reply(raw, kind, report)
            sent += n
            report.sent += n
            await still_plays(ws)


async def giant_frame(url: str, size: int) -> int | None:
    """A frame over the transport limit: the connection is closed (1009), nothing else."""
    ws = await connect(url, max_size=None, write_limit=2**20)
    try:
        await ws.send("x" * size)
        await asyncio.wait_for(ws.recv(), 30)
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd is not None else None
    finally:
        await ws.close()
        # A close cut short by the server's 1009 can leave the socket open; free it
        # (pytest turns the ResourceWarning into an error).
        ws.transport.abort()
    return None


async def flood(url: str, n: int, report: Report) -> None:
    """Send ``n`` steps without reading, then read every reply: all there, in order.

    The server answers one message at a time and stops reading while its reply cannot
    be written (TCP backpressure), so the client's sends block instead of the server
    buffering without bound.
    """
    async with connect(url, max_size=None) as ws:
        await ws.send(json.dumps({"type": "reset", "data": {"split": "eval", "seed": 2, "budget": 10_000}}))
        json.loads(await ws.recv())
        start = time.monotonic()

        async def send_all() -> None:
            for i in range(n):
                q = {"action_type": "QUERY", "argument": f"SELECT {i % 9000}"}
                await ws.send(json.dumps({"type": "state"} if i >= 9000 else {"type": "step", "data": q}))

        sender = asyncio.create_task(send_all())
        await asyncio.sleep(1.0)  # not reading meanwhile
        for i in range(n):
            frame = json.loads(await asyncio.wait_for(ws.recv(), 60))
            if i < 9000:
                rows = frame["data"]["observation"]["table"]["rows"]
                if rows != [[i]]:
                    report.problems.append(f"flood: reply {i} out of order: {rows}")
                    break
            elif frame["type"] != "state":
                report.problems.append(f"flood: reply {i} is {frame['type']}")
                break
        await sender
        report.flood_messages = n
        report.flood_seconds = time.monotonic() - start


async def play_normally(url: str, questions: list[Any], stop: asyncio.Event, report: Report) -> None:
    from sqlenv_core.checker import format_answer

    async with connect(url, max_size=None) as ws:
        i = 0
        while not stop.is_set():
            q = questions[i % len(questions)]
            i += 1
            await ws.send(json.dumps({"type": "reset", "data": {"question_id": q.id}}))
            frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if frame["type"] != "observation" or frame["data"]["observation"]["db_id"] != q.db_id:
                report.problems.append(f"normal session: bad reset reply {str(frame)[:200]}")
                return
            answer = {"action_type": "ANSWER", "argument": format_answer(q.gold_rows)}
            await ws.send(json.dumps({"type": "step", "data": answer}))
            frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if frame["type"] != "observation" or frame["data"]["reward"] != 1.0:
                report.problems.append(f"normal session: wrong reply {str(frame)[:200]}")
                return
            report.normal_episodes += 1
            await asyncio.sleep(0.01)


async def run(url: str, questions: list[Any], *, messages: int, flood_n: int, seed: int,
              max_bytes: int = 1 << 20, connections: int = 2) -> Report:  # fmt: skip
    report = Report()
    stop = asyncio.Event()
    player = asyncio.create_task(play_normally(url, questions, stop, report))
    per = messages // connections
    await asyncio.gather(*(fuzz(url, per, seed + k, max_bytes, report) for k in range(connections)))
    code = await giant_frame(url, 17 << 20)
    if code != 1009:
        report.problems.append(f"a 17 MiB frame: close code {code}, expected 1009")
    if flood_n:
        await flood(url, flood_n, report)
    stop.set()
    await player
    return report


def main() -> None:  # pragma: no cover - the full run for docs/reliability.md
    import argparse
    import sys
    import tempfile
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from support import DATA, Server, fast_questions, proc_stats

    parser = argparse.ArgumentParser(description="Fuzz the /ws WebSocket of a real server.")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--flood", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    questions = fast_questions(DATA, None)[:200]
    with tempfile.TemporaryDirectory() as tmp, Server(DATA, Path(tmp) / "server.log") as server:
        before = proc_stats(server.pid)
        start = time.monotonic()
        report = asyncio.run(run(server.ws_url, questions, messages=args.messages, flood_n=args.flood, seed=args.seed))
        after = proc_stats(server.pid)
        log = server.log()
        stats = server.stats()
    print(f"fuzz messages: {report.sent} in {time.monotonic() - start:.1f} s, seed {args.seed}")
    print("by category:", json.dumps(dict(sorted(report.by_kind.items()))))
    print("replies:", json.dumps(dict(sorted(report.by_reply.items()))))
    print(f"flood: {report.flood_messages} messages unread for 1 s, all answered in order in {report.flood_seconds:.1f} s")
    print(f"normal session: {report.normal_episodes} episodes, all correct" if not report.problems else "")
    print(f"server RSS {before['rss_kb'] // 1024} -> {after['rss_kb'] // 1024} MiB, threads {before['threads']} -> {after['threads']}, fds {before['fds']} -> {after['fds']}")
    print(f"sessions left: {stats['active_sessions']}; tracebacks in log: {log.count('Traceback')}")
    print(f"problems: {report.problems[:20] or 'none'}")


if __name__ == "__main__":  # pragma: no cover
    main()
