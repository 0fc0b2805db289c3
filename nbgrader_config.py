# nbgrader's configuration for this course (nbgrader reads it from the current directory, so
# run nbgrader and `python -m course_grader` from the repository root). See docs/instructors.md.
#
#   solutions/<assignment>/      nbgrader's "source": the single source, with solutions (and, beside
#                                the notebook, hidden_tests.py, which is never released)
#   assignments/<assignment>/    nbgrader's "release": generated stubs, committed
#   instructor/                  your private working folder (git-ignored): submissions, grading
#                                records, feedback and the gradebook database
import os

c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file

_ROOT = os.path.dirname(os.path.abspath(__file__))

c.CourseDirectory.root = _ROOT
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "assignments"
c.CourseDirectory.submitted_directory = os.path.join("instructor", "submitted")
c.CourseDirectory.autograded_directory = os.path.join("instructor", "autograded")
c.CourseDirectory.feedback_directory = os.path.join("instructor", "feedback")
c.CourseDirectory.solution_directory = os.path.join("instructor", "released_solutions")
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(_ROOT, "instructor", "gradebook.db")
# The hidden property checks live beside each solution notebook and must never be released.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "hidden_tests.py", "drivers.py"]

# Stubs that parse and run: a fenced block that raises until the student replaces it.
c.ClearSolutions.code_stub = {
    "python": (
        "# ----- YOUR CODE HERE (replace the next line) -----\n"
        'raise NotImplementedError("your code here")\n'
        "# ----- END OF YOUR CODE -----"
    )
}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Autograding is done by `python -m course_grader autograde`, which runs student code in a sandbox
# and scores it with the hidden checks in a separate process. nbgrader's own autograde (formgrader's
# per-student Autograde button, `nbgrader autograde`) would run the checks where student code can patch
# them, delete our result files and overwrite the gradebook's scores, and its feedback shows the tests:
# the guard refuses the first and routes the second (formgrader's Generate Feedback buttons,
# `nbgrader generate_feedback`) to `course_grader feedback`. See course_grader/nbgrader_guard.py.
c.Execute.timeout = 120

from course_grader.nbgrader_guard import install_if_nbgrader_runs  # noqa: E402

install_if_nbgrader_runs()
