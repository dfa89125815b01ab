"""TD-VAE (chapter 10): the sequence data, the four distributions, J(t1, t2) and rollouts."""
import math

import pytest
import torch
from torch import distributions as D

import companion
from companion.data.sequences import dot_position, moving_digits, oscillator
from companion.models import TDVAE, TDVAEConfig
from companion.train import fit, load_checkpoint, save_checkpoint

TERMS = {"decoder", "belief_t1", "transition", "belief_t2", "smoothing"}


def _digits(n=6, size=8):
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 1, size, size, generator=g), torch.arange(n)


def _model(**kw):
    companion.seed_everything(0)
    cfg = dict(frame_shape=(1, 8, 8), belief_size=12, z_size=3, hidden=16, jumps=(1, 3), pairs=5)
    cfg.update(kw)
    return TDVAE(TDVAEConfig(**cfg))


# ------------------------------------------------------------------------------------ data
def test_moving_digits_roll_one_pixel_per_step_and_wrap():
    images, labels = _digits()
    s = moving_digits(images, labels, length=10, n=20, seed=3)
    assert s.frames.shape == (20, 10, 1, 8, 8) and s.position.shape == s.velocity.shape == (20, 10)
    assert set(s.velocity.unique().tolist()) <= {-1.0, 1.0}
    for i in range(20):
        digit = images[s.labels[i]]
        for t in range(10):
            assert torch.equal(s.frames[i, t], torch.roll(digit, int(s.position[i, t]), dims=-1))
    step = (s.position[:, 1:] - s.position[:, :-1]) % 8
    assert torch.equal(step, (s.velocity[:, 1:] % 8))                     # ±1 per step, modulo the width
    assert torch.equal(moving_digits(images, labels, length=10, n=20, seed=3).frames, s.frames)   # seeded


def test_moving_digits_rejects_bad_input():
    images, labels = _digits()
    with pytest.raises(ValueError, match="length"):
        moving_digits(images, length=1)
    with pytest.raises(ValueError, match="images"):
        moving_digits(images[0])
    with pytest.raises(ValueError, match="labels"):
        moving_digits(images, labels[:3])


@pytest.mark.parametrize("render", ["dot", "signal"])
def test_oscillator_state_and_rendering(render):
    s = oscillator(50, 30, render=render, seed=1, noise=0.0)
    assert s.position.shape == s.velocity.shape == (50, 30)
    assert torch.allclose(s.position[:, 1:] - s.position[:, :-1], s.velocity[:, 1:], atol=1e-6)   # p' = p + v'
    energy = s.position[:, :-1] ** 2 + (s.velocity[:, 1:] / (2 * math.pi / 12)) ** 2
    assert (energy.std(dim=1) / energy.mean(dim=1)).max() < 0.5               # a bounded orbit, no blow-up
    if render == "dot":
        assert s.frames.shape == (50, 30, 1, 1, 32)
        peak = s.frames[:, :, 0, 0].argmax(dim=-1).float()
        assert ((peak - (s.position + 1) / 2 * 31).abs() <= 0.5 + 1e-4).all()   # the dot sits at the position
    else:
        assert s.frames.shape == (50, 30, 1)
        assert (s.frames[..., 0] - s.position).std() < 0.1


def test_dot_position_inverts_the_dot_rendering():
    s = oscillator(40, 15, amplitude=(0.3, 0.8), seed=2)                     # dots well inside the strip
    assert torch.allclose(dot_position(s.frames)[:, :, 0, 0], s.position, atol=1e-3)
    with pytest.raises(ValueError, match="non-negative"):
        dot_position(-s.frames)
    with pytest.raises(ValueError, match="float"):
        dot_position(s.frames.long())


def test_oscillator_rejects_bad_input():
    with pytest.raises(ValueError, match="render"):
        oscillator(5, render="movie")
    with pytest.raises(ValueError, match="period"):
        oscillator(5, period=2.0)
    with pytest.raises(ValueError, match="amplitude"):
        oscillator(5, amplitude=(0.5, 1.5))


# ------------------------------------------------------------------------------- the model
def test_output_contract_and_J_is_the_sum_of_its_terms():
    m = _model()
    x = moving_digits(*_digits(), length=7, n=4).frames
    out = m(x)
    assert set(out.terms) == TERMS
    assert torch.allclose(out.loss, sum(out.terms.values()))
    assert out.x_hat.shape == x.shape and out.z.shape == (4, 7, 3)
    t1, t2 = m.sample_times(4, 7, generator=torch.Generator().manual_seed(0))
    terms = m.elbo_terms(x, t1, t2)
    assert all(v.shape == (4, 5) for v in terms.values())
    assert (terms["decoder"] > 0).all()                       # −log of a Bernoulli likelihood of grey pixels


