"""Play one episode with the installed sqlenv-client against a running server, as a pip user
would (scripts/check_wheels.sh runs it in a clean virtual environment).

    python scripts/smoke_episode.py http://127.0.0.1:8000

Uses only what the wheels install: the client for the episodes, the web API for the
oracle's actions. The oracle's plan is the gold, so the server gives it only for a question
whose episode is over (unless it runs with SQLENV_WEB_ORACLE=1): a first episode is answered
wrongly, then the plan is replayed in a second one, which must be judged correct. Exits
non-zero with the reason otherwise.
"""

from __future__ import annotations

import json
import sys
import urllib.request

from sqlenv_client import SQLEnvClient, __version__


def main(base_url: str) -> int:
    with urllib.request.urlopen(f"{base_url}/web/api/questions?split=eval&limit=1") as r:
        question_id = json.load(r)["questions"][0]["id"]
    with SQLEnvClient(base_url) as env:
        obs = env.reset(question_id=question_id)
        assert obs.question and obs.tables, obs
        obs = env.answer("not the answer")
        first = env.state()
        assert obs.done and first.correct is False, first
        oracle = f"{base_url}/web/api/oracle/{question_id}?episode_id={first.episode_id}"
        with urllib.request.urlopen(oracle) as r:
            actions = json.load(r)
        obs = env.reset(question_id=question_id)
        for action in actions:
            obs = env.step(action)
        state = env.state()
    if not (obs.done and state.correct and obs.reward_breakdown.terminal == 1.0):
        print(f"the oracle's episode was not judged correct: {obs!r} {state!r}", file=sys.stderr)
        return 1
    steps = " -> ".join(a["action_type"] for a in actions)
    print(
        f"sqlenv-client {__version__}: {question_id}: reset -> {steps}: correct, reward {obs.reward}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000"))
