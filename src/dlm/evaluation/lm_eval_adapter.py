"""The ``dlm`` model of EleutherAI's lm-evaluation-harness (lm-eval 0.4.x), without a fork.

Importing this module registers the class ``DlmLM`` under the name ``dlm``. lm-eval finds
models only in its own registry (it imports ``lm_eval.models`` and has no plugin entry
point), so ``lm_eval --model dlm`` alone does not see it: run the harness through
``dlm.cli.eval_lm.run_lm_eval(argv)`` (``dlm eval lm-eval ...``), which imports this module
first, or import it yourself before ``lm_eval.simple_evaluate(model="dlm", ...)``.

    dlm eval lm-eval --model dlm --tasks hellaswag \\
        --model_args pretrained=runs/x/model,mc_num=128,batch_size=64,steps=256,block_length=32

* ``loglikelihood``: the Monte Carlo ELBO of ``dlm.evaluation.likelihood`` (``mc_num``
  samples, a lower bound on log p(continuation | context)). ``is_greedy`` answers "would
  greedy decoding produce this continuation?": the continuation's length is sampled from the
  context with temperature 0, one token per step (steps = its length), the configured
  ``policy``, ``block_length`` and ``cache``, and compared token by token, as LLaDA's
  ``suffix_greedy_prediction``. It costs one forward pass per continuation token;
  ``greedy_check=false`` skips it and reports False (fine for multiple-choice tasks, whose
  accuracy uses only the log-likelihoods).
* ``loglikelihood_rolling``: the summed ELBO of the text's windows of ``max_length`` tokens
  (``text_windows``; ``rolling_context`` tokens of context per later window, 0 = each window
  after the start token alone).
* ``generate_until``: ``dlm.sampling.generate`` on left-padded batches of ``batch_size``
  prompts; the output is cut at its first EOS and at the first stop string.

``model_args``: ``pretrained`` (checkpoint directory), ``mc_num``, ``batch_size`` (rows per
forward pass: MC samples for likelihoods, prompts for generation), ``device``, ``dtype``,
``seed``, ``greedy_check``, ``rolling_context``, ``max_length``, ``max_new_tokens`` (alias
``gen_length``; overrides the task's ``max_gen_toks``), ``add_sep`` (end every context with
[SEP], as dlm's task prompts are encoded), and every sampler option of ``generate``
(``steps``, ``policy``, ``temperature``, ``top_p``, ``top_k``, ``policy_temperature``,
``block_length``, ``threshold``, ``factor``, ``cache``, ``eos_penalty``, ``eps``,
``remask_noise``, ``compile``). Options given in ``model_args`` win over the harness's own
``--batch_size`` and ``--device``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from typing import Any

import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase

try:
    from lm_eval.api.model import LM
    from lm_eval.api.registry import register_model
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError(
        "the lm-eval adapter needs lm-eval 0.4.x: pip install 'lm-eval>=0.4,<0.5'"
    ) from err

from dlm.checkpoints import load_model
from dlm.data import left_pad_ids
from dlm.errors import DlmUserError
from dlm.models import DiffusionLM
from dlm.sampling import SamplerSettings, generate

from .likelihood import Pair, elbo, start_token_id, text_windows

__all__ = ["DlmLM", "SAMPLER_OPTIONS"]

logger = logging.getLogger(__name__)

#: The sampler options of ``dlm.sampling.generate`` accepted in ``model_args``.
SAMPLER_OPTIONS: tuple[str, ...] = tuple(SamplerSettings.__dataclass_fields__)

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}
_DEFAULT_BATCH = 32
_DEFAULT_GEN_TOKENS = 256


def _batch_size(value: Any) -> int:
    """An int, or the harness's ``auto`` / ``auto:N`` (no auto-tuning here: the default)."""
    if isinstance(value, str) and value.startswith("auto"):
        logger.warning("batch_size=%s: dlm does not tune it; using %d", value, _DEFAULT_BATCH)
        return _DEFAULT_BATCH
    size = int(value)
    if size < 1:
        raise DlmUserError(f"batch_size must be at least 1; got {value}")
    return size


