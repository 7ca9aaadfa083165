"""Per-exercise checks, called from homework and lecture notebooks: `grading.check_x(student_fn)`."""

from utils.grading.core import ExerciseNotDone, GradingError
from utils.grading.hw00 import check_sequence_logprob, check_softmax_with_temperature, check_top_p_filter
from utils.grading.hw01 import check_bm25_scores, check_reflect, check_select_tools, check_top_k, check_write_policy

__all__ = [
    "ExerciseNotDone",
    "GradingError",
    "check_bm25_scores",
    "check_reflect",
    "check_select_tools",
    "check_sequence_logprob",
    "check_softmax_with_temperature",
    "check_top_k",
    "check_top_p_filter",
    "check_write_policy",
]
