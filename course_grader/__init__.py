"""Instructor tooling for the course's graded assignments (nbgrader workflow, sandboxed grading).

``python -m course_grader <command>`` (see :mod:`course_grader.cli` and
docs/instructors.md). nbgrader generates the released stubs and keeps the
gradebook; student code runs only inside a bubblewrap sandbox
(:mod:`course_grader.sandbox`, :mod:`course_grader.runner`,
:mod:`course_grader.supervisor`), and the hidden property checks
(``solutions/<name>/hidden_tests.py``, :mod:`course_grader.checks`) run in the
grader's own process on the plain values the sandbox returns.

The instructor's commands: ``release`` (:mod:`course_grader.release`), ``collect``
(:mod:`course_grader.collection`), ``autograde`` (:mod:`course_grader.autograding`), ``export``,
``feedback`` and the students' ``validate`` (:mod:`course_grader.reports`).

Files (all under the git-ignored ``instructor/`` folder, nbgrader's layout)::

    instructor/submitted/<student>/<assignment>/<notebook>.ipynb   collected submissions (+ timestamp.txt)
    instructor/autograded/<student>/<assignment>/
        <notebook>.ipynb     the submission with outputs and verdicts, for formgrader's hand grading
        result.json          what the student may see (scores, reasons, their cells' output)
    instructor/private/<assignment>/<student>.json
                             what only you see (seed, the grader's inputs, expected values, grader errors)
    instructor/feedback/<student>/<assignment>/<notebook>.html      feedback to hand back
    instructor/gradebook.db                                          nbgrader's gradebook
"""