def _device(value: str | None) -> torch.device:
    if value is None or value == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(value).startswith("cuda") and not torch.cuda.is_available():
        logger.warning("device %s requested but CUDA is not available; using cpu", value)
        return torch.device("cpu")
    return torch.device(value)


def _dtype(value: Any) -> torch.dtype | None:
    """None (the checkpoint's own dtype) for None or ``auto``; else a torch dtype."""
    if value is None or value == "auto" or isinstance(value, torch.dtype):
        return None if value == "auto" else value
    if value not in _DTYPES:
        raise DlmUserError(f"unknown dtype {value!r}; choose one of: auto, {', '.join(_DTYPES)}")
    return _DTYPES[value]


def _cut_at_stops(text: str, stops: Sequence[str]) -> str:
    cut = min((text.find(s) for s in stops if s and s in text), default=len(text))
    return text[:cut]


@register_model("dlm")
class DlmLM(LM):
    """A ``dlm`` checkpoint (diffusion or AR twin) as an lm-eval model; see the module docstring."""

    def __init__(
        self,
        pretrained: str | os.PathLike | DiffusionLM | None = None,
        *,
        tokenizer: str | PreTrainedTokenizerBase | None = None,
        mc_num: int = 128,
        batch_size: int | str = _DEFAULT_BATCH,
        max_batch_size: int | None = None,
        device: str | None = None,
        dtype: str | None = None,
        seed: int = 1234,
        greedy_check: bool = True,
        rolling_context: int = 0,
        max_length: int | None = None,
        max_new_tokens: int | None = None,
        gen_length: int | None = None,
        add_sep: bool = False,
        **options: Any,
    ) -> None:
        super().__init__()
        unknown = sorted(set(options) - set(SAMPLER_OPTIONS))
        if unknown:
            raise DlmUserError(
                f"unknown dlm model_args {unknown}; valid: pretrained, tokenizer, mc_num, "
                "batch_size, device, dtype, seed, greedy_check, rolling_context, max_length, "
                f"max_new_tokens, gen_length, add_sep, {', '.join(SAMPLER_OPTIONS)}"
            )
        if pretrained is None:
            raise DlmUserError("pass the checkpoint directory: --model_args pretrained=DIR")
        self._device = _device(device)
        self.model, self.tokenizer = self._load(pretrained, tokenizer, _dtype(dtype))
        self.mc_num = int(mc_num)
        self.batch_size = _batch_size(batch_size)
        self.seed = int(seed)
        self.greedy_check = bool(greedy_check)
        self.rolling_context = int(rolling_context)
        self.max_length = int(max_length or self.model.max_positions or 2048)
        self.max_new_tokens = max_new_tokens if max_new_tokens is not None else gen_length
        self.add_sep = bool(add_sep)
        # model_args are the explicit layer of every run's settings; checked here, once
        self.sampler = {
            k: SamplerSettings.coerce(k, v) for k, v in options.items() if v is not None
        }
        self._settings()

    # ------------------------------------------------------------------ construction
    @classmethod
    def create_from_arg_string(
        cls, arg_string: str, additional_config: dict[str, Any] | None = None
    ) -> DlmLM:
        """``key=value,...`` model_args; they win over the harness's ``--batch_size``/``--device``."""
        from lm_eval.utils import simple_parse_args_string

        return cls.create_from_arg_obj(simple_parse_args_string(arg_string), additional_config)

    @classmethod
    def create_from_arg_obj(
        cls, arg_dict: dict[str, Any], additional_config: dict[str, Any] | None = None
    ) -> DlmLM:
        extra = {k: v for k, v in (additional_config or {}).items() if v is not None}
        return cls(**{**extra, **arg_dict})

    def _load(
        self,
        pretrained: str | os.PathLike | DiffusionLM,
        tokenizer: str | os.PathLike | PreTrainedTokenizerBase | None,
        dtype: torch.dtype | None,
    ) -> tuple[DiffusionLM, PreTrainedTokenizerBase]:
        if isinstance(pretrained, DiffusionLM):
            if tokenizer is None:
                raise DlmUserError("a model object needs its tokenizer: pass tokenizer=...")
            model = pretrained.to(self._device)
            if dtype is not None:
                model = model.to(dtype)
        else:
            model = load_model(pretrained, dtype=dtype, device=self._device)
            tokenizer = str(pretrained) if tokenizer is None else tokenizer
        if isinstance(tokenizer, (str, os.PathLike)):
            tokenizer = AutoTokenizer.from_pretrained(tokenizer)
        return model.eval(), tokenizer

    def _settings(self, request: dict[str, Any] | None = None) -> SamplerSettings:
        """Settings of one generation: model_args over the task's request over the checkpoint."""
        explicit = dict(self.sampler, seed=self.seed)
        if self.max_new_tokens is not None:
            explicit["max_new_tokens"] = int(self.max_new_tokens)
        return SamplerSettings.resolve(
            explicit,
            request=request,
            checkpoint=self.model.generation_defaults,
            defaults={"max_new_tokens": _DEFAULT_GEN_TOKENS},
        ).settings

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def tokenizer_name(self) -> str:
        return str(getattr(self.tokenizer, "name_or_path", "dlm")).replace("/", "__")

    def apply_chat_template(
        self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True
    ) -> str:
        return self.tokenizer.apply_chat_template(
            chat_history, tokenize=False, add_generation_prompt=add_generation_prompt
        )

    def chat_template(self, chat_template: bool | str = False) -> str | None:
        if isinstance(chat_template, str):
            return chat_template
        return getattr(self.tokenizer, "chat_template", None) if chat_template else None

    # ------------------------------------------------------------------ encoding
    def tok_encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)

    def _context_ids(self, context: str) -> list[int]:
        if not context:
            start = start_token_id(self.tokenizer)
            return [] if start is None else [start]
        ids = self.tok_encode(context)
        sep = self.tokenizer.sep_token_id
        return ids + [sep] if self.add_sep and sep is not None else ids

    def encode_pair(self, context: str, continuation: str) -> Pair:
        """Token ids of (context, continuation); trailing spaces move to the continuation."""
        spaces = len(context) - len(context.rstrip())
        if spaces:
            context, continuation = context[:-spaces], context[-spaces:] + continuation
        prefix = self._context_ids(context)
        if self.add_sep or not context:
            return prefix, self.tok_encode(continuation)
        whole = self.tok_encode(context + continuation)
        return prefix, whole[len(prefix) :]

    def _fit(self, prefix: Sequence[int], room: int) -> list[int]:
        """The prefix, cut from the left so that ``room`` more tokens fit in ``max_length``."""
        keep = self.max_length - room
        if keep < 1:
            raise DlmUserError(
                f"{room} tokens leave no room for context in max_length={self.max_length}; "
                "raise max_length or shorten the continuation"
            )
        return list(prefix)[-keep:] if len(prefix) > keep else list(prefix)

    # ------------------------------------------------------------------ requests
    def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[tuple]:
        pairs = []
        for request in requests:
            prefix, cont = self.encode_pair(*request.args)
            pairs.append((self._fit(prefix, len(cont)), list(cont)))
        estimates = elbo(
            self.model,
            pairs,
            mc_num=self.mc_num,
            batch_size=self.batch_size,
            seed=self.seed,
            progress=not disable_tqdm,
        )
        greedy = self._greedy_flags(pairs) if self.greedy_check else [False] * len(pairs)
        results = []
        for request, estimate, is_greedy in zip(requests, estimates, greedy, strict=True):
            result = (estimate.elbo, bool(is_greedy))
            self.cache_hook.add_partial("loglikelihood", request.args, result)
            results.append(result)
        return results

    @torch.no_grad()
    def _greedy_flags(self, pairs: Sequence[Pair]) -> list[bool]:
        """Whether greedy sampling of len(continuation) tokens gives back the continuation."""
        flags = [True] * len(pairs)
        by_length: dict[int, list[int]] = {}
        for i, (_, cont) in enumerate(pairs):
            if cont:
                by_length.setdefault(len(cont), []).append(i)
        # greedy means greedy: only the order, blocks and cache the user chose in model_args,
        # never a checkpoint's (possibly random) default decoding order
        options = {k: self.sampler[k] for k in ("policy", "block_length", "cache") if k in self.sampler}
        for length, members in by_length.items():
            for start in range(0, len(members), self.batch_size):
                chunk = members[start : start + self.batch_size]
                ids, mask = left_pad_ids([pairs[i][0] for i in chunk], self.model.config.fill_token_id)
                greedy = SamplerSettings(max_new_tokens=length, steps=length, seed=self.seed, **options)
                out = generate(self.model, ids, mask, settings=greedy)
                wanted = torch.tensor(
                    [list(pairs[i][1]) for i in chunk], device=out.sequences.device
                )
                same = (out.generated[:, :length] == wanted).all(dim=1).tolist()
                for i, ok in zip(chunk, same, strict=True):
                    flags[i] = bool(ok)
        return flags

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
        start = start_token_id(self.tokenizer)
        windows: list[Pair] = []
        owner: list[int] = []
        for index, request in enumerate(requests):
            ids = self.tok_encode(request.args[0])
            pieces = text_windows(ids, self.max_length, start, self.rolling_context)
            windows.extend(pieces)
            owner.extend([index] * len(pieces))
        estimates = elbo(
            self.model,
            windows,
            mc_num=self.mc_num,
            batch_size=self.batch_size,
            seed=self.seed,
            progress=not disable_tqdm,
        )
        totals = [0.0] * len(requests)
        for index, estimate in zip(owner, estimates, strict=True):
            totals[index] += estimate.elbo
        for request, total in zip(requests, totals, strict=True):
            self.cache_hook.add_partial("loglikelihood_rolling", request.args, total)
        return totals

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        groups: dict[str, list[int]] = {}
        for index, request in enumerate(requests):
            key = json.dumps(request.args[1], sort_keys=True, default=str)
            groups.setdefault(key, []).append(index)
        results: list[str] = [""] * len(requests)
        for members in groups.values():
            gen_kwargs = dict(requests[members[0]].args[1])
            for start in range(0, len(members), self.batch_size):
                chunk = members[start : start + self.batch_size]
                texts = self._generate([requests[i].args[0] for i in chunk], gen_kwargs)
                for i, text in zip(chunk, texts, strict=True):
                    self.cache_hook.add_partial("generate_until", requests[i].args, text)
                    results[i] = text
        return results

    def _generation_options(self, gen_kwargs: dict[str, Any]) -> tuple[list[str], SamplerSettings]:
        """(stop strings, settings) for one group of requests.

        The task's ``gen_kwargs`` are the request layer: ``max_gen_toks``, ``temperature``,
        ``top_p``, ``top_k``, ``do_sample=False`` (temperature 0) and any ``SamplerSettings``
        field; the ``model_args`` given on the command line win over them.
        """
        until = gen_kwargs.pop("until", None) or []
        stops = [until] if isinstance(until, str) else list(until)
        request: dict[str, Any] = {"max_new_tokens": gen_kwargs.pop("max_gen_toks", None)}
        if gen_kwargs.pop("do_sample", None) is False:
            request["temperature"] = 0.0
        fields = set(SAMPLER_OPTIONS)
        ignored = sorted(set(gen_kwargs) - fields)
        if ignored:
            logger.warning("dlm ignores these generation kwargs: %s", ignored)
        request.update({k: v for k, v in gen_kwargs.items() if k in fields and v is not None})
        settings = self._settings(request)
        if settings.max_new_tokens >= self.max_length:
            logger.warning(
                "%d new tokens do not fit in max_length=%d; generating %d",
                settings.max_new_tokens,
                self.max_length,
                self.max_length - 1,
            )
            settings = settings.replace(max_new_tokens=self.max_length - 1)
        return stops, settings

    @torch.no_grad()
    def _generate(self, contexts: Sequence[str], gen_kwargs: dict[str, Any]) -> list[str]:
        stops, settings = self._generation_options(dict(gen_kwargs))
        prompts = [self._fit(self._context_ids(c), settings.max_new_tokens) for c in contexts]
        ids, mask = left_pad_ids(prompts, self.model.config.fill_token_id)
        out = generate(self.model, ids, mask, settings=settings)
        eos = self.model.config.eos_token_id
        texts = []
        for row in out.generated.tolist():
            if eos is not None and eos in row:
                row = row[: row.index(eos)]
            text = self.tokenizer.decode(row, skip_special_tokens=True)
            texts.append(_cut_at_stops(text, stops))
        return texts
