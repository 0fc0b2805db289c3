# nbgrader's exchange for the course on a hub (deploy/jupyterhub_config.py puts this folder on every user's
# JUPYTER_CONFIG_PATH): where assignments are released, submitted and handed back, and the course's id. An
# instructor's own course folder adds the course's nbgrader_config.py (folders, gradebook, stubs) on top.
import os

c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file

c.Exchange.root = os.environ.get("COURSE_EXCHANGE", "/srv/nbgrader/exchange")
c.CourseDirectory.course_id = os.environ.get("COURSE_ID", "drl-course")
# The exchange itself keeps students apart: inbound/ lets each one write but not list, feedback/ is named by a
# hash of each submission's random secret, so a student can fetch only the feedback made from their own work.
