"""The sampler against a plain per-row reference loop, plus its invariants."""

import pytest
import torch

from dlm.errors import SettingsError
from dlm.sampling import commit_counts, filter_logits, generate, select_top_k, time_grid
from helpers import EOS_ID, MASK_ID, PAD_ID, tiny_model


@torch.no_grad()
def reference_generate(model, prompt, n_new, steps, policy):
    """One row, temperature 0, written as plainly as possible (no EOS handling)."""
    x = torch.cat([prompt, torch.full((n_new,), MASK_ID)]).unsqueeze(0)
    p0 = prompt.shape[0]
    n_masked = n_new
    for i in range(steps):
        masked = [j for j in range(p0, p0 + n_new) if x[0, j] == MASK_ID]
        if not masked:
            break
        logits = model(x)[0].clone()
        logits[:, MASK_ID] = float("-inf")
        probs = torch.softmax(logits.float(), -1)
        k = n_masked // steps + (1 if i < n_masked % steps else 0)
        if i == steps - 1:
            k = len(masked)
        scored = []
        for j in masked:
            p = probs[j]
            top = torch.topk(p, 2).values
            score = {
                "confidence": top[0],
                "margin": top[0] - top[1],
                "entropy": (p * torch.log(p.clamp_min(1e-30))).sum(),
            }[policy]
            scored.append((float(score), j))
        scored.sort(key=lambda s: -s[0])
        for _, j in scored[:k]:
            x[0, j] = int(probs[j].argmax())
    return x[0, p0:]


@pytest.mark.parametrize("policy", ["confidence", "margin", "entropy"])
@pytest.mark.parametrize("steps", [8, 3])
def test_matches_plain_reference_loop(policy, steps):
    model = tiny_model("llama", vocab=40)
    model.config.eos_token_id = None  # compare the pure loop, no early stop
    prompts = torch.randint(5, 40, (3, 5), generator=torch.Generator().manual_seed(1))
    out = generate(model, prompts, max_new_tokens=8, steps=steps, policy=policy)
    for row in range(3):
        ref = reference_generate(model, prompts[row], 8, steps, policy)
        assert torch.equal(out.generated[row], ref), (policy, steps, row)


@torch.no_grad()
def reference_remask(model, prompt, n_new, steps, hold=0):
    """MGDM's easy-first loop with carry-over: committed tokens keep their commit confidence;
    ``hold``: the first positions are masked again after every step but the last (DiffuSearch)."""
    x = torch.cat([prompt, torch.full((n_new,), MASK_ID)]).unsqueeze(0)
    p0 = prompt.shape[0]
    kept = torch.zeros(n_new)
    for i in range(steps):
        logits = model(x)[0, p0:].clone()
        logits[:, MASK_ID] = float("-inf")
        logp = torch.log_softmax(logits, -1)
        new_conf, pred = logp.max(-1)
        masked = x[0, p0:] == MASK_ID
        x[0, p0:] = torch.where(masked, pred, x[0, p0:])
        kept = torch.where(masked, new_conf, kept)
        conf = kept
        t = steps - 1 - i
        k = int(n_new * t / steps)
        if k > 0:
            x[0, p0 + torch.argsort(conf)[:k]] = MASK_ID
        if t > 0 and hold:
            x[0, p0 : p0 + hold] = MASK_ID
    return x[0, p0:]


def test_remask_matches_mgdm_reference_without_noise():
    model = tiny_model("gpt2")
    model.config.eos_token_id = None
    prompts = torch.randint(5, 40, (2, 4), generator=torch.Generator().manual_seed(2))
    out = generate(model, prompts, max_new_tokens=10, steps=5, policy="remask", remask_noise=0.0)
    assert out.nfe == 5
    for row in range(2):
        assert torch.equal(out.generated[row], reference_remask(model, prompts[row], 10, 5))


