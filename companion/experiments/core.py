"""The machinery shared by the chapters' experiments: runs, results, claims, the registry.

This docstring is the contract for the next chapter's author.

**An experiment module** (``companion.experiments.ch01_autoencoder`` …) defines

* ``NAME`` (what ``python -m companion reproduce NAME`` takes) and ``CHAPTER``;
* ``Budget``, a frozen dataclass (extending :class:`Digits` when it trains on digits), and
  ``BUDGETS = {"quick": …, "full": …, "smoke": …}``: ``quick`` is what the chapter executes
  (about a minute on a 2-core CPU), ``full`` is closer to the papers, ``smoke`` checks the
  plumbing in seconds (its numbers mean nothing);
* ``run(budget="quick", *, seed=0, device=None) -> Run``, made by :func:`experiment_run`;
* ``describe(budget) -> str``, written from the budget's fields (``python -m companion list``);
* ``REFERENCES = references(NAME)``: published numbers with their sources, keyed by our flat
  metric names, kept in one table (``records/references.json``);
* ``CLAIMS``: what the chapter says about its numbers, as named checks that the chapter
  asserts after its run.

**A run** has one shape::

    @experiment_run
    def run(b: Budget, r: Run) -> None:
        (x_train, y_train), (x_test, y_test) = b.load()
        model = r.train("ae", lambda: Autoencoder(...), x_train, epochs=b.epochs, lr=b.lr)
        r.record("test_mse", reconstruction_error(model, x_test), model="ae", k=2)

* :func:`experiment_run` turns that body into ``run``: it decides the budget, the seed and the
  device once and seeds everything (:func:`start`), then finishes the run (:func:`finish`,
  which moves every model to the CPU once) and saves it for reuse (:func:`cached`).
* :meth:`Run.train` is the only training step: it seeds, builds the model from that seed,
  fits it on the run's device and keeps it (in eval mode) with its history under a name.
  Metrics are computed where the model trained.
* :meth:`Run.record` stores a number under a metric and its dimensions (``beta=16``,
  ``seed=1``). Claims and chapters read numbers back by those (:meth:`Metrics.value`,
  :meth:`Metrics.series`, :meth:`Metrics.table`) and never parse a name. The flat names
  (``beta16_mig``) exist only for the JSON record, the tables and ``REFERENCES``
  (:func:`name_of`, :func:`flat_name`); :func:`metrics_of` reads a saved record back.
* ``device=None`` means the CPU (the models are built there and stay there); the device is
  resolved once, by :func:`cached`, before anything trains.
* Evaluation that samples draws from its own ``torch.Generator``; work added at the end of a
  run goes inside :func:`companion.runtime.preserved_rngs`. A run leaves Python's, NumPy's and
  PyTorch's generators wherever its last draw left them, and :func:`cached` restores exactly
  that state when it loads a saved run.
"""
from __future__ import annotations

import functools
import hashlib
import inspect
import io
import json
import math
import os
import random
import re
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch

from companion.experiments.cache import NotARun, load_run, save_run
from companion.runtime import check_seed, check_writable, get_device, seed_everything
from companion.train import fit

BUDGETS = ("quick", "full", "smoke")


class ClaimFailed(AssertionError):
    """A claim of a chapter does not hold for a run's metrics."""


@dataclass(frozen=True)
class Claim:
    """A sentence of a chapter about its numbers, and the check that makes it true.

    ``holds(metrics)`` returns True when the claim holds for a run's :class:`Metrics`
    (read by metric and dimensions, or by flat name); ``statement`` is the sentence, shown
    when it does not.
    """

    name: str
    statement: str
    holds: Callable[[Mapping[str, float]], bool]


def claims(*items: Claim) -> dict[str, Claim]:
    """A module's claims keyed by name (names must be unique)."""
    out: dict[str, Claim] = {}
    for c in items:
        if c.name in out:
            raise ValueError(f"claim {c.name!r} is defined twice")
        out[c.name] = c
    return out


