"""NannyML's CBPE on the cohorts bench_performance.py writes (run in NannyML's own environment,
not the project's: it imports nothing from credit_drift).

    python nannyml_cbpe.py WORKDIR CHUNK_SIZE

Reads WORKDIR/reference.csv (p, y_pred, y) and WORKDIR/analysis.csv (the cohorts, day after day,
each CHUNK_SIZE rows), writes WORKDIR/nannyml.json: {"version", "roc_auc": [one per chunk]}.
"""

import json
import os
import sys

os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")

import nannyml as nml  # noqa: E402
import pandas as pd  # noqa: E402


def main() -> None:
    work, chunk_size = sys.argv[1], int(sys.argv[2])
    reference = pd.read_csv(f"{work}/reference.csv")
    analysis = pd.read_csv(f"{work}/analysis.csv")[["p", "y_pred", "y"]]
    estimator = nml.CBPE(
        problem_type="classification_binary",
        y_pred_proba="p",
        y_pred="y_pred",
        y_true="y",
        metrics=["roc_auc"],
        chunk_size=chunk_size,
    )
    estimator.fit(reference)
    result = estimator.estimate(analysis.drop(columns=["y"]))
    frame = result.filter(period="analysis").to_df()
    values = frame[("roc_auc", "value")].astype(float).tolist()
    with open(f"{work}/nannyml.json", "w") as fh:
        json.dump({"version": nml.__version__, "roc_auc": values}, fh)


if __name__ == "__main__":
    main()
