"""The Celery app instance that Celery's command line loads.

``celery -A workers.main worker`` and ``celery -A workers.main beat``.  This is
the one object built at import time, because Celery's CLI needs it; it reads
the settings and connects to nothing until a worker starts.
"""

from __future__ import annotations

from workers.celery_app import create_celery

app = create_celery()
