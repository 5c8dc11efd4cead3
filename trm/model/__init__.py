"""The model family: TRM (and its ablations), HRM and the direct-prediction baseline."""

from trm.config import ModelConfig
from trm.model.checkpoint import load_model, load_official, save_model
from trm.model.loss import act_loss, softmax_cross_entropy, stablemax_cross_entropy
from trm.model.trm import TRM, Carry, StepOutput

__all__ = [
    "TRM",
    "Carry",
    "ModelConfig",
    "StepOutput",
    "act_loss",
    "load_model",
    "load_official",
    "save_model",
    "softmax_cross_entropy",
    "stablemax_cross_entropy",
]
