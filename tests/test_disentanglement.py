"""Disentanglement metrics on synthetic codes whose answer is known, and on the renderer."""
import numpy as np
import pytest
import torch

from companion.data.dsprites import DSprites
from companion.metrics import disentanglement as D

SIZES = np.array(DSprites.factor_sizes)


def _normalised(classes):
    return classes / (SIZES - 1)


ROTATION = np.linalg.qr(np.random.default_rng(7).normal(size=(5, 5)))[0]
NOISE = np.random.default_rng(8)
CODES = {
    "identity": _normalised,
    "rotation": lambda c: _normalised(c) @ ROTATION,
    "noise": lambda c: NOISE.normal(size=c.shape),
}


def _scores(kind: str, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    f = CODES[kind]
    factors = D._uniform(SIZES, (10_000,), rng)
    a, b, labels = D.beta_vae_pairs(SIZES, 400, 64, rng)
    batches, labels_f = D.factor_vae_batches(SIZES, 400, 64, rng)
    return {
        "mig": D.mig(f(factors), factors),
        "beta_vae": D.beta_vae_score(f(a), f(b), labels),
        "factor_vae": D.factor_vae_score(f(batches), labels_f, f(factors).std(0), 5),
    }


@pytest.fixture(scope="module")
def scores():
    return {kind: _scores(kind) for kind in CODES}


def test_codes_equal_to_the_factors_score_near_perfectly(scores):
    s = scores["identity"]
    assert s["beta_vae"] == 1.0 and s["factor_vae"] == 1.0
    # 20 bins cannot hold all of 32 or 40 factor values, so MI falls a little short of H.
    assert s["mig"] > 0.85


def test_a_rotation_of_the_factors_scores_lower(scores):
    """All the information is still there, spread over several coordinates: the classifier
    metrics drop a little (they are lenient), MIG by more than half."""
    for metric in ("beta_vae", "factor_vae"):
        assert scores["rotation"][metric] < scores["identity"][metric] - 0.05, metric
    assert scores["rotation"]["mig"] < 0.5 * scores["identity"]["mig"]


def test_noise_scores_near_chance(scores):
    s = scores["noise"]
    assert s["mig"] < 0.02
    assert abs(s["beta_vae"] - 0.2) < 0.1         # 5 factors: chance is 1/5
    assert s["factor_vae"] < 0.35


def test_mig_is_invariant_to_permuting_and_rescaling_codes():
    rng = np.random.default_rng(1)
    factors = D._uniform(SIZES, (5000,), rng)
    codes = _normalised(factors) @ ROTATION[:, :4] + 0.1 * rng.normal(size=(5000, 4))
    codes = np.concatenate([codes, _normalised(factors)[:, 3:]], axis=1)
    base = D.mig(codes, factors)
    perm = rng.permutation(codes.shape[1])
    scale = rng.uniform(0.1, 10, size=codes.shape[1])
    shift = rng.normal(size=codes.shape[1])
    assert D.mig(codes[:, perm], factors) == pytest.approx(base, abs=1e-12)
    assert D.mig(codes * scale + shift, factors) == pytest.approx(base, abs=1e-9)


def test_mutual_information_matches_sklearn_and_entropy():
    from sklearn.metrics import mutual_info_score

    rng = np.random.default_rng(2)
    v = rng.integers(0, 6, size=(3000, 2))
    z = np.stack([v[:, 0] + rng.integers(0, 2, size=3000), rng.integers(0, 4, size=3000)], axis=1)
    mi = D.mutual_information(z, v)
    for j in range(2):
        for k in range(2):
            assert mi[j, k] == pytest.approx(mutual_info_score(z[:, j], v[:, k]), abs=1e-12)
    h = D.entropy(v)
    assert D.mutual_information(v, v).diagonal() == pytest.approx(h)
    assert h == pytest.approx(np.log(6), abs=0.01)


def test_mig_gaps_by_hand():
    mi = np.array([[0.9, 0.1], [0.3, 0.5], [0.0, 0.45]])
    h = np.array([1.0, 2.0])
    assert D.mig_gaps(mi, h) == pytest.approx([0.6, 0.025])


def test_discretize_edges():
    z = np.array([[0.0, 5.0], [0.5, 5.0], [1.0, 5.0]])
    assert D.discretize(z, bins=4).tolist() == [[0, 0], [2, 0], [3, 0]]


def test_samplers_fix_the_right_factor():
    rng = np.random.default_rng(3)
    a, b, labels = D.beta_vae_pairs(SIZES, 50, 16, rng)
    for p in range(50):
        assert np.array_equal(a[p, :, labels[p]], b[p, :, labels[p]])
        assert (a[p] < SIZES).all() and (a[p] >= 0).all()
    c, labels = D.factor_vae_batches(SIZES, 50, 16, rng)
    for p in range(50):
        assert len(np.unique(c[p, :, labels[p]])) == 1
        others = [k for k in range(5) if k != labels[p]]
        assert all(len(np.unique(c[p, :, k])) > 1 for k in others if SIZES[k] > 3)


def test_evaluate_on_rendered_images_with_a_factor_reading_representation():
    """``evaluate`` renders and encodes; a representation that reads position off the image
    (centre of mass) scores MIG only for the two position factors."""
    ds = DSprites(32)
    grid = torch.arange(32, dtype=torch.float32)

    def centre_of_mass(x):
        m = x[:, 0]
        mass = m.sum((1, 2))
        return torch.stack([(m.sum(1) * grid).sum(1) / mass, (m.sum(2) * grid).sum(1) / mass], dim=1)

    r = D.evaluate(centre_of_mass, ds, points=200, mig_samples=4000, seed=0)
    assert r["mi"].shape == (2, 5)
    assert r["mi"][0, 3] > 0.7 and r["mi"][1, 4] > 0.7            # x ↔ pos_x, y ↔ pos_y
    assert r["mi"][0, :3].max() < 0.1 and r["mi"][1, :3].max() < 0.1
    # Two of five factors captured; with two coordinates, each gap is a difference of two entries.
    mi = r["mi"]
    assert r["mig"] == pytest.approx((abs(mi[0] - mi[1])).sum() / 5, abs=1e-9)
    assert 0.2 < r["mig"] < 0.4
    assert r["factor_vae"] > 0.3 and r["beta_vae"] > 0.3


def test_several_representations_share_the_rendered_images_and_score_as_alone(monkeypatch):
    """A dict of representations renders each image once and scores each exactly as a call of
    its own would; dsprites_report does the same for a dict of VAEs."""
    from companion.models import VAE

    ds = DSprites(32)
    reps = {"x": lambda x: x[:, 0].sum(1)[:, :4], "y": lambda x: x[:, 0].sum(2)[:, :3]}
    alone = {name: D.evaluate(f, ds, points=20, mig_samples=300, seed=1) for name, f in reps.items()}
    rendered = []
    render = ds.render
    monkeypatch.setattr(ds, "render", lambda c: rendered.append(len(c)) or render(c))
    together = D.evaluate(reps, ds, points=20, mig_samples=300, seed=1)
    assert sum(rendered) == 300 + 3 * 20 * 64                  # each image once, not once per representation
    for name in reps:
        for key in ("beta_vae", "factor_vae", "mig"):
            assert together[name][key] == alone[name][key]
        assert np.array_equal(together[name]["mi"], alone[name]["mi"])
    torch.manual_seed(0)
    vaes = {"a": VAE(image_shape=(1, 32, 32), latent_size=3, hidden=(8,)),
            "b": VAE(image_shape=(1, 32, 32), latent_size=2, hidden=(8,))}
    x = ds.sample(20, seed=0).images
    both = D.dsprites_report(vaes, ds, x, points=10, mig_samples=200)
    for name, vae in vaes.items():
        one = D.dsprites_report(vae, ds, x, points=10, mig_samples=200)
        assert {k: v for k, v in one.items() if k not in ("mi", "kl_per_dim")} == \
               {k: v for k, v in both[name].items() if k not in ("mi", "kl_per_dim")}


@pytest.mark.parametrize("call, error, message", [
    (lambda: D.mig(np.zeros((10, 2)), np.zeros((10, 2))), TypeError, "integers"),
    (lambda: D.mig(np.zeros(10), np.zeros((10, 2), int)), ValueError, "2-D"),
    (lambda: D.mig(np.full((10, 2), np.nan), np.zeros((10, 2), int)), ValueError, "NaN"),
    (lambda: D.mutual_information(np.zeros((9, 2), int), np.zeros((10, 2), int)), ValueError, "same number"),
    (lambda: D.mig_gaps(np.zeros((1, 2)), np.ones(2)), ValueError, "at least 2"),
    (lambda: D.mig_gaps(np.zeros((3, 2)), np.zeros(2)), ValueError, "entropy"),
    (lambda: D.discretize(np.zeros((3, 2)), bins=1), ValueError, "bins"),
    (lambda: D.beta_vae_score(np.zeros((4, 2, 3)), np.zeros((4, 2, 2)), np.zeros(4, int)), ValueError, "same shape"),
    (lambda: D.factor_vae_score(np.zeros((4, 2, 3)), np.zeros(4, int), np.ones(2), 5), ValueError, "global_std"),
    (lambda: D.factor_vae_score(np.zeros((4, 2, 3)), np.full(4, 5), np.ones(3), 5), ValueError, "num_factors"),
])
def test_bad_input(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_factor_of_each_reads_the_largest_share_per_coordinate():
    from companion.metrics.disentanglement import factor_of_each
    mi = np.array([[0.1, 0.7], [0.6, 0.2], [0.05, 0.04]])
    assert factor_of_each(mi, ("pos_x", "pos_y")) == [("pos_y", 0.7), ("pos_x", 0.6), ("pos_x", 0.05)]
