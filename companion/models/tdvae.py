r"""TD-VAE, the temporal-difference variational autoencoder (Gregor et al., 2019).

A state-space model over sequences x_1 … x_T with a **belief state** b_t = RNN(b_{t−1}, x_t)
that summarises the past, and four distributions, each a small module that returns a
``torch.distributions`` object:

* p_B(z | b)             belief: what the state is, given everything seen so far;
* p_T(z_{t2} | z_{t1}, δ) transition: where the state goes in a jump of δ = t2 − t1 steps;
* p_S(z_{t1} | z_{t2}, b_{t1}, b_{t2}) smoothing: where the state was at t1, knowing where it is at t2;
* p_D(x | z)             decoder: what a state looks like.

For a pair of times t1 < t2 the model maximises

    J(t1, t2) = E[ log p_D(x_{t2} | z_{t2}) + log p_B(z_{t1} | b_{t1}) + log p_T(z_{t2} | z_{t1})
                  − log p_B(z_{t2} | b_{t2}) − log p_S(z_{t1} | z_{t2}, b_{t1}, b_{t2}) ],

with z_{t2} ~ p_B(· | b_{t2}) and then z_{t1} ~ p_S(· | z_{t2}, b_{t1}, b_{t2}) (one reparameterised
sample each). The loss is −J averaged over the batch; its five terms are logged separately,
each with the sign it has in the loss.

One difference from the paper, on purpose: our transition also sees the jump length δ (one-hot),
so that a rollout with a fixed δ is well defined; the paper's MNIST model draws δ at random and its
transition predicts a mixture over jump lengths.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import distributions as D
from torch import nn

from companion import losses
from companion.models.base import (EncoderDecoder, Output, check_input, choice, finite_at_least, model_dtype,
                                   plain_fields, positive_int)
from companion.nn import MLP


@dataclass
class TDVAEConfig:
    """Hyper-parameters of :class:`TDVAE`; every field is validated.

    Attributes:
        frame_shape: shape of one frame, e.g. (1, 28, 28) or (1, 1, 32) or (1,).
        belief_size: size of the belief state b_t (an LSTM's hidden state).
        z_size: size of the state z.
        hidden: width of the frame embedding, of the transition's hidden layer and of the
            decoder's hidden layer. Belief and smoothing are linear maps of their inputs (in our
            runs, two-layer tanh heads on a narrow embedding learned far more slowly).
        jumps: (δ_min, δ_max), the range of jumps t2 − t1 drawn in training (inclusive).
        pairs: (t1, t2) pairs drawn per sequence per training step.
        likelihood: ``"bernoulli"`` (frames in [0, 1]) or ``"gaussian"`` (std ``obs_std``).
        obs_std: the Gaussian decoder's fixed standard deviation.
    """

    frame_shape: tuple[int, ...] = (1, 28, 28)
    belief_size: int = 64
    z_size: int = 8
    hidden: int = 128
    jumps: tuple[int, int] = (1, 4)
    pairs: int = 4
    likelihood: str = "bernoulli"
    obs_std: float = 0.1

    def __post_init__(self) -> None:
        plain_fields(self, one_tuple=("frame_shape",))
        self.frame_shape, self.jumps = tuple(self.frame_shape), tuple(self.jumps)
        if not self.frame_shape or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in self.frame_shape):
            raise ValueError(f"TDVAEConfig.frame_shape must be positive ints, got {self.frame_shape}")
        for name in ("belief_size", "z_size", "hidden", "pairs"):
            positive_int(self, name)
        if (len(self.jumps) != 2 or any(isinstance(j, bool) or not isinstance(j, int) for j in self.jumps)
                or not 1 <= self.jumps[0] <= self.jumps[1]):
            raise ValueError(f"TDVAEConfig.jumps must be (δ_min, δ_max) with 1 ≤ δ_min ≤ δ_max, got {self.jumps}")
        choice(self, "likelihood", losses.LIKELIHOODS)
        finite_at_least(self, "obs_std", 1e-6)


class GaussianHead(nn.Module):
    """A map from its input to a diagonal Gaussian over z: ``Independent(Normal(μ, σ), 1)``,
    through ReLU hidden layers of the given sizes (none: a linear map). With ``residual`` the
    mean is the first ``z_size`` inputs plus the network's output."""

    def __init__(self, in_features: int, hidden: list[int], z_size: int, residual: bool = False) -> None:
        super().__init__()
        self.net = MLP(in_features, hidden, 2 * z_size)
        self.z_size, self.residual = z_size, residual

    def forward(self, h: torch.Tensor) -> D.Distribution:
        mu, log_sigma = _last_axis(self.net, h).chunk(2, dim=-1)
        if self.residual:
            mu = mu + h[..., : self.z_size]
        return D.Independent(D.Normal(mu, F.softplus(log_sigma) + 1e-3), 1)


