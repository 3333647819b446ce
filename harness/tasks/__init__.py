"""Tasks: what differs between kinds of experiment (loss, metrics, pipelines, objectives, report).

Importing this package registers the built-in tasks; it does not import TensorFlow.
A new task is a new module here (or anywhere) with a :func:`register_task` class.
"""

from harness.tasks import (
    _classification,  # noqa: F401  (registers "classification")
    _detection,  # noqa: F401  (registers "detection")
    _tabular,  # noqa: F401  (registers "tabular")
)
from harness.tasks._base import (
    UNDEFINED_TAG,
    Column,
    Direction,
    Objective,
    Row,
    Task,
    get_task,
    list_tasks,
    register_task,
)
from harness.tasks._yolo_boxes import non_max_suppression

__all__ = [
    "UNDEFINED_TAG",
    "Column",
    "Direction",
    "Objective",
    "Row",
    "Task",
    "get_task",
    "list_tasks",
    "non_max_suppression",
    "register_task",
]
