"""Hugging Face model helpers shared by training, the notebook and the ``hf`` policy.

Needs the ``trl`` extra (torch, transformers, trl); imported only by code that uses it.

* ``load_causal_lm(spec)``: a model and tokenizer from a Hub id, a local directory, or
  a ``.gguf`` file (dequantised to dense fp32, ready to train and to save).
* ``prepare_tokenizer(tok)``: a tool-calling chat template (plain ChatML templates get
  TRL's Qwen2.5 template, which uses the same tokens) and TRL's response parser, so
  tool calls are rendered and parsed as in ``GRPOTrainer``.
* ``tiny_qwen3(...)``: a tokenizer trained in process and a randomly initialised
  Qwen3 of about 10k parameters, for offline tests (no download).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["chat_template_kwargs", "load_causal_lm", "prepare_tokenizer", "tiny_qwen3"]


def prepare_tokenizer(tokenizer: Any) -> Any:
    """Give ``tokenizer`` a tool-calling chat template and TRL's response parser.

    A template that cannot render tool calls but speaks ChatML (``<|im_start|>``, as
    SmolLM2's does) is replaced by TRL's Qwen2.5 template; others are left as they are.
    Left padding, and a pad token distinct from EOS when the vocabulary has one.
    """
    from trl.chat_template_utils import (
        add_response_schema,
        qwen2_5_chat_template,
        supports_tool_calling,
    )

    template = tokenizer.chat_template or ""
    if not supports_tool_calling(tokenizer) and (not template or "<|im_start|>" in template):
        tokenizer.chat_template = qwen2_5_chat_template
    if tokenizer.pad_token is None or tokenizer.pad_token == tokenizer.eos_token:
        for candidate in ("<|endoftext|>", "<|pad|>"):
            if candidate in tokenizer.get_vocab() and candidate != tokenizer.eos_token:
                tokenizer.pad_token = candidate
                break
        else:
            tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return add_response_schema(tokenizer)


def chat_template_kwargs(tokenizer: Any) -> dict[str, Any]:
    """``{"enable_thinking": False}`` for templates that think (Qwen3), else nothing."""
    return (
        {"enable_thinking": False} if "enable_thinking" in (tokenizer.chat_template or "") else {}
    )


def load_causal_lm(spec: str | os.PathLike[str], *, dtype: Any = None) -> tuple[Any, Any]:
    """Model and prepared tokenizer from a Hub id, a directory, or a ``.gguf`` file.

    A GGUF checkpoint is dequantised to a dense model whose quantisation config is
    dropped, so it trains and saves like any other (the SmolLM2 recipe of
    ``docs/training.md``). fp32 by default: CPUs without bf16 units are slower in bf16.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = dtype or torch.float32
    path = Path(spec)
    if path.suffix == ".gguf":
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(
            str(path.parent), gguf_file=path.name, dtype=dtype
        )
        quantizer = getattr(model, "hf_quantizer", None)
        if quantizer is not None:
            quantizer.remove_quantization_config(model)
        model.config.quantization_config = None
        if hasattr(model, "hf_quantizer"):
            model.hf_quantizer = None
    else:
        tokenizer = AutoTokenizer.from_pretrained(str(spec))
        model = AutoModelForCausalLM.from_pretrained(str(spec), dtype=dtype)
    tokenizer = prepare_tokenizer(tokenizer)
    if model.generation_config is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<tool_call>",
    "</tool_call>",
    "<tool_response>",
    "</tool_response>",
    "<think>",
    "</think>",
]


def tiny_qwen3(
    corpus: list[str] | None = None, *, vocab_size: int = 600, seed: int = 0
) -> tuple[Any, Any]:
    """A randomly initialised ~10k-parameter Qwen3 and a BPE tokenizer trained in process.

    The tokenizer is byte-level, so any SQL encodes, and carries TRL's Qwen3 chat template,
    which TRL recognises for tool-call parsing. Nothing is downloaded.
    """
    import transformers
    from sqlenv_core.prompting import TOOLS, system_prompt
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM
    from trl.chat_template_utils import qwen3_chat_template

    corpus = [
        *(corpus or []),
        system_prompt(),
        str(TOOLS),
        "SELECT count(*) FROM singer WHERE age > 30",
    ]
    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    raw.train_from_iterator(
        corpus,
        trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=SPECIAL_TOKENS,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=SPECIAL_TOKENS[1:],
    )
    tokenizer.chat_template = qwen3_chat_template
    tokenizer = prepare_tokenizer(tokenizer)
    transformers.set_seed(seed)
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=4,
        max_position_embeddings=8192,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        tie_word_embeddings=True,
    )
    model = Qwen3ForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model, tokenizer
