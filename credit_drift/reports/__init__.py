"""Human-facing outputs of a drift window: the Evidently HTML report (`evidently_report`) and the
notebook's figures as PNG files (`plots`). The only package that imports evidently or matplotlib,
both lazily, so importing it costs nothing at Dagster definition load."""