def test_remask_hold_keeps_the_first_positions_masked_until_the_last_step():
    model = tiny_model("gpt2")
    model.config.eos_token_id = None
    prompts = torch.randint(5, 40, (2, 4), generator=torch.Generator().manual_seed(3))
    out = generate(
        model, prompts, max_new_tokens=10, steps=5, policy="remask", remask_noise=0.0,
        remask_hold=1, output_history=True,
    )  # fmt: skip
    for h in out.history[1:-1]:  # after every step but the last
        assert bool((h[:, 4] == MASK_ID).all())
    assert bool((out.generated != MASK_ID).all())
    for row in range(2):
        expected = reference_remask(model, prompts[row], 10, 5, hold=1)
        assert torch.equal(out.generated[row], expected)
    with pytest.raises(SettingsError, match="remask_hold"):
        generate(model, prompts, max_new_tokens=10, policy="confidence", remask_hold=1)


def test_one_token_per_step_when_steps_equal_length_and_history():
    model = tiny_model()
    model.config.eos_token_id = None
    out = generate(
        model, torch.randint(5, 40, (2, 3)), max_new_tokens=6, steps=6, output_history=True
    )
    assert out.nfe == 6 and len(out.history) == 7
    masks = [int((h[:, 3:] == MASK_ID).sum(1)[0]) for h in out.history]
    assert masks == [6, 5, 4, 3, 2, 1, 0]


def test_commit_counts_split_evenly_per_row():
    counts = commit_counts(torch.tensor([16, 5, 0]), 4)
    assert counts.tolist() == [[4, 4, 4, 4], [2, 1, 1, 1], [0, 0, 0, 0]]
    assert commit_counts(torch.tensor([16]), 16).tolist() == [[1] * 16]


def test_time_grid_endpoints():
    grid = time_grid(4, eps=1e-3)
    assert grid[0] == 1.0 and grid[-1] == pytest.approx(1e-3) and len(grid) == 5


def test_select_top_k_per_row_counts():
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.7], [0.3, 0.2, 0.8, 0.1]])
    eligible = torch.tensor([[True, True, False, True], [True, True, True, True]])
    chosen = select_top_k(scores, eligible, torch.tensor([2, 1]))
    assert chosen.tolist() == [[False, True, False, True], [False, False, True, False]]
    none = select_top_k(scores, eligible, torch.tensor([0, 0]))
    assert not none.any()
    sampled = select_top_k(
        scores,
        eligible,
        torch.tensor([3, 4]),
        temperature=1.0,
        generator=torch.Generator().manual_seed(0),
    )
    assert sampled.sum(1).tolist() == [3, 4] and not (sampled & ~eligible).any()


def test_ragged_prompts_give_each_row_its_solo_result():
    model = tiny_model("qwen2")
    model.config.eos_token_id = None
    gen = torch.Generator().manual_seed(4)
    a, b = torch.randint(5, 40, (1, 6), generator=gen), torch.randint(5, 40, (1, 3), generator=gen)
    ids = torch.cat([a, torch.cat([b, torch.zeros(1, 3, dtype=torch.long)], 1)])  # right-padded row
    mask = torch.tensor([[1] * 6, [1] * 3 + [0] * 3])
    batch = generate(model, ids, mask, max_new_tokens=7, steps=7)
    solo_a = generate(model, a, max_new_tokens=7, steps=7)
    solo_b = generate(model, b, max_new_tokens=7, steps=7)
    assert torch.equal(batch.generated[0], solo_a.generated[0])
    assert torch.equal(batch.generated[1], solo_b.generated[0])
    assert batch.sequences[1, :3].tolist() == [PAD_ID] * 3  # left-padded prompt block


def test_infilling_keeps_fixed_tokens_and_fills_only_masks():
    model = tiny_model()
    fixed = torch.full((2, 8), -1)
    fixed[:, 0] = 7
    fixed[:, 5:] = torch.tensor([11, 12, 13])
    for policy in ["random", "confidence", "remask"]:
        out = generate(
            model,
            torch.randint(5, 40, (2, 4)),
            max_new_tokens=8,
            fixed=fixed,
            policy=policy,
            seed=0,
        )
        region = out.generated
        assert torch.equal(region[:, 0], torch.tensor([7, 7]))
        assert torch.equal(region[:, 5:], fixed[:, 5:])
        assert not (region == MASK_ID).any()


