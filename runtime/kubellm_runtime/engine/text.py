"""Incremental detokenization with stop strings, for engines that produce token ids."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

REPLACEMENT = "\ufffd"  # a multi-byte character cut in half: wait for its next token


@dataclass
class TextStream:
    """Turns a growing list of token ids into text deltas, holding back possible stop strings.

    ``push`` returns the text that is safe to emit and whether a stop string was reached (the
    stop string itself is never emitted, as with vLLM and OpenAI).
    """

    decode: Callable[[Sequence[int]], str]
    stop: tuple[str, ...] = ()
    ids: list[int] = field(default_factory=list)
    emitted: str = ""

    def push(self, token_ids: Sequence[int]) -> tuple[str, bool]:
        self.ids.extend(token_ids)
        text = self.decode(self.ids)
        if text.endswith(REPLACEMENT):
            return "", False
        hits = [text.find(s, max(0, len(self.emitted) - len(s))) for s in self.stop]
        found = [h for h in hits if h >= 0]
        if found:
            return self._advance(text[: min(found)]), True
        return self._advance(text[: len(text) - self._held(text)]), False

    def flush(self) -> str:
        """The text held back for a stop string that never came."""
        return self._advance(self.decode(self.ids).rstrip(REPLACEMENT))

    def _held(self, text: str) -> int:
        """Length of the longest suffix of ``text`` that starts some stop string."""
        longest = 0
        for stop in self.stop:
            for size in range(min(len(stop) - 1, len(text)), longest, -1):
                if text.endswith(stop[:size]):
                    longest = size
                    break
        return longest

    def _advance(self, upto: str) -> str:
        delta = upto[len(self.emitted) :] if upto.startswith(self.emitted) else ""
        self.emitted = max(self.emitted, upto, key=len)
        return delta
