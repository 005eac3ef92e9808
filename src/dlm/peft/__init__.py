"""Parameter-efficient fine-tuning of a ``DiffusionLM``: PRoLoRA and LoRA adapters.

* ``PeftSettings`` (``settings.py``): the method (``lora`` | ``prolora``), rank, PRoLoRA's
  sharing knobs and the target layers; a recipe's ``peft:`` section.
* ``PRoLoRALinear`` (``prolora.py``): PRoLoRA around one frozen ``nn.Linear`` or GPT-2
  ``Conv1D``, with exact merge and its rank-r LoRA factors.
* ``apply.py``: ``add_adapter`` (LoRA through stock ``peft``, PRoLoRA through ``PRoLoRALinear``),
  ``trainable_parameters``, ``parameter_counts``, ``save_adapter`` / ``load_adapter``,
  ``merge_adapter`` and ``export_peft`` (a standard peft LoRA folder).

Typical use::

    from dlm.peft import PeftSettings, add_adapter, trainable_parameters, parameter_counts

    add_adapter(model, PeftSettings(method="prolora", r=8, m=2, n=2))
    print(parameter_counts(model).summary())
    optimizer = torch.optim.AdamW(trainable_parameters(model), lr=1e-3)
"""

from .apply import (
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    PEFT_WEIGHTS,
    AdapterError,
    MatrixCount,
    ParameterCounts,
    adapter_disabled,
    adapter_modules,
    adapter_settings,
    adapter_state_dict,
    add_adapter,
    export_peft,
    linear_layers,
    load_adapter,
    match_targets,
    matrix_parameters,
    merge_adapter,
    parameter_counts,
    read_adapter_config,
    save_adapter,
    trainable_parameters,
)
from .prolora import PRoLoRALinear, init_bound, is_linear, linear_shape, rolled_index
from .settings import PeftSettings, PeftSettingsError, default_targets

__all__ = [
    "ADAPTER_CONFIG",
    "ADAPTER_WEIGHTS",
    "PEFT_WEIGHTS",
    "AdapterError",
    "MatrixCount",
    "PRoLoRALinear",
    "ParameterCounts",
    "PeftSettings",
    "PeftSettingsError",
    "add_adapter",
    "adapter_disabled",
    "adapter_modules",
    "adapter_settings",
    "adapter_state_dict",
    "default_targets",
    "export_peft",
    "init_bound",
    "is_linear",
    "linear_layers",
    "linear_shape",
    "load_adapter",
    "match_targets",
    "matrix_parameters",
    "merge_adapter",
    "parameter_counts",
    "read_adapter_config",
    "rolled_index",
    "save_adapter",
    "trainable_parameters",
]