class Metrics(Mapping[str, float]):
    """A run's numbers, each recorded under a metric and its dimensions.

    ``record("mig", 0.31, beta=16, seed=1)`` stores 0.31; ``value("mig", beta=16, seed=1)``
    reads it back, ``series("mig", over="beta", seed=1)`` gives ``{1: …, 16: …}`` and
    ``table("mig", rows="setting", columns="seed", beta=16)`` a dict of such dicts. Read as a
    mapping it is ``{flat name: number}``, for the JSON record and the tables.

    The flat name puts the dimensions first, in the order given, then the metric: a string
    value as itself (``model="ae"`` → ``ae``), a number after its dimension's name
    (``beta=16`` → ``beta16``, ``seed=0`` → ``seed0``), all joined by ``_``. A dimension may
    instead be placed inside the metric's name with a ``{field}``: ``record("test_mse_k{k}",
    v, model="ae", k=2)`` is named ``ae_test_mse_k2``.
    """

    def __init__(self, records: list[dict] | None = None) -> None:
        self._by_flat: dict[str, tuple[str, dict, float]] = {}
        for r in records or ():
            if not isinstance(r, dict) or set(r) != {"metric", "dims", "value"}:
                raise ValueError(f"a metric record is {{'metric', 'dims', 'value'}}, got {r!r}")
            self.record(r["metric"], r["value"], **r["dims"])

    def record(self, metric: str, value, **dims) -> str:
        """Store ``value`` (a number, or a 0-dim tensor) under ``metric`` and ``dims``; return
        its flat name. A metric and dimensions are recorded once."""
        if not isinstance(metric, str) or not metric:
            raise TypeError(f"metric must be a non-empty string, got {metric!r}")
        dims = _dims(dims)
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"{metric}: a metric is a number, got {type(value).__name__}") from None
        name = flat_name(metric, dims)
        if name in self._by_flat:
            raise ValueError(f"{name!r} is recorded twice")
        self._by_flat[name] = (metric, dims, value)
        return name

    def value(self, metric: str, **dims) -> float:
        """The number recorded under ``metric`` with exactly these ``dims``."""
        dims = _dims(dims)
        for m, d, v in self._by_flat.values():
            if m == metric and d == dims:
                return v
        raise KeyError(f"no {metric!r} recorded with {dims or 'no dimensions'}")

    def series(self, metric: str, over: str, **fixed) -> dict:
        """``{value of over: number}`` for the records of ``metric`` whose dimensions are
        ``over`` plus exactly ``fixed``, in increasing order of ``over`` (numbers first, then
        strings); the keys are the values as recorded (``beta=16`` gives the key 16)."""
        fixed = _dims(fixed)
        found = {d[over]: v for m, d, v in self._by_flat.values()
                 if m == metric and over in d and {k: x for k, x in d.items() if k != over} == fixed}
        return dict(sorted(found.items(), key=lambda kv: _order(kv[0])))

    def table(self, metric: str, rows: str, columns: str, **fixed) -> dict:
        """``{row value: {column value: number}}``, rows and columns in increasing order."""
        fixed = _dims(fixed)
        out: dict = {}
        for m, d, v in self._by_flat.values():
            if m == metric and rows in d and columns in d and \
                    {k: x for k, x in d.items() if k not in (rows, columns)} == fixed:
                out.setdefault(d[rows], {})[d[columns]] = v
        return {r: dict(sorted(c.items(), key=lambda kv: _order(kv[0])))
                for r, c in sorted(out.items(), key=lambda kv: _order(kv[0]))}

    def records(self) -> list[dict]:
        """Every number as ``{"metric", "dims", "value"}`` (what the JSON record keeps)."""
        return [{"metric": m, "dims": dict(d), "value": v} for m, d, v in self._by_flat.values()]

    def __getitem__(self, name: str) -> float:
        return self._by_flat[name][2]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_flat)

    def __len__(self) -> int:
        return len(self._by_flat)

    def __repr__(self) -> str:
        return f"Metrics({dict(self)!r})"


