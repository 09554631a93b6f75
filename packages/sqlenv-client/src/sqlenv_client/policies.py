"""Model policies for ``sqlenv eval``: ``hf`` (a local causal LM) and ``openai`` (an endpoint).

Both satisfy ``sqlenv_core.policies.Policy`` and are registered in the
``sqlenv.policies`` entry-point group, so ``sqlenv eval --policy hf --model PATH``
finds them. They speak the conversation of ``sqlenv_core.prompting``: the same system
prompt, user message, tools and tool results as the TRL adapter and the SFT data.

``HFPolicy`` also reproduces ``GRPOTrainer``'s rollout loop token for token: the prompt
is rendered once with the chat template and the tools; each turn appends the generated
ids, then the tool results rendered the way TRL renders them; tool calls are read with
TRL's ``parse_response``; every tool call of a turn is executed; the loop stops when a
turn has no tool call or after ``budget`` rounds of tool calls (TRL's
``max_tool_calling_iterations``). Invalid calls get ``{'error': ...}`` and use no step,
as in TRL.

Each policy counts its model turns and those holding a valid tool call
(``tool_call_counts()``), which ``evaluate`` reports as ``tool_call_parse_rate``.
"""

from __future__ import annotations

import json
import os
import random
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from sqlenv_core.prompting import (
    TOOLS,
    ToolCallError,
    call_to_action,
    parse_tool_calls,
    system_prompt,
    tool_result,
    user_message,
)
from sqlenv_core.schemas import SQLAction, SQLObservation

__all__ = ["HFPolicy", "OpenAIPolicy", "make_hf_policy", "make_openai_policy"]

DEFAULT_MAX_NEW_TOKENS = 256


class _ToolLoop:
    """The turn bookkeeping both policies share: queued calls, pending results, counts."""

    name = "model"

    def __init__(self, budget: int | None) -> None:
        self.budget = budget
        self.turns = 0
        self.parsed_turns = 0
        self._queue: list[tuple[str, Any, str]] = []  # (name, arguments, call id)
        self._results: list[dict[str, Any]] = []
        self._awaiting: tuple[str, str] | None = None
        self._rounds = 0
        self._episode_budget = 0

    def tool_call_counts(self) -> tuple[int, int]:
        """(model turns with at least one valid tool call, model turns)."""
        return self.parsed_turns, self.turns

    def _start(self, observation: SQLObservation) -> list[dict[str, Any]]:
        self._queue, self._results, self._awaiting, self._rounds = [], [], None, 0
        self._episode_budget = observation.budget_remaining + observation.step_count
        return [
            {"role": "system", "content": system_prompt()},
            {
                "role": "user",
                "content": user_message(
                    observation.question,
                    observation.db_id,
                    observation.tables,
                    self._episode_budget,
                ),
            },
        ]

    def act(self, observation: SQLObservation) -> SQLAction | None:
        if self._awaiting is not None:
            name, call_id = self._awaiting
            self._results.append(self._tool_message(name, call_id, tool_result(observation, name)))
            self._awaiting = None
        while True:
            while self._queue:
                name, arguments, call_id = self._queue.pop(0)
                try:
                    action = call_to_action(name, arguments)
                except ToolCallError as exc:
                    self._results.append(
                        self._tool_message(name, call_id, str({"error": str(exc)}))
                    )
                    continue
                self._awaiting = (name, call_id)
                return action
            if self._results:
                results, self._results = self._results, []
                if not self._append_results(results):
                    return None
            calls = self._generate()
            self.turns += 1
            if not calls:
                return None  # no tool call: the model stopped
            if any(_valid(name, arguments) for name, arguments, _ in calls):
                self.parsed_turns += 1
            limit = self.budget or self._episode_budget
            if self._rounds >= limit:
                return None  # TRL's max_tool_calling_iterations
            self._rounds += 1
            self._queue = list(calls)

    # implemented by each policy
    def _generate(self) -> list[tuple[str, Any, str]]:
        raise NotImplementedError

    def _append_results(self, results: list[dict[str, Any]]) -> bool:
        raise NotImplementedError

    def _tool_message(self, name: str, call_id: str, content: str) -> dict[str, Any]:
        return {"role": "tool", "name": name, "content": content}


def _valid(name: str, arguments: Any) -> bool:
    try:
        call_to_action(name, arguments)
    except ToolCallError:
        return False
    return True


