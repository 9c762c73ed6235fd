"""Prediction: pixel features (Weka's 2D set, an ilastik-style n-D set), the random-forest pixel
classifier and its model file, and the predictor protocol any other model plugs in through.
"""

from ._weka import weka_features, feature_names, DEFAULT_SIGMAS
from ._forest import PixelClassifier, load_model, save_model, BACKGROUND, OBJECT, THRESHOLD

__all__ = ["weka_features", "feature_names", "DEFAULT_SIGMAS", "PixelClassifier", "load_model", "save_model",
           "BACKGROUND", "OBJECT", "THRESHOLD"]
