"""Incremental detokenization: deltas add up to the text, stop strings are never emitted."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from kubellm_runtime.engine.text import TextStream


def decode(ids: Sequence[int]) -> str:
    """One character per id, except 0 then 1: the two halves of "é" (0 alone decodes to U+FFFD)."""
    out = []
    for i, token in enumerate(ids):
        if token == 0:
            out.append("é" if ids[i + 1 : i + 2] == [1] else "\ufffd")
        elif token > 1:
            out.append(chr(token))
    return "".join(out)


def run(text: str, stop: tuple[str, ...]) -> tuple[list[str], bool]:
    stream = TextStream(decode, stop)
    deltas = []
    for char in text:
        delta, stopped = stream.push([ord(char)])
        deltas.append(delta)
        if stopped:
            return deltas, True
    deltas.append(stream.flush())
    return deltas, False


def test_without_stops_the_deltas_are_the_text() -> None:
    deltas, stopped = run("hello world", ())
    assert "".join(deltas) == "hello world"
    assert not stopped


@pytest.mark.parametrize(
    ("text", "stop", "emitted"),
    [
        ("hello\n\nworld", ("\n\n",), "hello"),
        ("abcSTOPdef", ("STOP", "XY"), "abc"),
        ("abcXYdef", ("STOP", "XY"), "abc"),
        ("STOP", ("STOP",), ""),
    ],
)
def test_a_stop_string_ends_the_stream_and_is_not_emitted(
    text: str, stop: tuple[str, ...], emitted: str
) -> None:
    deltas, stopped = run(text, stop)
    assert stopped
    assert "".join(deltas) == emitted


def test_a_possible_stop_is_held_back_then_released() -> None:
    stream = TextStream(decode, ("STOP",))
    assert stream.push([ord(c) for c in "abST"]) == ("ab", False)  # "ST" might start STOP
    assert stream.push([ord("x")]) == ("STx", False)  # it did not
    assert stream.flush() == ""


def test_a_stop_that_never_completes_is_flushed_at_the_end() -> None:
    deltas, stopped = run("abcST", ("STOP",))
    assert not stopped
    assert "".join(deltas) == "abcST"


def test_half_a_character_waits_for_the_rest() -> None:
    stream = TextStream(decode)
    assert stream.push([ord("a"), 0]) == ("", False)
    assert stream.push([1]) == ("aé", False)
