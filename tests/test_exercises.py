"""Every checker passes its reference solution and rejects plausible wrong answers."""
import math

import pytest
import torch

from companion.exercises import REGISTRY, check
from companion.data.corrupt import masking_noise
from companion.exercises.ch01_autoencoder import largest_angle_reference, pca_reconstruct_reference
from companion.exercises.ch02_denoising import expected_masking_error_reference
from companion.exercises.ch03_sparse import sparsity_penalty_reference
from companion.losses import kl_bernoulli
from companion.models import topk_sparsify


def _bernoulli_mask(x, p):
    return x * (torch.rand_like(x) >= p)                   # a random number of masked entries


def _same_mask_for_all(x, p):
    d = x[0].numel()
    keep = torch.ones(d)
    keep[torch.randperm(d)[:round(p * d)]] = 0
    return x * keep.view(1, *x.shape[1:])


def _scaled_instead_of_masked(x, p):
    return x * (1 - p)


def _kl(rho, r):
    return rho * torch.log(rho / r) + (1 - rho) * torch.log((1 - rho) / (1 - r))


def _neg_elbo(x, mu, lv, eps, decode, kl=True, detach=False):
    z = mu + torch.exp(0.5 * lv) * eps
    logits = decode(z.detach() if detach else z)
    recon = torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
    return (recon + kl * 0.5 * (mu ** 2 + lv.exp() - lv - 1).sum(1)).mean()


def _kl2(mq, lq, mp, lp):
    """D_KL(N(mq, diag e^lq) ‖ N(mp, diag e^lp)) per row, from torch.distributions."""
    dist = torch.distributions
    return dist.kl_divergence(dist.Independent(dist.Normal(mq, (0.5 * lq).exp()), 1),
                              dist.Independent(dist.Normal(mp, (0.5 * lp).exp()), 1))


def _qr_angle(a, b, radians=False, no_qr=False):
    qa, qb = (a, b) if no_qr else (torch.linalg.qr(a)[0], torch.linalg.qr(b)[0])
    c = torch.linalg.svdvals(qa.T @ qb).clamp(max=1.0).min().item()
    return math.acos(c) if radians else math.degrees(math.acos(c))


def _pca_no_centering(x_train, x, k):
    _, _, vh = torch.linalg.svd(x_train, full_matrices=False)
    w = vh[:k].T
    return x @ w @ w.T


def _pca_wrong_axis(x_train, x, k):
    mean = x_train.mean(0)
    u, _, _ = torch.linalg.svd((x_train - mean).T, full_matrices=False)
    w = u[:, -k:]  # smallest components instead of largest
    return mean + (x - mean) @ w @ w.T


WRONG = {
    "ae.mse": [
        lambda x_hat, x: ((x_hat - x) ** 2).mean(),                           # mean over pixels too
        lambda x_hat, x: ((x_hat - x) ** 2).sum(),                            # no batch mean
        lambda x_hat, x: ((x_hat - x) ** 2).flatten(1).sum(1),               # not reduced
        lambda x_hat, x: (x_hat - x).abs().flatten(1).sum(1).mean(),         # L1
    ],
    "ae.pca_reconstruct": [
        _pca_no_centering,
        _pca_wrong_axis,
        lambda x_train, x, k: pca_reconstruct_reference(x_train, x, k + 1),  # off by one
    ],
    "ae.largest_angle": [
        lambda a, b: _qr_angle(a, b, radians=True),
        lambda a, b: _qr_angle(torch.nn.functional.normalize(a, dim=0),              # columns normalised
                               torch.nn.functional.normalize(b, dim=0), no_qr=True),  # but not orthogonal
        lambda a, b: float(torch.rad2deg(torch.arccos(torch.linalg.svdvals(
            torch.linalg.qr(a)[0].T @ torch.linalg.qr(b)[0]).clamp(max=1).max()))),     # smallest angle
    ],
}