class HFPolicy(_ToolLoop):
    """A Hugging Face causal LM playing SQLEnv exactly as ``GRPOTrainer`` rolls it out.

    Args:
        model: a ``transformers`` causal LM.
        tokenizer: its tokenizer, prepared with ``sqlenv_client.hf.prepare_tokenizer``
            (done here if it has no response parser yet).
        max_new_tokens: tokens generated per turn.
        temperature: 0 for greedy decoding (the default), else sampling.
        budget: rounds of tool calls at most; the episode's budget when ``None``.
        max_completion_length: stop when the episode's tokens after the prompt would
            exceed this (TRL's ``max_completion_length``); no limit when ``None``.
        seed: seeds sampling.
    """

    name = "hf"

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        temperature: float = 0.0,
        budget: int | None = None,
        max_completion_length: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(budget)
        from trl.chat_template_utils import parse_response

        from .hf import chat_template_kwargs, prepare_tokenizer

        if (
            getattr(tokenizer, "response_template", None) is None
            and getattr(tokenizer, "response_schema", None) is None
        ):
            tokenizer = prepare_tokenizer(tokenizer)
        self.model = model
        self.tokenizer = tokenizer
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.max_completion_length = max_completion_length
        self.seed = seed
        self._parse = parse_response
        self._template_kwargs = chat_template_kwargs(tokenizer)
        self._prompt_ids: list[int] = []
        self._ids: list[int] = []

    def begin(self, observation: SQLObservation, question_id: str) -> None:
        messages = self._start(observation)
        self._prompt_ids = self._render(messages, add_generation_prompt=True, tools=TOOLS)
        self._ids = list(self._prompt_ids)
        if self.temperature > 0:
            import torch

            torch.manual_seed(hash((self.seed, question_id)) & 0x7FFFFFFF)

    def _render(self, messages: list[dict[str, Any]], **kwargs: Any) -> list[int]:
        ids = self.tokenizer.apply_chat_template(
            messages, tokenize=True, return_dict=False, **self._template_kwargs, **kwargs
        )
        return list(ids)

    def _suffix_ids(self, tool_messages: list[dict[str, Any]]) -> list[int]:
        """The tool results' tokens plus the next generation prompt, as TRL computes them."""
        dummy = [
            {"role": "user", "content": "dummy"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "type": "function",
                        "function": {"name": tool_messages[0]["name"], "arguments": {}},
                    }
                ],
            },
        ]
        prefix = self._render(dummy, add_generation_prompt=False)
        full = self._render(dummy + tool_messages, add_generation_prompt=True)
        eos = self.tokenizer.eos_token_id
        ends = [i for i, t in enumerate(prefix) if t == eos]
        if ends:
            prefix = prefix[: ends[-1] + 1]
        return full[len(prefix) :]

    def _append_results(self, results: list[dict[str, Any]]) -> bool:
        suffix = self._suffix_ids(results)
        if self.max_completion_length is not None:
            used = len(self._ids) + len(suffix) - len(self._prompt_ids)
            if used > self.max_completion_length:
                return False  # TRL drops results that overflow and ends the rollout
        self._ids += suffix
        return True

    def _generate(self) -> list[tuple[str, Any, str]]:
        import torch

        room = self.max_new_tokens
        if self.max_completion_length is not None:
            room = min(room, self.max_completion_length - (len(self._ids) - len(self._prompt_ids)))
            if room <= 0:
                return []
        input_ids = torch.tensor([self._ids], device=self.model.device)
        sampling = (
            {"do_sample": True, "temperature": self.temperature}
            if self.temperature > 0
            else {"do_sample": False}
        )
        with torch.no_grad():
            out = self.model.generate(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                max_new_tokens=room,
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=self.tokenizer.eos_token_id,
                **sampling,
            )
        new = out[0, input_ids.shape[1] :].tolist()
        eos = self.tokenizer.eos_token_id
        if eos in new:
            new = new[: new.index(eos) + 1]
        message = self._parse(self.tokenizer, new, prefix=self._ids, tools=TOOLS)
        self._ids += new
        calls = []
        for i, call in enumerate(message.get("tool_calls") or []):
            function = call.get("function") or {}
            calls.append((str(function.get("name", "")), function.get("arguments"), f"call_{i}"))
        return calls


