"""Checkers for the chapters' exercises.

>>> from companion.exercises import check
>>> check("ae.mse", my_mse)          # prints ✅ or what went wrong, returns a CheckResult

Each exercise has hidden test cases, a reference solution and a hint. A checker compares
the reader's function with the reference case by case: the return type, the shape, then
the values, and reports the first mismatch in words.
"""
from __future__ import annotations

from companion.exercises.core import REGISTRY, CheckResult, Exercise, check, register
from companion.exercises import (ch01_autoencoder, ch02_denoising, ch03_sparse,  # noqa: F401  (registers them)
                                 ch04_ksparse, ch05_contractive, ch06_vae, ch07_beta_vae,
                                 ch08_vq_vae, ch09_vq_vae2, ch10_td_vae, ch11_after_the_survey)

__all__ = ["REGISTRY", "CheckResult", "Exercise", "check", "register"]
