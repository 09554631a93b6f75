"""Training recipes shared by the notebook, ``scripts/train_smollm2.py`` and the tests.

Needs the ``trl`` extra. Everything runs on a CPU with the defaults here (fp32,
``use_cpu``) and on a GPU when the caller passes ``use_cpu=False, bf16=True``.

* ``sft_dataset(trajectories)``: SFT rows from ``sqlenv sft-data`` output.
* ``run_sft(model, tokenizer, trajectories, ...)``: the warm-up, assistant-only loss.
* ``grpo_trainer(model, tokenizer, dataset, tool_factory, budget, ...)``: a
  ``GRPOTrainer`` with ``environment_factory`` and one budget for env and trainer.
* ``evaluate_model(model, tokenizer, env, questions, ...)``: ``evaluate`` with
  ``HFPolicy``, the report ``sqlenv eval --policy hf`` prints.
* ``reward_curve(log_history)``: (step, mean reward) pairs from a trainer's log.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlenv_core.prompting import TOOLS

from .trl import ToolUsePenalty

__all__ = [
    "evaluate_model",
    "grpo_trainer",
    "load_trajectories",
    "reward_curve",
    "run_sft",
    "sft_dataset",
]


def load_trajectories(path: str | Path) -> list[dict[str, Any]]:
    """The trajectories of a ``sqlenv sft-data`` JSON lines file."""
    with Path(path).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def sft_dataset(trajectories: Iterable[Mapping[str, Any]]) -> Any:
    """A ``datasets.Dataset`` with ``messages`` and ``tools`` for TRL's SFT trainer.

    ``messages`` is stored as a JSON feature: Arrow would otherwise merge the tool
    calls' different argument names into one struct and render ``null`` arguments.
    """
    from datasets import Dataset, Features, Json, Value

    rows = [
        {"messages": t["messages"], "tools": json.dumps(t.get("tools", TOOLS))}
        for t in trajectories
    ]
    return Dataset.from_list(
        rows, features=Features({"messages": Json(), "tools": Value("string")})
    )


_DEFAULT_PENALTY = ToolUsePenalty()


def _cpu_defaults(use_cpu: bool) -> dict[str, Any]:
    return {"use_cpu": True, "bf16": False, "fp16": False} if use_cpu else {}


def run_sft(
    model: Any,
    tokenizer: Any,
    trajectories: Iterable[Mapping[str, Any]],
    *,
    output_dir: str | Path,
    epochs: float = 1.0,
    max_steps: int = -1,
    batch_size: int = 4,
    gradient_accumulation_steps: int = 1,
    learning_rate: float = 1e-4,
    max_length: int = 2048,
    use_cpu: bool = True,
    seed: int = 0,
    **overrides: Any,
) -> Any:
    """Supervised warm-up on oracle trajectories, loss on the assistant turns only.

    Returns the trainer (``trainer.state.log_history`` holds the loss per step); the
    model is trained in place.
    """
    from trl import SFTConfig, SFTTrainer

    config = SFTConfig(
        output_dir=str(output_dir),
        num_train_epochs=epochs,
        max_steps=max_steps,
        per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=gradient_accumulation_steps,
        learning_rate=learning_rate,
        lr_scheduler_type="constant_with_warmup",
        warmup_steps=2,
        max_length=max_length,
        assistant_only_loss=True,
        packing=False,
        gradient_checkpointing=False,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        seed=seed,
        dataloader_num_workers=0,
        **{**_cpu_defaults(use_cpu), **overrides},
    )
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=sft_dataset(trajectories),
        processing_class=tokenizer,
    )
    trainer.train()
    return trainer


def grpo_trainer(
    model: Any,
    tokenizer: Any,
    train_dataset: Any,
    tool_factory: Callable[[], Any],
    *,
    budget: int,
    output_dir: str | Path,
    max_steps: int = 30,
    num_generations: int = 4,
    prompts_per_step: int = 1,
    max_completion_length: int = 512,
    learning_rate: float = 5e-6,
    temperature: float = 1.0,
    penalty: Callable[..., list[float]] | None = _DEFAULT_PENALTY,
    use_cpu: bool = True,
    seed: int = 0,
    **overrides: Any,
) -> Any:
    """A ``GRPOTrainer`` on SQLEnv through ``environment_factory=tool_factory``.

    ``budget`` is the one step budget: ``tool_factory`` must build ``SQLEnvTool``s with
    the same budget (``SQLEnvTool.factory(..., budget=budget)``), and the trainer gets it
    as ``max_tool_calling_iterations``. The reward is the episode's return, through
    ``SQLEnvTool.get_reward``, plus ``penalty`` (default ``ToolUsePenalty()``: a small
    cost for tool calls TRL could not run and for rollouts without an answer, so that a
    group of uniformly failing rollouts still has something to rank; ``None`` for the
    bare return). No KL term (``beta=0``, TRL's default): no reference
    model in memory. Call ``.train()`` on the result.
    """
    from trl import GRPOConfig, GRPOTrainer

    from .hf import chat_template_kwargs

    config = GRPOConfig(
        output_dir=str(output_dir),
        max_steps=max_steps,
        per_device_train_batch_size=num_generations * prompts_per_step,
        num_generations=num_generations,
        max_completion_length=max_completion_length,
        max_tool_calling_iterations=budget,
        mask_truncated_completions=True,
        learning_rate=learning_rate,
        temperature=temperature,
        gradient_checkpointing=False,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        remove_unused_columns=False,
        seed=seed,
        chat_template_kwargs=chat_template_kwargs(tokenizer) or None,
        dataloader_num_workers=0,
        **{**_cpu_defaults(use_cpu), **overrides},
    )
    return GRPOTrainer(
        model=model,
        args=config,
        train_dataset=train_dataset,
        processing_class=tokenizer,
        reward_funcs=[penalty] if penalty is not None else None,
        environment_factory=tool_factory,
    )


def evaluate_model(
    model: Any,
    tokenizer: Any,
    env: Any,
    questions: Iterable[Any],
    *,
    max_new_tokens: int = 256,
    budget: int | None = None,
    max_completion_length: int | None = None,
    name: str = "hf",
    progress: Callable[[Any], None] | None = None,
) -> Any:
    """Play ``questions`` greedily with the model: an ``EvalReport`` with ``tool_call_parse_rate``.

    ``env`` is an in-process ``SQLEnvironment`` or a ``SQLEnvClient``; ``budget`` (the
    training budget) is passed to every ``reset`` and caps the rounds of tool calls.
    """
    from sqlenv_core.evaluation import evaluate

    from .policies import HFPolicy

    was_training = model.training
    model.eval()
    policy = HFPolicy(
        model,
        tokenizer,
        max_new_tokens=max_new_tokens,
        budget=budget,
        max_completion_length=max_completion_length,
    )
    policy.name = name
    try:
        return evaluate(env, policy, questions, progress=progress, budget=budget)
    finally:
        if was_training:
            model.train()


def reward_curve(log_history: Iterable[Mapping[str, Any]]) -> list[tuple[int, float]]:
    """(step, mean total reward) for every logged GRPO step."""
    return [
        (int(e["step"]), float(e["reward"])) for e in log_history if "reward" in e and "step" in e
    ]
