"""Prediction: pixel features (Weka's 2D set, an ilastik-style n-D set), the random-forest pixel
classifier and its model file, label-free networks (a U-Net predicting one image from another, torch
imported only when used), and the predictor protocol any other model plugs in through.
"""

from ._weka import weka_features, feature_names, DEFAULT_SIGMAS
from ._weka import weka_halo
from ._ilastik import ilastik_features, ilastik_feature_names, ilastik_halo, ILASTIK_SIGMAS
from ._forest import PixelClassifier, load_model, save_model, decide_threshold, BACKGROUND, OBJECT, THRESHOLD
from ._forest import decide_classes, parse_thresholds, check_class_labels, MAX_CLASS
from ._labelfree import LabelFreePredictor, train_labelfree, save_labelfree, load_labelfree
from ._choose import load_predictor
from ._protocol import LabelPredictor, MaskPredictor, ValuePredictor, check_predictor_output, predictor_kind

__all__ = ["weka_features", "feature_names", "DEFAULT_SIGMAS", "PixelClassifier", "load_model", "save_model",
           "decide_threshold", "BACKGROUND", "OBJECT", "THRESHOLD", "MaskPredictor", "LabelPredictor", "ValuePredictor",
           "predictor_kind", "check_predictor_output"]
__all__ += ["decide_classes", "parse_thresholds", "check_class_labels", "MAX_CLASS"]
__all__ += ["weka_halo", "ilastik_features", "ilastik_feature_names", "ilastik_halo", "ILASTIK_SIGMAS"]
__all__ += ["LabelFreePredictor", "train_labelfree", "save_labelfree", "load_labelfree", "load_predictor"]