def _order(v) -> tuple:
    """A sort key that puts numbers (in order) before strings (in order)."""
    return (1, v) if isinstance(v, str) else (0, v)


def _dims(dims: Mapping) -> dict:
    """Dimensions checked (strings or numbers) and their numbers as plain ints or floats."""
    out = {}
    for k, v in dims.items():
        if isinstance(v, bool) or not isinstance(v, (str, int, float, np.integer, np.floating)):
            raise TypeError(f"dimension {k}= must be a string or a number, got {type(v).__name__}")
        out[k] = v if isinstance(v, str) else int(v) if isinstance(v, (int, np.integer)) else float(v)
    return out


def name_of(**dims) -> str:
    """The name that dimensions make (``name_of(model="over", beta=3)`` is ``"over_beta3"``): what
    a flat metric name starts with, and what a run calls the model those dimensions describe."""
    return "_".join(v if isinstance(v, str) else f"{k}{_shown(v)}" for k, v in _dims(dims).items())


def _shown(v: int | float) -> str:
    """A number in a name: an int as it is, a float as short as it stays exact (16.0 → 16)."""
    if isinstance(v, int):
        return str(v)
    return f"{v:g}" if float(f"{v:g}") == v else repr(v)


def flat_name(metric: str, dims: Mapping) -> str:
    """The flat name of ``metric`` with ``dims`` (see :class:`Metrics`)."""
    dims = _dims(dims)
    for field_name in re.findall(r"{(\w*)}", metric):
        if field_name not in dims:
            raise ValueError(f"metric {metric!r} places {{{field_name}}}, but no such dimension is given")
    placed = {k for k in dims if "{" + k + "}" in metric}
    shown = metric.format(**{k: v if isinstance(v, str) else _shown(v) for k, v in dims.items()})
    return "_".join(filter(None, [name_of(**{k: v for k, v in dims.items() if k not in placed}), shown]))


@dataclass
class Run:
    """What an experiment's ``run`` returns.

    Attributes:
        experiment: the experiment's name, e.g. ``"autoencoder"``.
        budget: the budget dataclass it ran with.
        seed, device: as passed to ``run`` (device as a string, resolved).
        models: the trained models by name, in eval mode (on the CPU once finished).
        histories: their :class:`companion.train.History` by the same names.
        metrics: the :class:`Metrics` (read by metric and dimensions, or by flat name).
        results: anything else the chapter draws (curves, arrays, per-model reports).
        seconds: wall-clock time of the run.
    """

    experiment: str
    budget: Any
    seed: int
    device: str
    models: dict[str, torch.nn.Module] = field(default_factory=dict)
    histories: dict[str, Any] = field(default_factory=dict)
    metrics: Metrics = field(default_factory=Metrics)
    results: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def train(self, name: str, build: Callable[[], torch.nn.Module], data, *, seed: int | None = None,
              **fit_kw) -> torch.nn.Module:
        """The experiments' one training step: seed everything with ``seed`` (default the
        run's), build the model with ``build()`` (so its initial weights come from that seed),
        :func:`companion.train.fit` it on ``data`` on the run's device, and keep it in eval
        mode under ``name`` in :attr:`models`, its history in :attr:`histories`.

        ``fit_kw`` are :func:`~companion.train.fit`'s arguments (``epochs``, ``lr``,
        ``batch_size``, ``val``, ``on_epoch_end``); the seed, the device and ``progress=False``
        are the run's."""
        if name in self.models:
            raise ValueError(f"a model named {name!r} is already in this run")
        if not callable(build) or isinstance(build, torch.nn.Module):
            raise TypeError(f"build is a function of no arguments that returns the model (so that its initial "
                            f"weights come from the seed), got {type(build).__name__}")
        bad = {"seed", "device", "progress"} & set(fit_kw)
        if bad:
            raise TypeError(f"Run.train decides {', '.join(sorted(bad))} itself")
        seed = self.seed if seed is None else check_seed(seed)
        state = torch.get_rng_state(), np.random.get_state(), random.getstate()
        try:
            seed_everything(seed)
            model = build()
            history = fit(model, data, seed=seed, device=torch.device(self.device), progress=False, **fit_kw)
        except BaseException:                       # refused or failed: the generators are as they were
            torch.set_rng_state(state[0])
            np.random.set_state(state[1])
            random.setstate(state[2])
            raise
        self.models[name], self.histories[name] = model.eval(), history
        return model

    def record(self, metric: str, value, **dims) -> str:
        """Store a number under ``metric`` and ``dims`` (see :class:`Metrics`)."""
        return self.metrics.record(metric, value, **dims)

    def check(self, *names: str) -> None:
        """Assert the named claims of this run's experiment (all of them when none are named);
        raise :class:`ClaimFailed` naming each one that does not hold."""
        check_claims(get(self.experiment).CLAIMS, self.metrics, *names)


