"""What each Ray Train worker asks Ray for."""

from __future__ import annotations

from kubellm_runtime.contract import BaseModelArgs, DatasetArgs, TrainArgs
from kubellm_runtime.train.distributed import worker_resources


def args(**fields: int) -> TrainArgs:
    return TrainArgs(
        base_model=BaseModelArgs(uri="file:///m"),
        dataset=DatasetArgs(uri="file:///d.jsonl", format="text"),
        output_uri="file:///out",
        checkpoint_uri="file:///out/.checkpoints",
        adapter_name="a",
        **fields,
    )


def test_a_cpu_worker_holds_the_cores_of_its_pod_not_one() -> None:
    assert worker_resources(args(cpus_per_worker=4)) == {"CPU": 4}


def test_a_gpu_worker_holds_its_gpus_and_its_cores() -> None:
    assert worker_resources(args(gpus_per_worker=2, cpus_per_worker=8)) == {"CPU": 8, "GPU": 2}
