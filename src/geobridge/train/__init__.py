"""Training: typed config, the engine (loop, AMP, accumulation, gradient caching, freezing,
NaN recovery), atomic resumable checkpoints, schedules and logs.

    from geobridge.train import TrainConfig, train
    result = train(TrainConfig.load("configs/demo.yaml", ["optim.epochs=2"]))
"""

from geobridge.train.config import ConfigError, TrainConfig
from geobridge.train.engine import Trainer, TrainingDiverged, TrainResult, train

__all__ = ["ConfigError", "TrainConfig", "TrainResult", "Trainer", "TrainingDiverged", "train"]