WRONG.update({
    "dae.masking_noise": [_bernoulli_mask, _same_mask_for_all, _scaled_instead_of_masked,
                          lambda x, p: masking_noise(x, 1 - p)],           # keeps p instead of masking it
    "dae.expected_masking_error": [
        lambda x, p: p * x.flatten(1).abs().sum(1),                          # no square
        lambda x, p: (1 - p) * (x ** 2).flatten(1).sum(1),                   # probability of keeping
        lambda x, p: p * (x ** 2).flatten(1).mean(1),                        # mean over entries
    ],
    "sae.kl_bernoulli": [
        lambda rho, r: _kl(r, torch.as_tensor(rho, dtype=r.dtype)),          # arguments swapped
        lambda rho, r: rho * torch.log(rho / r),                             # first term only
        lambda rho, r: _kl(rho, r) / torch.log(torch.tensor(2.0, dtype=r.dtype)),   # bits, not nats
    ],
    "sae.sparsity_penalty": [
        lambda a, rho, beta: beta * _kl(rho, a).mean(0).sum(),               # KL per example, then mean
        lambda a, rho, beta: beta * _kl(rho, a.mean(0)).mean(),              # mean over units
        lambda a, rho, beta: _kl(rho, a.mean(0)).sum(),                      # β forgotten
    ],
})

def _straight_through(z, k):
    sparse = topk_sparsify(z.detach(), k)
    return z + (sparse - z).detach()                     # right values, gradient to every unit


WRONG.update({
    "ks.topk": [
        lambda z, k: topk_sparsify(z.detach(), k),                           # gradient cut
        _straight_through,
        lambda z, k: topk_sparsify(z, min(k + 1, z.shape[1])) if k < z.shape[1] else torch.relu(z),  # k + 1
        lambda z, k: z * torch.zeros_like(z).scatter_(1, z.abs().topk(k, dim=1).indices, 1.0),  # largest |z|
        lambda z, k: torch.relu(z),                                          # ReLU is not top-k
    ],
    "ks.dead_units": [
        lambda c: int(((c != 0).sum(dim=1) == 0).sum()),                    # rows instead of columns
        lambda c: int(((c != 0).sum(dim=0) > 0).sum()),                     # live units
        lambda c: ((c != 0).sum(dim=0) == 0).float().mean().item(),         # a fraction
    ],
    "cae.sigmoid_jacobian": [
        lambda h, w: h[:, :, None] * w[None],                                # missing (1 - h)
        lambda h, w: ((h * (1 - h)) ** 2)[:, :, None] * w[None],            # squared derivative
        lambda h, w: w[None].expand(len(h), -1, -1).clone(),                  # ignores σ'
    ],
    "cae.penalty": [
        lambda h, w: (h * (1 - h)) @ (w ** 2).sum(dim=1),                    # (h(1-h)) not squared
        lambda h, w: ((h * (1 - h)) ** 2) @ w.sum(dim=1) ** 2,               # (Σ W)² instead of Σ W²
        lambda h, w: (((h * (1 - h)) ** 2) @ (w ** 2).sum(dim=1)).sum(),     # summed over the batch
    ],
})

WRONG.update({
    "vae.reparameterize": [
        lambda mu, lv, eps: mu + lv * eps,                                   # logvar used as σ
        lambda mu, lv, eps: mu + torch.exp(lv) * eps,                        # variance used as σ
        lambda mu, lv, eps: (mu + torch.exp(0.5 * lv) * eps).detach(),      # no gradient
    ],
    "vae.gaussian_kl": [
        lambda mu, lv: 0.5 * (mu ** 2 + lv.exp() - lv - 1).mean(dim=1),     # mean over dims
        lambda mu, lv: (mu ** 2 + lv.exp() - lv - 1).sum(dim=1),            # missing ½
        lambda mu, lv: 0.5 * (mu ** 2 + lv - lv.exp() - 1).sum(dim=1),      # σ² and log σ² swapped
    ],
    "vae.iw_bound": [
        lambda lw: torch.log(torch.exp(lw).mean(0)),                         # underflows to −inf
        lambda lw: lw.mean(0),                                               # the ELBO estimate
        lambda lw: torch.logsumexp(lw, dim=0),                               # forgot − log k
    ],
    "vae.kl_two_gaussians": [                                                # more in test_ch06_reading.py
        lambda mq, lq, mp, lp: _kl2(mp, lp, mq, lq),                        # the other direction
        lambda mq, lq, mp, lp: _kl2(mq, lq, mp, lp) / mq.shape[1],          # mean over dims
        lambda mq, lq, mp, lp: 2 * _kl2(mq, lq, mp, lp),                    # missing ½
    ],
    "vae.free_bits_kl": [                                                    # more in test_ch06_reading.py
        lambda mu, lv, k: 0.5 * (mu ** 2 + lv.exp() - lv - 1).sum(1).mean(),                     # no floor
        lambda mu, lv, k: (0.5 * (mu ** 2 + lv.exp() - lv - 1)).clamp(min=k).sum(1).mean(),      # per example
        lambda mu, lv, k: (0.5 * (mu ** 2 + lv.exp() - lv - 1)).mean(0).clamp(max=k).sum(),      # min, not max
    ],
    "vae.negative_elbo": [                                                   # more in test_ch06_reading.py
        lambda x, mu, lv, eps, dec: _neg_elbo(x, mu, lv, eps, dec, kl=False),             # KL forgotten
        lambda x, mu, lv, eps, dec: _neg_elbo(x, mu, lv, eps, dec, detach=True),          # no gradient to the encoder
    ],
})

