"""The test metrics SageMaker's FM publishes, under its names (reference/sagemaker-fm.md §3.3).

regressor: `test:rmse`. binary_classifier: `test:binary_classification_accuracy`,
`test:binary_classification_cross_entropy` (mean log loss) and `test:binary_f_beta` (F1 of the positive
class). The classifier predicts 1 when σ(ŷ) ≥ 0.5, i.e. ŷ ≥ 0 (as SageMaker's `predicted_label`).
"""

from __future__ import annotations

import numpy as np

RMSE = "test:rmse"
ACCURACY = "test:binary_classification_accuracy"
CROSS_ENTROPY = "test:binary_classification_cross_entropy"
F_BETA = "test:binary_f_beta"
OBJECTIVE = {"regressor": RMSE, "binary_classifier": ACCURACY}  # the one a progress line shows


def metrics_of(yhat: np.ndarray, y: np.ndarray, predictor_type: str) -> dict[str, float]:
    """Metrics of raw scores ŷ (before any sigmoid) against labels, as SageMaker names them."""
    yhat = np.asarray(yhat, np.float64)
    y = np.asarray(y, np.float64)
    if predictor_type == "regressor":
        return {RMSE: float(np.sqrt(np.mean((yhat - y) ** 2))) if y.size else float("nan")}
    predicted = yhat >= 0
    actual = y >= 0.5
    # log(1 + e^ŷ) − yŷ: the log loss of σ(ŷ) without overflow
    cross_entropy = np.logaddexp(0.0, yhat) - y * yhat
    true_pos = int(np.sum(predicted & actual))
    wrong = int(np.sum(predicted != actual))
    f1 = 2 * true_pos / (2 * true_pos + wrong) if true_pos + wrong else 0.0
    return {
        ACCURACY: float(np.mean(predicted == actual)) if y.size else float("nan"),
        CROSS_ENTROPY: float(np.mean(cross_entropy)) if y.size else float("nan"),
        F_BETA: float(f1),
    }
