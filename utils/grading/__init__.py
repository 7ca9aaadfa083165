"""Per-exercise checks, called from homework and lecture notebooks: `grading.check_x(student_fn)`."""

from utils.grading.core import ExerciseNotDone, GradingError
from utils.grading.hw00 import check_sequence_logprob, check_softmax_with_temperature, check_top_p_filter
from utils.grading.hw01 import (
    check_bm25_scores,
    check_reflect,
    check_select_tools,
    check_top_k,
    check_write_policy,
)
from utils.grading.hw02 import (
    check_add_direction,
    check_difference_of_means,
    check_feature_f1,
    check_logit_lens,
    check_patchscope,
    check_topk_encode,
)

__all__ = [
    "ExerciseNotDone",
    "GradingError",
    "check_add_direction",
    "check_bm25_scores",
    "check_difference_of_means",
    "check_feature_f1",
    "check_logit_lens",
    "check_patchscope",
    "check_reflect",
    "check_select_tools",
    "check_sequence_logprob",
    "check_softmax_with_temperature",
    "check_top_k",
    "check_top_p_filter",
    "check_topk_encode",
    "check_write_policy",
]
