"""Finding 9: ``action_history`` grew every reply with the budget (~1 MB at 10k steps)."""

from __future__ import annotations

from sqlenv_core.config import EnvConfig
from sqlenv_core.env import SQLEnvironment


def test_replies_do_not_grow_with_the_number_of_steps() -> None:
    env = SQLEnvironment(config=EnvConfig(budget=10_000))
    env.reset(db_id="flight_4", budget=10_000)
    sizes = []
    for i in range(400):
        obs = env.step({"action_type": "QUERY", "argument": f"SELECT {i} AS step_number"})
        sizes.append(len(obs.model_dump_json()))
    assert sizes[-1] < sizes[40] + 64  # flat once the history is full
    assert len(obs.action_history) == 32
    assert obs.action_history[-1].startswith("QUERY SELECT 399 AS step_number")
    assert obs.step_count == 400
    assert len(env.state.action_history) == 32
    env.close()