def test_each_term_is_the_log_density_of_its_distribution():
    m = _model()
    x = moving_digits(*_digits(), length=7, n=3).frames
    t1, t2 = torch.tensor([[0], [2], [3]]), torch.tensor([[1], [5], [6]])
    torch.manual_seed(0)
    terms = m.elbo_terms(x, t1, t2)
    torch.manual_seed(0)                                           # replay the same two samples by hand
    b = m.beliefs(x)
    b1, b2 = b[torch.arange(3), t1[:, 0]][:, None], b[torch.arange(3), t2[:, 0]][:, None]
    q2 = m.belief(b2)
    z2 = q2.rsample()
    q1 = m.smoothing(z2, b1, b2)
    z1 = q1.rsample()

    def gauss(dist, z):                                            # the log-density, written out
        mu, sigma = dist.base_dist.loc, dist.base_dist.scale
        return (-0.5 * ((z - mu) / sigma) ** 2 - sigma.log() - 0.5 * math.log(2 * math.pi)).sum(-1)

    assert torch.allclose(terms["belief_t2"], gauss(q2, z2), atol=1e-5)
    assert torch.allclose(terms["smoothing"], gauss(q1, z1), atol=1e-5)
    assert torch.allclose(terms["belief_t1"], -gauss(m.belief(b1), z1), atol=1e-5)
    assert torch.allclose(terms["transition"], -gauss(m.transition(z1, t2 - t1), z2), atol=1e-5)
    x2 = x.flatten(2)[torch.arange(3), t2[:, 0]][:, None]
    logits = m.decoder(z2).base_dist.logits
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, x2, reduction="none").sum(-1)
    assert torch.allclose(terms["decoder"], bce, atol=1e-4)


def test_belief_and_smoothing_terms_estimate_a_kl():
    """E_{z1 ~ p_S}[log p_S(z1) − log p_B(z1 | b1)] = KL(p_S ‖ p_B): Monte Carlo vs closed form."""
    m = _model()
    x = moving_digits(*_digits(), length=7, n=2).frames
    t1, t2 = torch.tensor([[1], [2]]), torch.tensor([[3], [5]])
    with torch.no_grad():
        b = m.beliefs(x)
        b1, b2 = b[torch.arange(2), t1[:, 0]][:, None], b[torch.arange(2), t2[:, 0]][:, None]
        z2 = m.belief(b2).sample()
        p_s, p_b = m.smoothing(z2, b1, b2), m.belief(b1)
        z1 = p_s.sample((200_000,))
        mc = (p_s.log_prob(z1) - p_b.log_prob(z1)).mean(0)
        exact = D.kl_divergence(p_s, p_b)
    assert torch.allclose(mc, exact, rtol=0.02, atol=0.02)


def test_sample_times_cover_the_jump_range_inside_the_sequence():
    m = _model(pairs=2000)
    t1, t2 = m.sample_times(3, 9, generator=torch.Generator().manual_seed(0))
    delta = t2 - t1
    assert set(delta.unique().tolist()) == {1, 2, 3}
    assert t1.min() == 0 and t2.max() == 8 and (t2 <= 8).all()
    assert set(t1[delta == 3].unique().tolist()) == set(range(6))          # every valid t1 occurs


def test_beliefs_are_causal():
    m = _model()
    x = moving_digits(*_digits(), length=7, n=2).frames
    changed = x.clone()
    changed[:, 4:] = torch.rand_like(changed[:, 4:])
    with torch.no_grad():
        assert torch.allclose(m.beliefs(x)[:, :4], m.beliefs(changed)[:, :4])
        assert not torch.allclose(m.beliefs(x)[:, 4:], m.beliefs(changed)[:, 4:])