class TDVAE(EncoderDecoder):
    """TD-VAE on sequences (B, T, *frame_shape). ``forward`` draws ``pairs`` (t1, t2) per sequence
    and returns −J averaged over them, with the terms ``decoder`` (−log p_D), ``belief_t1``
    (−log p_B(z_t1|b_t1)), ``transition`` (−log p_T), ``belief_t2`` (+log p_B(z_t2|b_t2)) and
    ``smoothing`` (+log p_S); ``x_hat`` decodes the mean belief state at every step (filtering)
    and ``z`` holds those means (B, T, z_size)."""

    config_class = TDVAEConfig

    def __init__(self, config: TDVAEConfig | None = None, **kwargs) -> None:
        super().__init__(config, **kwargs)
        cfg = self.config
        d = 1
        for s in cfg.frame_shape:
            d *= s
        self.frame_size, self.num_jumps = d, cfg.jumps[1] - cfg.jumps[0] + 1
        h = cfg.hidden
        self.embed = MLP(d, [], h, out_act="relu")                                      # x_t → RNN input
        self.rnn = nn.LSTM(h, cfg.belief_size, batch_first=True)                        # b_t = RNN(b_{t−1}, x_t)
        self.p_belief = GaussianHead(cfg.belief_size, [], cfg.z_size)                   # p_B(z | b)
        self.p_transition = GaussianHead(cfg.z_size + self.num_jumps, [2 * h], cfg.z_size, residual=True)
        self.p_smoothing = GaussianHead(cfg.z_size + 2 * cfg.belief_size, [], cfg.z_size)
        self.decoder_net = MLP(cfg.z_size, [2 * h], d)                                   # p_D(x | z)

    # ----------------------------------------------------------------- the four distributions
    def belief(self, b: torch.Tensor) -> D.Distribution:
        """p_B(z | b)."""
        return self.p_belief(b)

    def transition(self, z: torch.Tensor, jump: int | torch.Tensor) -> D.Distribution:
        """p_T(z' | z, δ) for a jump δ (an int, or a tensor of ints shaped like z without its last axis)."""
        lo, hi = self.config.jumps
        delta = torch.as_tensor(jump, device=z.device)
        if delta.is_floating_point() or ((delta < lo) | (delta > hi)).any():
            raise ValueError(f"jumps must be whole numbers in {lo}…{hi} (the range trained on), got {jump}")
        onehot = F.one_hot((delta - lo).long(), self.num_jumps).to(z.dtype).expand(*z.shape[:-1], -1)
        return self.p_transition(torch.cat([z, onehot], dim=-1))

    def smoothing(self, z2: torch.Tensor, b1: torch.Tensor, b2: torch.Tensor) -> D.Distribution:
        """p_S(z_t1 | z_t2, b_t1, b_t2)."""
        return self.p_smoothing(torch.cat([z2, b1, b2], dim=-1))

    def decoder(self, z: torch.Tensor) -> D.Distribution:
        """p_D(x | z) over flattened frames."""
        out = _last_axis(self.decoder_net, z)
        if self.config.likelihood == "bernoulli":
            return D.Independent(D.Bernoulli(logits=out, validate_args=False), 1)   # grey values: cross-entropy
        return D.Independent(D.Normal(out, self.config.obs_std), 1)

    # ---------------------------------------------------------------------------- the rest
    def _check(self, x: torch.Tensor, min_length: int = 1) -> torch.Tensor:
        bernoulli = self.config.likelihood == "bernoulli"
        check_input(x, name="TDVAE", shape=self.config.frame_shape, dtype=model_dtype(self), lead=("B", "T"),
                    unit="Bernoulli decoder" if bernoulli else None)
        if x.shape[1] < min_length:
            raise ValueError(f"sequences of {x.shape[1]} steps are too short: need at least {min_length}")
        return x.flatten(2)

    def encode(self, x: torch.Tensor) -> D.Distribution:
        """The belief-state distributions p_B(z_t | b_t) of every step of sequences x, a
        distribution over (B, T, z_size): filtering, what the model knows of each state from
        the frames up to it."""
        return self.belief(self.beliefs(x))

    def code(self, x: torch.Tensor) -> torch.Tensor:
        """A point code: the mean of each belief (B, T, z_size)."""
        return self.encode(x).mean

    def decode_mean(self, z) -> torch.Tensor:
        """The expected image of codes ``z`` (what :meth:`decode` takes): ``decode(z).mean``."""
        return self.decode(z).mean

    def decode(self, z: torch.Tensor | D.Distribution) -> D.Distribution:
        """p_D(x | z) over frames, event shape ``frame_shape``, for states z (..., z_size), or
        the mean of the distribution :meth:`encode` returns; ``.mean`` is the expected frame."""
        if isinstance(z, D.Distribution):
            z = z.mean
        if not isinstance(z, torch.Tensor) or z.dim() < 1 or z.shape[-1] != self.config.z_size:
            raise ValueError(f"expected states of shape (..., {self.config.z_size}), got {tuple(getattr(z, 'shape', ()))}")
        p = self.decoder(z).base_dist                                  # over flattened frames
        fs = self.config.frame_shape
        if isinstance(p, D.Bernoulli):
            base = D.Bernoulli(logits=p.logits.reshape(*z.shape[:-1], *fs), validate_args=False)
        else:
            base = D.Normal(p.loc.reshape(*z.shape[:-1], *fs), self.config.obs_std)
        return D.Independent(base, len(fs))

    def beliefs(self, x: torch.Tensor) -> torch.Tensor:
        """Belief states b_1 … b_T (B, T, belief_size) of sequences x."""
        flat = self._check(x)
        b, _ = self.rnn(_last_axis(self.embed, flat))
        return b

    def sample_times(self, batch: int, length: int, generator: torch.Generator | None = None):
        """``pairs`` (t1, t2) per sequence (0-based), (batch, pairs) each: δ uniform on the jump
        range, then t1 uniform on 0 … T−1−δ, so that t2 = t1 + δ ≤ T − 1."""
        lo, hi = self.config.jumps
        if length < hi + 1:
            raise ValueError(f"sequences of {length} steps are too short for jumps up to {hi}: need ≥ {hi + 1}")
        shape = (batch, self.config.pairs)
        delta = torch.randint(lo, hi + 1, shape, generator=generator)
        t1 = (torch.rand(shape, generator=generator) * (length - delta)).long()       # 0 … T−1−δ
        return t1, t1 + delta

    def elbo_terms(self, x: torch.Tensor, t1: torch.Tensor, t2: torch.Tensor,
                   b: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The five terms of −J(t1, t2), each (B, P): one reparameterised sample per pair.
        ``b``: the belief states of x, if already computed."""
        flat = self._check(x)
        if t1.shape != t2.shape or t1.dim() != 2 or len(t1) != len(x):
            raise ValueError("t1 and t2 must be (B, pairs) tensors of the same shape")
        if (t1 < 0).any() or (t2 <= t1).any() or (t2 >= x.shape[1]).any():
            raise ValueError("need 0 ≤ t1 < t2 < T for every pair")
        if b is None:
            b = self.beliefs(x)
        elif tuple(b.shape) != (*x.shape[:2], self.config.belief_size):
            raise ValueError(f"b must be the belief states of x, {(*x.shape[:2], self.config.belief_size)}, "
                             f"got {tuple(b.shape)}")
        pick = lambda seq, t: torch.gather(seq, 1, t[:, :, None].expand(-1, -1, seq.shape[-1]))  # noqa: E731
        b1, b2, x2 = pick(b, t1), pick(b, t2), pick(flat, t2)
        q2 = self.belief(b2)
        z2 = q2.rsample()                                                   # z_t2 ~ p_B(· | b_t2)
        q1 = self.smoothing(z2, b1, b2)
        z1 = q1.rsample()                                                   # z_t1 ~ p_S(· | z_t2, b_t1, b_t2)
        return {
            "decoder": losses.reconstruction(_last_axis(self.decoder_net, z2), x2, self.config.likelihood,
                                             std=self.config.obs_std, event_dims=1),        # −log p_D(x_t2 | z_t2)
            "belief_t1": -self.belief(b1).log_prob(z1),
            "transition": -self.transition(z1, t2 - t1).log_prob(z2),
            "belief_t2": q2.log_prob(z2),
            "smoothing": q1.log_prob(z1),
        }

    def forward(self, x: torch.Tensor) -> Output:
        self._check(x, min_length=self.config.jumps[1] + 1)
        t1, t2 = self.sample_times(len(x), x.shape[1])
        b = self.beliefs(x)
        terms = {k: v.mean() for k, v in self.elbo_terms(x, t1.to(x.device), t2.to(x.device), b).items()}
        loss = sum(terms.values())                                          # −J(t1, t2)
        with torch.no_grad():
            z = self.belief(b).mean

        @torch.no_grad()
        def x_hat():          # every frame decoded: a pass of its own, made only if x_hat is read
            return self.decoder(z).mean.view_as(x)

        return Output(loss=loss, terms=terms, x_hat=x_hat, z=z)

    @torch.no_grad()
    def rollout(self, x: torch.Tensor, t1: int, steps: int, jump: int = 1,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Jumpy imagination: from the belief at step ``t1`` (0-based) of each sequence sample
        z ~ p_B(z | b_t1), apply p_T(· | z, δ=``jump``) ``steps`` times, and decode each state.
        Returns the expected frames (B, steps, *frame_shape) at t1 + jump, t1 + 2·jump, …"""
        _check_step(x, t1)
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be an int ≥ 1, got {steps!r}")
        return self._imagine(self.beliefs(x[:, : t1 + 1])[:, -1], steps, jump, generator)

    def _imagine(self, b: torch.Tensor, steps: int, jump: int, generator: torch.Generator | None) -> torch.Tensor:
        """Decoded states (B, steps, *frame_shape) of ``steps`` jumps from z ~ p_B(z | b)."""
        z = _sample(self.belief(b), generator)
        frames = []
        for _ in range(steps):
            z = _sample(self.transition(z, jump), generator)
            frames.append(self.decoder(z).mean)
        return torch.stack(frames, dim=1).view(len(b), steps, *self.config.frame_shape)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, t1: int, jump: int, samples: int = 8,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """The predicted frame at t1 + ``jump`` (B, *frame_shape): one jump, averaged over
        ``samples`` draws of the state."""
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise ValueError(f"samples must be an int ≥ 1, got {samples!r}")
        _check_step(x, t1)
        b = self.beliefs(x[:, : t1 + 1])[:, -1].repeat_interleave(samples, dim=0)   # the beliefs once, then copied
        out = self._imagine(b, 1, jump, generator)[:, 0]
        return out.view(len(x), samples, *out.shape[1:]).mean(dim=1)


def _check_step(x: torch.Tensor, t1) -> None:
    if isinstance(t1, bool) or not isinstance(t1, int) or not 0 <= t1 < x.shape[1]:
        raise ValueError(f"t1 must be a step of the sequence, 0 … {x.shape[1] - 1}, got {t1!r}")


def _last_axis(mlp: nn.Module, h: torch.Tensor) -> torch.Tensor:
    """Apply an :class:`MLP` (which flattens all but the first axis) to the last axis of h."""
    return mlp(h.reshape(-1, h.shape[-1])).view(*h.shape[:-1], -1)


def _sample(dist: D.Distribution, generator: torch.Generator | None) -> torch.Tensor:
    """A draw from a diagonal Gaussian, with an optional generator (distributions take none)."""
    base = dist.base_dist
    where = generator.device if generator is not None else base.loc.device      # a generator draws on its own device
    eps = torch.randn(base.loc.shape, generator=generator, device=where, dtype=base.loc.dtype).to(base.loc.device)
    return base.loc + base.scale * eps