def test_stops_at_eos_and_pads_after_it():
    model = tiny_model()
    # pin EOS at position 2 of the region: everything after must become padding
    fixed = torch.full((1, 6), -1)
    fixed[0, 2] = EOS_ID
    out = generate(model, torch.randint(5, 40, (1, 3)), max_new_tokens=6, steps=6, fixed=fixed)
    region = out.generated[0].tolist()
    assert region[2] == EOS_ID and region[3:] == [PAD_ID] * 3
    assert MASK_ID not in region
    assert out.nfe == 2  # the row is done once the two masks before EOS are committed
    assert out.generated_tokens == 3


def test_random_policy_reveals_everything_and_is_seeded():
    model = tiny_model()
    prompts = torch.randint(5, 40, (3, 4))
    a = generate(
        model, prompts, max_new_tokens=8, steps=4, policy="random", temperature=1.0, seed=3
    )
    b = generate(
        model, prompts, max_new_tokens=8, steps=4, policy="random", temperature=1.0, seed=3
    )
    assert torch.equal(a.sequences, b.sequences)
    assert not (a.generated == MASK_ID).any()


def test_random_policy_reveal_rate_follows_schedule():
    model = tiny_model()
    model.config.eos_token_id = None
    out = generate(
        model,
        torch.randint(5, 40, (64, 2)),
        max_new_tokens=40,
        steps=4,
        policy="random",
        seed=0,
        output_history=True,
    )
    still = (out.history[1][:, 2:] == MASK_ID).float().mean().item()
    # first step reveals with probability 1 - s/t = 1 - 0.75025
    assert still == pytest.approx(0.75025, abs=0.03)


def test_filter_logits_top_k_and_top_p():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    k2 = filter_logits(logits, 0.0, None, 2)
    assert torch.isinf(k2[0, 2:]).all() and torch.isfinite(k2[0, :2]).all()
    p = filter_logits(logits, 0.0, 0.7, None)
    assert torch.isfinite(p[0, :2]).all() and torch.isinf(p[0, 2:]).all()


def test_prompt_longer_than_positions_is_a_clear_error():
    model = tiny_model(max_positions=16)
    with pytest.raises(
        ValueError,
        match=r"prompt \(10 tokens\) \+ max_new_tokens \(8\) = 18 exceeds the model's 16 positions",
    ):
        generate(model, torch.randint(5, 40, (1, 10)), max_new_tokens=8)


def test_autoregressive_model_decodes_greedily_left_to_right():
    model = tiny_model(attention="causal")
    model.config.eos_token_id = None
    prompt = torch.randint(5, 40, (1, 4))
    out = generate(model, prompt, max_new_tokens=5)
    x = prompt.clone()
    for _ in range(5):
        nxt = model(torch.cat([x, torch.zeros(1, 1, dtype=torch.long)], 1))[:, -1].argmax(
            -1, keepdim=True
        )
        x = torch.cat([x, nxt], 1)
    assert torch.equal(out.generated, x[:, 4:])


class _Forwards:
    """Counts the backbone's forward passes."""

    def __init__(self, model):
        self.count = 0
        model.backbone.register_forward_pre_hook(self._hook)

    def _hook(self, *_):
        self.count += 1


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"input_ids": [[5, 40, 6]]}, r"^input_ids holds id 40, outside the model's vocabulary: ids must be in \[0, 40\)$"),
        ({"input_ids": [[5, -1, 6]]}, r"^input_ids holds id -1, outside the model's vocabulary: ids must be in \[0, 40\)$"),
        ({"fixed": [[-1, 57, -1, -1]]}, r"^fixed holds id 57, outside the model's vocabulary: pinned ids must be in \[0, 40\) \(a negative id marks a position the sampler fills\)$"),
        ({"fixed": [[-1, MASK_ID, -1, -1]]}, r"^fixed pins the mask id \d+, which would leave \[MASK\] in the output"),
    ],
)
@pytest.mark.parametrize("entry", ["generate", "stream"])
def test_ids_outside_the_vocabulary_are_refused_before_any_forward(arguments, message, entry):
    from dlm.errors import DlmUserError
    from dlm.sampling import stream

    model = tiny_model()
    forwards = _Forwards(model)
    ids = torch.tensor(arguments.get("input_ids", [[5, 6, 7]]))
    fixed = torch.tensor(arguments["fixed"]) if "fixed" in arguments else None
    with pytest.raises(DlmUserError, match=message):
        if entry == "generate":
            generate(model, ids, fixed=fixed, max_new_tokens=4)
        else:
            next(iter(stream(model, ids, fixed=fixed, max_new_tokens=4)))
    assert forwards.count == 0


