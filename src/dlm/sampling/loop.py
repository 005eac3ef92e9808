"""The sampling loop: ``SamplingRun`` steps a canvas to the end, yielding events when asked.

Each step: logits of the current block from the model's step forward (full or cached; reused
when the previous step committed nothing) -> optional PAD/EOS penalty -> token proposal ->
position scores -> commit rule -> write -> EOS stopping -> (event). Everything is batched over
rows: per-row counts, per-row thresholds; rows that finish early stop changing.

Host synchronisations are counted, not scattered:

* fixed schedules (``steps``) run a known number of steps per block with none per step: the
  counts come from the schedule, writes are ``torch.where``, nothing asks the device whether a
  mask is left. One read per block (is anything left to fill; the linear schedule's largest
  count per step, which also says which steps commit nothing and can reuse the last logits).
  With EOS stopping on (the default, and the model has an EOS) one flag, "every row has
  ended", is read per step so the loop can stop early: on a GPU it is read one step late, so
  the read waits only for the previous step while the next forward is already queued (the
  device never idles), but the host runs at most one step ahead; ``stop_at_eos=False`` makes
  the fixed path entirely sync-free;
* adaptive rules (``threshold``, ``factor``) read once per step whether the block is full;
* events (the committed positions and a copy of the region) are built only when the caller
  streams or keeps the history.

Each row runs its own plan (``plan_blocks``): its steps split over its own blocks with
something to fill, and its own counts in each. The loop runs block by block over the batch,
each block for the most steps any row takes in it; a row with fewer (or none: a block pinned
whole in that row) commits nothing on the others. So with deterministic settings a row's
tokens never depend on its batch mates (random draws share one stream). A block whose rows
take different numbers of steps (only when ``fixed`` pins whole blocks in some rows) uploads
its per-row plan at its start: a small host-to-device copy per such block, which on a GPU
waits for the queue like a read; uniform blocks upload nothing.

EOS stopping (``stop_at_eos``, on unless turned off): a row whose EOS has nothing masked before
it is finished; every free position after that EOS becomes padding (masks, and tokens committed
there before the row ended) while pinned positions always keep their tokens, so the masked gap
between an ending EOS and later pinned tokens becomes padding. ``finish_rows`` applies it after
every step (a row whose pinned EOS has nothing masked before it ends at the batch's first
step; ``remask`` applies it after its last step), so the loop's canvas is final: ``generate``'s
result and ``stream``'s last event hold the same region. The loop skips a block only when
nothing in it is left to fill, so a block whose rows all finished mid-way still runs its
remaining steps (they commit nothing).

``rng`` dream / llada replace the step's random draws by the reference sampler's own calls
(``_reference_step``, ``reference_rng``); they read M and k on the host. The default ``rng="dlm"``
path never enters them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import torch

from dlm.errors import SettingsError

from . import reference_rng
from .blocks import Block, plan_blocks
from .canvas import Canvas
from .commit import factor_commit, threshold_commit
from .events import StepEvent
from .policies import gumbel_like, score_positions, select_top_k
from .proposal import Proposal, penalize_end_tokens, propose
from .schedule import commit_counts, dream_count, dream_ratios, time_grid
from .settings import SamplerSettings

if TYPE_CHECKING:
    from dlm.models import DiffusionLM

__all__ = ["SamplingRun", "finish_rows"]


def finish_rows(
    region: torch.Tensor,
    masked: torch.Tensor,
    eos_token_id: int | None,
    pad_token_id: int,
    *,
    free: torch.Tensor,
) -> torch.Tensor:
    """End the rows that hold an EOS with nothing masked before it (in place on ``region``);
    returns the masks left.

    Every ``free`` position after that EOS becomes padding: the masks there, and tokens
    committed there before the row ended. Pinned positions (not ``free``) keep their tokens,
    so the masked gap between an ending EOS and later pinned tokens becomes padding and the
    pinned tokens stay. A pinned EOS ends its row like a generated one.
    """
    if eos_token_id is None:
        return masked
    is_eos = (region == eos_token_id) & ~masked
    masked_before = masked.long().cumsum(1) - masked.long()
    stop_here = is_eos & (masked_before == 0)
    after_stop = (stop_here.long().cumsum(1) - stop_here.long()) > 0
    fill = free & after_stop
    region.masked_fill_(fill, pad_token_id)
    return masked & ~fill


def first_of(eligible: torch.Tensor) -> torch.Tensor:
    """(B, n) bool: each row's leftmost eligible position."""
    return eligible & (eligible.long().cumsum(1) == 1)


