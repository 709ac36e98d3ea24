"""LightGBM's fast single-row prediction (`LGBM_BoosterPredictForMatSingleRowFast`).

`Booster.predict` builds a predictor, copies its parameters and checks its input on every call:
for one row of 419 features that costs about as much as the trees themselves (measured
on 2 cores, AMD EPYC: 65 us a call through `Booster.predict`; see `benchmarks/README.md`).
LightGBM's C API has a path for exactly this case: the configuration is set up once
(`...FastInit`) and each call only scores. The API's `POST /predict` scores one row per request.

Same trees, same iterations (`Booster.predict`'s default: the best iteration when the booster
has one, else all), same sigmoid: the probabilities are bit-identical to `Booster.predict`'s
(a test compares them). One thread, as the API's single predictions use (`ServingConfig.
single_row_threads`). Calls are serialized by a lock: LightGBM does not document the fast
configuration as safe to share between threads.
"""

import ctypes
import threading

import lightgbm as lgb
import numpy as np
from lightgbm.basic import _LIB, _safe_call

_PREDICT_NORMAL = 0  # C_API_PREDICT_NORMAL: probabilities for a binary objective
_DTYPE_FLOAT64 = 1  # C_API_DTYPE_FLOAT64


class SingleRowPredictor:
    """Probabilities of single float64 rows through LightGBM's fast single-row path."""

    def __init__(self, booster: lgb.Booster) -> None:
        if booster.num_model_per_iteration() != 1:
            raise ValueError("the single-row path scores models with one output per row only")
        self.n_features = booster.num_feature()
        # Booster.predict's default iterations (num_iteration=None): the best one if known.
        num_iteration = booster.best_iteration
        self._booster = booster  # its handle must outlive the configuration
        self._handle = ctypes.c_void_p()
        _safe_call(
            _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle,
                ctypes.c_int(_PREDICT_NORMAL),
                ctypes.c_int(0),
                ctypes.c_int(num_iteration),
                ctypes.c_int(_DTYPE_FLOAT64),
                ctypes.c_int32(self.n_features),
                ctypes.c_char_p(b"num_threads=1"),
                ctypes.byref(self._handle),
            )
        )
        self._lock = threading.Lock()
        self._out_len = ctypes.c_int64()

    def predict(self, row: np.ndarray) -> float:
        """The probability of one row (float64, C-contiguous, `n_features` values)."""
        if row.dtype != np.float64 or row.size != self.n_features or not row.flags.c_contiguous:
            raise ValueError(
                f"expected {self.n_features} contiguous float64 values, got {row.size} "
                f"{row.dtype} values"
            )
        out = ctypes.c_double()
        with self._lock:
            _safe_call(
                _LIB.LGBM_BoosterPredictForMatSingleRowFast(
                    self._handle,
                    row.ctypes.data_as(ctypes.c_void_p),
                    ctypes.byref(self._out_len),
                    ctypes.byref(out),
                )
            )
        return out.value

    def __del__(self) -> None:
        handle = getattr(self, "_handle", None)
        if handle is not None and handle.value is not None:
            _LIB.LGBM_FastConfigFree(handle)
