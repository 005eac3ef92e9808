"""The typed configuration of a training run, as written in a YAML recipe.

Sections: ``model`` (backbone sizes or an HF checkpoint to start from, and the diffusion
fields), ``data`` (a task generator or files, tokenizer, sequence length), ``diffusion``
(schedule, time sampling, weighting), ``optim`` (optimiser, schedule, batch, precision) and
the run itself (objective, output directory, checkpoints, logging). An optional ``peft``
section (``dlm.peft.PeftSettings``: ``method: lora | prolora``, ``r``, ``u``, ``m``, ``n``,
``alpha``, ``dropout``, ``targets``, ``rotation``, ``init``) trains an adapter on the frozen
``model.init`` instead of every weight. The ``rl`` section (``RLSection``) configures
``objective: grpo``: the estimator, the group size, the clipping, the KL and the rollouts'
sampler settings.

``TrainConfig`` checks every numeric value's range when it is built, so a recipe or override
out of range fails before any work starts with a message naming the dotted key and its range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from dlm.config import ConfigError, load_config
from dlm.errors import SettingsError
from dlm.peft import PeftSettings
from dlm.sampling import SamplerSettings

if TYPE_CHECKING:
    from dlm.tasks import Task

__all__ = [
    "CODE_REWARDS",
    "ModelSection",
    "DataSection",
    "DiffusionSection",
    "OptimSection",
    "RLSection",
    "TrainConfig",
    "load_train_config",
    "recorded_recipe",
]

Objective = Literal["pretrain", "sft", "ar", "grpo"]
#: ``rl.reward`` values that run unit tests in the sandbox, and the share each rewards
CODE_REWARDS = {"tests": "fraction", "tests_all": "passed"}


def _at_least(where: str, value: int | None, low: int, *, optional: bool = False) -> None:
    """A whole-number field of at least ``low`` (``optional``: or null)."""
    if value is None and optional:
        return
    if value is None or value < low:
        null = " (or null)" if optional else ""
        raise ConfigError(f"{where} must be at least {low}{null}; got {value}")


def _seed(where: str, value: int) -> None:
    """A seed numpy and torch both take: a whole number in [0, 2**32)."""
    if not 0 <= value < 2**32:
        raise ConfigError(f"{where} must lie in [0, 2**32); got {value}")


def _within(
    where: str,
    value: float | None,
    low: float,
    high: float | None,
    *,
    low_open: bool = False,
    high_open: bool = True,
    optional: bool = False,
) -> None:
    """A number in an interval (``high=None``: no upper bound; NaN and infinities refused)."""
    if value is None and optional:
        return
    if value is None or not math.isfinite(value):
        too_low = too_high = True
    else:
        too_low = value <= low if low_open else value < low
        too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        lo = ("(" if low_open else "[") + f"{low:g}"
        hi = "inf)" if high is None else f"{high:g}" + (")" if high_open else "]")
        null = " (or null)" if optional else ""
        raise ConfigError(f"{where} must lie in {lo}, {hi}{null}; got {value}")


@dataclass
class ModelSection:
    arch: Literal["gpt2", "llama", "qwen2"] = "gpt2"
    init: str | None = None  # an HF causal-LM directory to start from instead of random weights
    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int | None = None
    max_positions: int = 256
    dropout: float = 0.0
    attention: Literal["bidirectional", "causal", "annealed", "block_causal"] = "bidirectional"
    shift: bool = True
    # annealed: steps over which attention opens from causal; block_causal: steps over which
    # the block size doubles from 1 up to block_size
    anneal_steps: int = 0
    block_size: int | None = None  # block_causal: tokens per block
    mask_token: str = "[MASK]"


@dataclass
class DataSection:
    task: str | None = None  # a registered task (dlm.tasks) generating examples offline
    task_options: dict[str, Any] = field(default_factory=dict)
    n_train: int = 10000
    n_eval: int = 200
    seed: int = 0
    corpus: str | None = (
        None  # an offline corpus (dlm.data.corpora) for pretrain, e.g. python-stdlib
    )
    train_file: str | None = None  # .jsonl with prompt/target (sft, ar) or text (pretrain)
    eval_file: str | None = None
    text_field: str = "text"
    tokenizer: str | None = None  # an HF tokenizer directory (tasks bring their own)
    seq_len: int | None = None
    multipass: bool = False  # DoT-MP: one (question + thoughts < k, thought k) pair per thought
    coupled_prob: float = 0.0  # DoT coupled sampling: share of pairs whose target is 2 thoughts
    # Dream-Coder's random truncation: every training batch is cut at a width drawn uniformly
    # from [its longest prompt + response + EOS, seq_len], so pads are seen but do not dominate
    # (dlm.data.truncation; "none": every batch keeps seq_len)
    truncation: Literal["none", "random"] = "none"


@dataclass
class DiffusionSection:
    schedule: Literal["linear", "cosine", "discrete"] = "linear"
    num_steps: int | None = None  # T of the discrete schedule
    eps: float = 1e-3
    stratified: bool = True
    weighting: Literal["elbo", "linear", "cart", "none"] = "elbo"
    cart_p: float = 0.1
    token_reweight: bool = False
    reweight_alpha: float = 0.25
    reweight_beta: float = 1.0
    # DoT scheduled sampling: rows built from the model's own predictions with probability
    # 1 - p_gold, p_gold falling linearly from 1 to min_prob over ramp_steps (1.0 = off).
    scheduled_min_prob: float = 1.0
    scheduled_ramp_steps: int | None = None  # default: optim.max_steps
    scheduled_sampler_steps: int = 16
    # train each row twice, masked at t and on the complement at 1 - t (Fast-dLLM v2, LLaDA
    # 2.0), so every noisable token carries loss once per step; linear schedule
    complementary: bool = False


@dataclass
class OptimSection:
    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    warmup_steps: int = 0
    scheduler: Literal["cosine", "linear", "constant"] = "cosine"
    max_steps: int = 1000
    batch_size: int = 64  # per process, per micro-batch
    grad_accum: int = 1
    max_grad_norm: float | None = 1.0
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"


@dataclass
class RLSection:
    """``objective: grpo``: RL with verifiable rewards on a trained model (``model.init``).

    A step samples ``group_size`` completions of each of ``optim.batch_size`` prompts (per
    micro-batch), rewards them, and makes ``inner_steps`` policy updates on that batch (each a
    trainer step, with its own masks). See ``dlm.training.grpo``.
    """

    estimator: Literal["coupled", "one_step", "weighted"] = "coupled"
    group_size: int = 8  # G: completions per prompt
    inner_steps: int = 1  # mu: policy updates per rollout batch (d1: 12, DiffuCoder: 2)
    clip_low: float = 0.2  # the ratio is clipped to [1 - clip_low, 1 + clip_high]
    clip_high: float = 0.28  # (Dream-Coder's 0.2 / 0.28)
    kl_beta: float = 0.0  # weight of the k3 KL to the reference (the starting model)
    scale_rewards: bool = True  # advantages divided by the group's std (wd1's code: false)
    filter_groups: bool = True  # Dream-Coder: refill groups whose rewards are all equal
    prompt_mask_prob: float = 0.15  # one_step / weighted: prompt tokens masked (d1)
    coupled_t: list[float] = field(default_factory=lambda: [0.2, 0.8])  # t ~ U(low, high)
    coupled_weights: Literal["unbiased", "diffucoder"] = "unbiased"  # see dlm.rl.estimators
    psi: float = 1.0  # wd1: the weights are softmax(psi * advantage) over the group
    # what is rewarded: a metric of data.task ("verify": 1 for a correct answer), or the unit
    # tests each example carries in its meta (tests / test + entry_point / prefix), run in
    # dlm.sandbox: "tests" (the share passed) or "tests_all" (1 when all pass)
    reward: str = "verify"
    # the rollouts' SamplerSettings fields over the model's saved defaults
    sampler: dict[str, Any] = field(default_factory=lambda: {"temperature": 1.0})


@dataclass
class TrainConfig:
    objective: Objective = "sft"
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    diffusion: DiffusionSection = field(default_factory=DiffusionSection)
    optim: OptimSection = field(default_factory=OptimSection)
    # an adapter on the frozen model.init (None: every weight trains)
    peft: PeftSettings | None = None
    rl: RLSection = field(default_factory=RLSection)
    output_dir: str = "runs/default"
    seed: int = 0
    save_every: int = 0  # 0: only the final checkpoint
    keep_last: int = 2
    log_every: int = 25
    # held-out evaluation every eval_every steps and at the last one (0: never): the loss on
    # the held-out sequences, and for task data (with `dlm train`) the verified accuracy of
    # eval_examples held-out examples sampled with the model's defaults, into TensorBoard
    eval_every: int = 0
    eval_examples: int = 64
    progress: bool = True
    resume: str | None = None  # "latest" or a checkpoint directory

    def __post_init__(self) -> None:
        if self.objective == "ar" and self.model.attention != "causal":
            self.model.attention = "causal"
            self.model.block_size = None  # the AR twin of a block-diffusion recipe
        if self.objective != "ar" and self.model.attention == "causal":
            raise ConfigError(
                f"objective '{self.objective}' trains a diffusion LM and needs non-causal attention; "
                "set model.attention=bidirectional (or annealed), or objective=ar"
            )
        if self.optim.max_steps < 1:
            raise ConfigError(f"optim.max_steps must be at least 1; got {self.optim.max_steps}")
        if self.optim.grad_accum < 1:
            raise ConfigError(f"optim.grad_accum must be at least 1; got {self.optim.grad_accum}")
        if self.keep_last < 1:
            raise ConfigError(f"keep_last must be at least 1; got {self.keep_last}")
        if len(self.optim.betas) != 2:
            raise ConfigError(f"optim.betas needs two numbers; got {self.optim.betas}")
        _at_least("save_every", self.save_every, 0)
        _at_least("log_every", self.log_every, 1)
        _at_least("eval_every", self.eval_every, 0)
        _at_least("eval_examples", self.eval_examples, 0)
        _seed("seed", self.seed)
        self._check_optim()
        self._check_data()
        self._check_model()
        self._check_diffusion()
        self._check_rl()

    def _check_rl(self) -> None:
        """The rl section's ranges (read only by objective=grpo), and what grpo needs."""
        r = self.rl
        _at_least("rl.group_size", r.group_size, 2)
        _at_least("rl.inner_steps", r.inner_steps, 1)
        _within("rl.clip_low", r.clip_low, 0.0, 1.0, low_open=True)
        _within("rl.clip_high", r.clip_high, 0.0, None, low_open=True)
        _within("rl.kl_beta", r.kl_beta, 0.0, None)
        _within("rl.prompt_mask_prob", r.prompt_mask_prob, 0.0, 1.0)
        _within("rl.psi", r.psi, 0.0, None, low_open=True)
        if len(r.coupled_t) != 2 or not 0.0 < r.coupled_t[0] <= r.coupled_t[1] < 1.0:
            raise ConfigError(
                f"rl.coupled_t must be [low, high] with 0 < low <= high < 1; got {r.coupled_t}"
            )
        try:
            SamplerSettings.resolve(dict(r.sampler))
        except SettingsError as err:
            raise ConfigError(f"rl.sampler: {err}") from None
        if self.objective != "grpo":
            return
        if self.model.init is None:
            raise ConfigError(
                "objective grpo fine-tunes a trained model: set model.init to its folder (the "
                "model/ folder of a dlm train run, e.g. an SFT run on the same task)"
            )
        if r.reward in CODE_REWARDS:
            if self.data.task is None and self.data.train_file is None:
                raise ConfigError(
                    f"rl.reward={r.reward} runs the unit tests of each example: set "
                    "data.train_file to a .jsonl of prompts whose meta holds their tests"
                )
        elif self.data.task is None:
            raise ConfigError(
                "objective grpo rewards answers with a task's verifier: set data.task (and "
                "data.task_options) to the task the model was trained on, or rl.reward=tests "
                "with a data.train_file of prompts and their unit tests"
            )
        if self.save_every % r.inner_steps:
            raise ConfigError(
                f"save_every ({self.save_every}) must be a multiple of rl.inner_steps "
                f"({r.inner_steps}), so that every checkpoint falls between two rollout batches"
            )

    def _check_optim(self) -> None:
        o = self.optim
        _at_least("optim.batch_size", o.batch_size, 1)
        _at_least("optim.warmup_steps", o.warmup_steps, 0)
        _within("optim.lr", o.lr, 0.0, None)
        _within("optim.weight_decay", o.weight_decay, 0.0, None)
        _within("optim.max_grad_norm", o.max_grad_norm, 0.0, None, low_open=True, optional=True)
        for i, beta in enumerate(o.betas):
            _within(f"optim.betas[{i}]", beta, 0.0, 1.0)

    def _check_data(self) -> None:
        d = self.data
        _at_least("data.n_train", d.n_train, 1)
        _at_least("data.n_eval", d.n_eval, 0)
        _at_least("data.seq_len", d.seq_len, 1, optional=True)
        _within("data.coupled_prob", d.coupled_prob, 0.0, 1.0, high_open=False)
        if d.truncation == "random" and self.objective in ("pretrain", "grpo"):
            raise ConfigError(
                f"data.truncation=random cuts the padding after prompt/response pairs; "
                f"objective {self.objective} has none: set data.truncation=none"
            )
        _seed("data.seed", d.seed)

    def _check_model(self) -> None:
        m = self.model
        if m.init is None and (m.num_heads < 1 or m.hidden_size % m.num_heads):
            raise ConfigError(
                f"model.hidden_size ({m.hidden_size}) must be a multiple of model.num_heads "
                f"({m.num_heads}); change one of them"
            )
        for name in ("hidden_size", "num_layers", "max_positions"):
            if m.init is None and getattr(m, name) < 1:
                raise ConfigError(f"model.{name} must be at least 1; got {getattr(m, name)}")
        if m.init is None:
            _at_least("model.intermediate_size", m.intermediate_size, 1, optional=True)
        _within("model.dropout", m.dropout, 0.0, 1.0)
        _at_least("model.anneal_steps", m.anneal_steps, 0)
        if m.attention == "block_causal":
            if m.block_size is None:
                raise ConfigError(
                    "model.attention=block_causal needs model.block_size, the tokens per block "
                    "(e.g. model.block_size=32)"
                )
            _at_least("model.block_size", m.block_size, 1)
        elif m.block_size is not None:
            raise ConfigError(
                f"model.block_size is the block length of model.attention=block_causal; "
                f"attention is {m.attention}: drop model.block_size or set the attention"
            )
        if self.peft is not None and m.init is None:
            raise ConfigError(
                "peft trains an adapter on a frozen base model: set model.init to the base "
                "model's folder (e.g. the model/ folder of an earlier dlm train run)"
            )

    def _check_diffusion(self) -> None:
        """The diffusion section's ranges, checked before any work starts."""
        d = self.diffusion
        if self.objective == "ar":
            return
        if d.schedule == "discrete" and (d.num_steps is None or d.num_steps < 1):
            raise ConfigError(
                "diffusion.schedule=discrete needs diffusion.num_steps=T (at least 1), "
                "e.g. diffusion.num_steps=20"
            )
        _at_least("diffusion.num_steps", d.num_steps, 1, optional=True)
        if d.scheduled_min_prob < 1.0 and self.model.attention == "block_causal":
            raise ConfigError(
                "scheduled sampling (diffusion.scheduled_min_prob < 1) decodes whole canvases; a "
                "block_causal model denoises each block after clean ones: set "
                "diffusion.scheduled_min_prob=1"
            )
        if d.complementary and d.schedule != "linear":
            raise ConfigError(
                "diffusion.complementary masks the complement at 1 - t, which needs "
                f"diffusion.schedule=linear; got {d.schedule}"
            )
        if d.complementary and d.scheduled_min_prob < 1.0:
            raise ConfigError(
                "diffusion.complementary and scheduled sampling (diffusion.scheduled_min_prob < 1) "
                "do not combine: turn one off"
            )
        if d.weighting == "linear" and d.schedule != "discrete":
            raise ConfigError(
                "diffusion.weighting=linear (w = T - t + 1) needs diffusion.schedule=discrete and "
                "diffusion.num_steps=T"
            )
        if not 0.0 <= d.eps < 1.0:
            raise ConfigError(f"diffusion.eps must lie in [0, 1); got {d.eps}")
        if d.weighting == "cart" and not 0.0 < d.cart_p < 1.0:
            raise ConfigError(f"diffusion.cart_p must lie in (0, 1); got {d.cart_p}")
        if not 0.0 <= d.scheduled_min_prob <= 1.0:
            raise ConfigError(
                f"diffusion.scheduled_min_prob must lie in [0, 1]; got {d.scheduled_min_prob}"
            )
        _at_least("diffusion.scheduled_ramp_steps", d.scheduled_ramp_steps, 1, optional=True)
        _at_least("diffusion.scheduled_sampler_steps", d.scheduled_sampler_steps, 1)
        _within("diffusion.reweight_alpha", d.reweight_alpha, 0.0, None, low_open=True)
        _within("diffusion.reweight_beta", d.reweight_beta, 0.0, None)


def load_train_config(path: str | None, overrides: list[str] | None = None) -> TrainConfig:
    """A ``TrainConfig`` from a YAML recipe plus ``key=value`` overrides."""
    return load_config(TrainConfig, path, overrides)


def recorded_recipe(model_dir: Path | str) -> TrainConfig | None:
    """The recipe a model was trained with (``train_config.yaml`` in its folder or the run
    folder above it), or None for a model ``dlm train`` did not write."""
    model_dir = Path(model_dir)
    for candidate in (model_dir / "train_config.yaml", model_dir.parent / "train_config.yaml"):
        if candidate.is_file():
            return load_train_config(str(candidate))
    return None


def recorded_task(model_dir: Path | str) -> Task | None:
    """The task the model at ``model_dir`` was trained on, with its options, from the
    ``train_config.yaml`` saved with it; None for a model with no task (or no recipe). A
    recorded task that can no longer be built (an option since renamed) raises its
    ``DlmUserError``."""
    from dlm.tasks import get_task

    recipe = recorded_recipe(model_dir)
    if recipe is None or recipe.data.task is None:
        return None
    return get_task(recipe.data.task, **recipe.data.task_options)