WRONG.update({
    "beta.mig": [
        lambda mi, h: (mi.max(0).values / h).mean(),                          # largest MI, no gap
        lambda mi, h: (mi.topk(2, dim=0).values[0] - mi.topk(2, dim=0).values[1]).mean(),   # not normalised
        lambda mi, h: ((mi.topk(2, dim=1).values[:, 0] - mi.topk(2, dim=1).values[:, 1])).mean(),  # over factors
    ],
    "beta.capacity_loss": [
        lambda recon, kl, step, c_max, steps, gamma: recon + gamma * (kl - c_max).abs(),          # no schedule
        lambda recon, kl, step, c_max, steps, gamma: recon + gamma * (kl - c_max * step / steps).abs(),  # no cap
        lambda recon, kl, step, c_max, steps, gamma: recon + gamma * (kl - c_max * min(1.0, step / steps)),  # no |·|
    ],
    "beta.factor_vae_vote": [
        lambda codes, s: int(codes.var(dim=0).argmin()),                      # not normalised
        lambda codes, s: int((codes / s).var(dim=0).argmax()),                # largest variance
        lambda codes, s: int((codes / s).var(dim=1).argmin()),                # wrong axis
    ],
})

def _nearest_by_dot(z, e):
    return (z @ e.T).argmax(1)                                               # largest dot product


def _ema_sum_without_weight(z, idx, N, m, gamma):
    n = torch.bincount(idx, minlength=len(N)).to(z.dtype)
    s = torch.zeros_like(m).index_add_(0, idx, z)
    return (gamma * m + s) / (gamma * N + (1 - gamma) * n)[:, None]           # (1 − γ) missing on Σz


WRONG.update({
    "vq.nearest_code": [
        _nearest_by_dot,
        lambda z, e: torch.cdist(z, e).argmax(1),                            # farthest
        lambda z, e: torch.cdist(z, e).argmin(0),                            # wrong axis
    ],
    "vq.straight_through": [
        lambda z_e, e_k: e_k,                                                # no gradient to the encoder
        lambda z_e, e_k: z_e,                                                # not quantised
        lambda z_e, e_k: z_e + (e_k - z_e),                                  # gradient reaches e_k too
    ],
    "vq.ema_update": [
        lambda z, idx, N, m, g: (g * m + (1 - g) * torch.zeros_like(m).index_add_(0, idx, z)) / N[:, None],  # old N
        _ema_sum_without_weight,
        lambda z, idx, N, m, g: ((1 - g) * m + g * torch.zeros_like(m).index_add_(0, idx, z))
        / ((1 - g) * N + g * torch.bincount(idx, minlength=len(N)).to(z.dtype))[:, None],   # γ swapped
    ],
})

def _inverse_cdf(logits, temperature, u):
    cdf = torch.softmax(logits / temperature, dim=1).cumsum(dim=1)
    return torch.searchsorted(cdf, u[:, None].contiguous(), right=True)[:, 0].clamp(max=logits.shape[1] - 1)


