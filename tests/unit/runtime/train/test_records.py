"""Dataset records: three formats to token ids and loss masks, and every malformed record
refused with its line and field before training starts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from kubellm_runtime.contract import DatasetArgs
from kubellm_runtime.train.errors import TrainError
from kubellm_runtime.train.records import IGNORE, examples

URI = "pvc://data/train.jsonl"


class CharTokenizer:
    """One token per character (ids are code points); <s> and </s> are 1 and 2."""

    bos_token, bos_token_id, eos_token, eos_token_id = "<s>", 1, "</s>", 2

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        return {"input_ids": [ord(c) for c in text]}


def template(messages: Sequence[dict[str, str]], opening: bool) -> str:
    text = "".join(f"<{m['role']}>{m['content']}</s>" for m in messages)
    return text + ("<assistant>" if opening else "")


def write(tmp_path: Path, *lines: Any) -> Path:
    path = tmp_path / "train.jsonl"
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def read(path: Path, max_len: int = 512, **options: Any) -> list[tuple[str, str]]:
    """Each example as (its text, the text that carries the loss)."""
    found, _ = examples(
        path,
        URI,
        DatasetArgs(uri=URI, **options),
        tokenizer=CharTokenizer(),
        render=template,
        max_len=max_len,
    )

    def text(ids: Sequence[int]) -> str:
        return "".join({1: "^", 2: "$"}.get(i, chr(i)) for i in ids if i != IGNORE)

    return [(text(e.input_ids), text(e.labels)) for e in found]


def test_text_records_train_on_every_token_and_learn_to_stop(tmp_path: Path) -> None:
    assert read(write(tmp_path, {"text": "hello"})) == [("^hello$", "hello$")]


def test_instruction_records_train_on_the_response_only(tmp_path: Path) -> None:
    path = write(tmp_path, {"instruction": "2+2?", "response": "4"})
    assert read(path, format="instruction") == [("^<user>2+2?</s><assistant>4$", "4$")]


def test_chat_records_train_on_the_assistant_turns_only(tmp_path: Path) -> None:
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "bye"},
        {"role": "assistant", "content": "ciao"},
    ]
    ((whole, trained),) = read(write(tmp_path, {"messages": messages}), format="chat")
    assert whole == (
        "^<system>be brief</s><user>hi</s><assistant>hello</s><user>bye</s><assistant>ciao</s>"
    )
    assert trained == "hello</s>ciao</s>"  # the template ends the turn: no extra end token


def test_field_names_are_configurable_and_long_records_are_cut(tmp_path: Path) -> None:
    path = write(tmp_path, {"body": "abcdefgh"})
    assert read(path, max_len=4, text_field="body") == [("^abc", "abc")]


def test_the_file_checksum_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, {"text": "x"})
    _, digest = examples(
        path, URI, DatasetArgs(uri=URI), tokenizer=CharTokenizer(), render=template, max_len=8
    )
    import hashlib

    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("lines", "options", "expected"),
    [
        (['{"text": "ok"}', "", "{not json"], {}, "line 3: not valid JSON"),
        (["[1, 2]"], {}, "line 1: not a JSON object"),
        ([{"text": "ok"}] * 6 + [{"txt": "typo"}], {}, "line 7: missing field 'text'"),
        ([{"text": 5}], {}, "line 1: field 'text' must be a string, not a number"),
        ([{"text": "  "}], {}, "line 1: field 'text' is empty"),
        ([{"instruction": "q"}], {"format": "instruction"}, "line 1: missing field 'response'"),
        ([{"messages": "hi"}], {"format": "chat"}, "line 1: field 'messages' must be a non-empty"),
        (
            [{"messages": [{"role": "robot", "content": "x"}]}],
            {"format": "chat"},
            "line 1: messages[0].role must be one of system, user, assistant, tool",
        ),
        (
            [{"messages": [{"role": "user", "content": "x"}]}],
            {"format": "chat"},
            "line 1: field 'messages' has no assistant message",
        ),
        (
            [{"instruction": "q" * 20, "response": "a"}],
            {"format": "instruction", "max_len": 8},
            "line 1: no tokens to train on within maxSeqLength 8",
        ),
        (["", "  "], {}, "no records"),
    ],
)
def test_malformed_records_are_refused_with_line_and_field(
    tmp_path: Path, lines: list[Any], options: dict[str, Any], expected: str
) -> None:
    max_len = options.pop("max_len", 512)
    with pytest.raises(TrainError) as caught:
        read(write(tmp_path, *lines), max_len=max_len, **options)
    assert caught.value.reason == "InvalidDataset"
    assert caught.value.message.startswith(URI)
    assert expected in caught.value.message
