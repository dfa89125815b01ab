"""Faults a new user makes: training that explodes stops, a NaN batch changes no state, a
checkpoint loads only into the model it came from, inputs of the wrong kind are refused with
a message that says what was expected, and checkers mark any wrong answer instead of crashing."""
import pytest
import torch
from test_model_contract import SMALL, _images

import companion
from companion.exercises import REGISTRY as EXERCISES
from companion.exercises import check
from companion.models import VAE, VQVAE, Autoencoder
from companion.models.vq import VectorQuantizer
from companion.train import TrainingDiverged, fit, load_checkpoint, save_checkpoint

TRAINABLE = sorted(n for n in SMALL if n != "PCA")


def _data(name, copies=6):
    factory, data = SMALL[name]
    return torch.cat([data() for _ in range(copies)])


@pytest.mark.parametrize("name", TRAINABLE + ["chapter-1 sigmoid"])
def test_a_huge_learning_rate_stops_within_the_first_epoch(name):
    """lr = 1e6 explodes every family: the loss, the gradients or the parameters trip the guard
    in epoch 1 (the chapter-1 squared-error/sigmoid setup only through its parameters' norm)."""
    companion.seed_everything(0)
    if name == "chapter-1 sigmoid":
        model, x = Autoencoder(code_size=2, hidden=(8,), out_act="sigmoid"), _data("Autoencoder")
    else:
        model, x = SMALL[name][0](), _data(name)
    with pytest.raises(TrainingDiverged, match=r"at epoch 1, step \d+: .*Lower the learning rate"):
        fit(model, x, epochs=3, lr=1e6, batch_size=4, progress=False)


def test_ordinary_training_does_not_trip_the_guard():
    companion.seed_everything(0)
    history = fit(VAE(latent_size=2, hidden=(16,)), _images(n=64), epochs=3, lr=1e-3, batch_size=16, progress=False)
    assert history.epochs == 3


def test_the_guard_stops_on_a_loss_that_rises_a_thousandfold():
    class Rising(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            from companion.models.base import Output
            return Output(loss=self.w * 0 + (1.0 if self.calls == 1 else 5e3))

    with pytest.raises(TrainingDiverged, match="rose from 1 at the first step to 5000"):
        fit(Rising(), torch.zeros(8, 1), epochs=1, batch_size=4, progress=False)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_a_nan_batch_changes_no_buffer(name):
    """A NaN input is refused before anything runs; a NaN inside the model (poisoned weights)
    gives a NaN loss but leaves every buffer (codebooks, EMA sums, usage, schedules) as it was."""
    factory, data = SMALL[name]
    companion.seed_everything(0)
    model = factory().train()
    x = data()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    if x.is_floating_point():
        bad = x.clone()
        bad.view(-1)[0] = float("nan")
        with pytest.raises(ValueError, match="NaN"):
            model(bad)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("nan"))
    poisoned = {k: v.clone() for k, v in model.named_buffers()}
    if list(model.parameters()):
        try:
            assert not torch.isfinite(model(x).loss)
        except ValueError as e:                     # or a clear refusal of the NaN it met inside
            assert "nan" in str(e).lower()
    after = dict(model.named_buffers())
    assert all(torch.equal(poisoned[k], after[k]) for k in poisoned), name
    if x.is_floating_point():
        assert all(torch.equal(before[k], after[k]) for k in after), name


def test_a_nan_encoder_output_leaves_the_ema_codebook_bit_identical():
    q = VectorQuantizer(8, 4, ema=True, restart_dead=True).train()
    state = {k: v.clone() for k, v in q.state_dict().items()}
    z = torch.randn(2, 4, 3, 3)
    z[0, 0, 0, 0] = float("nan")
    q(z.requires_grad_())
    assert all(torch.equal(state[k], v) for k, v in q.state_dict().items())


def test_a_checkpoint_loads_only_into_its_own_class_and_config(tmp_path):
    path = save_checkpoint(Autoencoder(code_size=2, hidden=(8,), likelihood="bernoulli"), tmp_path / "ae.safetensors")
    with pytest.raises(ValueError, match="likelihood: saved 'bernoulli', this model 'gaussian'"):
        load_checkpoint(path, Autoencoder(code_size=2, hidden=(8,)))
    with pytest.raises(ValueError, match="act: saved 'relu', this model 'tanh'"):
        load_checkpoint(path, Autoencoder(code_size=2, hidden=(8,), likelihood="bernoulli", act="tanh"))
    denoising = SMALL["DenoisingAutoencoder"][0]
    with pytest.raises(ValueError, match="holds a Autoencoder, not a DenoisingAutoencoder"):
        load_checkpoint(path, denoising())
    same = load_checkpoint(path, Autoencoder(code_size=2, hidden=(8,), likelihood="bernoulli"))
    assert same.config.likelihood == "bernoulli"


