"""``PRoLoRALinear``: a PRoLoRA adapter (Wang et al., ACL 2024) around one frozen linear layer.

The base layer is an ``nn.Linear`` (weight ``d_out x d_in``, y = x W^T + b) or transformers'
GPT-2 ``Conv1D`` (weight ``d_in x d_out``, y = x W + b; the fused ``c_attn`` included). With
``s = r - u`` shared ranks, the trainable parameters are

* ``lora_A``      ``s x ceil(d_in/m)``   the shared chunk of A,
* ``lora_B``      ``ceil(d_out/n) x s``  the shared chunk of B,
* ``lora_A_vec``  ``u x d_in``           the unshared ranks of A (plain LoRA rows),
* ``lora_B_vec``  ``d_out x u``          the unshared ranks of B,

``u (d_in + d_out) + s (ceil(d_in/m) + ceil(d_out/n))`` in all, against LoRA's
``r (d_in + d_out)``.

**Materialising A and B.** The full ``A`` (``r x d_in``) stacks the shared rows over the
unshared ones (shared first, as the reference code). Its shared rows are ``m`` copies of
``A0 = lora_A`` side by side along ``d_in``, truncated to ``d_in``; copy ``k`` is ``A0`` rolled
along the rank axis, row ``i`` of copy ``k`` being ``A0[(i + k s_A) mod s]`` with
``s_A = max(floor(s/m), 1)``. Likewise the full ``B`` (``d_out x r``): ``n`` copies of
``B0 = lora_B`` stacked along ``d_out`` and truncated, column ``i`` of copy ``k`` being
``B0[:, (i + k s_B) mod s]`` with ``s_B = max(floor(s/n), 1)``, then the unshared columns.
``rotation=False`` drops the roll (every copy is ``A0`` / ``B0`` itself).

**Sign convention.** Let ``R`` be the ``s x s`` cyclic shift with ``(R X)[i] = X[(i + 1) mod s]``,
i.e. ``R[i, (i + 1) mod s] = 1``. Copy ``j`` of A is ``R^(j s_A) A0``; copy ``i`` of B is
``B0 (R^(i s_B))^T = B0 R^(-i s_B)`` (R is a permutation, so its transpose is its inverse).
Block ``(i, j)`` of the shared update, rows of chunk ``i`` of ``d_out`` and columns of chunk
``j`` of ``d_in`` (truncated at the edges), is therefore

    B0 R^(-i s_B) R^(j s_A) A0 = B0 R^((j s_A - i s_B) mod s) A0,

and the whole update (``nn.Linear`` layout) is ``dW = (alpha / r) B A``: the shared blocks above
plus ``lora_B_vec @ lora_A_vec`` everywhere.

**Forward.** ``base(x) + (alpha / r) * (dropout(x) @ A^T) @ B^T`` with ``A`` and ``B``
materialised each call (rank ``r``, a gather of ``r (d_in + d_out)`` numbers); the ``d_out x d_in``
update is never formed while training (``benchmarks/prolora_forward.py`` measures the three
ways to compute it).

**Initialisation.** ``A0`` and ``A_vec`` are Kaiming-uniform with ``a = sqrt(5)``, i.e. uniform in
``[-1/sqrt(fan), 1/sqrt(fan)]`` with ``fan = d_in`` (``rectified``, the paper's choice) or the
chunk width ``ceil(d_in/m)`` (``naive``); ``B0`` and ``B_vec`` start at zero, so a fresh adapter
changes nothing.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers.pytorch_utils import Conv1D

from .settings import PeftSettings

__all__ = ["PRoLoRALinear", "is_linear", "linear_shape", "rolled_index", "init_bound"]


def is_linear(module: nn.Module) -> bool:
    """Whether ``module`` is a layer PRoLoRA and LoRA can adapt (``nn.Linear`` or GPT-2 ``Conv1D``)."""
    return isinstance(module, (nn.Linear, Conv1D))


def linear_shape(module: nn.Module) -> tuple[int, int]:
    """``(d_in, d_out)`` of an ``nn.Linear`` or a ``Conv1D``."""
    if isinstance(module, Conv1D):
        d_in, d_out = module.weight.shape
        return int(d_in), int(d_out)
    if isinstance(module, nn.Linear):
        return int(module.in_features), int(module.out_features)
    raise TypeError(f"{type(module).__name__} is neither nn.Linear nor Conv1D")


def rolled_index(shared: int, copies: int, rotation: bool = True) -> torch.Tensor:
    """``(copies, shared)`` rank indices: entry ``[k, i] = (i + k * step) mod shared`` with
    ``step = max(shared // copies, 1)`` (0 without rotation)."""
    if shared == 0:
        return torch.zeros(copies, 0, dtype=torch.long)
    step = max(shared // copies, 1) if rotation else 0
    ranks = torch.arange(shared)
    return (ranks.unsqueeze(0) + step * torch.arange(copies).unsqueeze(1)) % shared


def init_bound(d_in: int, m: int, init: str = "rectified") -> float:
    """The Kaiming-uniform (a = sqrt(5)) bound of A: 1/sqrt(d_in) rectified, 1/sqrt(ceil(d_in/m)) naive."""
    fan = d_in if init == "rectified" else math.ceil(d_in / m)
    return 1.0 / math.sqrt(fan)


class PRoLoRALinear(nn.Module):
    """A frozen ``nn.Linear`` / ``Conv1D`` plus a PRoLoRA update (see the module docstring)."""

    def __init__(self, base: nn.Module, settings: PeftSettings) -> None:
        super().__init__()
        if not is_linear(base):
            raise TypeError(f"PRoLoRALinear wraps nn.Linear or Conv1D, not {type(base).__name__}")
        self.base_layer = base
        for param in base.parameters():
            param.requires_grad_(False)
        self.d_in, self.d_out = linear_shape(base)
        self.r, self.u, self.m, self.n = settings.r, settings.u, settings.m, settings.n
        self.shared = self.r - self.u
        self.rotation = settings.rotation
        self.init = settings.init
        self.scale = settings.alpha / settings.r
        self.chunk_in = math.ceil(self.d_in / self.m)
        self.chunk_out = math.ceil(self.d_out / self.n)
        weight = base.weight
        kw = {"dtype": weight.dtype, "device": weight.device}
        self.lora_A = nn.Parameter(torch.zeros(self.shared, self.chunk_in, **kw))
        self.lora_B = nn.Parameter(torch.zeros(self.chunk_out, self.shared, **kw))
        self.lora_A_vec = nn.Parameter(torch.zeros(self.u, self.d_in, **kw))
        self.lora_B_vec = nn.Parameter(torch.zeros(self.d_out, self.u, **kw))
        self.register_buffer(
            "index_A",
            rolled_index(self.shared, self.m, self.rotation).to(weight.device),
            persistent=False,
        )
        self.register_buffer(
            "index_B",
            rolled_index(self.shared, self.n, self.rotation).to(weight.device),
            persistent=False,
        )
        self.dropout = nn.Dropout(settings.dropout) if settings.dropout > 0 else nn.Identity()
        self.disabled = False  # True: the base layer alone (``dlm.peft.adapter_disabled``)
        self.reset_parameters()

    @property
    def is_conv1d(self) -> bool:
        return isinstance(self.base_layer, Conv1D)

    @property
    def weight(self) -> torch.Tensor:
        """The frozen base weight (code that reads ``layer.weight`` keeps working)."""
        return self.base_layer.weight

    @property
    def bias(self) -> torch.Tensor | None:
        return self.base_layer.bias

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """A0 and A_vec Kaiming-uniform (bound from ``init_bound``), B0 and B_vec zero."""
        bound = init_bound(self.d_in, self.m, self.init)
        for param in (self.lora_A, self.lora_A_vec):
            if param.numel():
                param.uniform_(-bound, bound)
        self.lora_B.zero_()
        self.lora_B_vec.zero_()

    # ------------------------------------------------------------------ factors
    def full_A(self) -> torch.Tensor:
        """The materialised ``r x d_in`` A: rolled copies of ``lora_A``, then ``lora_A_vec``."""
        # lora_A[index_A] is (m, s, chunk_in): copy k's rows; lay the copies side by side
        copies = self.lora_A[self.index_A].permute(1, 0, 2)
        copies = copies.reshape(self.shared, self.m * self.chunk_in)
        return torch.cat([copies[:, : self.d_in], self.lora_A_vec], dim=0)

    def full_B(self) -> torch.Tensor:
        """The materialised ``d_out x r`` B: rolled copies of ``lora_B``, then ``lora_B_vec``."""
        # lora_B[:, index_B] is (chunk_out, n, s): copy k's columns; stack the copies along d_out
        copies = self.lora_B[:, self.index_B].permute(1, 0, 2)
        copies = copies.reshape(self.n * self.chunk_out, self.shared)
        return torch.cat([copies[: self.d_out], self.lora_B_vec], dim=1)

    def lora_factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(A, B)``, ``r x d_in`` and ``d_out x r``, without the ``alpha / r`` scale: a stock
        LoRA adapter of the same ``r`` and ``alpha`` holding them computes this update."""
        return self.full_A(), self.full_B()

    def delta_weight(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """``(alpha / r) B A`` in the base layer's weight layout (``d_in x d_out`` for Conv1D),
        computed in float32 and returned in ``dtype`` (default: the base weight's)."""
        a, b = self.lora_factors()
        delta = (b.float() @ a.float()) * self.scale
        delta = delta.T if self.is_conv1d else delta
        return delta.to(dtype or self.base_layer.weight.dtype)

    # ------------------------------------------------------------------ use
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        result = self.base_layer(x)
        if self.disabled:
            return result
        a, b = self.full_A(), self.full_B()
        update = F.linear(F.linear(self.dropout(x).to(a.dtype), a), b)
        return result + (update * self.scale).to(result.dtype)

    @torch.no_grad()
    def merge(self) -> nn.Module:
        """A copy of the base layer holding ``W + dW`` (summed in float32): the plain layer that
        computes what this adapter does in eval mode."""
        merged = copy.deepcopy(self.base_layer)
        weight = merged.weight
        weight.copy_((weight.float() + self.delta_weight(torch.float32)).to(weight.dtype))
        return merged

    def extra_repr(self) -> str:
        return (
            f"d_in={self.d_in}, d_out={self.d_out}, r={self.r}, u={self.u}, m={self.m}, "
            f"n={self.n}, rotation={self.rotation}, scale={self.scale:g}"
        )
