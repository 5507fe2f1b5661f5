"""Builds a tiny random Llama model offline (byte-level BPE + LlamaForCausalLM), for tests.

Nothing is downloaded: the tokenizer is trained on a few lines of text and the weights are
random. Sizes follow what vLLM's CPU attention accepts (head_dim 64). A chat template is set so
chat endpoints work. ``python -m kubellm_dev.tiny_model DIR`` writes one by hand.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

CORPUS = [
    "The capital of France is Paris.",
    "Kubernetes schedules pods onto nodes.",
    "Ray Serve deploys models as replicas.",
    "vLLM batches requests continuously.",
    "LoRA adapters are small low-rank updates.",
    "hello world, hello kubellm",
] * 20

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>{{ message['content'] }}</s>"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
HIDDEN = 128
HEADS = 2  # head_dim 64: the smallest vLLM's CPU attention accepts
VOCAB = 512
MAX_POSITIONS = 512


def build(target: Path, seed: int = 0) -> Path:
    """Write tokenizer + config + random weights to ``target`` (idempotent)."""
    if (target / "config.json").is_file() and (target / "tokenizer.json").is_file():
        return target
    target.mkdir(parents=True, exist_ok=True)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        special_tokens=["<s>", "</s>", "<unk>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(CORPUS, trainer)
    specials = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, **specials)
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(target)

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=fast.vocab_size,
        hidden_size=HIDDEN,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=HEADS,
        num_key_value_heads=1,
        max_position_embeddings=MAX_POSITIONS,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(target, safe_serialization=True)
    (target / "kubellm-tiny.json").write_text(json.dumps({"seed": seed, "hidden": HIDDEN}))
    return target


if __name__ == "__main__":
    print(build(Path(sys.argv[1])))