@pytest.mark.parametrize("bad, error, words", [
    (lambda x: x.double(), TypeError, "torch.float32 inputs"),
    (lambda x: x[:0], ValueError, "empty batch"),
    (lambda x: x * 255, ValueError, "divide 0…255"),
    (lambda x: x.view(len(x), -1), ValueError, "expected input of shape"),
    (lambda x: x.long(), TypeError, "floating-point"),
])
def test_image_models_refuse_bad_inputs_by_one_rule(bad, error, words):
    for model in (Autoencoder(code_size=2, hidden=(8,), likelihood="bernoulli"), VAE(latent_size=2, hidden=(8,)),
                  VQVAE(num_codes=8, code_dim=4, channels=(4, 8))):
        with pytest.raises(error, match=words):
            model(bad(_images()))
    tdvae = SMALL["TDVAE"][0]()
    with pytest.raises(error):
        tdvae(bad(torch.rand(2, 6, 1, 28, 28)))


def test_the_dtype_check_follows_the_model_through_conversions():
    model = VAE(latent_size=2, hidden=(8,))
    x = _images()
    model(x)                                         # float32: the cached dtype is float32
    model.double()
    model(x.double())                                # the cache was dropped by .double()
    with pytest.raises(TypeError, match="torch.float64 inputs"):
        model(x)
    model.load_state_dict(VAE(latent_size=2, hidden=(8,)).state_dict())   # copies into float64 storage
    model(x.double())
    model.float()
    model(x)


def test_fit_scans_the_data_once_and_still_refuses_bad_batches():
    from companion import losses
    from companion.train import _checked_range, _cut

    x = _images()
    assert _checked_range(x) == (x.min().item(), x.max().item())
    batch = _cut(x, torch.arange(2), _checked_range(x), torch.device("cpu"))
    assert losses.finite_range(batch, "b") == _checked_range(x)          # no second scan
    assert _checked_range(torch.arange(4)) is None                       # integer data: nothing to scan
    bad = x.clone()
    bad[-1, 0, 0, 0] = float("nan")
    assert _checked_range(bad) is None
    with pytest.raises(ValueError, match="NaN or infinite"):             # the model's own check, in its words
        fit(VAE(latent_size=2, hidden=(8,)), bad, epochs=1, batch_size=2, progress=False)
    with pytest.raises(ValueError, match="divide 0…255"):
        fit(VAE(latent_size=2, hidden=(8,)), x * 255, epochs=1, progress=False)


def test_layers_report_the_expected_width():
    from companion.nn import MLP, ConvDecoder
    with pytest.raises(ValueError, match="batch .* of 5 features, got shape"):
        MLP(5, (4,), 3)(torch.zeros(2, 6))
    with pytest.raises(ValueError, match="of 3 features"):
        ConvDecoder(3, (1, 8, 8), (4,))(torch.zeros(2, 4))


def test_metrics_and_losses_refuse_what_they_cannot_score():
    from companion import losses
    from companion.metrics import codebook_usage, importance_weighted_log_likelihood, reconstruction_error
    ae = Autoencoder(code_size=2, hidden=(8,))
    with pytest.raises(ValueError, match="N ≥ 1"):
        reconstruction_error(ae, _images()[:0])
    with pytest.raises(TypeError, match="vector-quantised"):
        codebook_usage(ae, _images())
    with pytest.raises(TypeError, match="probabilistic model"):
        importance_weighted_log_likelihood(ae, _images(), k=2)
    with pytest.raises(ValueError, match="does not broadcast"):
        losses.kl_bernoulli(torch.full((3,), 0.1), torch.full((4,), 0.2))
    nan = torch.full((2, 3), float("nan"))
    for fn in (losses.mse, losses.bce_with_logits):
        with pytest.raises(ValueError, match="NaN"):
            fn(torch.zeros(2, 3), nan)


WRONG_ANSWERS = {
    "None": lambda *a: None,
    "float32 scalar tensor": lambda *a: torch.zeros((), dtype=torch.float32),
    "wrong shape": lambda *a: torch.zeros(2, 7, 5),
    "raises": lambda *a: 1 / 0,
    "text": lambda *a: "forty-two",
    "long vector": lambda *a: torch.zeros(3, dtype=torch.long),
}


@pytest.mark.parametrize("exercise", sorted(EXERCISES))
def test_checkers_mark_any_wrong_answer_and_accept_float32(exercise):
    """No checker raises: every wrong answer is marked with a hint, and the reference's own
    answer in float32 passes (a right value in another float dtype is right)."""
    for label, fn in WRONG_ANSWERS.items():
        result = check(exercise, fn, verbose=False)
        assert not result.passed and "Hint:" in result.message, (exercise, label, result.message)
    reference = EXERCISES[exercise].reference

    def float32(*args):
        out = reference(*args)
        return out.float() if isinstance(out, torch.Tensor) and out.is_floating_point() else out

    assert check(exercise, float32, verbose=False).passed, exercise


