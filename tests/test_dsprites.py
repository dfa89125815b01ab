"""The procedural dSprites renderer: the factor grid, determinism, distinctness, symmetries."""
import math

import numpy as np
import pytest
import torch

from companion.data.dsprites import DSprites


@pytest.fixture(scope="module")
def ds32():
    return DSprites(32)


@pytest.fixture(scope="module")
def ds64():
    return DSprites(64)


def test_grid_size_and_values(ds32):
    assert ds32.factor_sizes == (3, 6, 40, 32, 32)
    assert ds32.num_combinations == 737_280
    scale, orientation = ds32.factor_values[1], ds32.factor_values[2]
    assert scale[0] == pytest.approx(0.5) and scale[-1] == pytest.approx(1.0)
    assert orientation[0] == 0 and orientation[-1] < 2 * math.pi
    assert np.allclose(np.diff(orientation), 2 * math.pi / 40)


def test_index_round_trip(ds32):
    index = torch.tensor([0, 1, 31, 32, 1023, 1024, 737_279])
    classes = ds32.classes_of(index)
    assert torch.equal(ds32.index_of(classes), index)
    assert classes[-1].tolist() == [2, 5, 39, 31, 31]
    assert classes[3].tolist() == [0, 0, 0, 1, 0]      # pos_y is the fastest factor


def test_sample_shapes_and_determinism(ds32):
    a, b = ds32.sample(300, seed=3), ds32.sample(300, seed=3)
    assert a.images.shape == (300, 1, 32, 32) and a.images.dtype == torch.float32
    assert a.classes.shape == (300, 5) and a.values.shape == (300, 5)
    assert torch.equal(a.images, b.images) and torch.equal(a.classes, b.classes)
    assert set(a.images.unique().tolist()) <= {0.0, 1.0}
    assert not torch.equal(a.classes, ds32.sample(300, seed=4).classes)
    assert torch.equal(ds32.render(a.classes), a.images)
    # Every factor value occurs with roughly its uniform frequency.
    big = ds32.sample(20_000, seed=0).classes
    for j, n in enumerate(ds32.factor_sizes):
        counts = torch.bincount(big[:, j], minlength=n).float()
        assert counts.min() > 0.6 * 20_000 / n


def test_every_sprite_is_inside_the_image_and_nonempty(ds64):
    # The largest sprites in the four corners of the position grid, at every orientation.
    c = torch.tensor([[s, 5, o, px, py] for s in range(3) for o in range(0, 40, 3)
                      for px in (0, 31) for py in (0, 31)])
    x = ds64.render(c)
    assert (x.sum((1, 2, 3)) > 50).all()
    border = torch.cat([x[..., 0, :], x[..., -1, :], x[..., :, 0], x[..., :, -1]], dim=-1)
    assert border.sum() == 0


def _same_after_step(ds, factor: int, step: int, n: int = 1500) -> torch.Tensor:
    c = ds.sample_classes(n, torch.Generator().manual_seed(factor))
    c2 = c.clone()
    c2[:, factor] = (c[:, factor] + step) % ds.factor_sizes[factor]
    return (ds.render(c) == ds.render(c2)).flatten(1).all(1)


@pytest.mark.parametrize("factor", range(5))
def test_one_step_in_any_factor_changes_the_image_at_64(ds64, factor):
    """At the original size neighbouring factor values give different images, except for a
    rare 9° turn of the smallest ellipse (about 4 pixels thick)."""
    same = _same_after_step(ds64, factor, 1, n=3000)
    assert same.float().mean() < 0.002


def test_orientation_steps_of_larger_sprites_always_show_at_64(ds64):
    c = ds64.sample_classes(3000, torch.Generator().manual_seed(11))
    c[:, 1] = c[:, 1].clamp(min=2)                    # scale ≥ 0.7
    c2 = c.clone()
    c2[:, 2] = (c[:, 2] + 1) % 40
    assert not (ds64.render(c) == ds64.render(c2)).flatten(1).all(1).any()


def test_neighbours_mostly_differ_at_32(ds32):
    """At 32×32 a step of one position is ~0.6 px, so a few neighbours coincide; a step of 2 never."""
    for factor in (3, 4):
        assert _same_after_step(ds32, factor, 1).float().mean() < 0.02
        assert not _same_after_step(ds32, factor, 2).any()


def test_shapes_differ_and_symmetries_hold(ds64):
    """Squares repeat every quarter turn (10 steps) and ellipses every half turn (20 steps);
    hearts have no rotational symmetry."""
    base = torch.tensor([[0, 5, o, 16, 16] for o in range(40)])
    square, ellipse, heart = (ds64.render(base.clone().index_fill_(1, torch.tensor([0]), s)) for s in range(3))
    assert not torch.equal(square[0], ellipse[0]) and not torch.equal(ellipse[0], heart[0])

    def agree(a, b):
        return (a == b).float().mean().item()

    for o in range(10):
        assert agree(square[o], square[o + 10]) > 0.998
        assert agree(square[o], square[o + 5]) < 0.995 or o % 5 == 0   # not a 1/8 turn symmetry
    for o in range(20):
        assert agree(ellipse[o], ellipse[o + 20]) > 0.998
    for o in range(1, 40):
        assert not torch.equal(heart[0], heart[o])


