"""``quiet_libraries``: run a block without the libraries' routine chatter on the terminal.

Saving or loading a checkpoint makes transformers draw "Writing model shards" / "Loading
weights" progress bars and print a load report, and accelerate warn that a tied LM head was
"removed" from the saved state (it is tied back on load). None of it is actionable for a dlm
user: the checks that matter (missing or mis-shaped weights) are dlm's own, one line each.
Inside the block those libraries log errors only and draw no bars; the previous settings come
back afterwards, so a caller's own transformers use is unchanged.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from transformers.utils import logging as hf_logging

__all__ = ["quiet_libraries"]

#: Loggers whose warnings a save or load prints for every checkpoint.
_NOISY = ("accelerate.utils.other", "accelerate.checkpointing")


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    levels = {name: logging.getLogger(name).level for name in _NOISY}
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    for name in _NOISY:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
