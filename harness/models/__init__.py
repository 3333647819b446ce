"""Model factories and their parameter classes, registered by name.

Importing this package registers the built-in models; Keras is imported only when
a model is built.
"""

from harness.models import (  # noqa: F401  (register their models)
    _cnn,  # "cnn"
    _mlp,  # "mlp"
    _resnet,  # "resnet50"
    _tabular,  # "linear", "dnn", "wide_deep"
    _yolo,  # "squeezenet", "darknet"
)
from harness.models._cnn import CnnParams
from harness.models._layers import TalkNetParams
from harness.models._mlp import MlpParams
from harness.models._registry import create_model, list_models, register_model
from harness.models._resnet import ResNetParams
from harness.models._tabular import ColumnStats, DnnParams, LinearParams, TabularSchema, WideDeepParams
from harness.models._vocabulary import VOCABULARIES_FILE, VOCABULARY_CODE
from harness.models._yolo import DarknetParams, SqueezenetParams, YoloHead

__all__ = [
    "VOCABULARIES_FILE",
    "VOCABULARY_CODE",
    "CnnParams",
    "ColumnStats",
    "DarknetParams",
    "DnnParams",
    "LinearParams",
    "MlpParams",
    "ResNetParams",
    "SqueezenetParams",
    "TabularSchema",
    "TalkNetParams",
    "WideDeepParams",
    "YoloHead",
    "create_model",
    "list_models",
    "register_model",
]
