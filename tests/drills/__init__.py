"""Fault drills: real PostgreSQL, Redis, API and Celery processes, broken on purpose."""