class OpenAIPolicy(_ToolLoop):
    """A model behind an OpenAI-compatible ``/chat/completions`` endpoint (vLLM, hosted APIs).

    Tools are sent in the OpenAI format and read from ``message.tool_calls``; a model
    served without a tool parser may instead write ``<tool_call>`` blocks in its text,
    which are read too. Standard library only.

    Args:
        base_url: e.g. ``http://localhost:8000/v1`` (``/chat/completions`` is appended).
        model: the served model name.
        api_key: bearer token (default ``$OPENAI_API_KEY``; none for local servers).
        max_new_tokens, temperature, budget, seed: as for ``HFPolicy``.
        timeout_s: per request.
        extra_body: merged into every request (e.g. ``{"chat_template_kwargs": {...}}``).
    """

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        temperature: float = 0.0,
        budget: int | None = None,
        seed: int = 0,
        timeout_s: float = 120.0,
        extra_body: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(budget)
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.seed = seed
        self.timeout_s = timeout_s
        self.extra_body = dict(extra_body or {})
        self._messages: list[dict[str, Any]] = []
        self._rng = random.Random(seed)
        # OpenAI's function schema has no "return" key.
        self._tools = [
            {
                "type": "function",
                "function": {k: v for k, v in t["function"].items() if k != "return"},
            }
            for t in TOOLS
        ]

    def begin(self, observation: SQLObservation, question_id: str) -> None:
        self._messages = self._start(observation)

    def _tool_message(self, name: str, call_id: str, content: str) -> dict[str, Any]:
        return {"role": "tool", "tool_call_id": call_id, "name": name, "content": content}

    def _append_results(self, results: list[dict[str, Any]]) -> bool:
        self._messages.extend(results)
        return True

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(
            self.url, json.dumps(body).encode(), headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:500]
            raise RuntimeError(f"{self.url} answered {exc.code}: {detail}") from exc

    def _generate(self) -> list[tuple[str, Any, str]]:
        body = {
            "model": self.model,
            "messages": self._messages,
            "tools": self._tools,
            "max_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "seed": self._rng.randrange(2**31),
            **self.extra_body,
        }
        message = self._post(body)["choices"][0]["message"]
        content = message.get("content") or ""
        calls: list[tuple[str, Any, str]] = []
        for i, call in enumerate(message.get("tool_calls") or []):
            function = call.get("function") or {}
            arguments = function.get("arguments")
            if isinstance(arguments, str):
                try:
                    arguments = json.loads(arguments)
                except ValueError:
                    arguments = None
            calls.append(
                (str(function.get("name", "")), arguments, str(call.get("id") or f"call_{i}"))
            )
        if not calls:  # a server without a tool parser: read <tool_call> blocks from the text
            for i, parsed in enumerate(parse_tool_calls(content)):
                if parsed.ok:
                    calls.append((parsed.name, parsed.arguments, f"call_{i}"))
        assistant: dict[str, Any] = {"role": "assistant", "content": content}
        if calls:
            assistant["tool_calls"] = [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {
                        "name": name,
                        "arguments": json.dumps(arguments, ensure_ascii=False),
                    },
                }
                for name, arguments, call_id in calls
            ]
        self._messages.append(assistant)
        return calls


def make_hf_policy(
    *,
    model: str | None = None,
    max_new_tokens: int | None = None,
    temperature: float | None = None,
    budget: int | None = None,
    seed: int = 0,
    **_: Any,
) -> HFPolicy:
    """Entry point ``hf``: ``--model`` is a Hub id, a local directory or a ``.gguf`` file."""
    if not model:
        raise ValueError(
            "--model is required (a Hugging Face id, a local directory or a .gguf file)"
        )
    from .hf import load_causal_lm

    lm, tokenizer = load_causal_lm(model)
    lm.eval()
    return HFPolicy(
        lm,
        tokenizer,
        max_new_tokens=max_new_tokens or DEFAULT_MAX_NEW_TOKENS,
        temperature=temperature or 0.0,
        budget=budget,
        seed=seed,
    )


def make_openai_policy(
    *,
    base_url: str | None = None,
    model: str | None = None,
    api_key: str | None = None,
    max_new_tokens: int | None = None,
    temperature: float | None = None,
    budget: int | None = None,
    seed: int = 0,
    **_: Any,
) -> OpenAIPolicy:
    """Entry point ``openai``: needs ``--base-url`` and ``--model``."""
    if not base_url or not model:
        raise ValueError("--base-url and --model are required")
    return OpenAIPolicy(
        base_url,
        model,
        api_key=api_key,
        max_new_tokens=max_new_tokens or DEFAULT_MAX_NEW_TOKENS,
        temperature=temperature or 0.0,
        budget=budget,
        seed=seed,
    )
