import math

import pytest
import torch
from torch import nn

import companion
from companion import Output
from companion.models import Autoencoder, AutoencoderConfig
from companion.train import History, TrainingDiverged, evaluate, fit, load_checkpoint, save_checkpoint


def _data(n=256):
    """Compressible images: sigmoids of random mixtures of 3 fixed patterns."""
    g = torch.Generator().manual_seed(1)
    patterns = torch.randn(3, 64, generator=g) * 2
    return torch.sigmoid(torch.randn(n, 3, generator=g) @ patterns).reshape(n, 1, 8, 8)


def _model(seed=0):
    companion.seed_everything(seed)
    return Autoencoder(AutoencoderConfig(image_shape=(1, 8, 8), code_size=4, hidden=(32,), out_act="sigmoid"))


def test_fit_reduces_loss_and_records_history():
    x = _data()
    h = fit(_model(), x, epochs=15, lr=3e-3, batch_size=32, val=x[:64], progress=False)
    assert isinstance(h, History) and h.epochs == 15
    assert set(h.train) == {"loss", "recon"} and set(h.val) == {"loss", "recon"}
    assert h.train["loss"][-1] < 0.7 * h.train["loss"][0]
    assert len(h.val["loss"]) == 15 and h.seconds > 0
    assert h.last("recon", "val") == h.val["recon"][-1]
    with pytest.raises(KeyError):
        h.last("kl")


def test_history_keeps_every_steps_batch_loss_and_they_average_to_the_epoch_means():
    x = _data(100)                                                  # 4 steps of 32, 32, 32 and 4 per epoch
    h = fit(_model(), x, epochs=3, lr=3e-3, batch_size=32, seed=5, progress=False)
    assert set(h.steps) == set(h.train) and all(len(v) == 3 * 4 for v in h.steps.values())
    sizes = torch.tensor([32.0, 32, 32, 4])
    for k in h.train:
        per_step = torch.tensor(h.steps[k]).reshape(3, 4)
        assert torch.allclose((per_step * sizes).sum(1) / 100, torch.tensor(h.train[k]), rtol=1e-6)
    first = torch.randperm(100, generator=torch.Generator().manual_seed(5))[:32]   # fit's first mini-batch
    with torch.no_grad():
        assert math.isclose(h.steps["loss"][0], _model()(x[first]).loss.item(), rel_tol=1e-6)  # before any update


def test_history_smoothed_is_a_centred_running_mean_of_the_steps():
    h = History(steps={"kl": [float(v) for v in range(10)], "loss": [0.0, 4.0, 0.0, 4.0]})
    centres, means = h.smoothed("kl", window=4)
    assert torch.allclose(means, torch.tensor([sum(range(i, i + 4)) / 4 for i in range(7)], dtype=torch.float64))
    assert torch.allclose(centres, means)                          # a linear ramp: the mean sits at the centre
    assert h.smoothed("loss", window=2)[1].tolist() == [2.0, 2.0, 2.0]
    with pytest.raises(KeyError, match="recon"):
        h.smoothed("recon")
    with pytest.raises(ValueError, match="window"):
        h.smoothed("loss", window=5)


def test_fit_is_deterministic_with_a_seed():
    x = _data()
    h1 = fit(_model(), x, epochs=3, batch_size=32, seed=7, progress=False)
    h2 = fit(_model(), x, epochs=3, batch_size=32, seed=7, progress=False)
    h3 = fit(_model(), x, epochs=3, batch_size=32, seed=8, progress=False)
    assert h1.train == h2.train
    assert h1.train != h3.train


def test_fit_passes_each_batch_of_a_tuple_to_the_model_and_shows_progress(capsys):
    x = _data(64)
    h = fit(_model(), (x, x), epochs=2, progress=True)             # model(x_batch, target_batch)
    assert h.epochs == 2


