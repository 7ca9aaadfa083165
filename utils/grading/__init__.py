"""Per-exercise checks, called from homework and lecture notebooks: `grading.check_x(student_fn)`."""

from utils.grading.core import ExerciseNotDone, GradingError
from utils.grading.hw00 import check_sequence_logprob, check_softmax_with_temperature, check_top_p_filter

__all__ = [
    "ExerciseNotDone",
    "GradingError",
    "check_sequence_logprob",
    "check_softmax_with_temperature",
    "check_top_p_filter",
]
