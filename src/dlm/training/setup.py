"""Turn a ``TrainConfig`` into what the Trainer needs: tokenizer, token tensors, model.

Data comes either from a registered task (generated offline from a seed, with the task's own
tokenizer) or from files (``.jsonl`` with prompt/target for ``sft``/``ar``, text for
``pretrain``) with an HF tokenizer. The model is a fresh backbone of the configured size or an
HF causal LM given by ``model.init``, wrapped as a ``DiffusionLM``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase

from dlm.config import ConfigError
from dlm.data import (
    DataError,
    SequenceData,
    encode_pairs,
    encode_slots,
    pack_documents,
    read_jsonl,
    read_text_documents,
)
from dlm.data.corpora import corpus_documents, corpus_tokenizer
from dlm.models import DLM_CONFIG_NAME, DiffusionLM, backbone_config, build_backbone
from dlm.peft import adapter_disabled, add_adapter
from dlm.rewards import task_reward, unit_test_reward
from dlm.sampling import SamplerSettings
from dlm.tasks import Example, Task, get_task
from dlm.tasks.thoughts import multipass_examples

from .config import CODE_REWARDS, TrainConfig
from .grpo import GRPOObjective

__all__ = ["Prepared", "add_peft", "prepare_data", "build_model", "record_task_defaults", "train"]


@dataclass
class Prepared:
    tokenizer: PreTrainedTokenizerBase
    train: SequenceData
    eval_examples: list[Example]
    eval_documents: list[str] = field(default_factory=list)
    #: the task's answer length (None: no task, or it gives no bound); saved as the model's
    #: default ``max_new_tokens`` so ``dlm generate`` on it fits without a flag
    answer_tokens: int | None = None
    #: the held-out examples (or documents) encoded as the training data is: the sequences
    #: whose loss the trainer logs every ``eval_every`` steps (None: nothing held out)
    eval: SequenceData | None = None
    #: the task the data came from (None: files or a corpus)
    task: Task | None = None
    #: the training examples ``train`` encodes, row for row (empty for packed text)
    train_examples: list[Example] = field(default_factory=list)


def _examples_from_file(path: str) -> list[Example]:
    return [Example.from_json(r) for r in read_jsonl(path)]


def _load_tokenizer(config: TrainConfig) -> PreTrainedTokenizerBase:
    source = config.data.tokenizer or config.model.init
    if source is None:
        raise ConfigError(
            "data from files needs a tokenizer: set data.tokenizer to an HF tokenizer directory "
            "(or model.init to a model directory that has one), or use data.task"
        )
    tokenizer = AutoTokenizer.from_pretrained(source)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def prepare_data(config: TrainConfig) -> Prepared:
    """Tokenizer, training tensors and held-out examples for a config."""
    data = config.data
    sources = [name for name in ("task", "corpus", "train_file") if getattr(data, name) is not None]
    if not sources:
        raise ConfigError(
            "set data.task (e.g. sudoku), data.corpus (python-stdlib) or data.train_file (a .jsonl file) "
            "to say what to train on"
        )
    if len(sources) > 1 and sources != ["task", "train_file"]:
        raise ConfigError(
            f"set only one of data.task, data.corpus and data.train_file (got {', '.join(sources)}); "
            "data.task with data.train_file trains on a task's files (`dlm task make`)"
        )
    if data.corpus is not None:
        if config.objective == "sft":
            raise ConfigError(
                "data.corpus is raw text with no prompt/answer pairs: use objective=pretrain "
                "(diffusion) or objective=ar (next token), not sft"
            )
        tokenizer = corpus_tokenizer(data.corpus)
        seq_len = data.seq_len or 256
        tensors = pack_documents(tokenizer, corpus_documents(data.corpus, "train"), seq_len)
        documents = corpus_documents(data.corpus, "eval")
        held = pack_documents(tokenizer, documents, seq_len) if documents else None
        return Prepared(tokenizer, tensors, [], documents, eval=held)
    task, answer_tokens = None, None
    if data.task is not None:
        task = get_task(data.task, **data.task_options)
        tokenizer = task.tokenizer()
        answer_tokens = task.max_answer_tokens
        if data.train_file is not None:  # `dlm task make` files: the task's tokenizer and checks
            if config.objective == "pretrain":
                raise ConfigError(
                    "data.task with data.train_file reads prompt/target examples: use objective=sft "
                    "(diffusion) or objective=ar"
                )
            train = _examples_from_file(data.train_file)
            held_out = _examples_from_file(data.eval_file)[: data.n_eval] if data.eval_file else []
        else:
            train, held_out = task.held_out(data.n_train, data.n_eval, seed=data.seed)
        if data.multipass:
            train = multipass_examples(task, train, coupled_prob=data.coupled_prob, seed=data.seed)
        elif data.coupled_prob:
            raise ConfigError("data.coupled_prob needs data.multipass: true (DoT-MP training)")
    else:
        tokenizer = _load_tokenizer(config)
        held_out = _examples_from_file(data.eval_file) if data.eval_file else []
        if config.objective == "pretrain":
            seq_len = data.seq_len or 256
            tensors = pack_documents(
                tokenizer, read_text_documents(data.train_file, data.text_field), seq_len
            )
            return Prepared(tokenizer, tensors, held_out)
        train = _examples_from_file(data.train_file)
    if not train:
        raise DataError(
            "the training set is empty; raise data.n_train or add examples to data.train_file"
        )
    tensors = _encode_examples(tokenizer, task, train, data.seq_len)
    held = None
    if held_out:  # in the form trained on: one pair per thought for DoT-MP
        pairs = multipass_examples(task, held_out, seed=data.seed) if data.multipass else held_out
        held = _encode_examples(tokenizer, task, list(pairs), data.seq_len)
    return Prepared(
        tokenizer,
        tensors,
        list(held_out),
        answer_tokens=answer_tokens,
        eval=held,
        task=task,
        train_examples=list(train),
    )


def _encode_examples(
    tokenizer: PreTrainedTokenizerBase,
    task: Task | None,
    examples: list[Example],
    seq_len: int | None,
) -> SequenceData:
    """Prompt/target examples as training tensors (a task's pinned template when it has one)."""
    prompts, targets = [e.prompt for e in examples], [e.target for e in examples]
    if task is not None and task.slots is not None:  # answers inside a pinned template
        return encode_slots(tokenizer, prompts, targets, [task.slots(e) for e in examples])
    return encode_pairs(tokenizer, prompts, targets, seq_len)


def _check_init(init: str) -> None:
    """Refuse a ``model.init`` that names a missing local directory, before HF reads it as a hub id."""
    path = Path(init).expanduser()
    if path.is_dir():
        return
    local = (
        init.startswith((".", "/", "~"))
        or init.count("/") > 1
        or (path.parent != Path(".") and path.parent.is_dir())
    )
    if local:
        raise ConfigError(
            f"model.init={init!r} is not a directory. Train the run that writes it first (its "
            "recipe's output_dir + /model, e.g. `dlm train recipes/path/ar.yaml` before "
            "recipes/path/adapted.yaml), or point model.init at a Hugging Face model directory"
        )


def build_model(config: TrainConfig, tokenizer: PreTrainedTokenizerBase) -> DiffusionLM:
    """A ``DiffusionLM`` from ``model.init`` or a fresh backbone of the configured size."""
    m = config.model
    if config.objective == "grpo":  # RL continues the trained model exactly as it was saved
        assert m.init is not None  # TrainConfig requires it
        return _trained_model(m.init)
    if m.init is not None:
        _check_init(m.init)
        backbone = AutoModelForCausalLM.from_pretrained(m.init, attn_implementation="sdpa")
    else:
        backbone = build_backbone(
            backbone_config(
                m.arch,
                vocab_size=len(tokenizer),
                hidden_size=m.hidden_size,
                num_layers=m.num_layers,
                num_heads=m.num_heads,
                intermediate_size=m.intermediate_size,
                max_positions=m.max_positions,
                dropout=m.dropout,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            ),
            seed=config.seed,
        )
    return DiffusionLM.from_causal_lm(
        backbone,
        tokenizer,
        mask_token=m.mask_token,
        shift=m.shift,
        attention=m.attention,
        anneal_steps=m.anneal_steps,
        block_size=m.block_size,
    )


def _trained_model(init: str) -> DiffusionLM:
    """The dlm checkpoint at ``init`` with its own diffusion fields and sampler defaults."""
    _check_init(init)
    if not (Path(init).expanduser() / DLM_CONFIG_NAME).is_file():
        raise ConfigError(
            f"model.init={init!r} is not a dlm model folder (no {DLM_CONFIG_NAME}): objective "
            "grpo starts from a model dlm trained or converted (the model/ folder of a dlm train "
            "run, or the output of dlm convert)"
        )
    return DiffusionLM.from_pretrained(Path(init).expanduser())


def add_peft(model: DiffusionLM, config: TrainConfig) -> None:
    """Freeze the base and add the recipe's adapter (``peft:``), refusing a base whose
    vocabulary had to grow for the mask token: its new embedding row would stay frozen at its
    random initial value."""
    assert config.peft is not None and config.model.init is not None
    added = model.backbone.get_input_embeddings().num_embeddings - _init_vocab(config.model.init)
    if added > 0:
        raise ConfigError(
            f"model.init {config.model.init} has no {config.model.mask_token} token, so {added} "
            "embedding row(s) were added; an adapter trains none of them. Adapt the base to "
            "diffusion first (full fine-tuning, recipes/adapt/a2d.yaml), or give model.mask_token "
            "a token the base has"
        )
    with torch.random.fork_rng(devices=[]):  # the adapter's initial A: a function of the seed
        torch.manual_seed(config.seed)
        add_adapter(model, config.peft)


def _init_vocab(init: str) -> int:
    return AutoConfig.from_pretrained(init).vocab_size


def record_task_defaults(model: DiffusionLM, prepared: Prepared) -> None:
    """Save the task's answer length as the model's default ``max_new_tokens`` (kept in
    ``dlm_config.json``), unless the model already has one: ``dlm generate`` and lm-eval then
    fit the answer without a flag, and an explicit flag still wins."""
    if prepared.answer_tokens is None:
        return
    defaults = dict(model.config.generation or {})
    defaults.setdefault("max_new_tokens", prepared.answer_tokens)
    model.config.generation = defaults


def build_grpo(config: TrainConfig, prepared: Prepared, model: DiffusionLM) -> GRPOObjective:
    """The GRPO objective of a run: the task's reward, the rollouts' sampler settings (the
    recipe's ``rl.sampler`` over the model's saved defaults) and the reference policy."""
    rl, task = config.rl, prepared.task
    if task is not None and task.slots is not None:
        raise ConfigError(
            f"task {task.name!r} answers inside a pinned template (slots); objective grpo "
            "samples free completions: choose a task without slots"
        )
    sampler = SamplerSettings.resolve(dict(rl.sampler), checkpoint=model.generation_defaults)
    settings = sampler.settings
    if settings.max_new_tokens is None:
        settings = settings.replace(max_new_tokens=prepared.answer_tokens)
    if settings.max_new_tokens is None:
        raise ConfigError(
            "the rollouts need a length: set rl.sampler.max_new_tokens (the model has no saved "
            "default and the task gives no bound)"
        )
    reference = None
    if rl.kl_beta > 0:
        reference = _adapter_reference(model) if config.peft is not None else None
        if reference is None:
            assert config.model.init is not None
            reference = _frozen_reference(_trained_model(config.model.init))
    code = rl.reward in CODE_REWARDS
    if code:
        reward = unit_test_reward(CODE_REWARDS[rl.reward])
    else:
        assert task is not None  # TrainConfig requires data.task for a task metric
        reward = task_reward(task, rl.reward)
    return GRPOObjective(
        rl,
        prepared.tokenizer,
        prepared.train_examples,
        reward,
        settings,
        seed=config.seed,
        reference=reference,
        strip_answers=not code,
    )


def _adapter_reference(model: DiffusionLM):
    """The base under the adapter: the policy with its adapter switched off."""
    return lambda policy: adapter_disabled(model)


def _frozen_reference(reference: DiffusionLM):
    """A frozen copy of the starting model, moved to the policy's device on first use."""
    reference.eval().requires_grad_(False)

    @contextlib.contextmanager
    def use(policy):
        yield reference.to(policy.device)

    return use


def train(config: TrainConfig, callbacks=(), accelerator=None, evaluators=None):
    """Prepare data and model for ``config`` and run the Trainer; returns (result, prepared).

    With ``eval_every`` set, the held-out loss is logged every ``eval_every`` steps;
    ``evaluators(config, prepared)`` may return more evaluators (``dlm.evaluation.training_evaluators``:
    the task's verified accuracy, which ``dlm train`` adds).
    """
    from .resume import resolve_resume
    from .trainer import Trainer

    resolve_resume(config, early=True)  # a resume that cannot work fails before data is prepared
    prepared = prepare_data(config)
    model = build_model(config, prepared.tokenizer)
    record_task_defaults(model, prepared)
    if config.peft is not None:
        add_peft(model, config)
    objective = build_grpo(config, prepared, model) if config.objective == "grpo" else None
    trainer = Trainer(
        config,
        model,
        prepared.tokenizer,
        prepared.train,
        objective=objective,
        callbacks=callbacks,
        accelerator=accelerator,
        eval_data=prepared.eval,
        heldout_examples=prepared.eval_examples,
        evaluators=evaluators(config, prepared) if evaluators is not None else (),
    )
    return trainer.fit(), prepared
