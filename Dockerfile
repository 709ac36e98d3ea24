# One image for the code location, the celery workers, the scoring API, dagster-webserver and
# dagster-daemon (each is a different command; deploy/compose.yaml and deploy/helm/ say which).
# Not built on the project's machines (no Docker there): see deploy/README.md, "Beyond one machine".
#
#   docker build -t credit-drift:0.1.0 .
#
# The model artifacts and the training set (for the reference profile) are not in the image: mount
# them (CREDIT_DRIFT_ARTIFACTS_DIR, CREDIT_DRIFT_TRAINING_DATA), or copy them in a derived image.
FROM python:3.12-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# LightGBM's OpenMP runtime.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/credit-drift
# The package is used from its project folder (credit_drift/definitions.py loads the defs folder
# through pyproject.toml's [tool.dg]): an editable install of this copy of the repository.
COPY pyproject.toml README.md workspace.yaml ./
COPY credit_drift ./credit_drift
COPY deploy ./deploy
# The deploy extra (dagster-celery with redis), the Helm chart's run launcher, and the fsspec
# package of the object store that CREDIT_DRIFT_IO_BASE names (e.g. EXTRA_PACKAGES=s3fs).
ARG EXTRA_PACKAGES=""
RUN pip install -e ".[deploy]" "dagster-k8s>=0.29.27,<0.30" ${EXTRA_PACKAGES}

RUN useradd --create-home --uid 10001 credit-drift \
    && mkdir -p /opt/dagster /var/lib/credit-drift \
    && cp deploy/dagster.yaml /opt/dagster/dagster.yaml \
    && chown -R credit-drift /opt/dagster /var/lib/credit-drift
USER credit-drift

ENV DAGSTER_HOME=/opt/dagster \
    CREDIT_DRIFT_HOME=/var/lib/credit-drift \
    CREDIT_DRIFT_ARTIFACTS_DIR=/opt/credit-drift/artifacts \
    CREDIT_DRIFT_TRAINING_DATA=/opt/credit-drift/data/train.parquet \
    PYTHONPATH=/opt/credit-drift/deploy/celery

# 4266: the code location (gRPC); 8000: the scoring API (`credit-drift serve --host 0.0.0.0`).
EXPOSE 4266 8000
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4266", \
     "-m", "credit_drift.definitions", "--location-name", "credit_drift.definitions"]
