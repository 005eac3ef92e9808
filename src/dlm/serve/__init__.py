"""Serving: ``dlm serve``, an OpenAI-compatible server with step-level continuous batching.

``Scheduler`` owns one running batch that requests join and leave between steps;
``create_app`` is the FastAPI app over it (OpenAI completions and chat, streaming of the
canvas, metrics, the page); ``serve`` runs it with uvicorn.
"""

from .app import ServeConfig, create_app
from .scheduler import Cancelled, QueueFull, Row, RowResult, Scheduler, ShuttingDown
from .text import FinalText

__all__ = [
    "Cancelled",
    "FinalText",
    "QueueFull",
    "Row",
    "RowResult",
    "Scheduler",
    "ServeConfig",
    "ShuttingDown",
    "create_app",
]
