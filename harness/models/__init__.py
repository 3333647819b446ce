"""Model factories, registered by name. Importing this package imports Keras."""

from harness.models import _cnn, _mlp  # noqa: F401  (register "cnn" and "mlp")
from harness.models._registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model"]
