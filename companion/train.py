"""``fit``: the one training loop of the book, and safetensors checkpoints.

Every chapter trains its models with :func:`fit`: AdamW on mini-batches, a progress bar
showing the loss terms, a guard that stops training that diverges (see :func:`fit`), optional
validation after each epoch, and a :class:`History` of per-epoch means of every term.
"""
from __future__ import annotations

import dataclasses
import inspect
import json
import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import TensorDataset

from companion.runtime import check_seed, check_writable, drawing_from, get_device, plain
from companion.losses import finite_range
from companion.models.base import Output, config_dict, model_device


class TrainingDiverged(FloatingPointError):
    """Training diverged (a non-finite loss, gradient or parameter, or an explosion); it stopped."""


#: How far the divergence guard of :func:`fit` lets the loss rise above its first value and
#: the parameters' norm grow above its initial value, as a multiple of max(|value|, 1).
EXPLOSION = 1e3


@dataclass
class History:
    """Per-epoch means of every loss term, for the training data and (optionally) validation.

    ``train["loss"][e]`` is the mean loss of epoch ``e``; ``val`` has the same keys when a
    validation set was given; ``tracked`` holds what an ``on_epoch_end`` callback of
    :func:`fit` returned after each epoch; ``steps["loss"][t]`` is the loss of the mini-batch
    of step ``t`` (every term, every step: learning curves finer than an epoch).
    ``seconds`` is the wall-clock training time.
    """

    train: dict[str, list[float]] = field(default_factory=dict)
    val: dict[str, list[float]] = field(default_factory=dict)
    tracked: dict[str, list[float]] = field(default_factory=dict)
    steps: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def epochs(self) -> int:
        return len(self.train.get("loss", []))

    def last(self, term: str = "loss", split: str = "train") -> float:
        """The final epoch's value of ``term`` (``split`` is ``"train"`` or ``"val"``)."""
        log = {"train": self.train, "val": self.val}.get(split)
        if log is None:
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        if term not in log or not log[term]:
            raise KeyError(f"no {split} values for term {term!r}; have {sorted(log)}")
        return log[term][-1]

    def smoothed(self, term: str = "loss", window: int = 50) -> tuple[torch.Tensor, torch.Tensor]:
        """The per-step curve of ``term`` averaged over a sliding ``window`` of steps:
        ``(centres, means)``, the window's centre (steps counted from 0) and its mean, one pair
        for each full window."""
        if term not in self.steps:
            raise KeyError(f"no per-step values for term {term!r}; have {sorted(self.steps)}")
        values = torch.tensor(self.steps[term], dtype=torch.float64)
        if isinstance(window, bool) or not isinstance(window, int) or not 1 <= window <= len(values):
            raise ValueError(f"window must be an int from 1 to the number of steps ({len(values)}), got {window!r}")
        means = values.unfold(0, window, 1).mean(1)
        return torch.arange(len(means), dtype=torch.float64) + (window - 1) / 2, means

    def plot(self, ax=None, terms: list[str] | None = None, **kwargs):
        """Draw the curves of the loss terms (train solid, validation dashed); keyword
        arguments go to :func:`companion.viz.plots.plot_history` (``logy``, ``ylabel``)."""
        from companion.viz.plots import plot_history

        return plot_history(self, ax=ax, terms=terms, **kwargs)


def _check_model(model) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected a model (a torch nn.Module whose forward returns an Output), "
                        f"got {type(model).__name__}")


def _as_tensors(data, name: str) -> tuple[torch.Tensor, ...]:
    """The tensors of ``data`` (a tensor, a tuple or list of tensors, or a ``TensorDataset``),
    each (N, ...) with the same N ≥ 1: a batch is one slice of each, passed as ``model(*batch)``."""
    if isinstance(data, TensorDataset):
        tensors = tuple(data.tensors)
    elif isinstance(data, torch.Tensor):
        tensors = (data,)
    elif isinstance(data, (tuple, list)) and data and all(isinstance(t, torch.Tensor) for t in data):
        tensors = tuple(data)
    else:
        raise TypeError(f"{name} must be a tensor, a tuple of tensors or a TensorDataset, got {type(data).__name__}")
    for i, t in enumerate(tensors):
        if t.dim() < 1 or len(t) == 0:
            raise ValueError(f"{name}[{i}] must have shape (N, ...) with N ≥ 1, got {tuple(t.shape)}")
        if len(t) != len(tensors[0]):
            raise ValueError(f"the tensors of {name} must have the same length, got "
                             f"{[len(u) for u in tensors]}")
    return tensors


