"""Builds a tiny random Llama model offline (byte-level BPE + LlamaForCausalLM), for tests.

Nothing is downloaded: the tokenizer is trained on a few lines of text and the weights are
random. Sizes follow what vLLM's CPU attention accepts (head_dim 64). A chat template is set so
chat endpoints work. ``python -m kubellm_dev.tiny_model DIR`` writes one by hand.
"""

from __future__ import annotations

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
    return target


if __name__ == "__main__":
    print(build(Path(sys.argv[1])))


def build_adapter(base: Path, target: Path, seed: int = 1, rank: int = 8) -> Path:
    """A LoRA adapter for the tiny model with random, non-zero weights (so outputs change)."""
    if (target / "adapter_config.json").is_file():
        return target
    from peft import LoraConfig, get_peft_model  # noqa: PLC0415 - only adapter builds need peft

    torch.manual_seed(seed)
    model = LlamaForCausalLM.from_pretrained(base)
    config = LoraConfig(
        r=rank, lora_alpha=2 * rank, target_modules=["q_proj", "v_proj"], init_lora_weights=False
    )
    peft_model = get_peft_model(model, config)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_" in name:
                param.mul_(20.0)  # large enough to move greedy decoding away from the base
    peft_model.save_pretrained(str(target))
    return target
