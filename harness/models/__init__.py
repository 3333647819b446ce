"""Model factories and their parameter classes, registered by name.

Importing this package registers the built-in models; Keras is imported only when
a model is built.
"""

from harness.models import _cnn, _mlp, _yolo  # noqa: F401  (register "cnn", "mlp", "squeezenet", "darknet")
from harness.models._cnn import CnnParams
from harness.models._layers import TalkNetParams
from harness.models._mlp import MlpParams
from harness.models._registry import create_model, list_models, register_model
from harness.models._yolo import DarknetParams, SqueezenetParams, YoloHead

__all__ = [
    "CnnParams",
    "DarknetParams",
    "MlpParams",
    "SqueezenetParams",
    "TalkNetParams",
    "YoloHead",
    "create_model",
    "list_models",
    "register_model",
]