def test_the_masking_checker_is_exact():
    """round(p·d) masked entries per example, not one more or fewer (one entry at p = 0 fails)."""
    from companion.data.corrupt import masking_noise

    def one_more(x, p):
        out = masking_noise(x, p).clone()
        flat = out.view(len(out), -1)
        for row in flat:                              # zero one more kept entry in each example
            kept = (row != 0).nonzero()
            if len(kept):
                row[kept[0]] = 0
        return out

    def one_fewer(x, p):
        out = masking_noise(x, p)
        flat, orig = out.view(len(out), -1), x.view(len(x), -1)
        for row, src in zip(flat, orig):
            gone = (row == 0).nonzero()
            if len(gone):
                row[gone[0]] = src[gone[0]]
        return out

    assert check("dae.masking_noise", masking_noise, verbose=False).passed
    assert not check("dae.masking_noise", one_more, verbose=False).passed
    assert not check("dae.masking_noise", one_fewer, verbose=False).passed


def test_a_refused_checkpoint_load_changes_nothing(tmp_path):
    """A checkpoint that does not fit (a layer resized after building) is refused before any
    weight is copied; a float16 checkpoint is rebuilt in float16."""
    companion.seed_everything(0)
    path = save_checkpoint(Autoencoder(code_size=2, hidden=(8,)), tmp_path / "a.safetensors")
    other = Autoencoder(code_size=2, hidden=(8,))
    other.decoder[-1] = torch.nn.Linear(8, 10)                   # not what was saved
    before = {k: v.clone() for k, v in other.state_dict().items()}
    with pytest.raises(ValueError, match="do not fit"):
        load_checkpoint(path, other)
    assert all(torch.equal(before[k], v) for k, v in other.state_dict().items())
    half = save_checkpoint(Autoencoder(code_size=2, hidden=(8,)).half(), tmp_path / "h.safetensors")
    assert next(load_checkpoint(half).parameters()).dtype == torch.float16
    with pytest.raises(ValueError, match="float16"):
        load_checkpoint(half, Autoencoder(code_size=2, hidden=(8,)))


def _state(model) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("stop", [RuntimeError("the callback failed"), KeyboardInterrupt()])
def test_fit_interrupted_keeps_the_mode_and_the_finished_epochs(stop):
    """A callback that raises, or Ctrl-C, after epoch 2: the model is back in the mode it had,
    and the exception carries the History of the two finished epochs."""
    model = Autoencoder(code_size=2, hidden=(8,)).eval()

    def callback(epoch, m):
        if epoch == 1:
            raise stop
        return {"epoch": epoch}

    with pytest.raises(type(stop)) as info:
        fit(model, _images(), epochs=5, batch_size=8, progress=False, on_epoch_end=callback)
    assert not model.training
    history = info.value.history
    assert history.epochs == 2 and history.tracked["epoch"] == [0.0] and history.seconds > 0


def test_fit_refuses_before_it_changes_anything(tmp_path):
    """A device it cannot train on, a checkpoint path that is a folder, a bad seed: refused
    before the model moves or trains."""
    model = Autoencoder(code_size=2, hidden=(8,))
    before = _state(model)
    for kwargs, error, words in (({"device": "meta"}, ValueError, "meta"),
                                 ({"checkpoint": tmp_path}, ValueError, "folder"),
                                 ({"seed": -1}, ValueError, "seed")):
        with pytest.raises(error, match=words):
            fit(model, _images(), epochs=1, progress=False, **kwargs)
        assert _same(before, _state(model)) and next(model.parameters()).device.type == "cpu"


def test_fit_trains_under_no_grad():
    model = Autoencoder(code_size=2, hidden=(8,))
    with torch.no_grad():
        history = fit(model, _images(), epochs=1, batch_size=8, progress=False)
    assert history.epochs == 1


def test_pca_fit_refuses_nan_and_stays_unfitted():
    from companion.models import PCA
    x = _images()
    x[0, 0, 0, 0] = float("nan")
    pca = PCA(2)
    with pytest.raises(ValueError, match="NaN"):
        pca.fit(x)
    assert pca.config.image_shape is None
    with pytest.raises(RuntimeError, match="not fitted"):
        pca.encode(_images())
    with pytest.raises(TypeError, match="torch.Tensor"):
        pca.fit(_images().numpy())


def test_checkpoints_from_another_version_or_damaged_are_refused_clearly(tmp_path):
    from safetensors.torch import save_file
    model = Autoencoder(code_size=2, hidden=(8,))
    path = save_checkpoint(model, tmp_path / "a.safetensors")
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    import json
    meta = {"class": "Autoencoder", "format": "companion-checkpoint-1",
            "config": json.dumps({**json.loads(_meta(path)["config"]), "new_field": 1})}
    save_file(tensors, str(tmp_path / "newer.safetensors"), metadata=meta)
    with pytest.raises(ValueError, match="another version"):
        load_checkpoint(tmp_path / "newer.safetensors")
    save_file(tensors, str(tmp_path / "bad.safetensors"), metadata={**meta, "config": "{not json"})
    with pytest.raises(ValueError, match="not JSON"):
        load_checkpoint(tmp_path / "bad.safetensors")


def _meta(path):
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f:
        return f.metadata()


def test_reproduce_checks_its_json_path_before_training(tmp_path, monkeypatch):
    from companion import experiments
    monkeypatch.setattr(experiments.get("autoencoder"), "run", lambda *a, **k: pytest.fail("it trained"))
    with pytest.raises(ValueError, match="is a folder"):
        experiments.reproduce("autoencoder", "smoke", json_path=tmp_path)
