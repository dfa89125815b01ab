import json
import subprocess
import sys

import pytest

from companion import experiments


def test_registry_and_table():
    assert {"autoencoder", "denoising", "sparse", "k-sparse", "contractive", "vae", "beta-vae", "vq-vae", "vq-vae-2", "td-vae"} <= set(experiments.EXPERIMENTS)
    record = {"experiment": "x", "budget": "quick", "seconds": 1.0, "metrics": {"a": 1.5},
              "reference": {"a": {"value": 2.0, "source": "paper"}, "b": {"value": 3.0, "source": "other"}}}
    table = experiments.format_table(record)
    assert "a" in table and "1.5" in table and "paper" in table and "other" in table
    record["reference"]["b"]["value"] = "0–0.4"                     # a range read off a figure
    assert "0–0.4" in experiments.format_table(record)


def test_reproduce_errors():
    with pytest.raises(ValueError, match="unknown experiment"):
        experiments.reproduce("nope")
    with pytest.raises(ValueError, match="budget"):
        experiments.reproduce("autoencoder", "huge")


def test_cli_list():
    out = subprocess.run([sys.executable, "-m", "companion", "list"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("autoencoder")


def test_cli_unknown_name():
    out = subprocess.run([sys.executable, "-m", "companion", "reproduce", "nope"], capture_output=True, text=True)
    assert out.returncode == 2 and "unknown experiment" in out.stderr


@pytest.mark.slow
def test_cli_reproduce_autoencoder_writes_json(tmp_path):
    path = tmp_path / "out.json"
    out = subprocess.run([sys.executable, "-m", "companion", "reproduce", "autoencoder", "--json", str(path)],
                         capture_output=True, text=True, check=True)
    record = json.loads(path.read_text())
    assert set(record) == {"experiment", "budget", "device", "seconds", "metrics", "reference"}
    assert record["device"] == "cpu"                  # the CLI's default
    m = record["metrics"]
    assert m["ae_test_mse_k2"] < m["pca_test_mse_k2"]
    assert m["ae_test_mse_k16"] < m["pca_test_mse_k16"]
    assert m["linear_ae_max_angle_deg_k16"] < 5.0
    assert 10 < m["pca_test_mse_k30"] < 20            # near Hinton & Salakhutdinov's 13.87
    assert record["reference"]["pca_test_mse_k30"]["value"] == 13.87
    assert "ae_test_mse_k30" in out.stdout and "published" in out.stdout


def test_filter_roughness_orders_smooth_below_noisy():
    import torch

    g = torch.Generator().manual_seed(0)
    noisy = torch.randn(10, 28 * 28, generator=g)
    yy, xx = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    smooth = torch.stack([torch.exp(-((xx - c) ** 2 + (yy - 14) ** 2) / 30).flatten() for c in range(5, 25, 2)])
    assert experiments.filter_roughness(smooth, (1, 28, 28)) < 0.2 < experiments.filter_roughness(noisy, (1, 28, 28))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["denoising", "sparse", "k-sparse", "contractive", "vae", "beta-vae", "vq-vae",
                                  "vq-vae-2", "td-vae"])
def test_reproduce_chapters_2_to_10(name, tmp_path):
    record = experiments.reproduce(name, json_path=tmp_path / "out.json")
    m = record["metrics"]
    assert json.loads((tmp_path / "out.json").read_text())["metrics"] == m
    if name == "denoising":
        assert m["dae_error_reduction_masking50"] >= 0.2
        assert m["dae_test_mse_masking50"] < m["input_test_mse_masking50"]
        assert m["dae_filter_roughness"] < m["ae_filter_roughness"]
    elif name == "sparse":
        assert abs(m["sae_beta3_mean_rho_hat"] - 0.05) <= 0.02
        assert m["sae_beta0_mean_rho_hat"] > 0.3
    elif name == "k-sparse":
        best = max(m[f"ksparse_k{k}_linear_probe_acc"] for k in (10, 25, 70))
        assert best > m["pixels_linear_probe_acc"]
        assert m["ksparse_k10_annealed_dead_units"] < m["ksparse_k10_dead_units"]
    elif name == "vae":
        for k in (2, 16):
            assert m[f"vae_z{k}_test_neg_log_px_iw1000"] <= m[f"vae_z{k}_test_neg_elbo"]
        assert m["vae_z16_test_neg_elbo"] < m["vae_z2_test_neg_elbo"]
    elif name == "beta-vae":
        assert m["beta_vae_kl"] < m["vae_kl"] and m["beta_vae_recon"] > m["vae_recon"]
        assert m["beta_vae_active"] <= m["vae_active"]
        assert abs(m["capacity_kl"] - experiments.BETA_VAE_BUDGETS["quick"]["capacity"]) < 0.15 * 12.0
        for run in ("vae", "beta_vae", "capacity"):
            assert 0.3 < m[f"{run}_beta_vae"] <= 1 and 0 <= m[f"{run}_mig"] <= 1   # above chance (1/5)
    elif name == "vq-vae":
        assert m["restart_test_used_fraction"] >= 0.5
        assert m["restart_test_perplexity"] > m["loss_test_perplexity"]
        assert m["prior_test_bits_per_code"] < m["uniform_bits_per_code"]
    elif name == "vq-vae-2":
        assert m["separated_swap_follows_top"] > m["separated_swap_follows_bottom"]
        assert m["vqvae2_swap_follows_bottom"] > m["vqvae2_swap_follows_top"]
        assert m["vqvae2_test_recon"] <= m["single_test_recon"]
        assert m["top_prior_bits_per_code"] < m["top_uniform_bits_per_code"]
        assert m["bottom_prior_bits_per_code"] < m["bottom_uniform_bits_per_code"]
        assert m["samples_classes_found"] >= 8
    elif name == "td-vae":
        for d in (1, 2, 3, 4):
            assert m[f"tdvae_error_jump{d}"] < m[f"copy_last_error_jump{d}"]
        assert m["digits_position_r2"] >= 0.9
        assert m["oscillator_position_r2"] >= 0.9 and m["oscillator_velocity_r2"] >= 0.9
    else:
        assert m["cae_over_ae_jacobian_norm"] <= 0.5
        assert m["cae_test_mse"] <= 1.2 * m["ae_test_mse"]
