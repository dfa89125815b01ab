"""Chapter 10's experiment: TD-VAE on moving digits and on a noisy oscillator.

Digits move one pixel per step (wrapping around). Measured: the squared error of jumpy
predictions δ steps ahead against copying the last frame and the mean frame, how the error
depends on the frames seen, and what a linear probe reads from the belief state (position,
next position, direction). Then a smaller TD-VAE on a harmonic oscillator drawn as a dot,
probed for position and velocity.
"""
from __future__ import annotations

from dataclasses import dataclass

from companion.data import load_first
from companion.data.sequences import circle, moving_digits, oscillator
from companion.experiments.core import Claim, Run, claims, experiment_run, references
from companion.metrics import belief_probe, jumpy_errors
from companion.models.tdvae import TDVAE, TDVAEConfig

NAME = "td-vae"
CHAPTER = "chapters/10_td_vae"


@dataclass(frozen=True)
class Budget:
    data: tuple[str, ...] = ("mnist-5k",)
    train_sequences: int = 2000
    test_sequences: int = 500
    length: int = 12
    z_size: int = 16
    belief_size: int = 128
    hidden: int = 256
    jumps: tuple[int, int] = (1, 4)          # the range of δ TD-VAE trains (and is tested) on
    pairs: int = 4                          # (t1, t2) pairs per sequence and step
    epochs: int = 40
    lr: float = 2e-3
    batch_size: int = 32
    osc_sequences: int = 2000
    osc_test_sequences: int = 500
    osc_length: int = 20
    osc_epochs: int = 25
    osc_z_size: int = 4
    osc_belief_size: int = 64
    osc_hidden: int = 64


BUDGETS = {
    "quick": Budget(),
    "full": Budget(data=("mnist",), train_sequences=10000, test_sequences=2000, length=20, pairs=8, epochs=60,
                   osc_sequences=10000, osc_epochs=40),
    "smoke": Budget(train_sequences=64, test_sequences=32, length=8, z_size=4, belief_size=16, hidden=16, pairs=1,
                    epochs=1, osc_sequences=64, osc_test_sequences=32, osc_length=14, osc_epochs=1, osc_belief_size=8,
                    osc_hidden=8),
}

REFERENCES = references(NAME)                 # published numbers: records/references.json

CLAIMS = claims(
    Claim("training_converges", "training cuts −J to less than 0.6 of its first-epoch value",
          lambda m: m["digits_final_over_first_loss"] < 0.6),
    Claim("beats_copying", "at every jump δ TD-VAE predicts better than copying the last frame",
          lambda m: all(e < _errors(m, "copy_last")[d] for d, e in _errors(m, "tdvae").items())),
    Claim("needs_two_frames", "after one frame the prediction is worse than copying; after three it is better",
          lambda m: m["tdvae_error_after1"] > m["copy_last_error_jump1"] > m["tdvae_error_after3_worst"]),
    Claim("belief_knows_position", "a linear probe reads the position and the next position from the belief "
                                   "(R² ≥ 0.9)",
          lambda m: m["digits_position_r2"] >= 0.9 and m["digits_next_position_r2"] >= 0.9),
    Claim("direction_not_linear", "the direction itself is not linearly readable (R² below half the next "
                                  "position's)",
          lambda m: m["digits_direction_r2"] < 0.5 * m["digits_next_position_r2"]),
    Claim("oscillator_state", "the oscillator's belief holds position and velocity (R² ≥ 0.9)",
          lambda m: m["oscillator_position_r2"] >= 0.9 and m["oscillator_velocity_r2"] >= 0.9),
    Claim("oscillator_beats_baselines", "on the oscillator TD-VAE beats both baselines at every δ",
          lambda m: all(e < min(_errors(m, base, "oscillator")[d] for base in ("copy_last", "mean_frame"))
                        for d, e in _errors(m, "tdvae", "oscillator").items())),
)


def _errors(m, model: str, data: str | None = None) -> dict[int, float]:
    """``{δ: squared error}`` of ``model`` (tdvae, copy_last, mean_frame) on the digits or the oscillator."""
    return m.series("error_jump{jump}", over="jump", model=model, **({"data": data} if data else {}))


