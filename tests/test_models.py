import pytest
import torch

from companion import Output
from companion.models import PCA, Autoencoder, AutoencoderConfig


@pytest.mark.parametrize("kwargs", [
    dict(), dict(likelihood="bernoulli"), dict(out_act="sigmoid", hidden=(32, 16)), dict(hidden=(), linear=True),
    dict(architecture="conv", hidden=(8, 16), image_shape=(1, 28, 28)),
    dict(architecture="conv", hidden=(4,), image_shape=(3, 16, 16), code_size=7),
])
def test_output_contract(kwargs):
    cfg = AutoencoderConfig(**{"code_size": 3, **kwargs})
    model = Autoencoder(cfg)
    x = torch.rand(4, *cfg.image_shape)
    out = model(x)
    assert isinstance(out, Output)
    assert out.loss.dim() == 0 and set(out.terms) == {"recon"}
    assert out.x_hat.shape == x.shape and out.z.shape == (4, cfg.code_size)
    assert torch.equal(model.encode(x), out.z)
    assert torch.allclose(model.decode(out.z), out.x_hat)
    out.loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_bce_output_is_a_probability():
    model = Autoencoder(code_size=2, likelihood="bernoulli")
    out = model(torch.rand(3, 1, 28, 28))
    assert 0 <= out.x_hat.min() and out.x_hat.max() <= 1


def test_linear_autoencoder_is_linear():
    model = Autoencoder(code_size=2, hidden=(5,), linear=True, image_shape=(1, 4, 4))
    a, b = 0.3 * torch.rand(1, 1, 4, 4), 0.3 * torch.rand(1, 1, 4, 4)     # a + 2b stays an image
    f = lambda x: model.decode(model.encode(x)) - model.decode(model.encode(torch.zeros_like(x)))
    assert torch.allclose(f(a + 2 * b), f(a) + 2 * f(b), atol=1e-5)


@pytest.mark.parametrize("kwargs,field", [
    (dict(code_size=-2), "code_size"), (dict(code_size=0), "code_size"), (dict(code_size=2.5), "code_size"),
    (dict(hidden=(64, -1)), "hidden"), (dict(image_shape=(28, 28)), "image_shape"),
    (dict(likelihood="l1"), "likelihood"), (dict(architecture="rnn"), "architecture"),
    (dict(linear=True, likelihood="bernoulli"), "linear"), (dict(act="swishy"), "activation"),
    (dict(architecture="conv", hidden=()), "hidden"),
])
def test_config_validation_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        AutoencoderConfig(**kwargs)


def test_wrong_input_shape_and_dtype():
    model = Autoencoder(code_size=2)
    with pytest.raises(ValueError, match=r"expected input of shape \(B, 1, 28, 28\)"):
        model(torch.rand(4, 784))
    with pytest.raises(TypeError, match="floating-point"):
        model(torch.zeros(4, 1, 28, 28, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"decode expected input of shape \(B, 2\)"):
        model.decode(torch.zeros(4, 3))


def test_config_and_kwargs_are_exclusive():
    with pytest.raises(TypeError):
        Autoencoder(AutoencoderConfig(), code_size=3)


def test_pca_matches_sklearn_and_eckart_young():
    from sklearn.decomposition import PCA as SkPCA

    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 10, generator=g) @ torch.randn(10, 10, generator=g) + 3
    pca = PCA(3).fit(x)
    sk = SkPCA(3).fit(x.double().numpy())
    recon_sk = torch.from_numpy(sk.inverse_transform(sk.transform(x.double().numpy()))).float()
    assert torch.allclose(pca.decode(pca.encode(x)), recon_sk, atol=1e-4)
    # training error = sum of the discarded eigenvalues of the (1/n) covariance
    eig = torch.linalg.eigvalsh(torch.cov(x.T.double(), correction=0)).flip(0)
    assert torch.allclose(pca(x).loss.double(), eig[3:].sum(), rtol=1e-4)
    assert torch.allclose(pca.components.T @ pca.components, torch.eye(3), atol=1e-5)


def test_pca_errors():
    with pytest.raises(ValueError, match="code_size"):
        PCA(0)
    with pytest.raises(RuntimeError, match="not fitted"):
        PCA(2).encode(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="exceeds"):
        PCA(5).fit(torch.randn(3, 4))
    pca = PCA(2).fit(torch.randn(10, 4))
    with pytest.raises(ValueError, match=r"PCA.encode expected input of shape \(B, 4\)"):
        pca.encode(torch.zeros(3, 5))