WRONG.update({
    "vq2.causal_mask": [
        lambda n: torch.ones(n, n, dtype=torch.bool).triu(diagonal=0),      # hides the position itself
        lambda n: torch.ones(n, n, dtype=torch.bool).tril(diagonal=-1),     # hides the past
        lambda n: torch.ones(n, n).triu(diagonal=1),                         # not a boolean mask
    ],
    "vq2.sample_step": [
        lambda logits, t, u: _inverse_cdf(logits, 1.0, u),                  # temperature ignored
        lambda logits, t, u: _inverse_cdf(logits * t, 1.0, u),              # multiplied, not divided
        lambda logits, t, u: logits.argmax(dim=1),                          # greedy, not sampled
    ],
    "vq2.repeat_codes": [
        lambda top, f: top.repeat(1, f, f),                                  # tiles the grid
        lambda top, f: top.repeat_interleave(f, dim=1),                      # rows only
        lambda top, f: top.repeat_interleave(f, dim=1).repeat_interleave(f, dim=2).float(),   # not indices
    ],
})

def _j(x2, z1, z2, p_D, p_B1, p_T, p_B2, p_S):
    return p_D.log_prob(x2) + p_B1.log_prob(z1) + p_T.log_prob(z2) - p_B2.log_prob(z2) - p_S.log_prob(z1)


def _pairs(n, length, lo, hi, generator):
    t2 = torch.empty(n, dtype=torch.long)
    t1 = torch.empty(n, dtype=torch.long)
    for d in range(lo, hi + 1):                                          # a different but correct recipe
        rows = torch.arange(n)[torch.arange(n) % (hi - lo + 1) == d - lo]
        t1[rows] = torch.randint(0, length - d, (len(rows),), generator=generator)
        t2[rows] = t1[rows] + d
    return t1, t2


def _pairs_late_start(n, length, lo, hi, generator):
    t1 = torch.randint(0, length - hi, (n,), generator=generator)          # never late for short jumps
    return t1, t1 + torch.randint(lo, hi + 1, (n,), generator=generator)


def _pairs_clipped(n, length, lo, hi, generator):
    t1 = torch.randint(0, length - lo, (n,), generator=generator)
    return t1, (t1 + torch.randint(lo, hi + 1, (n,), generator=generator)).clamp(max=length - 1)


WRONG.update({
    "tdvae.assemble_J": [
        lambda x2, z1, z2, pD, pB1, pT, pB2, pS: _j(x2, z1, z2, pD, pB1, pT, pB2, pS) + 2 * pS.log_prob(z1),  # sign
        lambda x2, z1, z2, pD, pB1, pT, pB2, pS: pD.log_prob(x2) + pT.log_prob(z2) - pB2.log_prob(z2),  # 2 missing
        lambda x2, z1, z2, pD, pB1, pT, pB2, pS: _j(x2, z2, z1, pD, pB1, pT, pB2, pS),                 # z swapped
    ],
    "tdvae.sample_pairs": [_pairs_late_start, _pairs_clipped,
                           lambda n, length, lo, hi, g: _pairs(n, length, lo, hi, g)[0]],     # one tensor only
})

