"""Training records from a JSON Lines file, as token ids with a loss mask.

Three formats (``DatasetArgs.format``):

* ``text``: one text field; the loss is on every token.
* ``instruction``: a prompt and a response field; the loss is on the response only.
* ``chat``: a list of ``{role, content}`` messages rendered with the model's chat template;
  the loss is on the assistant turns only.

A bad record is refused with its line and field ("line 7: missing field 'text'"), before any
training starts; nothing is skipped silently.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubellm_runtime.contract import DatasetArgs
from kubellm_runtime.train.errors import TrainError

ROLES = ("system", "user", "assistant", "tool")
MAX_LINE_BYTES = 16 << 20
IGNORE = -100  # the label of a token the loss skips


@dataclass(frozen=True)
class Example:
    """One record, tokenized: the model's input ids and its labels (IGNORE where no loss)."""

    input_ids: tuple[int, ...]
    labels: tuple[int, ...]

    @property
    def trained_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE)


@dataclass(frozen=True)
class Segment:
    """A piece of a record's text; ``trained`` pieces carry the loss."""

    text: str
    trained: bool


Render = Callable[[Sequence[dict[str, str]], bool], str]
"""The chat template: messages (and whether to open an assistant turn) to text."""


def read_lines(path: Path, uri: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) for every non-blank line; a line that is not a JSON object fails."""
    with path.open("rb") as stream:
        for number, raw in enumerate(stream, 1):
            if len(raw) > MAX_LINE_BYTES:
                raise _bad(uri, number, f"longer than {MAX_LINE_BYTES} bytes")
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except (UnicodeDecodeError, ValueError) as exc:
                raise _bad(uri, number, f"not valid JSON ({exc})") from None
            if not isinstance(record, dict):
                raise _bad(uri, number, "not a JSON object")
            yield number, record


def segments(
    record: dict[str, Any], number: int, args: DatasetArgs, uri: str, render: Render
) -> list[Segment]:
    """A record as text pieces, by format; a missing or mistyped field names itself."""
    if args.format == "text":
        return [Segment(_text(record, args.text_field, number, uri), trained=True)]
    if args.format == "instruction":
        prompt = _text(record, args.prompt_field, number, uri)
        response = _text(record, args.response_field, number, uri)
        return [
            Segment(render([{"role": "user", "content": prompt}], True), trained=False),
            Segment(response, trained=True),
        ]
    return _chat(_messages(record, args.messages_field, number, uri), render)


def _chat(messages: list[dict[str, str]], render: Render) -> list[Segment]:
    """The template's text cut at each assistant turn: what comes before a turn (its
    prompt, rendered with the template's assistant opening) carries no loss."""
    pieces: list[Segment] = []
    done = ""
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        opened = render(messages[:i], True)
        through = render(messages[: i + 1], False)
        if not (opened.startswith(done) and through.startswith(opened)):
            raise TrainError(
                "InvalidDataset",
                "the model's chat template does not render conversations incrementally",
                field="spec.dataset.format",
            )
        pieces += [Segment(opened[len(done) :], False), Segment(through[len(opened) :], True)]
        done = through
    rest = render(messages, False)[len(done) :]
    if rest:
        pieces.append(Segment(rest, False))
    return pieces


def examples(
    path: Path, uri: str, args: DatasetArgs, *, tokenizer: Any, render: Render, max_len: int
) -> tuple[list[Example], str]:
    """Every record tokenized (cut at ``max_len`` tokens), and the file's SHA-256."""
    out = []
    for number, record in read_lines(path, uri):
        pieces = segments(record, number, args, uri, render)
        example = tokenize(pieces, tokenizer, max_len)
        if example.trained_tokens == 0:
            raise _bad(uri, number, f"no tokens to train on within maxSeqLength {max_len}")
        out.append(example)
    if not out:
        raise TrainError("InvalidDataset", f"{uri}: no records", field="spec.dataset.uri")
    return out, _sha256(path)


def tokenize(pieces: Sequence[Segment], tokenizer: Any, max_len: int) -> Example:
    """Token ids of the pieces, in order, with the untrained pieces' labels masked; an end
    of sequence is appended when the text ends on a trained piece that does not already end
    its turn (so the model learns to stop)."""
    ids: list[int] = []
    labels: list[int] = []
    bos = getattr(tokenizer, "bos_token_id", None)
    first = pieces[0].text if pieces else ""
    if bos is not None and not first.startswith(str(tokenizer.bos_token)):
        ids.append(bos)
        labels.append(IGNORE)
    for piece in pieces:
        piece_ids = tokenizer(piece.text, add_special_tokens=False)["input_ids"]
        ids += piece_ids
        labels += piece_ids if piece.trained else [IGNORE] * len(piece_ids)
    eos = getattr(tokenizer, "eos_token_id", None)
    ended = str(getattr(tokenizer, "eos_token", None)) in (pieces[-1].text if pieces else "")
    if eos is not None and pieces and pieces[-1].trained and not ended:
        ids.append(eos)
        labels.append(eos)
    return Example(tuple(ids[:max_len]), tuple(labels[:max_len]))


def _text(record: dict[str, Any], field: str, number: int, uri: str) -> str:
    if field not in record:
        raise _bad(uri, number, f"missing field {field!r}")
    value = record[field]
    if not isinstance(value, str):
        raise _bad(uri, number, f"field {field!r} must be a string, not {_kind(value)}")
    if not value.strip():
        raise _bad(uri, number, f"field {field!r} is empty")
    return value


def _messages(record: dict[str, Any], field: str, number: int, uri: str) -> list[dict[str, str]]:
    if field not in record:
        raise _bad(uri, number, f"missing field {field!r}")
    value = record[field]
    if not isinstance(value, list) or not value:
        raise _bad(uri, number, f"field {field!r} must be a non-empty list of messages")
    messages = []
    for i, message in enumerate(value):
        where = f"{field}[{i}]"
        if not isinstance(message, dict):
            raise _bad(uri, number, f"{where} must be an object with role and content")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise _bad(uri, number, f"{where}.role must be one of {', '.join(ROLES)}")
        if not isinstance(content, str):
            raise _bad(uri, number, f"{where}.content must be a string")
        messages.append({"role": role, "content": content})
    if not any(m["role"] == "assistant" for m in messages):
        raise _bad(uri, number, f"field {field!r} has no assistant message to learn from")
    return messages


def _kind(value: object) -> str:
    return {dict: "an object", list: "a list", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def _bad(uri: str, number: int, why: str) -> TrainError:
    return TrainError("InvalidDataset", f"{uri}: line {number}: {why}", field="spec.dataset")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
