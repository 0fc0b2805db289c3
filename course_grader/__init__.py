"""Instructor tooling for the course's graded assignments (nbgrader workflow, sandboxed grading).

``python -m course_grader <command>`` (see :mod:`course_grader.cli` and
docs/instructors.md). nbgrader generates the released stubs and keeps the
gradebook; student code runs only inside a bubblewrap sandbox
(:mod:`course_grader.sandbox`, :mod:`course_grader.runner`,
:mod:`course_grader.supervisor`), and the hidden property checks
(``solutions/<name>/hidden_tests.py``, :mod:`course_grader.checks`) run in the
grader's own process on the plain values the sandbox returns.
"""
