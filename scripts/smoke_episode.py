"""Play one episode with the installed sqlenv-client against a running server, as a pip user
would (scripts/check_wheels.sh runs it in a clean virtual environment).

    python scripts/smoke_episode.py http://127.0.0.1:8000

Uses only what the wheels install: the client for the episode, the web API for the
oracle's actions so the answer is judged correct. Exits non-zero with the reason otherwise.
"""

from __future__ import annotations

import json
import sys
import urllib.request

from sqlenv_client import SQLEnvClient, __version__


def main(base_url: str) -> int:
    with urllib.request.urlopen(f"{base_url}/web/api/questions?split=eval&limit=1") as r:
        question_id = json.load(r)["questions"][0]["id"]
    with urllib.request.urlopen(f"{base_url}/web/api/oracle/{question_id}") as r:
        actions = json.load(r)
    with SQLEnvClient(base_url) as env:
        obs = env.reset(question_id=question_id)
        assert obs.question and obs.tables, obs
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