def check_claims(table: Mapping[str, Claim], metrics: Metrics, *names: str) -> None:
    """Assert the named claims of ``table`` on ``metrics`` (all when ``names`` is empty)."""
    if not isinstance(metrics, Metrics):
        raise TypeError(f"check_claims takes a run's Metrics (run.metrics, or metrics_of(record) for a saved "
                        f"record), got {type(metrics).__name__}")
    for n in names:
        if n not in table:
            raise ValueError(f"unknown claim {n!r}; this experiment has {', '.join(table)}")
    failed = []
    for n in names or tuple(table):
        try:
            holds = table[n].holds(metrics)
        except KeyError as e:                     # the claim reads a number this run did not record
            raise ValueError(f"claim {n!r} reads {e.args[0]}, which these metrics lack: are they this "
                             f"experiment's run?") from None
        if not holds:
            failed.append(table[n])
    if failed:
        raise ClaimFailed("; ".join(f"{c.name}: {c.statement}" for c in failed) + " — does not hold")


def resolve(module: ModuleType, budget) -> Any:
    """A budget name (``"quick"``, ``"full"``, ``"smoke"``) or a budget instance of ``module``."""
    if isinstance(budget, str):
        if budget not in module.BUDGETS:
            raise ValueError(f"budget must be one of {tuple(module.BUDGETS)} or a {module.__name__}.Budget, "
                             f"got {budget!r}")
        return module.BUDGETS[budget]
    if not isinstance(budget, module.Budget):
        raise TypeError(f"budget must be a name or a {module.__name__}.Budget, got {type(budget).__name__}")
    return budget


def run_device(device) -> torch.device:
    """The device of a run: ``None`` is the CPU, anything else as :func:`companion.get_device`
    resolves it (an already resolved ``torch.device`` is kept as it is)."""
    device = device if isinstance(device, torch.device) else get_device("cpu" if device is None else device)
    if device.type == "meta":
        raise ValueError("an experiment cannot run on the 'meta' device: it holds shapes, not numbers")
    return device


def start(module: ModuleType | str, budget, seed: int, device) -> tuple[Any, Run]:
    """Begin a run of ``module`` (or its ``__name__``): the budget, the seed and the device
    decided, everything seeded, the clock started."""
    module = sys.modules[module] if isinstance(module, str) else module
    b = resolve(module, budget)
    seed = check_seed(seed)
    run = Run(experiment=module.NAME, budget=b, seed=seed, device=str(run_device(device)))
    seed_everything(seed)
    run.seconds = -time.perf_counter()
    return b, run


def experiment_run(body: Callable[[Any, Run], None]) -> Callable[..., Run]:
    """An experiment's ``run(budget="quick", *, seed=0, device=None) -> Run``, made from its
    body ``body(b, r)``: the budget, the seed and the device are decided and everything seeded
    (:func:`start`), the body trains and records into the :class:`Run` ``r``, the run is
    finished (:func:`finish`), and it is saved for reuse where :func:`cached` saves runs."""
    if not callable(body) or not hasattr(body, "__module__"):
        raise TypeError(f"experiment_run decorates a function body(b, r), got {type(body).__name__}")
    module = body.__module__

    @functools.wraps(body)
    def run(budget="quick", *, seed: int = 0, device=None) -> Run:
        b, r = start(module, budget, seed, device)
        body(b, r)
        return finish(r)

    run.__signature__ = inspect.signature(_public_run)
    return cached(run)


