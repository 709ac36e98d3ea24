-- Dagster's instance storage lives in its own database beside the prediction log (compose.yaml).
CREATE DATABASE dagster OWNER credit_drift;
