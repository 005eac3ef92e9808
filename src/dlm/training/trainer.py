"""The training loop: one code path for CPU, one GPU and ``accelerate launch`` on many.

The Trainer owns the loop (micro-batches, gradient accumulation and clipping, optimiser and LR
schedule), exact resumption, atomic checkpoints, TensorBoard logs and the progress bar. The
loss itself comes from an objective (``objectives.py``). Nothing here launches processes:
run ``accelerate launch -m dlm.cli.main train ...`` for several.

With an adapter (a recipe's ``peft:`` section) only the adapter trains: the optimizer holds the
trainable parameters alone, and every checkpoint and the final ``model/`` hold only the adapter
(``dlm.peft.save_adapter``: its weights, its settings, the model's diffusion fields and a
pointer to the base), never a copy of the frozen base.
"""

from __future__ import annotations

import contextlib
import math
import pickle
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml
from accelerate import Accelerator
from accelerate.utils import set_seed
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase, get_scheduler

from dlm.atomic import atomic_write_text, fault_point
from dlm.config import ConfigError, to_dict
from dlm.data import BatchOrder, SequenceData, random_truncation, write_jsonl
from dlm.errors import DlmUserError
from dlm.models import DiffusionLM, eval_mode, quiet_libraries
from dlm.peft import adapter_settings, parameter_counts, save_adapter
from dlm.tasks import Example

from . import checkpoints as ckpt
from .config import TrainConfig
from .heldout import Evaluator, HeldOutLoss, forked_rng
from .objectives import build_objective
from .resume import resolve_resume

__all__ = ["HELDOUT_NAME", "Trainer", "TrainResult", "TrainingDivergedError", "check_trainable_state"]

#: The held-out examples of a task run, in the saved ``model/`` folder (JSON lines).
HELDOUT_NAME = "heldout.jsonl"

Callback = Callable[[int, dict[str, float]], None]


class TrainingDivergedError(DlmUserError, RuntimeError):
    """The loss became NaN or infinite; the message names the last good checkpoint.

    A user-facing stop (the fix is a recipe change: a lower learning rate, gradient clipping,
    bf16), so the CLI prints it as one line; it is still a ``RuntimeError`` for callers that
    caught it as one.
    """


@dataclass
class TrainResult:
    model_dir: Path
    steps: int
    losses: list[float] = field(default_factory=list)  # one per optimizer step run in this call
    train_seconds: float = 0.0
    tokens: int = 0
    last_checkpoint: Path | None = None
    #: (step, {name: value}) of every held-out evaluation run in this call
    evals: list[tuple[int, dict[str, float]]] = field(default_factory=list)


_SCHEDULERS = {"cosine": "cosine", "linear": "linear", "constant": "constant_with_warmup"}


