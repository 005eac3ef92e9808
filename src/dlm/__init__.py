"""dlm: discrete (masked) diffusion language models — train, adapt, sample, evaluate."""

__version__ = "0.1.0"