def test_rollout_and_predict_shapes_and_seeding():
    m = _model().eval()
    x = moving_digits(*_digits(), length=7, n=3).frames
    r = m.rollout(x, 2, 4, jump=2, generator=torch.Generator().manual_seed(0))
    assert r.shape == (3, 4, 1, 8, 8) and (r >= 0).all() and (r <= 1).all()
    assert torch.equal(r, m.rollout(x, 2, 4, jump=2, generator=torch.Generator().manual_seed(0)))
    assert m.predict(x, 2, 3, samples=5).shape == (3, 1, 8, 8)
    # predict computes each belief once and copies it: the same as rolling out copies of the sequences
    fast = m.predict(x, 2, 3, samples=5, generator=torch.Generator().manual_seed(1))
    copies = m.rollout(x.repeat_interleave(5, dim=0), 2, 1, jump=3, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(fast, copies[:, 0].view(3, 5, 1, 8, 8).mean(1))
    with pytest.raises(ValueError, match="t1"):
        m.predict(x, 7, 1)


@pytest.mark.parametrize("call, match", [
    (lambda m, x: m(x[:, :3]), "too short"),                                 # T < δ_max + 1
    (lambda m, x: m(x[:, :, :, :4]), r"expected input of shape \(B, T, 1, 8, 8\)"),
    (lambda m, x: m(x.long()), "floating-point"),
    (lambda m, x: m(x * 3), r"\[0, 1\]"),
    (lambda m, x: m.transition(torch.zeros(2, 3), 5), "jumps must be"),
    (lambda m, x: m.transition(torch.zeros(2, 3), 0), "jumps must be"),
    (lambda m, x: m.rollout(x, 9, 2), "t1"),
    (lambda m, x: m.rollout(x, 2, 0), "steps"),
    (lambda m, x: m.elbo_terms(x, torch.tensor([[3]] * 2), torch.tensor([[3]] * 2)), "t1 < t2"),
    (lambda m, x: m.sample_times(2, 3), "too short"),
    (lambda m, x: m.elbo_terms(x, torch.tensor([[1]] * 2), torch.tensor([[3]] * 2), torch.zeros(2, 7, 5)),
     "belief states"),
])
def test_bad_input_raises_clear_errors(call, match):
    m = _model()
    x = moving_digits(*_digits(), length=7, n=2).frames
    with pytest.raises((ValueError, TypeError), match=match):
        call(m, x)


@pytest.mark.parametrize("kwargs, field", [
    (dict(jumps=(0, 2)), "jumps"), (dict(jumps=(3, 2)), "jumps"), (dict(z_size=0), "z_size"),
    (dict(likelihood="poisson"), "likelihood"), (dict(frame_shape=()), "frame_shape"),
])
def test_config_rejects(kwargs, field):
    with pytest.raises(ValueError, match=field):
        TDVAEConfig(**kwargs)


def test_learns_the_oscillator_and_reloads(tmp_path):
    s = oscillator(200, 12, size=16, seed=0)
    companion.seed_everything(0)
    m = TDVAE(TDVAEConfig(frame_shape=(1, 1, 16), belief_size=16, z_size=2, hidden=16))
    before = m(s.frames).loss.item()
    fit(m, s.frames, epochs=4, lr=3e-3, batch_size=32, progress=False)
    torch.manual_seed(1)
    after = m(s.frames).loss.item()
    assert after < 0.8 * before
    path = save_checkpoint(m, tmp_path / "tdvae.safetensors")
    m2 = load_checkpoint(path)
    assert isinstance(m2, TDVAE) and m2.config == m.config
    assert torch.allclose(m2.beliefs(s.frames[:3]), m.beliefs(s.frames[:3]))


def test_sequence_metrics():
    from companion.data.sequences import circle
    from companion.metrics import belief_probe, jumpy_errors

    m = _model().eval()
    train = moving_digits(*_digits(), length=7, n=30, seed=0)
    test = moving_digits(*_digits(), length=7, n=10, seed=1)
    errs = jumpy_errors(m, test.frames, 3, (1, 2, 3), mean_frame=train.frames.mean((0, 1)))
    assert set(errs) == {"tdvae", "copy_last", "mean_frame"} and all(len(v) == 3 for v in errs.values())
    manual = (test.frames[:, 3] - test.frames[:, 5]).pow(2).flatten(1).sum(1).mean().item()
    assert errs["copy_last"][1] == pytest.approx(manual)
    with pytest.raises(ValueError, match="inside"):
        jumpy_errors(m, test.frames, 5, (1, 2, 3), mean_frame=train.frames.mean((0, 1)))
    c = circle(train, width=8)
    assert c.shape == (30, 7, 2) and torch.allclose(c.norm(dim=-1), torch.ones(30, 7))
    scores = belief_probe(m, train, test, {"position": lambda s: circle(s, 8), "velocity": lambda s: s.velocity})
    assert set(scores) == {"position", "velocity"} and all(s <= 1 for s in scores.values())