def _check_arity(model, tensors: tuple, name: str) -> None:
    """Refuse, before training, data whose batches the model's forward cannot take."""
    try:
        inspect.signature(model.forward).bind(*tensors)
    except TypeError:
        hint = " (a Split or (x, y)? pass the images alone)" if len(tensors) == 2 else ""
        raise TypeError(f"{type(model).__name__}.forward cannot take the {len(tensors)} tensor(s) each batch of "
                        f"{name} holds{hint}; its signature is forward{inspect.signature(model.forward)}") from None


def _tracked(result) -> dict[str, float]:
    """What an ``on_epoch_end`` returned, as numbers to log: None, or a dict of names to numbers."""
    if result is None:
        return {}
    if not isinstance(result, dict):
        raise TypeError(f"on_epoch_end must return None or a dict of names to numbers, got {type(result).__name__}")
    out = {}
    for k, v in result.items():
        v = plain(v)
        if not isinstance(k, str) or isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TypeError(f"on_epoch_end must return a dict of names to numbers, got {k!r}: {v!r}")
        out[k] = float(v)
    return out


_ADVICE = "Lower the learning rate, check the inputs for NaN/inf, or check the loss weights."


def _diverged(epoch: int, step: int, what: str) -> TrainingDiverged:
    return TrainingDiverged(f"training diverged at epoch {epoch + 1}, step {step + 1}: {what}. {_ADVICE} "
                            "The model keeps the parameters it had when training stopped.")


def _check_loss(out: Output, first: float | None, epoch: int, step: int) -> float:
    """The batch loss as a float, after the guard's loss rules (see :func:`fit`)."""
    if not isinstance(out, Output):
        raise TypeError(f"the model's forward returned {type(out).__name__}; fit needs an Output "
                        f"(companion.Output(loss=...)): wrap a loss tensor as Output(loss=loss)")
    loss = out.loss.item()
    if not math.isfinite(loss):
        parts = ", ".join(f"{k}={v.item():.4g}" for k, v in out.terms.items())
        raise _diverged(epoch, step, f"loss = {loss} ({parts or 'no terms'})")
    if first is not None and loss - first > EXPLOSION * max(abs(first), 1.0):
        raise _diverged(epoch, step, f"the loss rose from {first:.4g} at the first step to {loss:.4g}, "
                                     f"more than {EXPLOSION:g} × max(|first|, 1) above it")
    return loss


#: The parameter rule of the guard runs after the first update, then every this many steps and
#: at the end of each epoch (a norm over every parameter costs a pass over the model).
PARAM_CHECK_EVERY = 16


def _check_params(params: list[torch.Tensor], limit: float, epoch: int, step: int) -> None:
    """The guard's parameter rule (see :func:`fit`)."""
    norm = torch.nn.utils.get_total_norm(params).item()
    if not math.isfinite(norm) or norm > limit:
        raise _diverged(epoch, step, f"the parameters' norm reached {norm:.4g}, more than {EXPLOSION:g} × "
                                     f"max(its initial value, 1) = {limit:.4g}")


