import pytest
import torch

from companion.data.corrupt import KINDS, corrupt, gaussian_noise, masking_noise, salt_and_pepper


def _x(b=8, shape=(1, 10, 10)):
    return 0.1 + 0.8 * torch.rand(b, *shape, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("p", [0.0, 0.25, 0.5, 1.0])
def test_masking_forces_exactly_a_proportion_to_zero(p):
    x = _x()
    y = masking_noise(x, p, generator=torch.Generator().manual_seed(1))
    assert y.shape == x.shape
    zeros = (y == 0).flatten(1).sum(1)
    assert (zeros == round(p * 100)).all()
    assert torch.equal(y[y != 0], x[y != 0])           # the rest is untouched


def test_masks_differ_between_examples_and_repeat_with_a_seed():
    x = _x()
    a = masking_noise(x, 0.5, generator=torch.Generator().manual_seed(3))
    b = masking_noise(x, 0.5, generator=torch.Generator().manual_seed(3))
    c = masking_noise(x, 0.5, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    masks = (a == 0).flatten(1)
    assert not (masks == masks[0]).all()


def test_gaussian_noise_statistics():
    x = torch.zeros(200, 1, 10, 10)
    y = gaussian_noise(x, 0.3, generator=torch.Generator().manual_seed(0))
    assert abs(y.std().item() - 0.3) < 0.01 and abs(y.mean().item()) < 0.01
    assert torch.equal(gaussian_noise(x, 0.0), x)


def test_salt_and_pepper():
    x = torch.full((50, 1, 10, 10), 0.5)
    y = salt_and_pepper(x, 0.3, generator=torch.Generator().manual_seed(0))
    changed = y != 0.5
    assert (changed.flatten(1).sum(1) == 30).all()
    assert set(y[changed].unique().tolist()) == {0.0, 1.0}
    assert 0.4 < (y[changed] == 1).float().mean() < 0.6


@pytest.mark.parametrize("fn,level,msg", [
    (masking_noise, 1.5, r"\[0, 1\]"), (masking_noise, -0.1, r"\[0, 1\]"),
    (salt_and_pepper, 2, r"\[0, 1\]"), (gaussian_noise, -1.0, "≥ 0"), (gaussian_noise, float("inf"), "finite"),
])
def test_bad_levels(fn, level, msg):
    with pytest.raises(ValueError, match=msg):
        fn(_x(), level)


def test_bad_inputs_and_kind():
    with pytest.raises(TypeError):
        masking_noise(torch.zeros(2, 3, dtype=torch.long), 0.5)
    with pytest.raises(ValueError, match="batch"):
        masking_noise(torch.zeros(3), 0.5)
    with pytest.raises(ValueError, match="unknown corruption"):
        corrupt(_x(), "blur", 0.5)
    for kind in KINDS:
        assert corrupt(_x(), kind, 0.2).shape == _x().shape
