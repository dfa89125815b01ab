"""Linear probes: how linearly separable are the classes in a code space?"""
from __future__ import annotations

import numpy as np
import torch


def _np(a) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def linear_probe_accuracy(z_train, y_train, z_test, y_test, *, max_iter: int = 500,
                          seed: int = 0) -> float:
    """Test accuracy of a multinomial logistic regression fitted on (z_train, y_train).

    Codes are standardised with the training statistics first, so the probe does not
    depend on the scale of the code.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    z_train, z_test = _np(z_train).reshape(len(z_train), -1), _np(z_test).reshape(len(z_test), -1)
    y_train, y_test = _np(y_train), _np(y_test)
    if len(z_train) != len(y_train) or len(z_test) != len(y_test):
        raise ValueError("codes and labels must have the same number of rows")
    if z_train.shape[1] != z_test.shape[1]:
        raise ValueError(f"train codes have {z_train.shape[1]} dims, test codes {z_test.shape[1]}")
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter, random_state=seed))
    probe.fit(z_train, y_train)
    return float(probe.score(z_test, y_test))
