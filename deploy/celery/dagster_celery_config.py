"""Celery settings of the dagster-celery workers: `celery -A dagster_celery.app worker` imports
this module when its folder is on PYTHONPATH (deploy/celery: the stack's supervisord.conf, the
compose file and the Helm values put it there). The broker comes from the same setting the
executor reads, CREDIT_DRIFT_CELERY_BROKER, so the workers and the runs cannot disagree."""

from credit_drift.settings import executor_settings

broker_url = executor_settings().broker
# Step results travel back through the same redis (celery's default rpc:// backend needs AMQP).
result_backend = broker_url
# One step at a time per worker process: a step holds a day of predictions in memory.
worker_prefetch_multiplier = 1
