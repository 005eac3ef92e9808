"""Training: typed config, objectives (pretrain, sft, ar), the accelerate-based Trainer, checkpoints."""

from .config import (
    DataSection,
    DiffusionSection,
    ModelSection,
    OptimSection,
    TrainConfig,
    load_train_config,
    recorded_recipe,
    recorded_task,
)
from .heldout import Evaluator, HeldOutLoss
from .objectives import AutoregressiveObjective, DiffusionObjective, StepLoss, build_objective
from .setup import Prepared, build_model, prepare_data, record_task_defaults, train
from .trainer import HELDOUT_NAME, Trainer, TrainingDivergedError, TrainResult

__all__ = [
    "HELDOUT_NAME",
    "AutoregressiveObjective",
    "DataSection",
    "DiffusionObjective",
    "DiffusionSection",
    "Evaluator",
    "HeldOutLoss",
    "ModelSection",
    "OptimSection",
    "Prepared",
    "StepLoss",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "TrainingDivergedError",
    "build_model",
    "build_objective",
    "load_train_config",
    "recorded_recipe",
    "recorded_task",
    "prepare_data",
    "record_task_defaults",
    "train",
]