class Trainer:
    def __init__(
        self,
        config: TrainConfig,
        model: DiffusionLM,
        tokenizer: PreTrainedTokenizerBase | None,
        train_data: SequenceData,
        *,
        objective=None,
        accelerator: Accelerator | None = None,
        callbacks: Sequence[Callback] = (),
        eval_data: SequenceData | None = None,
        evaluators: Sequence[Evaluator] = (),
        heldout_examples: Sequence[Example] = (),
        header: bool = True,
    ) -> None:
        self.config = config
        self.output_dir = Path(config.output_dir)
        self.accelerator = accelerator or Accelerator(
            mixed_precision=config.optim.mixed_precision,
            log_with="tensorboard",
            project_dir=str(self.output_dir),
        )
        self.model = model
        self.tokenizer = tokenizer
        self.train_data = train_data
        self.objective = objective or build_objective(config)
        self.callbacks = list(callbacks)
        self.heldout_examples = list(heldout_examples)
        self.header = header  # the run's one-line description before its first step
        # every eval_every steps: the held-out loss (when there is held-out data), then the rest
        self.evaluators: list[Evaluator] = []
        own_loss = getattr(self.objective, "heldout_loss", True)  # RL has no held-out loss
        if config.eval_every and eval_data is not None and len(eval_data) and own_loss:
            self.evaluators.append(
                HeldOutLoss(self.objective, eval_data, config.optim.batch_size, config.seed)
            )
        self.evaluators += list(evaluators) if config.eval_every else []
        self._notice = ckpt.notice if self.accelerator.is_main_process else (lambda message: None)
        limit = model.max_positions
        if limit is not None and train_data.seq_len > limit:
            raise ConfigError(
                f"training sequences have {train_data.seq_len} tokens but the model has {limit} "
                "positions; raise model.max_positions or lower data.seq_len"
            )

    # ------------------------------------------------------------------ helpers
    @property
    def unwrapped(self) -> DiffusionLM:
        return self.accelerator.unwrap_model(self.model)

    @property
    def adapted(self) -> bool:
        """Only an adapter trains (the recipe's ``peft:`` section was applied)."""
        return adapter_settings(self.unwrapped) is not None

    def _write_model(self, directory: Path) -> None:
        """The model as ``dlm generate`` opens it: a dlm checkpoint, or for an adapter run the
        adapter folder (pointing at the base) with the tokenizer."""
        if not self.adapted:
            self.unwrapped.save_pretrained(directory, self.tokenizer)
            return
        init = self.config.model.init
        assert init is not None  # TrainConfig requires model.init with peft
        base = Path(init).expanduser()
        save_adapter(self.unwrapped, directory, base=str(base.resolve()) if base.is_dir() else init)
        self.tokenizer.save_pretrained(directory)

    def _batch(self, order: BatchOrder, step: int, micro: int) -> SequenceData:
        batch = self.train_data.select(order.next_indices())
        if self.config.data.truncation == "random":  # drawn from (seed, step): exact on resume
            seed = (self.config.seed * 1_000_003 + step) * 64 + micro
            batch = random_truncation(batch, torch.Generator().manual_seed(seed))
        return batch.to(self.accelerator.device)

    def _write_config(self, directory: Path) -> None:
        atomic_write_text(
            directory / "train_config.yaml", yaml.safe_dump(to_dict(self.config), sort_keys=False)
        )

    def _save_checkpoint(self, step: int, order: BatchOrder) -> Path:
        acc = self.accelerator
        final = ckpt.checkpoint_dir(self.output_dir, step)
        tmp = ckpt.temporary_dir(final)
        if acc.is_main_process:
            ckpt.clear_temporary(final)
        acc.wait_for_everyone()
        with quiet_libraries():  # accelerate's tied-head warning, once per checkpoint
            acc.save_state(str(tmp))
        acc.wait_for_everyone()  # every rank's random states are in before the folder is sealed
        if acc.is_main_process:
            fault_point("save.state")
            self._write_model(tmp / "model")
            state = {"step": step, "data": order.state_dict(), "num_processes": acc.num_processes}
            ckpt.write_trainer_state(tmp, state)
            self._write_config(tmp)
            ckpt.finalize(tmp, final)
            ckpt.prune(self.output_dir, self.config.keep_last, newest=step)
        acc.wait_for_everyone()
        return final

    def _save_model(self) -> Path:
        final = self.output_dir / "model"
        if self.accelerator.is_main_process:
            tmp = ckpt.clear_temporary(final)
            self._write_model(tmp)
            # The recipe travels with the model: `dlm eval` finds the task and its held-out split,
            # kept as examples too so that evaluating it does not regenerate the training set.
            self._write_config(tmp)
            if self.heldout_examples:
                write_jsonl(tmp / HELDOUT_NAME, [e.to_json() for e in self.heldout_examples])
            ckpt.finalize(tmp, final)
        self.accelerator.wait_for_everyone()
        return final

    def _load_state(self, path: Path) -> None:
        """``accelerator.load_state`` with a one-line error naming the checkpoint and the
        previous good one when its files cannot be read."""
        try:
            # an adapter run's state holds the adapter alone (_trainable_only checks its keys)
            self.accelerator.load_state(str(path), **({"strict": False} if self.adapted else {}))
        except torch.OutOfMemoryError:
            raise  # the machine's limit, not the checkpoint's fault
        except (
            OSError,
            EOFError,
            RuntimeError,
            ValueError,
            KeyError,
            pickle.UnpicklingError,
            ckpt.CheckpointError,
        ) as err:
            previous = ckpt.previous_checkpoint(path)
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ckpt.CheckpointError(
                f"checkpoint {path} cannot be loaded ({type(err).__name__}: {first[:200]}); resume "
                + (
                    f"from the previous good one: resume={previous}"
                    if previous
                    else "is impossible: start the run again"
                )
            ) from err

    def _apply_resumed_optimizer(self, optimizer, scheduler, step: int, changes) -> None:
        """Put the recipe's optimiser values into the restored optimiser and set the learning
        rate of the (rebuilt) schedule at ``step``.

        The restored state carries the saved run's learning rate and parameter-group values;
        the schedule's shape (warmup, kind, length) comes from the recipe given now. With no
        change this recomputes the restored values exactly (same formula, same numbers).
        """
        opt = self.config.optim
        for group in optimizer.param_groups:
            if "optim.weight_decay" in changes:
                group["weight_decay"] = opt.weight_decay
            if "optim.betas" in changes:
                group["betas"] = tuple(opt.betas)
            if "optim.lr" in changes:
                group["initial_lr"] = opt.lr
        if "optim.lr" in changes:
            scheduler.base_lrs = [opt.lr for _ in optimizer.param_groups]
        if any(
            name in changes
            for name in ("optim.lr", "optim.max_steps", "optim.warmup_steps", "optim.scheduler")
        ):
            rates = [
                base * f(step)
                for base, f in zip(scheduler.base_lrs, scheduler.lr_lambdas, strict=True)
            ]
            for group, rate in zip(optimizer.param_groups, rates, strict=True):
                group["lr"] = rate
            scheduler._last_lr = rates
            self._notice(
                f"resume: the learning-rate schedule is rebuilt from step {step} (lr now {rates[0]:.3g})"
            )

    def _header(self, step: int) -> str:
        """What this run is, printed once before its first step."""
        cfg, acc = self.config, self.accelerator
        params = sum(p.numel() for p in self.unwrapped.parameters())
        data = cfg.data.task or cfg.data.corpus or cfg.data.train_file
        start = f"resuming at step {step}" if step else "from step 0"
        adapter = f"\n{parameter_counts(self.unwrapped).summary()}" if self.adapted else ""
        objective = cfg.objective
        if objective == "grpo":
            r = cfg.rl
            objective = (
                f"grpo ({r.estimator} estimator, {r.group_size} rollouts per prompt, "
                f"{r.inner_steps} update(s) per rollout batch)"
            )
        return (
            f"dlm train: {objective} on {data}, {params:,} parameters, "
            f"{len(self.train_data)} sequences of {self.train_data.seq_len} tokens, "
            f"{cfg.optim.max_steps} steps ({start}) on {acc.num_processes} process(es), "
            f"{acc.device.type}; recipe and checkpoints in {self.output_dir}; "
            f"curves: tensorboard --logdir {self.output_dir / 'logs'}{adapter}"
        )

    def _evaluate(self, step: int) -> dict[str, float]:
        """Run every evaluator on the main process (the others wait) and log ``eval/<name>``."""
        acc, values = self.accelerator, {}
        if acc.is_main_process:
            model = self.unwrapped
            with forked_rng(acc.device), eval_mode(model), torch.no_grad():
                for evaluator in self.evaluators:
                    values.update(evaluator(model, step))
            acc.log({f"eval/{name}": value for name, value in values.items()}, step=step)
            shown = ", ".join(
                f"{name} {value:.2%}" if "accuracy" in name else f"{name} {value:.4f}"
                for name, value in values.items()
                if "/" not in name  # per-bucket values go to TensorBoard only
            )
            tqdm.write(f"step {step}: held-out {shown}")
        acc.wait_for_everyone()
        return values

    # ------------------------------------------------------------------ loop
    def fit(self) -> TrainResult:
        cfg, acc = self.config, self.accelerator
        opt_cfg = cfg.optim
        set_seed(cfg.seed)
        if acc.is_main_process:
            ckpt.recover(self.output_dir, self._notice)
            if cfg.resume not in (None, "latest") and Path(cfg.resume).parent.is_dir():
                ckpt.recover(Path(cfg.resume).parent, self._notice)  # a run in another folder
        acc.wait_for_everyone()
        resume = resolve_resume(cfg, num_processes=acc.num_processes)
        changes = resume.changes if resume is not None else {}
        if cfg.resume == "latest" and resume is None:
            self._notice(
                f"resume=latest: no complete checkpoint in {self.output_dir} yet; starting at step 0"
            )
        for name, (old, new) in changes.items():
            if name not in ("resume", "output_dir", "progress"):
                self._notice(f"resume: {name} changed from {old!r} to {new!r}")

        optimizer = torch.optim.AdamW(
            [p for p in self.model.parameters() if p.requires_grad],  # adapter runs: the adapter
            lr=opt_cfg.lr,
            betas=tuple(opt_cfg.betas),
            weight_decay=opt_cfg.weight_decay,
        )
        scheduler = get_scheduler(
            _SCHEDULERS[opt_cfg.scheduler],
            optimizer,
            num_warmup_steps=opt_cfg.warmup_steps,
            num_training_steps=opt_cfg.max_steps,
        )
        self.model, optimizer = acc.prepare(self.model, optimizer)
        acc.register_for_checkpointing(scheduler)
        if self.adapted:
            acc.register_save_state_pre_hook(_trainable_only)
            acc.register_load_state_pre_hook(check_trainable_state)
        order = BatchOrder(
            len(self.train_data),
            opt_cfg.batch_size,
            seed=cfg.seed,
            num_processes=acc.num_processes,
            process_index=acc.process_index,
        )
        step = 0
        last_ckpt = None
        if resume is not None:
            self._load_state(resume.path)
            step = resume.step
            order.load_state_dict(resume.state["data"])
            last_ckpt = resume.path
            self._apply_resumed_optimizer(optimizer, scheduler, step, changes)
        # only now, with the resume validated and loaded, is the run directory written
        self.output_dir.mkdir(parents=True, exist_ok=True)
        if acc.is_main_process:
            ckpt.supersede_later(self.output_dir, step, self._notice)
            self._write_config(self.output_dir)
        acc.wait_for_everyone()
        acc.init_trackers("logs")
        if acc.is_main_process and self.header:
            print(self._header(step), flush=True)

        tokens_per_step = (
            opt_cfg.batch_size * opt_cfg.grad_accum * acc.num_processes * self.train_data.seq_len
        )
        result = TrainResult(
            model_dir=self.output_dir / "model", steps=step, last_checkpoint=last_ckpt
        )
        bar = tqdm(
            total=opt_cfg.max_steps,
            initial=step,
            # None: a bar on a terminal only (a log or a pipe gets the logged lines instead)
            disable=None if cfg.progress and acc.is_main_process else True,
            desc="train",
            dynamic_ncols=True,
        )
        self.model.train()
        started = time.perf_counter()
        # an objective may use one batch for several steps (GRPO: one rollout batch per
        # rl.inner_steps updates); a resumed run starts at a multiple of it
        reuse = getattr(self.objective, "batch_reuse", 1)
        batches: list[SequenceData | None] = [None] * opt_cfg.grad_accum
        while step < opt_cfg.max_steps:
            step_start = time.perf_counter()
            loss_sum = torch.zeros((), device=acc.device)
            metrics: dict = {}
            for micro in range(opt_cfg.grad_accum):
                if step % reuse == 0 or batches[micro] is None:
                    batches[micro] = self._batch(order, step, micro)
                batch = batches[micro]
                last_micro = micro == opt_cfg.grad_accum - 1
                with contextlib.nullcontext() if last_micro else acc.no_sync(self.model):
                    out = self.objective(self.model, batch, step)
                    acc.backward(out.loss / opt_cfg.grad_accum)
                loss_sum += out.loss.detach().float()
                metrics = out.metrics
            step_loss = float(loss_sum) / opt_cfg.grad_accum  # the one host sync of a step
            if not math.isfinite(step_loss):
                raise TrainingDivergedError(
                    f"the loss became {step_loss} at step {step + 1}; training stopped before the update and "
                    f"nothing more was written. Last good checkpoint: "
                    f"{last_ckpt or 'none yet (set save_every to keep some)'}. "
                    "Lower optim.lr, keep optim.max_grad_norm set, or train in bf16 rather than fp16."
                )
            grad_norm = None
            if opt_cfg.max_grad_norm is not None:
                grad_norm = acc.clip_grad_norm_(self.model.parameters(), opt_cfg.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            fault_point("train.step")
            result.losses.append(step_loss)
            result.tokens += tokens_per_step
            elapsed = time.perf_counter() - step_start
            bar.update(1)
            if step % cfg.log_every == 0 or step == opt_cfg.max_steps:
                # metrics stay tensors until a log step: no extra host syncs in the loop
                logged = {
                    "loss": step_loss,
                    "lr": scheduler.get_last_lr()[0],
                    "tokens_per_s": tokens_per_step / max(elapsed, 1e-9),
                    **{k: float(v) for k, v in metrics.items()},
                }
                if grad_norm is not None:
                    logged["grad_norm"] = float(grad_norm)
                acc.log(logged, step=step)
                bar.set_postfix(loss=f"{step_loss:.4f}", tok_s=f"{logged['tokens_per_s']:.0f}")
                for callback in self.callbacks:
                    callback(step, logged)
            if self.evaluators and (step % cfg.eval_every == 0 or step == opt_cfg.max_steps):
                result.evals.append((step, self._evaluate(step)))
            if cfg.save_every and step % cfg.save_every == 0 and step < opt_cfg.max_steps:
                last_ckpt = self._save_checkpoint(step, order)
        bar.close()
        result.train_seconds = time.perf_counter() - started
        result.steps = step
        if cfg.save_every and not (
            last_ckpt is not None and last_ckpt == ckpt.checkpoint_dir(self.output_dir, step)
        ):
            last_ckpt = self._save_checkpoint(step, order)
        result.last_checkpoint = last_ckpt
        result.model_dir = self._save_model()
        acc.end_training()
        return result


# ---------------------------------------------------------------------- adapter checkpoints
def _trainable_names(model: torch.nn.Module) -> set[str]:
    return {name for name, p in model.named_parameters() if p.requires_grad}


def _trainable_shapes(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {name: tuple(p.shape) for name, p in model.named_parameters() if p.requires_grad}


def _trainable_only(models, weights, output_dir) -> None:
    """accelerate save hook: keep only the trainable (adapter) tensors of each model's state."""
    for i, model in enumerate(models):
        keep = _trainable_names(model)
        weights[i] = {k: v for k, v in weights[i].items() if k in keep}


def check_trainable_state(models, input_dir) -> None:
    """accelerate load hook: the saved state must hold exactly the trainable tensors, in their
    shapes (the load itself is non-strict, since the frozen base is not in it)."""
    from safetensors import safe_open

    for i, model in enumerate(models):
        path = Path(input_dir) / ("model.safetensors" if i == 0 else f"model_{i}.safetensors")
        if not path.is_file():
            continue  # accelerate reports the missing file itself
        with safe_open(str(path), framework="pt") as f:
            saved = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
        expected = _trainable_shapes(model)
        if saved != expected:
            odd = sorted(set(expected) ^ set(saved)) or sorted(
                k for k in expected if saved[k] != expected[k]
            )
            raise ckpt.CheckpointError(
                f"{input_dir} does not hold this run's adapter ({len(saved)} tensors saved, "
                f"{len(expected)} trainable; e.g. {odd[0]} differs): the recipe's peft or model "
                "section changed since it was written"
            )
