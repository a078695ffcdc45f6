"""nodefarm's worker side: the Celery app, the node task, run state, result store and events.

Never imports Flask. Depends on :mod:`nodes` only.
"""
