"""harness: reproduce deep-learning ladders, studies and hardware comparisons, tracked in MLflow.

Data flows one way: config -> data + model -> train -> tracking -> report.
Importing the package is cheap; TensorFlow loads only when training starts.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("harness")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"
