"""The grading corpus of the assignments without the attacks on the grader (see test_grading.py).

The same per-assignment tests, collected in a file of their own so that the test command's second
worker grades these assignments while the first grades test_grading.py's.
"""

from test_grading import (  # noqa: F401 - the fixture and the hook are used by pytest
    corpus,
    pytest_generate_tests,
    test_each_case_gets_the_required_scores,
    test_every_attack_ran_to_its_end,
    test_every_failure_is_reported_with_a_clear_reason,
    test_every_submission_is_graded_once_without_grader_errors,
    test_export_writes_per_question_scores_including_hand_grading,
    test_feedback_shows_no_hidden_test_source_and_no_expected_value,
    test_gradebook_holds_exactly_each_students_own_scores,
    test_no_cheat_scores_more_than_the_same_honest_submission,
    test_no_process_outlives_grading,
    test_results_students_see_hold_no_seed_and_no_input,
    test_student_code_sees_and_changes_nothing_outside_its_sandbox,
)
