"""credit-drift: Dagster-native drift monitoring for credit-scoring models."""

__version__ = "0.1.0"
