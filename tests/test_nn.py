import pytest
import torch

from companion.nn import MLP, ConvDecoder, ConvEncoder, activation


def test_mlp_shapes_and_flatten():
    m = MLP(12, (8, 4), 3)
    assert m(torch.randn(5, 3, 2, 2)).shape == (5, 3)
    assert len([l for l in m if isinstance(l, torch.nn.Linear)]) == 3


def test_mlp_without_hidden_is_one_linear_map():
    m = MLP(6, (), 2)
    assert sum(isinstance(l, torch.nn.Linear) for l in m) == 1


@pytest.mark.parametrize("shape,channels", [((1, 28, 28), (8, 16)), ((3, 64, 64), (4, 8, 8)), ((2, 8, 12), (4,))])
def test_conv_encoder_decoder_any_size(shape, channels):
    enc = ConvEncoder(shape, channels, 5)
    dec = ConvDecoder(5, shape, channels[::-1])
    x = torch.randn(3, *shape)
    z = enc(x)
    assert z.shape == (3, 5)
    assert dec(z).shape == (3, *shape)


def test_bad_sizes_raise():
    with pytest.raises(ValueError, match="positive"):
        MLP(10, (-3,), 2)
    with pytest.raises(ValueError, match="divisible"):
        ConvEncoder((1, 28, 28), (8, 8, 8), 4)   # 28 not divisible by 8
    with pytest.raises(ValueError, match="channels, height, width"):
        ConvDecoder(4, (28, 28), (8,))
    with pytest.raises(ValueError, match="unknown activation"):
        activation("swishy")
    with pytest.raises(ValueError, match="expected input"):
        ConvEncoder((1, 8, 8), (4,), 2)(torch.randn(2, 1, 9, 9))