WRONG.update({
    "sae.best_cosine": [
        lambda u, f: (f @ u.T).max(dim=1).values,                                   # units not normalised
        lambda u, f: (torch.nn.functional.normalize(f, dim=1) @ torch.nn.functional.normalize(u, dim=1).T)
        .abs().max(dim=1).values,                                                   # |cos|: opposite counts
        lambda u, f: (torch.nn.functional.normalize(f, dim=1) @ torch.nn.functional.normalize(u, dim=1).T)
        .max(dim=0).values,                                                         # best feature per unit
    ],
    "fsq.round": [
        lambda z, l: torch.round((l - 1) / 2 * torch.tanh(z)) / (l // 2),             # no offset for even levels
        lambda z, l: torch.round(l // 2 * torch.tanh(z)) / (l // 2),                  # ⌊ℓ/2⌋ tanh: ℓ + 1 levels when even
        lambda z, l: torch.round((l - 1) / 2 * torch.tanh(z)),                        # not divided by ⌊ℓ/2⌋
    ],
})


def _fsq_round(z, levels):
    """FSQ for one dimension, written from eq-fsq of chapter 11 in NumPy."""
    import numpy as np

    half, offset = (levels - 1) / 2, 0.5 if levels % 2 == 0 else 0.0
    h = half * np.tanh(z.double().numpy() + np.arctanh(0.999 * offset / half)) - offset
    return torch.from_numpy(np.round(h) / (levels // 2)).to(z.dtype)


def _best_cosine(units, features):
    """Each feature's best cosine by a loop over the units, in float64."""
    best = []
    for f in features.double():
        best.append(max(float(f @ u / (f.norm() * u.norm())) for u in units.double()))
    return torch.tensor(best, dtype=features.dtype)


REFERENCE = {
    "sae.best_cosine": _best_cosine,
    "fsq.round": _fsq_round,
    "ae.mse": lambda x_hat, x: ((x_hat - x) ** 2).flatten(1).sum(1).mean(),
    "ae.pca_reconstruct": pca_reconstruct_reference,
    "ae.largest_angle": lambda a, b: _qr_angle(a, b),
    "dae.masking_noise": masking_noise,
    "dae.expected_masking_error": expected_masking_error_reference,
    "sae.kl_bernoulli": lambda rho, r: _kl(rho, r),
    "sae.sparsity_penalty": lambda a, rho, beta: beta * _kl(rho, a.mean(0)).sum(),
    "ks.topk": lambda z, k: z * torch.zeros_like(z).scatter_(1, z.topk(k, dim=1).indices, 1.0),
    "ks.dead_units": lambda c: int(((c != 0).sum(dim=0) == 0).sum()),
    "cae.sigmoid_jacobian": lambda h, w: (h * (1 - h))[:, :, None] * w[None],
    "cae.penalty": lambda h, w: ((h * (1 - h)) ** 2) @ (w ** 2).sum(dim=1),
    "vae.reparameterize": lambda mu, lv, eps: mu + torch.exp(0.5 * lv) * eps,
    "vae.gaussian_kl": lambda mu, lv: 0.5 * (mu ** 2 + lv.exp() - lv - 1).sum(dim=1),
    "vae.negative_elbo": lambda x, mu, lv, eps, dec: _neg_elbo(x, mu, lv, eps, dec),
    "vae.kl_two_gaussians": lambda mq, lq, mp, lp: _kl2(mq, lq, mp, lp),
    "vae.free_bits_kl": lambda mu, lv, k: (0.5 * (mu ** 2 + lv.exp() - lv - 1)).mean(0).clamp(min=k).sum(),
    "beta.mig": lambda mi, h: ((mi.sort(dim=0).values[-1] - mi.sort(dim=0).values[-2]) / h).mean(),
    "beta.capacity_loss": lambda recon, kl, step, c_max, steps, gamma: recon + gamma * (kl - c_max * min(1, step / steps)).abs(),
    "beta.factor_vae_vote": lambda codes, s: int(torch.argmin((codes / s).var(dim=0))),
    "vq.nearest_code": lambda z, e: torch.cdist(z, e).argmin(1),
    "vq.straight_through": lambda z_e, e_k: z_e + (e_k - z_e).detach(),
    "vq.ema_update": lambda z, idx, N, m, g: (g * m + (1 - g) * torch.zeros_like(m).index_add_(0, idx, z))
    / (g * N + (1 - g) * torch.bincount(idx, minlength=len(N)).to(z.dtype))[:, None],
    "vq2.causal_mask": lambda n: torch.arange(n)[None, :] > torch.arange(n)[:, None],
    "vq2.sample_step": _inverse_cdf,
    "vq2.repeat_codes": lambda top, f: top[:, :, None, :, None].expand(-1, -1, f, -1, f).reshape(
        len(top), top.shape[1] * f, top.shape[2] * f),
    "vq2.causal_mask": lambda n: torch.arange(n)[None, :] > torch.arange(n)[:, None],
    "vq2.sample_step": _inverse_cdf,
    "vq2.repeat_codes": lambda top, f: top[:, :, None, :, None].expand(-1, -1, f, -1, f).reshape(
        len(top), top.shape[1] * f, top.shape[2] * f),
    "tdvae.assemble_J": _j,
    "tdvae.sample_pairs": _pairs,
    "vae.iw_bound": lambda lw: torch.logsumexp(lw, dim=0) - torch.log(torch.tensor(float(lw.shape[0]), dtype=lw.dtype)),
}


def test_every_registered_exercise_is_tested():
    assert set(REGISTRY) == set(WRONG) == set(REFERENCE)


@pytest.mark.parametrize("exercise_id", sorted(REFERENCE))
def test_reference_passes(exercise_id):
    assert check(exercise_id, REFERENCE[exercise_id], verbose=False)
    assert check(exercise_id, REGISTRY[exercise_id].reference, verbose=False)


@pytest.mark.parametrize("exercise_id,index", [(k, i) for k, v in WRONG.items() for i in range(len(v))])
def test_wrong_answers_fail_with_a_message(exercise_id, index, capsys):
    result = check(exercise_id, WRONG[exercise_id][index])
    assert not result
    out = capsys.readouterr().out
    assert out.startswith("❌") and "Hint:" in out and "case" in out


def test_exceptions_and_wrong_types_are_reported():
    result = check("ae.mse", lambda a, b: 1 / 0, verbose=False)
    assert not result and "ZeroDivisionError" in result.message
    result = check("ae.mse", lambda a, b: None, verbose=False)
    assert "expected a torch.Tensor" in result.message
    result = check("ae.pca_reconstruct", lambda xt, x, k: x[:, :k], verbose=False)
    assert "expected shape" in result.message
    result = check("ae.largest_angle", lambda a, b: "ninety", verbose=False)
    assert "expected a number" in result.message


def test_unknown_exercise_and_non_callable():
    with pytest.raises(ValueError, match="unknown exercise"):
        check("nope", lambda: None)
    with pytest.raises(TypeError):
        check("ae.mse", 3)


def test_an_answer_that_changes_its_inputs_fails_and_says_so():
    """Right values computed by editing an input in place: the bug that makes a clean target
    noisy. Each is caught and named."""
    from companion.exercises import check

    def mse_in_place(x_hat, x):
        return x_hat.sub_(x).pow_(2).flatten(1).sum(1).mean()

    def masking_in_place(x, p):
        d = x[0].numel()
        k = round(p * d)
        drop = torch.rand(x.shape[0], d).argsort(dim=1)[:, :k]
        flat = x.view(len(x), -1)
        flat.scatter_(1, drop, 0.0)
        return x

    def topk_through_data(z, k):
        mask = torch.zeros_like(z).scatter_(1, z.topk(k, dim=1).indices, 1.0)
        z.data.mul_(mask)
        return z * 1.0

    for exercise, answer, name in (("ae.mse", mse_in_place, "x_hat"), ("dae.masking_noise", masking_in_place, "x"),
                                   ("ks.topk", topk_through_data, "z")):
        result = check(exercise, answer, verbose=False)
        assert not result and f"changed {name} in place" in result.message, (exercise, result.message)


def test_an_endless_answer_is_stopped():
    import time

    from companion.exercises import check

    def forever(x_hat, x):
        while True:
            time.sleep(0.01)

    start = time.perf_counter()
    result = check("ae.mse", forever, verbose=False, time_limit=0.3)
    assert not result and "more than 0.3 s" in result.message and time.perf_counter() - start < 5


def test_the_time_limit_survives_a_broad_except_and_keeps_an_outer_timer():
    import signal
    import time

    from companion.exercises import check

    def stubborn(x_hat, x):
        while True:
            try:
                time.sleep(0.01)
            except Exception:                   # a reader's catch-all cannot swallow the limit
                pass

    fired = []
    previous = signal.signal(signal.SIGALRM, lambda *a: fired.append(1))
    signal.setitimer(signal.ITIMER_REAL, 5.0)
    try:
        result = check("ae.mse", stubborn, verbose=False, time_limit=0.2)
        left, _ = signal.getitimer(signal.ITIMER_REAL)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert not result and "more than 0.2 s" in result.message
    assert 3.0 < left < 5.0 and not fired            # the outer timer runs on, its handler back