def _public_run(budget="quick", *, seed: int = 0, device=None) -> Run:
    """The signature of every experiment's ``run``."""


def finish(run: Run) -> Run:
    """Stop the clock and put the models on the CPU in eval mode (the one move of a run)."""
    if not isinstance(run, Run):
        raise TypeError(f"finish takes the Run that start returned, got {type(run).__name__}")
    run.seconds += time.perf_counter()
    for m in run.models.values():
        m.cpu().eval()
    return run


@dataclass(frozen=True)
class Digits:
    """The digits a budget trains on: the first of ``data`` found on this machine (else the
    shipped mnist-5k), each split cut to ``n_train`` / ``n_test`` examples when given. A
    chapter's ``Budget`` that trains on digits extends it."""

    data: tuple[str, ...] = ("mnist-5k",)
    n_train: int | None = None
    n_test: int | None = None

    def load(self):
        """``((x_train, y_train), (x_test, y_test))`` (see :func:`companion.data.load_first`)."""
        from companion.data import load_first

        return load_first(self.data, n_train=self.n_train, n_test=self.n_test)

    def data_text(self) -> str:
        """What :func:`load` loads, for ``describe``."""
        return f"data: {' or '.join(self.data)} (else mnist-5k)"


# --------------------------------------------------------------------------- run cache

#: The environment variable that names the folder of saved runs (unset: every call trains).
RUN_CACHE = "COMPANION_RUN_CACHE"


def cached(run_fn: Callable[..., Run]) -> Callable[..., Run]:
    """Let ``run`` reuse a finished CPU run when ``$COMPANION_RUN_CACHE`` names a folder.

    The first call trains and saves the :class:`Run` there (:mod:`companion.experiments.cache`:
    safetensors and JSON, no pickle); a later call with the same experiment, budget fields,
    seed, companion source files, PyTorch version, CPU thread count and data files on this
    machine loads it instead of training again. A file there that is not such a run (truncated,
    foreign, planted) is reported with its path and replaced by a fresh run; nothing in it runs. It then prints what the
    run printed and leaves Python's, NumPy's and PyTorch's random generators as the run left
    them, so the cells after it compute the same numbers. Readers never set the variable;
    ``make test`` and ``make book`` do, so the book build, nbval and the Colab-environment
    test train each chapter's models once between them.
    """
    if not callable(run_fn) or not hasattr(run_fn, "__module__"):
        raise TypeError(f"cached wraps an experiment's run function, got {type(run_fn).__name__}")

    @functools.wraps(run_fn)
    def run(budget="quick", *, seed: int = 0, device=None) -> Run:
        folder = os.environ.get(RUN_CACHE)
        module = sys.modules[run_fn.__module__]
        device = run_device(device)                  # resolved here, once; start keeps it
        if not folder or device.type != "cpu":
            return run_fn(budget, seed=seed, device=device)
        b = resolve(module, budget)
        seed = check_seed(seed)
        path = Path(folder) / f"{module.NAME}-{run_key(module, b, seed)}.safetensors"
        if path.is_file():
            try:
                saved, printed, rng = load_run(path, b)
            except NotARun as e:             # truncated, foreign or planted: say so, train again, replace it
                warnings.warn(f"{e}; training the run again and replacing that file", stacklevel=2)
            else:
                seed_everything(seed)
                sys.stdout.write(printed)
                torch.set_rng_state(rng["torch"])
                np.random.set_state(rng["numpy"])
                random.setstate(rng["python"])
                return saved
        out, sys.stdout = sys.stdout, _Tee(sys.stdout)
        try:
            result = run_fn(b, seed=seed, device=device)
        finally:
            out, sys.stdout = sys.stdout, out
        rng = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
        try:
            save_run(path, result, out.text.getvalue(), rng)
        except (TypeError, ValueError, OSError) as e:   # the run is done: keep it, say why it is not saved
            warnings.warn(f"the run was not saved to {path}: {e}", stacklevel=2)
        return result

    return run