class SamplingRun:
    """Iterate to sample; afterwards ``tokens`` holds the canvas and ``nfe`` the forward passes.

    ``emit`` makes the iterator yield a ``StepEvent`` per step; without it the iterator yields
    nothing and runs to the end. ``step_forward`` replaces ``model.step_forward`` (same
    arguments, same interface): a server passes one whose forward is batched with other runs'
    (``dlm.models.PooledStepForward``).
    """

    def __init__(
        self,
        model: DiffusionLM,
        canvas: Canvas,
        settings: SamplerSettings,
        generator: torch.Generator | None,
        pad_id: int,
        *,
        emit: bool = True,
        step_forward: Callable[..., Any] | None = None,
    ) -> None:
        self.model, self.canvas, self.s = model, canvas, settings
        self.make_forward = model.step_forward if step_forward is None else step_forward
        self.generator, self.pad_id, self.emit = generator, pad_id, emit
        self.tokens = canvas.tokens.clone()
        self.nfe = 0
        self.steps = settings.steps_for(canvas.new_tokens)
        cfg = model.config
        self.block_length = settings.block_length
        if cfg.attention == "block_causal":
            self.block_length = block_causal_block_length(settings, cfg.block_size)
        self.eos_id = cfg.eos_token_id if settings.stop_at_eos else None
        end_ids = sorted({i for i in (cfg.eos_token_id, cfg.pad_token_id) if i is not None})
        self.end_ids = torch.tensor(end_ids, dtype=torch.long, device=canvas.tokens.device)

    def __iter__(self) -> Iterator[StepEvent]:
        return self._remask() if self.s.policy == "remask" else self._commit()

    @property
    def sequences(self) -> torch.Tensor:
        """(B, P + N): the canvas in the usual layout (a block-aligned one mapped back)."""
        return self.canvas.standard(self.tokens, self.pad_id)

    def _event(self, step: int, block: int, committed: torch.Tensor, region: torch.Tensor):
        standard = self.canvas.standard_region
        return StepEvent(step, block, standard(committed), standard(region), self.nfe)

    # ------------------------------------------------------------------ one step's parts
    def _step_forward(self):
        """The model's step forward for this canvas, of the settings' cache kind."""
        s, canvas = self.s, self.canvas
        return self.make_forward(
            canvas.attention_mask,
            canvas.tokens.shape[1],
            prompt_length=canvas.prompt_length,
            batch=canvas.tokens.shape[0],
            cache=s.cache,
            compile=s.compile,
            window_at_block=s.block_start == "first",
        )

    def _propose(self, logits: torch.Tensor, masked_fraction: torch.Tensor | None) -> Proposal:
        """The step's proposal; ``masked_fraction`` (B,) is needed only for the EOS penalty."""
        s = self.s
        if s.eos_penalty:
            logits = penalize_end_tokens(logits, self.end_ids, s.eos_penalty, masked_fraction)
        return propose(
            logits,
            temperature=s.temperature,
            top_p=s.top_p,
            top_k=s.top_k,
            mask_token_id=self.model.config.mask_token_id,
            generator=self.generator,
        )

    def _decide(
        self,
        proposal: Proposal,
        eligible: torch.Tensor,
        count: torch.Tensor | None,
        kmax: int,
        reveal: torch.Tensor | None,
    ) -> torch.Tensor:
        """(B, n) bool: the positions this step commits (``reveal`` given: the random policy's
        pre-drawn reveals; else ``count`` None: all eligible)."""
        s, gen = self.s, self.generator
        if reveal is not None:  # the random policy: this step's share of the pre-drawn reveals
            return eligible & reveal
        if count is None:
            return eligible
        if s.policy == "random":
            scores = torch.rand(eligible.shape, generator=gen, device=eligible.device)
        else:
            scores = score_positions(s.policy, proposal)
        if s.threshold is not None:
            return threshold_commit(scores, proposal.confidence, eligible, s.threshold)
        if s.factor is not None:
            return factor_commit(proposal.confidence, eligible, s.factor)
        return select_top_k(
            scores, eligible, count, kmax=kmax, temperature=s.policy_temperature, generator=gen
        )

    def _reference_step(self, block: Block, i: int, plan, logits, eligible, masked_fraction):
        """Step i's proposal and chosen positions, drawn as the reference sampler draws them
        (``rng="dream"``: Dream's ``_sample``; ``rng="llada"``: LLaDA's / Fast-dLLM's)."""
        s, gen, rr = self.s, self.generator, reference_rng
        mask_id = self.model.config.mask_token_id
        length = self.tokens.shape[1]
        logits = penalize_end_tokens(logits, self.end_ids, s.eos_penalty, masked_fraction)
        if s.rng == "dream":
            proposal = propose(
                logits, temperature=s.temperature, top_p=s.top_p, top_k=s.top_k,
                mask_token_id=mask_id, sample=False,
            )
            plan.stale = True
            if s.policy == "random":  # origin: the reveals first, then the revealed rows' tokens
                ratio = 1.0 if i == block.steps - 1 else plan.ratios[i]
                chosen = rr.dream_reveal(eligible, ratio, gen)
                if s.temperature > 0:
                    proposal = rr.dream_tokens(proposal, chosen, gen)
                return proposal, chosen
            if s.temperature > 0:  # every masked row's token, then the positions
                proposal = rr.dream_tokens(proposal, eligible, gen)
            count, kmax, _ = plan.at(i, eligible)
            if count is None or s.policy_temperature == 0:
                return proposal, self._decide(proposal, eligible, count, kmax, None)
            counts, left = torch.stack([count, eligible.sum(1)]).tolist()  # the step's one read
            k = counts[0]
            scores = score_positions(s.policy, proposal)
            temp = s.policy_temperature
            if any(c != k for c in counts) or min(left) < k:
                # rows that differ (pinned tokens, rows ended at an EOS): Dream, whose rows all
                # hold the same masks, has no draw for them; each row draws its own count by
                # Gumbel top-k, the same law
                chosen = select_top_k(
                    scores, eligible, count, kmax=max(counts), temperature=temp, generator=gen
                )
                return proposal, chosen
            if k == 0:
                return proposal, torch.zeros_like(eligible)
            return proposal, rr.dream_positions(scores, eligible, k, temp, block.start, length, gen)
        window = rr.fed_window(s.cache, i, block.start, block.end, length)
        proposal = propose(logits, mask_token_id=mask_id)  # LLaDA ranks by the clean softmax
        if s.temperature > 0:
            discard = int(s.cache == "prefix" and i > 0)
            proposal = rr.llada_tokens(
                proposal, logits, s.temperature, window, mask_id, gen, discard=discard
            )
        count, kmax, _ = plan.at(i, eligible)
        if s.policy != "random":
            return proposal, self._decide(proposal, eligible, count, kmax, None)
        scores = rr.llada_uniform(eligible, window, gen)
        if count is None:
            return proposal, eligible
        return proposal, select_top_k(scores, eligible, count, kmax=kmax)

    # ------------------------------------------------------------------ the commit loop
    def _commit(self) -> Iterator[StepEvent]:
        """Policies that commit masked positions for good: random, confidence, margin, entropy."""
        canvas = self.canvas
        p0 = canvas.prompt_length
        region = self.tokens[:, p0:]  # a view: writes land in ``self.tokens``
        masked = canvas.free & (region == self.model.config.mask_token_id)
        free_count = masked.sum(1).clamp(min=1)
        forward = self._step_forward()
        step = 0
        aligned = canvas.alignment is not None  # a block-causal canvas: steps follow the tokens
        plan = plan_blocks(
            p0, region.shape[1], self.block_length, self.steps, canvas.free, by_tokens=aligned
        )
        for block in plan:
            lo, hi = block.start - p0, block.end - p0
            if block.steps == 0 or not bool(masked[:, lo:hi].any()):  # one read per block
                continue
            forward.start_block(block.start, block.end)
            for chosen in self._block_steps(block, forward, region, masked, free_count):
                if self.emit:  # (``chosen`` can be a view of ``masked``; its tokens are written)
                    before, chosen = region.clone(), chosen.clone()
                masked[:, lo:hi] ^= chosen  # chosen positions are always masked ones
                if self.eos_id is not None:
                    masked.copy_(
                        finish_rows(region, masked, self.eos_id, self.pad_id, free=canvas.free)
                    )
                if self.emit:  # the positions chosen, and the padding of rows that ended
                    committed = region != before
                    committed[:, lo:hi] |= chosen
                    yield self._event(step, block.index, committed, region.clone())
                step += 1

    def _block_steps(self, block: Block, forward, region, masked, free_count):
        """Yield each step's chosen (B, n) positions of ``block``, having written their tokens.

        The block runs ``block.steps`` steps; a row that takes fewer in it (``row_steps``)
        commits nothing on the steps past its own, which do not change its tokens."""
        s, p0 = self.s, self.canvas.prompt_length
        lo, hi = block.start - p0, block.end - p0
        steps = block.steps
        first_rule = s.block_start == "first"
        plan = _CountPlan(s, masked[:, lo:hi], block, first_rule, self.generator)
        done = _LaggedFlag(masked.device) if self.eos_id is not None and not s.adaptive else None
        logits, i = None, 0
        # views, made once per block: the caller's in-place mask updates show through
        eligible, window = masked[:, lo:hi], region[:, lo:hi]
        while True:
            idle = i == 1 and s.rng == "llada" and s.cache != "none" and (s.adaptive or steps > 1)
            if idle and not bool(eligible.any()):
                # Fast-dLLM's cached loop runs (and draws) once more after a block-start pass
                # that filled the block; it commits nothing
                self._reference_step(block, i, plan, logits, eligible, masked.sum(1) / free_count)
                return
            if s.adaptive and i > 0 and not bool(eligible.any()):  # the adaptive step's one read
                return
            if not s.adaptive and i > plan.last_step:  # the schedule commits nothing after it
                return
            if done is not None and done.immediate and done.read():  # all rows ended at an EOS
                return
            if logits is None or plan.stale:
                logits = forward(self.tokens)
                self.nfe += 1
            if done is not None and not done.immediate and done.read():
                return
            if s.rng != "dlm":
                fraction = masked.sum(1) / free_count
                proposal, chosen = self._reference_step(block, i, plan, logits, eligible, fraction)
            else:
                fraction = masked.sum(1) / free_count if s.eos_penalty else None
                proposal = self._propose(logits, fraction)
                if first_rule and i == 0:
                    chosen = plan.first_step(eligible)
                else:
                    count, kmax, reveal = plan.at(i, eligible)
                    chosen = self._decide(proposal, eligible, count, kmax, reveal)
            torch.where(chosen, proposal.tokens, window, out=window)  # writes into the canvas
            yield chosen  # the caller updates ``masked`` (EOS stopping included)
            if done is not None:
                done.post(~eligible.any())
            i += 1

    # ------------------------------------------------------------------ easy-first re-masking
    def _remask(self) -> Iterator[StepEvent]:
        """MGDM easy-first decoding: predict the masked positions, then re-mask the least
        confident of all free positions, committed ones included.

        A committed token keeps its token and the confidence it was committed with (carry-over,
        as the absorbing process's posterior is exact at an unmasked position). The model's
        output at an unmasked position is never read: the loss trains masked positions only,
        so an unshifted model's output there is arbitrary (it filled 6x6 Sudoku canvases with
        [EOS] when read). With a shifted model, MGDM's code does read it.

        ``remask_carry=False`` is MGDM's and DiffuSearch's own rule instead: every free
        position takes the step's argmax and the k to re-mask are ranked by the current scores
        (``rng="mgdm"`` also draws their Gumbel noise as they do). The count is theirs in both
        modes: floor of the float32 product N * t / T.

        ``remask_hold`` = N keeps the first N free positions masked after every step but the
        last (on top of the re-masked ones), as DiffuSearch's decoder does with its move.

        EOS stopping does not end a row early here (a committed token can be re-masked): the
        padding after each row's first EOS is written once, after the last step, by the rule
        of ``finish_rows`` (pinned tokens kept).
        """
        s, canvas = self.s, self.canvas
        mask_id = self.model.config.mask_token_id
        p0 = canvas.prompt_length
        free = canvas.free
        num_free = free.sum(1)
        forward = self._step_forward()  # remask takes no cache (SamplerSettings checks)
        forward.start_block(p0, p0 + free.shape[1])
        region = self.tokens[:, p0:]
        kept_confidence = torch.zeros(free.shape, device=free.device)
        held = None
        if s.remask_hold:  # DiffuSearch: the move stays masked until the future is decoded
            held = torch.zeros_like(free)
            held[:, : s.remask_hold] = True
            held &= free
        carry = s.remask_carry
        for i in range(self.steps):
            was_masked = region == mask_id
            logits = forward(self.tokens)
            self.nfe += 1
            proposal = self._propose(logits, was_masked.sum(1) / num_free.clamp(min=1))
            new = torch.where(free & was_masked if carry else free, proposal.tokens, region)
            if carry:
                kept_confidence = torch.where(
                    was_masked, proposal.confidence.float(), kept_confidence
                )
            else:
                kept_confidence = proposal.confidence.float()
            t = self.steps - 1 - i
            if t > 0:
                ratio = t / self.steps
                k = (num_free * ratio).long()  # float32 product, floored: the references' count
                score = torch.log(kept_confidence.clamp_min(1e-30))
                if s.remask_noise > 0:
                    if s.rng == "mgdm":
                        noise = reference_rng.mgdm_gumbel(
                            *self.tokens.shape, p0, self.generator, score.device
                        )
                    else:
                        noise = gumbel_like(score, self.generator)
                    score = score + s.remask_noise * ratio * noise
                remasked = select_top_k(-score, free, k, kmax=free.shape[1])
                new = new.masked_fill(remasked, mask_id)
                if held is not None:  # on top of the k re-masked, as DiffuSearch's decoder
                    new = new.masked_fill(held, mask_id)
            region.copy_(new)
            if t == 0 and self.eos_id is not None:  # nothing is masked after the last step
                finish_rows(region, torch.zeros_like(free), self.eos_id, self.pad_id, free=free)
            if self.emit:
                committed = (was_masked & (region != mask_id)) | (region != new)
                yield self._event(i, 0, committed, region.clone())


