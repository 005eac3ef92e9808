"""Saving and loading a checkpoint print nothing of the libraries' chatter, and restore their
settings afterwards."""

from __future__ import annotations

import logging

from transformers.utils import logging as hf_logging

from dlm.data.char_tokenizer import build_char_tokenizer
from dlm.models import DiffusionLM, quiet_libraries
from helpers import tiny_model


def test_save_and_load_print_nothing(tmp_path, capfd, caplog):
    hf_logging.enable_progress_bar()
    capfd.readouterr()
    with caplog.at_level(logging.WARNING):
        tiny_model().save_pretrained(tmp_path / "m", build_char_tokenizer("0123456789"))
        DiffusionLM.from_pretrained(tmp_path / "m")
    out = capfd.readouterr()
    assert out.err == "" and out.out == ""
    assert not [r for r in caplog.records if r.name.startswith(("transformers", "accelerate"))]


def test_quiet_libraries_restores_the_settings_it_changed():
    hf_logging.set_verbosity_warning()
    hf_logging.enable_progress_bar()
    logging.getLogger("accelerate.utils.other").setLevel(logging.INFO)
    with quiet_libraries():
        assert hf_logging.get_verbosity() == hf_logging.ERROR
        assert not hf_logging.is_progress_bar_enabled()
        assert logging.getLogger("accelerate.utils.other").level == logging.ERROR
    assert hf_logging.get_verbosity() == hf_logging.WARNING
    assert hf_logging.is_progress_bar_enabled()
    assert logging.getLogger("accelerate.utils.other").level == logging.INFO
    logging.getLogger("accelerate.utils.other").setLevel(logging.NOTSET)
