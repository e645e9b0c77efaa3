"""Training: the engine-agnostic loop (:mod:`.trainer`), optimizers and learning-rate
schedules, checkpoints that resume exactly."""
from .trainer import Interrupted, Optimizer, Trainer, evaluate, resolve_learning_rates

__all__ = ["Trainer", "Interrupted", "Optimizer", "evaluate", "resolve_learning_rates"]