def test_padding_positions_and_negative_pins_are_not_ids():
    model = tiny_model()
    ids = torch.tensor([[-7, 99, 5, 6], [5, 6, 7, 8]])  # row 0's first two are padding
    mask = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]])
    fixed = torch.tensor([[-1, -5, 9, -1], [-1, -1, -1, -100]])
    out = generate(model, ids, mask, fixed=fixed, max_new_tokens=4, stop_at_eos=False)
    assert out.generated[0, 2] == 9 and not (out.generated == MASK_ID).any()
    with pytest.raises(ValueError, match="input_ids holds id -7"):  # the real tokens now
        generate(model, ids, torch.ones_like(ids), max_new_tokens=4)


def test_ids_are_checked_once_per_call_not_per_step():
    from dlm.sampling import generate as gen
    from sampling.test_settings import HostReads

    model = tiny_model()
    model.config.eos_token_id = None
    ids = torch.randint(5, 40, (2, 3), generator=torch.Generator().manual_seed(0))
    counts = []
    for steps in (2, 8):
        with HostReads() as reads:
            gen(model, ids, max_new_tokens=8, steps=steps)
        counts.append(reads.count)
    assert counts[0] == counts[1]


def _eos_everywhere(model):
    """EOS is every position's proposal (the other logits still order the positions)."""
    bias = torch.zeros(40)
    bias[EOS_ID] = 8.0
    model.backbone.get_output_embeddings().register_forward_hook(lambda m, i, out: out + bias)
    return model


@pytest.mark.parametrize(
    "options",
    [
        {"steps": 8},
        {"steps": 4, "block_length": 4},
        {"threshold": 0.99, "block_length": 2, "cache": "dual"},
        {"policy": "random", "seed": 0},
        {"policy": "remask", "steps": 4},
    ],
)
def test_an_ending_eos_pads_the_gap_before_pinned_tokens_in_generate_and_stream(options):
    from dlm.sampling import stream

    model = _eos_everywhere(tiny_model())
    fixed = torch.tensor([[-1, -1, -1, 11, -1, -1, 12, 13], [-1, 14, -1, -1, -1, -1, -1, -1]])
    ids = torch.tensor([[5, 6, 7], [8, 9, 10]])
    out = generate(model, ids, fixed=fixed, max_new_tokens=8, **options)
    events = list(stream(model, ids, fixed=fixed, max_new_tokens=8, **options))
    expected = torch.tensor(
        [
            [EOS_ID, PAD_ID, PAD_ID, 11, PAD_ID, PAD_ID, 12, 13],
            [EOS_ID, 14, PAD_ID, PAD_ID, PAD_ID, PAD_ID, PAD_ID, PAD_ID],
        ]
    )
    assert torch.equal(out.generated, expected)
    assert torch.equal(events[-1].region, expected)
    assert out.generated_tokens == 2


def test_autoregressive_models_refuse_pinned_tokens():
    from dlm.errors import DlmUserError

    model = tiny_model(attention="causal")
    with pytest.raises(DlmUserError, match=r"^fixed \(pinned tokens\) needs a diffusion model"):
        generate(model, torch.tensor([[5, 6]]), fixed=torch.tensor([[-1, 7]]), max_new_tokens=2)


def test_autoregressive_models_refuse_ids_outside_the_vocabulary_too():
    from dlm.errors import DlmUserError

    model = tiny_model(attention="causal")
    with pytest.raises(DlmUserError, match=r"input_ids holds id 45, .* \[0, 40\)"):
        generate(model, torch.tensor([[5, 45]]), max_new_tokens=2)
