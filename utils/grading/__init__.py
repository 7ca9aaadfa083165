"""Per-exercise checks, called from homework and lecture notebooks: `grading.check_x(student_fn)`."""

from utils.grading.core import ExerciseNotDone, GradingError
from utils.grading.hw00 import check_sequence_logprob, check_softmax_with_temperature, check_top_p_filter
from utils.grading.hw01 import (
    check_agent_study,
    check_execute_plan,
    check_run_agent,
    check_select_tools,
    check_write_policy,
)
from utils.grading.hw02 import (
    check_ablated_logprobs,
    check_answer_ranks,
    check_fit_linear_relation,
    check_sae_objective,
    check_study,
)
from utils.grading.hw03 import (
    check_drop_hardest,
    check_mix_replay,
    check_reply_logprobs,
    check_self_output_targets,
)
from utils.grading.hw04 import (
    check_clipped_loss,
    check_group_advantages,
    check_length_reward,
    check_majority_vote,
    check_pass_at_k,
    check_shepherd_labels,
)
from utils.grading.hw05 import (
    check_add_clause,
    check_bradley_terry_fit,
    check_min_k_plus_plus,
    check_style_differences,
)
from utils.grading.hw06 import check_gated_values, check_multi_key_update, check_ngram_entropy

__all__ = [
    "ExerciseNotDone",
    "GradingError",
    "check_ablated_logprobs",
    "check_add_clause",
    "check_agent_study",
    "check_answer_ranks",
    "check_bradley_terry_fit",
    "check_clipped_loss",
    "check_drop_hardest",
    "check_execute_plan",
    "check_fit_linear_relation",
    "check_gated_values",
    "check_group_advantages",
    "check_length_reward",
    "check_majority_vote",
    "check_min_k_plus_plus",
    "check_mix_replay",
    "check_multi_key_update",
    "check_ngram_entropy",
    "check_pass_at_k",
    "check_reply_logprobs",
    "check_run_agent",
    "check_sae_objective",
    "check_select_tools",
    "check_self_output_targets",
    "check_sequence_logprob",
    "check_shepherd_labels",
    "check_softmax_with_temperature",
    "check_study",
    "check_style_differences",
    "check_top_p_filter",
    "check_write_policy",
]