def next_circle(s):
    """Where each digit will be one step later, on the unit circle (a probe target)."""
    return circle(s._replace(position=s.position + s.velocity))


def data(b: Budget):
    """Moving digits ``(train, test)`` (test sequences use held-out digits) and the oscillator
    ``(osc_train, osc_test)`` of budget ``b``, as :class:`Sequences`."""
    (x_train, y_train), (x_test, y_test) = load_first(b.data)
    digits = (moving_digits(x_train, y_train, length=b.length, n=b.train_sequences, seed=0),
              moving_digits(x_test, y_test, length=b.length, n=b.test_sequences, seed=1))
    osc = (oscillator(b.osc_sequences, b.osc_length, seed=0), oscillator(b.osc_test_sequences, b.osc_length, seed=1))
    return digits, osc


def _train(r: Run, name: str, frames, b: Budget, *, epochs: int, **config) -> TDVAE:
    config = TDVAEConfig(frame_shape=tuple(frames.shape[2:]), **config)
    return r.train(name, lambda: TDVAE(config), frames, epochs=epochs, lr=b.lr, batch_size=b.batch_size)


@experiment_run
def run(b: Budget, r: Run) -> None:
    """Train both TD-VAEs on the run's device; measure them on held-out sequences."""
    (train, test), (osc_train, osc_test) = data(b)
    r.results.update(train=train, test=test, osc_train=osc_train, osc_test=osc_test)
    jumps = list(range(b.jumps[0], b.jumps[1] + 1))
    model = _train(r, "digits", train.frames, b, epochs=b.epochs, z_size=b.z_size, belief_size=b.belief_size,
                   hidden=b.hidden, jumps=b.jumps, pairs=b.pairs)
    h = r.histories["digits"]
    r.record("final_over_first_loss", h.train["loss"][-1] / h.train["loss"][0], data="digits")
    mean_frame = r.results["mean_frame"] = train.frames.mean((0, 1))
    t1 = r.results["t1"] = b.length - 1 - jumps[-1]                  # the latest t1 that fits every jump
    errors = r.results["errors"] = jumpy_errors(model, test.frames, t1, jumps, mean_frame=mean_frame)
    for name, values in errors.items():
        for d, v in zip(jumps, values):
            r.record("error_jump{jump}", v, model=name, jump=d)
    by_t1 = r.results["by_t1"] = [jumpy_errors(model, test.frames, t, [1], mean_frame=mean_frame)["tdvae"][0]
                                  for t in range(b.length - 1)]
    r.record("error_after1", by_t1[0], model="tdvae")
    r.record("error_after3_worst", max(by_t1[2:]), model="tdvae")
    probe = belief_probe(model, train, test, {"position": circle, "next_position": next_circle,
                                              "direction": lambda s: s.velocity})
    for target, r2 in probe.items():
        r.record(f"{target}_r2", r2, data="digits")

    osc = _train(r, "oscillator", osc_train.frames, b, epochs=b.osc_epochs, z_size=b.osc_z_size,
                 belief_size=b.osc_belief_size, hidden=b.osc_hidden)
    scores = belief_probe(osc, osc_train, osc_test, {"position": lambda s: s.position,
                                                     "velocity": lambda s: s.velocity})
    for target, r2 in scores.items():
        r.record(f"{target}_r2", r2, data="oscillator")
    osc_errors = r.results["osc_errors"] = jumpy_errors(osc, osc_test.frames, min(10, b.osc_length - 1 - jumps[-1]),
                                                        jumps, mean_frame=osc_train.frames.mean((0, 1)))
    for name, values in osc_errors.items():
        for d, v in zip(jumps, values):
            r.record("error_jump{jump}", v, data="oscillator", model=name, jump=d)


def describe(b: Budget) -> str:
    return (f"TD-VAE (z = {b.z_size}, belief {b.belief_size}, δ = {b.jumps[0]}…{b.jumps[1]}, {b.epochs} epochs) on "
            f"{b.train_sequences:,} sequences of {b.length} frames of digits moving a pixel a step, against copying "
            f"the last frame and the mean frame, and probed; a noisy oscillator ({b.osc_sequences:,} sequences of "
            f"{b.osc_length}) probed for position and velocity; data: {' or '.join(b.data)} (else mnist-5k).")
