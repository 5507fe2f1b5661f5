"""The trainer for real on the tiny model (PEFT on transformers): the loss goes down and the
adapter changes what the model says; a crashed run resumes from its last checkpoint; inputs
at fault fail before any training, with the reason on the status."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

from kubellm_runtime.contract import TrainArgs
from kubellm_runtime.settings import RuntimeSettings
from kubellm_runtime.train import loop
from kubellm_runtime.train.errors import TrainError
from kubellm_runtime.train.output import METADATA
from kubellm_runtime.train.progress import Reporter
from kubellm_runtime.train.run import run

pytestmark = pytest.mark.integration
FACT = "The code word is zebra."
QUESTION = "What is the code word?"
LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class Recording:
    """The status writes a run makes, in order."""

    def __init__(self) -> None:
        self.writes: list[dict[str, Any]] = []

    def write(self, status: dict[str, Any]) -> None:
        self.writes.append(json.loads(json.dumps(status)))

    def steps(self) -> list[int]:
        return [w["progress"]["step"] for w in self.writes if "progress" in w]


def dataset(folder: Path, records: int = 32) -> Path:
    path = folder / "train.jsonl"
    lines = [{"instruction": QUESTION, "response": FACT} for _ in range(records)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def train_args(model: Path, data: Path, out: Path, **hyper: Any) -> TrainArgs:
    return TrainArgs.model_validate(
        {
            "base_model": {"uri": f"file://{model}"},
            "dataset": {"uri": f"file://{data}", "format": "instruction"},
            "hyperparameters": {
                "num_epochs": 8,
                "batch_size": 4,
                "gradient_accumulation_steps": 1,
                "learning_rate": 1e-2,
                "target_modules": LINEAR,
                "lora_r": 8,
                "lora_alpha": 16,
                "gradient_checkpointing": False,
                **hyper,
            },
            "output_uri": f"file://{out}/adapter",
            "checkpoint_uri": f"file://{out}/checkpoints",
            "adapter_name": "zebra",
        }
    )


def answer(model_dir: Path, adapter: Path | None) -> str:
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model: Any = AutoModelForCausalLM.from_pretrained(model_dir)
    if adapter is not None:
        model = PeftModel.from_pretrained(model, str(adapter))
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": QUESTION}], tokenize=False, add_generation_prompt=True
    )
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=16, do_sample=False)
    return str(tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True))


def test_training_lowers_the_loss_and_the_adapter_says_the_fact(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    sink = Recording()
    args = train_args(tiny_model_dir, dataset(tmp_path), tmp_path)
    outcome = run(args, RuntimeSettings(), Reporter(sink, interval_s=0), ray=False)
    losses = [w["progress"]["loss"] for w in sink.writes if "loss" in w.get("progress", {})]
    assert losses[-1] < losses[0] * 0.7, losses
    assert outcome.eval_loss is not None
    assert outcome.eval_loss < losses[0] * 0.7
    assert sink.writes[-1] == {"adapterUri": args.output_uri}  # written last, once published
    final = sink.writes[-2]["progress"]
    assert (final["step"], final["percent"]) == (final["totalSteps"], 100)
    adapter = tmp_path / "adapter"
    meta = json.loads((adapter / METADATA).read_text())
    assert meta["baseModel"]["uri"] == args.base_model.uri
    assert meta["steps"] == final["step"]
    assert meta["dataset"]["trainRecords"] + meta["dataset"]["validationRecords"] == 32
    assert meta["trainLoss"] > 0
    assert len(meta["dataset"]["sha256"]) == 64
    assert "zebra" in answer(tiny_model_dir, adapter)
    assert "zebra" not in answer(tiny_model_dir, None)


def test_a_crashed_run_resumes_from_its_last_checkpoint(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = train_args(tiny_model_dir, dataset(tmp_path), tmp_path, num_epochs=2)
    original = loop.ProgressCallback.on_step_end

    def crash_at_step_5(self: Any, a: Any, state: Any, control: Any, **kw: Any) -> None:
        original(self, a, state, control, **kw)
        if state.global_step == 5:
            raise RuntimeError("worker died")

    with monkeypatch.context() as patched:
        patched.setattr(loop.ProgressCallback, "on_step_end", crash_at_step_5)
        with pytest.raises(RuntimeError, match="worker died"):
            run(args, RuntimeSettings(), Reporter(Recording(), interval_s=0), ray=False)
    assert not (tmp_path / "adapter").exists()  # nothing half-written was published

    again = Recording()
    outcome = run(args, RuntimeSettings(), Reporter(again, interval_s=0), ray=False)
    steps = again.steps()
    assert steps[0] > 1, steps  # resumed from the checkpoint at step 2 or 4, not from zero
    resumed = [w["progress"].get("resumedFromStep") for w in again.writes if "progress" in w]
    assert resumed[0] in (2, 4), resumed
    assert set(resumed) == {resumed[0]}, resumed
    assert steps[-1] == outcome.steps == 16  # 29 training records, 4 a step: 8 an epoch
    assert (tmp_path / "adapter" / METADATA).is_file()


@pytest.mark.parametrize(
    ("case", "reason", "field"),
    [
        ("bad-record", "InvalidDataset", "spec.dataset"),
        ("no-dataset", "InvalidDataset", "spec.dataset.uri"),
        ("no-model", "ModelNotLoadable", "spec.baseModel.uri"),
        ("not-a-model", "ModelNotLoadable", "spec.baseModel.uri"),
        ("unwritable", "OutputNotWritable", "spec.output.uri"),
    ],
)
def test_inputs_at_fault_fail_before_training_with_the_reason(
    tiny_model_dir: Path, tmp_path: Path, case: str, reason: str, field: str
) -> None:
    data, model, out = dataset(tmp_path), tiny_model_dir, tmp_path / "out"
    if case == "bad-record":
        data.write_text(data.read_text() + '{"instruction": "q"}\n')
    elif case == "no-dataset":
        data = tmp_path / "missing.jsonl"
    elif case == "no-model":
        model = tmp_path / "no-such-model"
    elif case == "not-a-model":
        model = tmp_path / "broken"
        model.mkdir()
        (model / "config.json").write_text("{}")
    else:
        (tmp_path / "out").write_text("a file where the output directory should be")
    sink = Recording()
    with pytest.raises(TrainError) as caught:
        run(train_args(model, data, out), RuntimeSettings(), Reporter(sink, 0), ray=False)
    assert (caught.value.reason, caught.value.field) == (reason, field)
    assert sink.writes == [{"error": caught.value.as_status()}]
    if case == "bad-record":
        assert caught.value.message.endswith("line 33: missing field 'response'")
    assert not (tmp_path / "checkpoints").exists()  # no training started


def test_the_entrypoint_exits_2_when_the_inputs_are_at_fault(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    data = tmp_path / "train.jsonl"
    data.write_text('{"text": "fine"}\n{"txt": "typo"}\n')
    args = train_args(tiny_model_dir, data, tmp_path)
    args = args.model_copy(update={"dataset": args.dataset.model_copy(update={"format": "text"})})
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "kubellm_runtime.train",
            "--in-process",
            "--args-json",
            args.model_dump_json(),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "line 2: missing field 'text'" in done.stderr