@torch.no_grad()
def evaluate(model: nn.Module, data, *, batch_size: int = 1000,
             generator: torch.Generator | None = None) -> dict[str, float]:
    """Mean of the loss, of every term and of every statistic over ``data`` (as :func:`fit`
    takes it), in eval mode, weighted by batch size.

    A model that samples in its forward pass (a VAE draws z) draws from ``generator`` when one
    is given, which it advances, and leaves PyTorch's global generator untouched
    (:func:`companion.runtime.drawing_from`); without one it draws from the global generator."""
    _check_model(model)
    tensors = _as_tensors(data, "data")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    was_training = model.training
    model.eval()
    device = model_device(model)
    n = len(tensors[0])
    sums: dict[str, float] = {}
    try:
        with drawing_from(generator, device):
            for i in range(0, n, batch_size):
                batch = [t[i:i + batch_size].to(device) for t in tensors]
                out = model(*batch)
                for k, v in out.logged().items():
                    sums[k] = sums.get(k, 0.0) + v.item() * len(batch[0])
    finally:
        model.train(was_training)
    return {k: v / n for k, v in sums.items()}


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Optimiser steps in one epoch of :func:`fit` over ``n`` examples: ⌈n / batch_size⌉
    (the last batch may be smaller). Schedules counted in steps (KL warm-up, capacity) use it."""
    for name, v in (("n", n), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    return -(-n // batch_size)


def fit(model: nn.Module, data, *, epochs: int, lr: float = 1e-3, batch_size: int = 128,
        seed: int = 0, device: str | torch.device | None = None, val=None,
        weight_decay: float = 0.0, progress: bool = True,
        checkpoint: str | Path | None = None,
        on_epoch_end: Callable[[int, nn.Module], dict[str, float] | None] | None = None) -> History:
    """Train ``model`` to minimise ``model(x).loss`` with AdamW on shuffled mini-batches.

    Args:
        model: a model following the book's contract (``forward(x) -> Output``).
        data: the training data: a tensor (N, ...), a tuple of tensors of the same length N,
            or a ``TensorDataset``; each mini-batch (one slice of each tensor) is passed as
            ``model(*batch)``, e.g. ``(x_noisy, x_clean)`` for ``Autoencoder.forward(x, target)``.
        epochs: passes over the data (≥ 1).
        lr: AdamW learning rate (> 0).
        batch_size: examples per step (≥ 1).
        seed: seeds the shuffling and any randomness inside the model (noise, sampling). Not
            the initial weights: those were drawn when the model was built, so call
            ``companion.seed_everything(seed)`` before building it to repeat a run exactly.
        device: where to train (``"auto"``, ``"cpu"``, ``"cuda"``, … as in
            :func:`companion.get_device`); default: where the model's parameters are. The
            model stays there; batches are moved there one at a time.
        val: optional validation data (same forms as ``data``), evaluated after each epoch in
            eval mode.
        weight_decay: AdamW's decoupled weight decay (default 0: no hidden regulariser).
        progress: show a ``tqdm`` bar with the loss terms.
        checkpoint: if given, save the model there (safetensors, atomically) after each epoch.
        on_epoch_end: called as ``on_epoch_end(epoch, model)`` after each epoch (model in
            eval mode); numbers in the dict it returns are logged in ``History.tracked``.
            For measurements over a whole data set, such as a codebook's usage.

    Returns:
        a :class:`History`.

    Raises:
        TrainingDiverged: the divergence guard's rule. Training stops at the first step where
            (1) the batch loss is NaN or infinite, (2) it exceeds the first step's loss L₀ by more
            than ``EXPLOSION`` × max(|L₀|, 1), or (3) the parameters' norm is not finite (a
            non-finite gradient makes it so) or exceeds ``EXPLOSION`` × max(its initial value, 1),
            checked after the first update, every ``PARAM_CHECK_EVERY`` steps and at the end of
            each epoch. Nothing is rolled back: the model keeps the parameters it had when
            training stopped.
    """
    seed = check_seed(seed)
    epochs, lr, batch_size, weight_decay = (plain(v) for v in (epochs, lr, batch_size, weight_decay))
    _check_model(model)
    tensors = _as_tensors(data, "data")
    x_val = None if val is None else _as_tensors(val, "val")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    if not (isinstance(weight_decay, (int, float)) and weight_decay >= 0):
        raise ValueError(f"weight_decay must be ≥ 0, got {weight_decay!r}")
    _check_arity(model, tensors, "data")
    if x_val is not None:
        _check_arity(model, x_val, "val")
    if on_epoch_end is not None:
        try:
            inspect.signature(on_epoch_end).bind(0, model)
        except (TypeError, ValueError):
            raise TypeError("on_epoch_end is called as on_epoch_end(epoch, model): give it those two "
                            "arguments") from None
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError("the model has no trainable parameters")
    if checkpoint is not None:
        check_writable(checkpoint, "checkpoint")
    device = get_device(device) if device is not None else model_device(model)
    if device.type == "meta":
        raise ValueError("fit cannot train on the 'meta' device: it holds shapes, not numbers "
                         "(use it to check shapes; train on 'cpu', 'cuda' or 'auto')")
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = _adamw(params, lr, weight_decay, device)
    shuffle = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # randomness inside the model: corruption noise, sampling of z
    history = History()
    param_limit = EXPLOSION * max(torch.nn.utils.get_total_norm(params).item(), 1.0)
    first = None
    start = time.perf_counter()
    bar = _progress(epochs, progress)
    n = len(tensors[0])
    ranges = [_checked_range(t) for t in tensors]
    was_training = model.training
    try:
        with torch.enable_grad():                   # fit trains even when called under torch.no_grad()
            for epoch in range(epochs):
                model.train()
                sums: dict[str, float] = {}
                order = torch.randperm(n, generator=shuffle)
                for step, i in enumerate(range(0, n, batch_size)):
                    idx = order[i:i + batch_size]
                    batch = [_cut(t, idx, r, device) for t, r in zip(tensors, ranges)]
                    out = model(*batch)
                    loss = _check_loss(out, first, epoch, step)
                    first = loss if first is None else first
                    optimizer.zero_grad(set_to_none=True)
                    out.loss.backward()
                    optimizer.step()
                    if step % PARAM_CHECK_EVERY == 0 or i + batch_size >= n:
                        _check_params(params, param_limit, epoch, step)
                    for k, v in out.logged().items():
                        value = loss if k == "loss" else v.item()
                        history.steps.setdefault(k, []).append(value)
                        sums[k] = sums.get(k, 0.0) + value * len(idx)
                for k, v in sums.items():
                    history.train.setdefault(k, []).append(v / n)
                if x_val is not None:
                    for k, v in evaluate(model, x_val).items():
                        history.val.setdefault(k, []).append(v)
                if on_epoch_end is not None:
                    model.eval()
                    with torch.no_grad():
                        tracked = _tracked(on_epoch_end(epoch, model))
                    model.train()
                    for k, v in tracked.items():
                        history.tracked.setdefault(k, []).append(v)
                if checkpoint is not None:
                    save_checkpoint(model, checkpoint, extra={"epoch": epoch + 1})
                if bar is not None:
                    shown = {k: f"{v[-1]:.4g}" for k, v in history.train.items()}
                    if x_val is not None:
                        shown["val_loss"] = f"{history.val['loss'][-1]:.4g}"
                    bar.set_postfix(shown)
                    bar.update(1)
    except BaseException as e:                      # a callback raised, the guard stopped, or Ctrl-C
        model.train(was_training)
        history.seconds = time.perf_counter() - start
        if bar is not None:
            bar.close()
        e.history = history                         # the epochs that finished, for the caller
        raise
    if bar is not None:
        bar.close()
    history.seconds = time.perf_counter() - start
    return history


def _adamw(params: list[torch.Tensor], lr: float, weight_decay: float, device: torch.device) -> torch.optim.AdamW:
    """AdamW, in PyTorch's fused form where the device has one (CPU and CUDA): the same
    update as the default multi-tensor form to rounding, in one kernel per step instead of
    a dozen; on a 2-core CPU it cuts a small model's training time by about a third."""
    if device.type in ("cpu", "cuda") and all(p.device.type == device.type and p.is_floating_point() for p in params):
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


