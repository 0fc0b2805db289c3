"""Instructor tooling for the course's graded assignments (nbgrader workflow, sandboxed grading)."""