def block_causal_block_length(settings: SamplerSettings, block_size: int) -> int:
    """The sampler's block length for a block-causal model: the model's block, or sub-blocks
    that divide it (decoded left to right inside it); anything else is refused."""
    if settings.policy == "remask":
        raise SettingsError(
            "policy 'remask' re-opens committed positions anywhere; a block-causal model decodes "
            "its blocks left to right: choose policy confidence, margin, entropy or random"
        )
    length = settings.block_length
    if length is None:
        return block_size
    if block_size % length:
        raise SettingsError(
            f"block_length {length} must divide the model's block_size {block_size} (its blocks "
            f"are decoded left to right, sub-blocks inside them): give a divisor of {block_size} "
            "or leave block_length unset"
        )
    return length


class _LaggedFlag:
    """A device flag read one step late on a GPU: the read waits for the previous step only,
    while the current step's forward is already queued, so the device never idles for it (a
    batch whose rows all finished costs at most one extra forward there). On a CPU, where the
    read costs nothing, it is read before the forward (``immediate``)."""

    def __init__(self, device: torch.device) -> None:
        cuda = device.type == "cuda"
        self.immediate = not cuda
        self.host = torch.zeros((), dtype=torch.bool, pin_memory=cuda)
        self.event = torch.cuda.Event() if cuda else None
        self.posted = False

    def post(self, flag: torch.Tensor) -> None:
        self.host.copy_(flag, non_blocking=True)
        if self.event is not None:
            self.event.record()
        self.posted = True

    def read(self) -> bool:
        if not self.posted:
            return False
        if self.event is not None:
            self.event.synchronize()
        return bool(self.host)