@pytest.mark.parametrize("classes, message", [
    ([[3, 0, 0, 0, 0]], "shape"),
    ([[0, 6, 0, 0, 0]], "scale"),
    ([[0, 0, 40, 0, 0]], "orientation"),
    ([[0, 0, 0, -1, 0]], "pos_x"),
    ([[0, 0, 0, 0, 32]], "pos_y"),
    ([[0, 0, 0, 0]], r"shape \(N, 5\)"),
])
def test_bad_factors_are_named(ds32, classes, message):
    with pytest.raises(ValueError, match=message):
        ds32.render(torch.tensor(classes))


def test_bad_arguments(ds32):
    with pytest.raises(TypeError, match="integers"):
        ds32.render(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="32×32 or 64×64"):
        DSprites(28)
    with pytest.raises(ValueError, match="n must be"):
        ds32.sample(-1)
    with pytest.raises(ValueError, match="grid positions"):
        ds32.classes_of(torch.tensor([737_280]))


def test_classes_for_values_and_names(ds32):
    c = ds32.classes_for("heart", scale=[0.5, 1.0], orientation=2 * math.pi - 0.01, pos_x=0.0, pos_y=1.0)
    assert c.tolist() == [[2, 0, 0, 0, 31], [2, 5, 0, 0, 31]]           # 2π − ε snaps back to 0
    c = ds32.classes_for(["square", "ellipse"], scale=0.71, orientation=math.pi / 2, pos_x=0.5)
    assert c[:, 0].tolist() == [0, 1] and c[0, 1].item() == 2 and c[0, 2].item() == 10
    assert torch.allclose(ds32.values_of(c)[:, 2], torch.tensor(math.pi / 2), atol=1e-6)


@pytest.mark.parametrize("kwargs, message", [
    (dict(shape="triangle"), "unknown shape 'triangle'"),
    (dict(scale=1.5), "scale must lie in"),
    (dict(scale=0.2), "scale must lie in"),
    (dict(pos_x=-0.1), "pos_x must lie in"),
    (dict(pos_y=float("nan")), "pos_y must be finite"),
])
def test_classes_for_rejects(ds32, kwargs, message):
    with pytest.raises(ValueError, match=message):
        ds32.classes_for(**kwargs)


def test_subset_keeps_the_varying_factors_and_renders_like_the_full_grid(ds32):
    sub = ds32.subset(shape="ellipse", scale=5, orientation=0, pos_y=range(8, 24))
    assert sub.factor_names == ("pos_x", "pos_y") and sub.factor_sizes == (32, 16)
    batch = sub.sample(300, seed=3)
    assert batch.classes.shape == (300, 2) and batch.values.shape == (300, 2)
    full = sub.full_classes(batch.classes)
    assert (full[:, 0] == 1).all() and (full[:, 1] == 5).all() and (full[:, 2] == 0).all()
    assert torch.equal(full[:, 3], batch.classes[:, 0]) and torch.equal(full[:, 4], batch.classes[:, 1] + 8)
    assert torch.equal(batch.images, ds32.render(full)) and torch.equal(sub.render(batch.classes), batch.images)
    assert torch.equal(batch.values, ds32.values_of(full)[:, 3:])
    assert torch.equal(sub.sample(300, seed=3).images, batch.images)       # seeded


def test_subset_metrics_see_only_the_varying_factors(ds32):
    from companion.metrics.disentanglement import evaluate
    sub = ds32.subset(shape=0, scale=5, orientation=0)
    true_factors = lambda x: torch.stack([x.flatten(1).float().argmax(1) % 32, x.flatten(1).float().argmax(1) // 32], 1)
    out = evaluate(lambda x: true_factors(x).double(), sub, points=40, mig_samples=2000)
    assert out["mi"].shape == (2, 2) and out["mig"] > 0.4                 # top-left pixel tracks x and y


@pytest.mark.parametrize("kept, message", [
    (dict(colour=1), "unknown factor"), (dict(shape="star"), "class index"), (dict(scale=6), "0…5"),
    (dict(pos_x=[1, 1]), "distinct"), (dict(pos_x=[]), "non-empty"), (dict(shape=0, scale=0, orientation=0,
                                                                          pos_x=0, pos_y=0), "every factor is fixed"),
])
def test_subset_rejects(ds32, kept, message):
    with pytest.raises(ValueError, match=message):
        ds32.subset(**kept)


def test_subset_classes_are_checked(ds32):
    sub = ds32.subset(pos_y=range(4))
    with pytest.raises(ValueError, match="0…3"):
        sub.render(torch.tensor([[0, 0, 0, 0, 4]]))
    with pytest.raises(ValueError, match=r"\(N, 5\)"):
        sub.render(torch.zeros(2, 3, dtype=torch.long))
