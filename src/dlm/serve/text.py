"""The part of a denoising canvas that is final, as text, for OpenAI-style streaming.

A diffusion row commits tokens anywhere; a stock OpenAI client reads text left to right. The
text a row has made final is its region from the start up to the first position still
masked, cut at the row's EOS (with EOS stopping on) and at the first stop string. Each step,
``FinalText.update`` returns what became final since the last call, so the concatenated
deltas are exactly the completion's text. Two things are held back until they are settled:
a trailing incomplete UTF-8 character (the tokenizer decodes it as U+FFFD) and a tail that
could be the start of a stop string.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["FinalText"]


@dataclass
class FinalText:
    """Tracks one row's final text across steps."""

    tokenizer: object
    mask_token_id: int
    eos_token_id: int | None  # None: EOS is an ordinary token (stop_at_eos off)
    stop: Sequence[str] = ()
    free_length: int | None = None  # positions the sampler fills (a pinned suffix follows)
    sent: str = ""
    finish_reason: str | None = None  # "stop" or "length" once the text is complete
    tokens: int = 0  # final tokens so far, the ending EOS included

    def update(self, region: Sequence[int]) -> str:
        """The text that became final with this region (empty if none)."""
        if self.finish_reason is not None:
            return ""
        free = region if self.free_length is None else region[: self.free_length]
        ids: list[int] = []
        reason = "length"
        for token in free:
            if token == self.mask_token_id:
                reason = None
                break
            if self.eos_token_id is not None and token == self.eos_token_id:
                reason = "stop"
                break
            ids.append(token)
        self.tokens = len(ids) + (reason == "stop")
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        cut = min((i for i in (text.find(s) for s in self.stop if s) if i >= 0), default=-1)
        if cut >= 0:
            text, reason = text[:cut], "stop"
        elif reason is None:
            text = text.rstrip("\ufffd")
            text = text[: len(text) - _stop_prefix(text, self.stop)]
        if not text.startswith(self.sent):  # a decoder that rewrote settled text: send nothing
            text = self.sent
        delta = text[len(self.sent) :]
        self.sent = text
        if reason is not None:
            self.finish_reason = reason
        return delta


def _stop_prefix(text: str, stops: Sequence[str]) -> int:
    """Length of the longest tail of ``text`` that is a proper prefix of a stop string."""
    best = 0
    for stop in stops:
        for n in range(min(len(stop) - 1, len(text)), best, -1):
            if text.endswith(stop[:n]):
                best = n
                break
    return best