def _checked_range(t: torch.Tensor) -> tuple[float, float] | None:
    """(min, max) of a floating data tensor if it is finite (one pass, before training);
    None otherwise, or for integer data. Batches cut from it carry this range, so that the
    models' input checks need not scan each batch again (:func:`companion.losses.finite_range`);
    data with NaN/inf is left to the model's own check, which says what is wrong."""
    if not t.is_floating_point() or t.numel() == 0:
        return None
    try:
        return finite_range(t, "the data")
    except ValueError:
        return None


def _cut(t: torch.Tensor, idx: torch.Tensor, checked_range, device) -> torch.Tensor:
    """Rows ``idx`` of data tensor ``t`` on ``device``, carrying ``t``'s checked range."""
    batch = t[idx].to(device)
    if checked_range is not None:
        batch.checked_range = checked_range
    return batch


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="epochs", leave=False)


# ---------------------------------------------------------------------------- checkpoints

def _path(path) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"a checkpoint path must be a str or a Path, got {type(path).__name__}")
    return Path(path)


def save_checkpoint(model: nn.Module, path: str | Path, *, extra: dict | None = None) -> Path:
    """Save the model's weights and config as safetensors, atomically.

    The file is written to a temporary name in the same directory and then renamed, so a
    crash never leaves a half-written checkpoint behind. The model's class name and config
    (if it has one) go into the file's metadata, so :func:`load_checkpoint` can rebuild it.
    """
    from safetensors.torch import save_file

    _check_model(model)
    path = _path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"class": type(model).__name__, "format": "companion-checkpoint-1"}
    config = getattr(model, "config", None)
    if config is not None:
        meta["config"] = json.dumps(config_dict(config))
    if extra:
        meta["extra"] = json.dumps(extra)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=meta)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _check_same_model(path: Path, meta: dict, model: nn.Module) -> None:
    """Refuse to load a checkpoint into a model of another class or config."""
    if meta.get("class") and meta["class"] != type(model).__name__:
        raise ValueError(f"{path} holds a {meta['class']}, not a {type(model).__name__}: "
                         f"load it with load_checkpoint(path) to rebuild the saved model")
    config = getattr(model, "config", None)
    if "config" in meta and config is not None:
        saved, have = json.loads(meta["config"]), json.loads(json.dumps(config_dict(config)))
        differ = [f"{k}: saved {saved.get(k)!r}, this model {have.get(k)!r}"
                  for k in sorted(set(saved) | set(have)) if saved.get(k) != have.get(k)]
        if differ:
            raise ValueError(f"{path} was saved from a {type(model).__name__} with another config ("
                             + "; ".join(differ) + "): build the model with the saved config, or call "
                             "load_checkpoint(path) to rebuild it")


