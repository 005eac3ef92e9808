"""Shared fixtures: the architectures under test and a character tokenizer."""

from __future__ import annotations

import pytest
import torch

from dlm.data.char_tokenizer import build_char_tokenizer

torch.set_num_threads(2)


@pytest.fixture(params=["gpt2", "llama", "qwen2"])
def arch(request) -> str:
    return request.param


@pytest.fixture
def char_tokenizer():
    return build_char_tokenizer("0123456789abcdefghij")