class _Exploding(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        loss = (self.w * x.mean()) * (float("nan") if self.calls == 3 else 1.0)
        return Output(loss=loss.squeeze(), terms={"recon": loss.squeeze()})


def test_nan_guard_stops_with_a_clear_message():
    model = _Exploding()
    with pytest.raises(TrainingDiverged, match=r"diverged at epoch 1, step 3.*learning rate"):
        fit(model, _data(64), epochs=2, batch_size=16, progress=False)
    assert model.calls == 3  # stopped at once


def test_divergence_from_a_huge_learning_rate_is_caught():
    x = _data()                  # images; the absurd learning rate alone makes the parameters explode
    model = Autoencoder(AutoencoderConfig(image_shape=(1, 8, 8), code_size=4, hidden=(32,)))
    with pytest.raises(TrainingDiverged):
        fit(model, x, epochs=50, lr=1e6, progress=False)


@pytest.mark.parametrize("kwargs,msg", [
    (dict(epochs=0), "epochs"), (dict(epochs=1, lr=-1), "lr"), (dict(epochs=1, lr=float("nan")), "lr"),
    (dict(epochs=1, batch_size=0), "batch_size"), (dict(epochs=1, weight_decay=-1), "weight_decay"),
])
def test_fit_validates_arguments(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        fit(_model(), _data(16), progress=False, **kwargs)


def test_fit_rejects_bad_data():
    with pytest.raises(TypeError, match="floating"):
        fit(_model(), torch.zeros(4, 1, 8, 8, dtype=torch.long), epochs=1, progress=False)
    with pytest.raises(TypeError):
        fit(_model(), [1, 2, 3], epochs=1, progress=False)


def test_evaluate_weights_batches_by_size():
    x = _data(100)
    model = _model()
    a = evaluate(model, x, batch_size=100)
    b = evaluate(model, x, batch_size=30)
    assert math.isclose(a["loss"], b["loss"], rel_tol=1e-5)


def test_checkpoint_round_trip_rebuilds_the_model(tmp_path):
    model = _model()
    fit(model, _data(64), epochs=1, progress=False)
    path = save_checkpoint(model, tmp_path / "ae.safetensors")
    assert not list(tmp_path.glob("*.tmp"))
    loaded = load_checkpoint(path)
    assert isinstance(loaded, Autoencoder) and loaded.config == model.config
    x = _data(8)
    assert torch.equal(loaded(x).x_hat, model(x).x_hat)
    # loading into an existing model
    other = _model(seed=3)
    load_checkpoint(path, other)
    assert torch.equal(other(x).x_hat, model(x).x_hat)


def test_fit_writes_checkpoints(tmp_path):
    path = tmp_path / "ck" / "model.safetensors"
    fit(_model(), _data(64), epochs=2, progress=False, checkpoint=path)
    assert path.is_file() and isinstance(load_checkpoint(path), Autoencoder)


def test_corrupt_checkpoint_raises_clearly(tmp_path):
    model = _model()
    path = save_checkpoint(model, tmp_path / "m.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])           # truncated
    with pytest.raises(ValueError, match="not a valid checkpoint"):
        load_checkpoint(path)
    path.write_bytes(b"this is not a checkpoint")
    with pytest.raises(ValueError, match="not a valid checkpoint"):
        load_checkpoint(path)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.safetensors")


def test_checkpoint_that_does_not_fit(tmp_path):
    path = save_checkpoint(_model(), tmp_path / "m.safetensors")
    other = Autoencoder(AutoencoderConfig(image_shape=(1, 8, 8), code_size=5, hidden=(32,)))
    with pytest.raises(ValueError, match="another config .*code_size: saved 4, this model 5"):
        load_checkpoint(path, other)


def test_failed_save_leaves_no_temporary_file(tmp_path, monkeypatch):
    import safetensors.torch

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", boom)
    with pytest.raises(OSError):
        save_checkpoint(_model(), tmp_path / "m.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_seed_everything_validates():
    with pytest.raises(ValueError):
        companion.seed_everything(-1)
    with pytest.raises(TypeError):
        companion.seed_everything(1.5)
    a = (companion.seed_everything(3), torch.rand(3))[1]
    b = (companion.seed_everything(3), torch.rand(3))[1]
    assert torch.equal(a, b)
    assert companion.get_device().type in ("cpu", "cuda", "mps")


def test_fit_uses_fused_adamw_and_it_matches_the_default_update():
    """fit's AdamW is PyTorch's fused kernel on CPU; the update must match the default
    multi-tensor AdamW to rounding, step for step."""
    from companion.models import VAE
    from companion.train import _adamw

    x = torch.rand(64, 1, 28, 28)
    companion.seed_everything(0)
    a = VAE(latent_size=2, hidden=(16,))
    b = VAE(latent_size=2, hidden=(16,))
    b.load_state_dict(a.state_dict())
    fused = _adamw(list(a.parameters()), 1e-2, 0.01, torch.device("cpu"))
    assert fused.defaults["fused"] is True
    plain = torch.optim.AdamW(b.parameters(), lr=1e-2, weight_decay=0.01)
    for step in range(5):
        for model, opt in ((a, fused), (b, plain)):
            torch.manual_seed(step)
            opt.zero_grad()
            model(x).loss.backward()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.allclose(p, q, rtol=1e-5, atol=1e-6)
    meta = _adamw([torch.zeros(2, device="meta", requires_grad=True)], 1e-3, 0.0, torch.device("meta"))
    assert not meta.defaults.get("fused")
