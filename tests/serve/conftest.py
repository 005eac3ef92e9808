"""Fixtures of the serving tests: the tiny text model, its tokenizer, a live server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dlm.serve import ServeConfig, create_app
from serve_helpers import running_server, text_model, text_tokenizer


@pytest.fixture(scope="module")
def model():
    return text_model()


@pytest.fixture(scope="module")
def tokenizer():
    return text_tokenizer()


@pytest.fixture(scope="module")
def server(model, tokenizer) -> Iterator[str]:
    app = create_app(model, tokenizer, ServeConfig(model_name="tiny", max_rows=8))
    with running_server(app) as url:
        yield url