class _CountPlan:
    """How many positions each step of one block commits, and whether its logits are stale.

    ``at(i, eligible)`` gives step i's per-row count (None: all that is left), a host bound on
    it and, for the ``random`` policy, the positions it reveals. The linear schedule's counts
    are fixed at the block start; one read gives their per-step maximum, so a step whose count
    is zero in every row is known to change nothing and the next step reuses its logits.
    Dream's counts follow the masks still left, on the device.

    Every row runs its own schedule over its own steps in the block (``Block.row_steps``, known
    on the host): its own grid, its own counts, everything left on its own last step, nothing
    after it. When every row with something to fill takes the block's steps (``uniform``, the
    case without pinned blocks) this is one schedule for the whole batch.

    ``random`` (Dream's ``origin``) reveals each masked position at step i with probability
    1 - s/t. The block draws every position's reveal step at its start (one uniform per
    position against the survival curve prod(s/t)), which is the same law as a draw per step,
    and one read tells which steps reveal anything.
    """

    def __init__(
        self,
        s: SamplerSettings,
        eligible: torch.Tensor,
        block: Block,
        first_rule: bool,
        generator: torch.Generator | None,
    ) -> None:
        steps = block.steps
        self.s, self.steps, self.width = s, steps, eligible.shape[1]
        self.uniform = block.uniform
        self.stale = True
        self.offset = offset = 1 if first_rule else 0  # the forced first step is not the schedule's
        self.last_step = steps - 1  # the last step that can commit anything
        device = eligible.device
        row_steps = None
        if not self.uniform:  # host values: a copy to the device, no read
            row_steps = torch.tensor(block.row_steps, device=device)
            self.row_last = row_steps - 1  # each row's last step in the block
            self.one_step = (row_steps == 1).unsqueeze(1)
        if s.adaptive:
            return
        left = max(steps - offset, 1)  # the schedule's steps after the forced one
        if s.schedule == "dream":
            self.ratios = dream_ratios(steps, s.eps, device)  # grid step i serves step i
            if not self.uniform:
                self.row_ratios = _per_row(  # (B, steps) float32, each row's own grid
                    block.row_steps, lambda k: dream_ratios(k, s.eps, device), steps, device
                ).float()
        else:
            n = eligible.sum(1)
            if first_rule:
                n = n - eligible.any(1).long()
            if self.uniform:
                counts = commit_counts(n, left)
            else:  # a row with one step and the forced first step has no schedule steps
                own = (row_steps - offset).clamp(min=1)
                counts = commit_counts(n, own, width=left)
                counts = counts * (row_steps > offset).long().unsqueeze(1)
            self.kmax = counts.amax(0).tolist()  # the block's one read
            self.counts = counts.t().unbind(0)  # one (B,) view per step
            active = [j for j, k in enumerate(self.kmax) if k > 0]
            if not (s.rng == "llada" and s.cache == "none"):  # LLaDA draws at every step
                self.last_step = offset + (active[-1] if active else -1)
        if s.policy == "random" and s.rng == "dlm":
            if self.uniform:
                survival = self._survival(steps, device)  # (left,) P(still masked after step j)
            else:
                survival = _per_row(
                    block.row_steps, lambda k: self._survival(k, device), left, device
                ).unsqueeze(1)  # (B, 1, left): each row's own curve
            u = 1.0 - torch.rand(  # in (0, 1]: every position reveals by the last step
                eligible.shape, generator=generator, device=device, dtype=torch.float64
            )
            self.reveal_step = (u.unsqueeze(-1) <= survival).sum(-1)  # (B, n) in [0, left)
            hits = torch.bincount(self.reveal_step[eligible], minlength=left)
            self.reveals = (hits > 0).tolist()  # the block's one read
            active = [j for j, hit in enumerate(self.reveals) if hit]
            self.last_step = offset + (active[-1] if active else -1)

        self.last_step = min(self.last_step, steps - 1)

    def _survival(self, steps: int, device) -> torch.Tensor:
        """(max(steps - offset, 1),) float64: P(a position is still masked after schedule step j)
        for a row taking ``steps`` in the block; 0 at its last step."""
        if self.s.schedule == "dream":
            reveal = dream_ratios(steps, self.s.eps, device)[self.offset :].double()
            if reveal.numel() == 0:  # one step, the forced one: it commits everything
                reveal = torch.ones(1, dtype=torch.float64, device=device)
        else:
            grid = time_grid(max(steps - self.offset, 1), self.s.eps, device=device)
            reveal = 1.0 - grid[1:] / grid[:-1]
        reveal = reveal.clone()
        reveal[-1] = 1.0
        return torch.cumprod(1.0 - reveal, 0)

    def first_step(self, eligible: torch.Tensor) -> torch.Tensor:
        """``block_start="first"``: the forced first step commits each row's first masked
        position, or all of them in a row that takes one step in the block."""
        self.stale = True
        if self.s.adaptive:
            return first_of(eligible)
        if self.uniform:
            return eligible if self.steps == 1 else first_of(eligible)
        return torch.where(self.one_step, eligible, first_of(eligible))

    def at(self, i: int, eligible: torch.Tensor):
        s = self.s
        if s.adaptive:
            self.stale = True
            return eligible.any(1).long(), self.width, None
        j = i - self.offset
        if s.policy == "random" and s.rng == "dlm":
            self.stale = self.reveals[j]
            return None, self.width, self.reveal_step == j
        if i == self.steps - 1 and self.uniform:
            self.stale = True
            return None, self.width, None
        if s.schedule == "dream":
            self.stale = True
            if self.uniform:
                return dream_count(eligible, self.ratios[i]), self.width, None
            # past a row's steps its ratio is 0; on its last step it takes everything left
            count = dream_count(eligible, self.row_ratios[:, i])
            count = torch.where(self.row_last == i, self.width, count)
            return count, self.width, None
        # linear: a row's count on its own last step is at least what it has left
        self.stale = self.kmax[j] > 0
        return self.counts[j], self.kmax[j], None


def _per_row(row_steps: tuple[int, ...], curve, width: int, device) -> torch.Tensor:
    """(B, width): each row's ``curve(k)`` for its own step count k (0 beyond its length; all
    0 for a row with no steps), one curve per distinct k."""
    kinds = sorted({k for k in row_steps if k > 0})
    table = torch.zeros(len(kinds) + 1, width, dtype=torch.float64, device=device)
    for n, k in enumerate(kinds, start=1):
        values = curve(k)
        table[n, : values.numel()] = values.double()
    index = torch.tensor([kinds.index(k) + 1 if k > 0 else 0 for k in row_steps], device=device)
    return table[index]