def load_checkpoint(path: str | Path, model: nn.Module | None = None) -> nn.Module:
    """Load a checkpoint written by :func:`save_checkpoint`.

    With ``model`` given, its weights are replaced in place and it is returned; otherwise the
    model is rebuilt from the class name and config stored in the file.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a valid checkpoint (corrupt, truncated, or not ours); or
            ``model`` is of another class, or has another config, than the saved one (the
            message names the differing fields); or the weights do not fit ``model``.
    """
    from safetensors import safe_open

    path = _path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types for corrupt files
        raise ValueError(f"{path} is not a valid checkpoint (corrupt or truncated file?): {e}") from e
    if meta.get("format") != "companion-checkpoint-1":
        raise ValueError(f"{path} is a safetensors file but not a companion checkpoint (no metadata)")
    for key in ("config", "extra"):
        if key in meta:
            try:
                meta[key] = json.dumps(json.loads(meta[key]))
            except (TypeError, ValueError):
                raise ValueError(f"{path}: its {key} metadata is not JSON (a damaged or foreign checkpoint)") from None
    if model is None:
        from companion.models import REGISTRY

        name = meta.get("class")
        if name not in REGISTRY or "config" not in meta:
            raise ValueError(f"{path}: cannot rebuild model class {name!r}; pass model=... to load into")
        cls, config_cls = REGISTRY[name]
        saved = json.loads(meta["config"])
        known = {f.name for f in dataclasses.fields(config_cls)}
        if not isinstance(saved, dict) or set(saved) - known:
            unknown = sorted(set(saved) - known) if isinstance(saved, dict) else saved
            raise ValueError(f"{path}: its {name} config has fields this version does not know ({unknown}): "
                             f"it was saved by another version of companion")
        model = cls(config_cls(**saved))
        saved_dtypes = {v.dtype for v in state.values() if v.is_floating_point()}
        if len(saved_dtypes) == 1:                       # a float16 or float64 model comes back as it was saved
            model = model.to(saved_dtypes.pop())
    else:
        _check_same_model(path, meta, model)
    _check_state_fits(path, state, model)                # every name, shape and dtype, before any copy
    model.load_state_dict(state)
    return model


def _check_state_fits(path: Path, state: dict[str, torch.Tensor], model: nn.Module) -> None:
    """Refuse, naming each difference, unless ``state`` has exactly ``model``'s tensors with their
    shapes and dtypes: so that a refused load leaves the model as it was."""
    have = model.state_dict()
    problems = [f"missing {k}" for k in have if k not in state] + [f"unexpected {k}" for k in state if k not in have]
    problems += [f"{k}: saved {tuple(v.shape)} {v.dtype}, model {tuple(have[k].shape)} {have[k].dtype}"
                 for k, v in state.items() if k in have and (v.shape != have[k].shape or v.dtype != have[k].dtype)]
    if problems:
        raise ValueError(f"{path}: weights do not fit {type(model).__name__}: " + "; ".join(problems))
