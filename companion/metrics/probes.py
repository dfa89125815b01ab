"""Linear probes: how linearly separable are the classes in a code space?"""
from __future__ import annotations

import numpy as np
import torch

from companion.runtime import check_seed


def _np(a) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


class Probe:
    """A fitted probe: ``probe(z) -> labels`` (a numpy array), for inputs of the fitted width."""

    def __init__(self, pipeline, dims: int):
        self.pipeline, self.dims = pipeline, dims

    def _inputs(self, z) -> np.ndarray:
        z = _np(z).reshape(len(z), -1)
        if z.shape[1] != self.dims:
            raise ValueError(f"the probe was fitted on {self.dims} dims, got {z.shape[1]}")
        return z

    def __call__(self, z) -> np.ndarray:
        return self.pipeline.predict(self._inputs(z))

    def proba(self, z) -> np.ndarray:
        """Class probabilities (N, classes), columns in the order of ``classes``."""
        return self.pipeline.predict_proba(self._inputs(z))

    @property
    def classes(self) -> np.ndarray:
        """The labels seen in fitting, in the order of :meth:`proba`'s columns."""
        return self.pipeline.classes_


def linear_probe(z_train, y_train, *, max_iter: int = 500, seed: int = 0):
    """A multinomial logistic regression fitted on (z_train, y_train), inputs standardised with
    the training statistics first; returns ``predict(z) -> labels`` (a numpy array).

    Any input (N, ...) is flattened, so images work as well as codes: a probe fitted on
    digits classifies generated or decoded digits.
    """
    seed = check_seed(seed)
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    z_train, y_train = _np(z_train).reshape(len(z_train), -1), _np(y_train)
    if len(z_train) != len(y_train):
        raise ValueError("codes and labels must have the same number of rows")
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter, random_state=seed))
    probe.fit(z_train, y_train)
    return Probe(probe, z_train.shape[1])


def linear_probe_accuracy(z_train, y_train, z_test, y_test, *, max_iter: int = 500,
                          seed: int = 0) -> float:
    """Test accuracy of a :func:`linear_probe` fitted on (z_train, y_train).

    Codes are standardised with the training statistics first, so the probe does not
    depend on the scale of the code.
    """
    seed = check_seed(seed)
    y_test = _np(y_test)
    if len(z_test) != len(y_test):
        raise ValueError("codes and labels must have the same number of rows")
    z_train, z_test = _np(z_train).reshape(len(z_train), -1), _np(z_test).reshape(len(z_test), -1)
    if z_train.shape[1] != z_test.shape[1]:
        raise ValueError(f"train codes have {z_train.shape[1]} dims, test codes {z_test.shape[1]}")
    predict = linear_probe(z_train, y_train, max_iter=max_iter, seed=seed)
    return float((predict(z_test) == y_test).mean())


def linear_probe_r2(z_train, y_train, z_test, y_test) -> torch.Tensor:
    """R² on (z_test, y_test) of a least-squares linear map (with intercept) fitted on
    (z_train, y_train): one value per target column. 1 means the targets are a linear function
    of the codes; 0 means it does no better than the mean of the test targets (the usual definition).

    Shapes: codes (N, d), targets (N,) or (N, k); returns (k,) float64.
    """
    def _as_2d(a, what):
        a = torch.as_tensor(_np(a), dtype=torch.float64)
        if a.dim() == 1:
            a = a[:, None]
        if a.dim() != 2:
            raise ValueError(f"{what} must be (N,) or (N, k), got {tuple(a.shape)}")
        if not torch.isfinite(a).all():
            raise ValueError(f"{what} holds NaN or infinite values")
        return a

    zt, yt, zs, ys = (_as_2d(a, w) for a, w in ((z_train, "z_train"), (y_train, "y_train"),
                                                 (z_test, "z_test"), (y_test, "y_test")))
    if len(zt) != len(yt) or len(zs) != len(ys):
        raise ValueError("codes and targets must have the same number of rows")
    if zt.shape[1] != zs.shape[1] or yt.shape[1] != ys.shape[1]:
        raise ValueError("train and test must have the same widths")
    design = lambda z: torch.cat([z, torch.ones(len(z), 1, dtype=z.dtype)], dim=1)   # noqa: E731
    w = torch.linalg.lstsq(design(zt), yt, driver="gelsd").solution
    residual = (ys - design(zs) @ w).pow(2).sum(0)
    total = (ys - ys.mean(0)).pow(2).sum(0)
    if (ys.max(0).values == ys.min(0).values).any():
        raise ValueError("a test target is constant: R² compares with the variance of the target, which is 0 here")
    return 1 - residual / total
