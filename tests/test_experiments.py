import json
import subprocess
import sys

import pytest

from companion import experiments


def test_registry_and_table():
    assert "autoencoder" in experiments.EXPERIMENTS
    record = {"experiment": "x", "budget": "quick", "seconds": 1.0, "metrics": {"a": 1.5},
              "reference": {"a": {"value": 2.0, "source": "paper"}, "b": {"value": 3.0, "source": "other"}}}
    table = experiments.format_table(record)
    assert "a" in table and "1.5" in table and "paper" in table and "other" in table


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
    assert set(record) == {"experiment", "budget", "seconds", "metrics", "reference"}
    m = record["metrics"]
    assert m["ae_test_mse_k2"] < m["pca_test_mse_k2"]
    assert m["ae_test_mse_k16"] < m["pca_test_mse_k16"]
    assert m["linear_ae_max_angle_deg_k16"] < 5.0
    assert 10 < m["pca_test_mse_k30"] < 20            # near Hinton & Salakhutdinov's 13.87
    assert record["reference"]["pca_test_mse_k30"]["value"] == 13.87
    assert "ae_test_mse_k30" in out.stdout and "published" in out.stdout