class _Tee:
    """A stdout that also keeps what is written."""

    def __init__(self, stream):
        self.stream, self.text = stream, io.StringIO()

    def write(self, s: str) -> int:
        self.text.write(s)
        return self.stream.write(s)

    def __getattr__(self, name):
        return getattr(self.stream, name)


def run_key(module: ModuleType, budget, seed: int) -> str:
    """What a saved run depends on, hashed: experiment, budget, seed, source, torch, threads, data."""
    seed = check_seed(seed)
    import companion
    from companion.data import on_disk

    root = Path(companion.__file__).parent
    source = hashlib.sha256()
    for f in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        source.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes())
    what = [module.NAME, repr(budget), seed, source.hexdigest(), torch.__version__, torch.get_num_threads(),
            on_disk()]
    return hashlib.sha256(json.dumps(what).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- registry

EXPERIMENTS: dict[str, ModuleType] = {}


def register(module: ModuleType) -> ModuleType:
    """Add a chapter's experiment module to the registry behind the CLI."""
    missing = [a for a in ("NAME", "BUDGETS", "run", "REFERENCES", "CLAIMS") if not hasattr(module, a)]
    if missing:
        raise ValueError(f"an experiment module defines NAME, BUDGETS (quick, full, smoke budget), run, "
                         f"REFERENCES and CLAIMS; {getattr(module, '__name__', module)!r} lacks {', '.join(missing)}")
    if module.NAME in EXPERIMENTS:
        raise ValueError(f"experiment {module.NAME!r} is registered twice")
    for name in ("quick", "full", "smoke"):
        if name not in module.BUDGETS:
            raise ValueError(f"{module.__name__} has no {name!r} budget")
    EXPERIMENTS[module.NAME] = module
    return module


def get(name: str) -> ModuleType:
    """The experiment module registered as ``name``."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; available: {', '.join(sorted(EXPERIMENTS))}")
    return EXPERIMENTS[name]


def reproduce(name: str, budget: str = "quick", json_path: str | Path | None = None, *, seed: int = 0,
              device: str | torch.device | None = None) -> dict:
    """Run experiment ``name`` with ``budget`` and ``seed`` on ``device`` (default the CPU) and
    return (and optionally write) its record:
    ``{"experiment", "budget", "device", "seed", "seconds", "metrics", "reference", "values"}``:
    ``metrics`` by flat name, ``values`` the same numbers with their metric and dimensions
    (:meth:`Metrics.records`; :func:`metrics_of` reads them back)."""
    module = get(name)
    seed = check_seed(seed)                                     # a NumPy integer becomes an int for the JSON
    if budget not in BUDGETS:
        raise ValueError(f"budget must be one of {BUDGETS}, got {budget!r}")
    if json_path is not None:
        check_writable(json_path, "json_path")                  # before the run, not after it
    run = module.run(budget, seed=seed, device=device)
    record = {"experiment": name, "budget": budget, "device": run.device, "seed": seed,
              "seconds": round(run.seconds, 2), "metrics": dict(run.metrics), "reference": module.REFERENCES,
              "values": run.metrics.records()}
    if json_path is not None:
        write_json(record, json_path)
    return record


def metrics_of(record: dict) -> Metrics:
    """The :class:`Metrics` of a record that :func:`reproduce` wrote (its ``values``)."""
    if not isinstance(record, dict) or "values" not in record:
        raise ValueError("metrics_of takes a record written by reproduce(), with its 'values'")
    values = [{**r, "value": float("nan") if r.get("value", 0) is None else r.get("value")}
              for r in record["values"]] if isinstance(record["values"], list) else record["values"]
    m = Metrics(values)
    flat = {k: float("nan") if v is None else v for k, v in record.get("metrics", dict(m)).items()}
    same = lambda a, b: a == b or (a != a and b != b)                   # noqa: E731  (NaN equals NaN here)
    if list(m) != list(flat) or not all(same(m[k], flat[k]) for k in m):
        raise ValueError("the record's 'values' and 'metrics' disagree")
    return m


def write_json(record: dict, path: str | Path) -> Path:
    """Write a record as indented JSON, creating the folder."""
    if not isinstance(record, dict):
        raise TypeError(f"write_json takes a record dict, got {type(record).__name__}")
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder: give a file path for the JSON record")
    text = json.dumps(_json_numbers(record), indent=2, allow_nan=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")
    return path


def _json_numbers(obj):
    """``obj`` with NaN and infinities as ``null``: JSON has no token for them (a bare NaN is
    not JSON); :func:`metrics_of` reads ``null`` back as NaN."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_numbers(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_numbers(v) for v in obj]
    return obj


def format_table(record: dict) -> str:
    """The metrics of a record as a plain-text table, published numbers beside ours."""
    missing = [k for k in ("experiment", "budget", "seconds", "metrics", "reference") if k not in record]
    if missing:
        raise ValueError(f"format_table takes a record from reproduce(); this one lacks {', '.join(missing)}")
    rows = [("metric", "ours", "published", "source")]
    for k, v in record["metrics"].items():
        ref = record["reference"].get(k)
        shown = "—" if v is None or (isinstance(v, float) and v != v) else f"{v:.4g}"
        rows.append((k, shown, published(ref["value"]) if ref else "", ref["source"] if ref else ""))
    for k, ref in record["reference"].items():
        if k not in record["metrics"]:
            rows.append((k, "", published(ref["value"]), ref["source"]))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    where = f", {record['device']}" if "device" in record else ""
    head = f"{record['experiment']} ({record['budget']} budget{where}, {record['seconds']:.1f} s)"
    return head + "\n" + "\n".join(lines)


def dashed(values) -> str:
    """Layer sizes as a describe() writes them: (256, 128) → ``"256-128"``."""
    return "-".join(_numbers(values, "dashed"))


def listed(values) -> str:
    """Settings as a describe() writes them: (1.0, 4.0, 16.0) → ``"1, 4, 16"``."""
    return ", ".join(_numbers(values, "listed"))


def _numbers(values, what: str) -> list[str]:
    if isinstance(values, (str, bytes)) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                   for v in values):
        raise TypeError(f"{what} takes a sequence of numbers, got {values!r}")
    return [f"{v:g}" for v in values]


