"""Evaluation: reconstruction error, subspace angles, linear probes, codebooks, disentanglement,
sequence predictions.

Pure functions on tensors or arrays; model-facing helpers batch the work under ``no_grad``.
"""
from companion.metrics.codebook import code_counts, code_grids, codebook_usage, level_codes, swap_agreement
from companion.metrics.dictionary import feature_recovery, sae_usage
from companion.metrics.disentanglement import dsprites_report
from companion.metrics.filters import dead_units, filter_roughness
from companion.metrics.jacobian import encoder_jacobian, jacobian_norms, jacobian_singular_values
from companion.metrics.latents import active_units, kl_per_dimension
from companion.metrics.likelihood import importance_weighted_log_likelihood
from companion.metrics.probes import linear_probe, linear_probe_accuracy, linear_probe_r2
from companion.metrics.reconstruction import corruption_curve, encode_all, perturbation_gain, reconstruction_error
from companion.metrics.sequences import belief_probe, jumpy_errors
from companion.metrics.subspace import principal_angles

__all__ = ["feature_recovery", "sae_usage", "active_units", "kl_per_dimension", "belief_probe", "code_counts", "code_grids", "codebook_usage", "corruption_curve", "dead_units",
           "dsprites_report", "filter_roughness", "jumpy_errors", "level_codes", "swap_agreement", "importance_weighted_log_likelihood", "encoder_jacobian", "jacobian_norms", "jacobian_singular_values", "encode_all", "perturbation_gain", "linear_probe", "linear_probe_accuracy", "linear_probe_r2", "principal_angles", "reconstruction_error"]
