"""Evaluation: reconstruction error, subspace angles, linear probes.

Pure functions on tensors or arrays; model-facing helpers batch the work under ``no_grad``.
"""
from companion.metrics.codebook import code_counts, codebook_usage
from companion.metrics.jacobian import encoder_jacobian, jacobian_norms, jacobian_singular_values
from companion.metrics.likelihood import importance_weighted_log_likelihood
from companion.metrics.probes import linear_probe, linear_probe_accuracy, linear_probe_r2
from companion.metrics.reconstruction import encode_all, reconstruction_error
from companion.metrics.subspace import principal_angles

__all__ = ["code_counts", "codebook_usage", "importance_weighted_log_likelihood", "encoder_jacobian", "jacobian_norms", "jacobian_singular_values", "encode_all", "linear_probe", "linear_probe_accuracy", "linear_probe_r2", "principal_angles", "reconstruction_error"]