#: Every experiment's published numbers, with their sources, in one table.
REFERENCES_FILE = Path(__file__).parent / "records" / "references.json"


def references(name: str) -> dict[str, dict]:
    """The published numbers an experiment compares with (``{metric: {"value", "label",
    "source"}}``, keyed by our flat metric names), from :data:`REFERENCES_FILE`."""
    table = json.loads(REFERENCES_FILE.read_text())
    if name not in table:
        raise ValueError(f"no references for experiment {name!r} in {REFERENCES_FILE.name}; it has {', '.join(table)}")
    return table[name]


def published(value) -> str:
    """A published number, or a range such as ``"0–0.4"`` read off a paper's figure."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError(f"a published value is a number or a range such as '0–0.4', got {value!r}")
    return f"{value:.4g}" if isinstance(value, (int, float)) else str(value)


def references_table(references: Mapping[str, dict], ours: Mapping[str, str] | None = None) -> str:
    """The published numbers of an experiment as a Markdown table (quantity, published,
    source), with a column of our values where ``ours`` names one for a key."""
    ours = ours or {}
    for k, ref in references.items():
        if not isinstance(ref, dict) or "value" not in ref or "source" not in ref:
            raise ValueError(f"reference {k!r} needs a 'value' and a 'source' (and may have a 'label'), got {ref!r}")
    head = "| quantity | published | source | ours |\n| --- | --- | --- | --- |\n"
    rows = [f"| {ref.get('label', k)} | {published(ref['value'])} | {ref['source']} | {ours.get(k, '—')} |"
            for k, ref in references.items()]
    return head + "\n".join(rows)
