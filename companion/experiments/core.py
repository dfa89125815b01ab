"""The machinery shared by the chapters' experiments: runs, claims, the registry and records.

Each chapter's module (``companion.experiments.ch01_autoencoder`` …) defines

* ``NAME`` (what ``python -m companion reproduce NAME`` takes) and ``CHAPTER``;
* ``Budget``, a frozen dataclass, and ``BUDGETS = {"quick": …, "full": …, "smoke": …}``:
  ``quick`` is what the chapter executes (about a minute on a 2-core CPU), ``full`` is closer
  to the papers, ``smoke`` checks the plumbing in seconds (its numbers mean nothing);
* ``run(budget="quick", *, seed=0, device=None) -> Run``: trains on ``device`` and returns
  the trained models (on the CPU), their histories and the metrics;
* ``describe(budget) -> str``, written from the budget's fields;
* ``REFERENCES``: published numbers with their sources, keyed by our metric names;
* ``CLAIMS``: what the chapter says about its numbers, as named checks that the chapter
  asserts after its run.
"""
from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import random
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch

BUDGETS = ("quick", "full", "smoke")


class ClaimFailed(AssertionError):
    """A claim of a chapter does not hold for a run's metrics."""


@dataclass(frozen=True)
class Claim:
    """A sentence of a chapter about its numbers, and the check that makes it true.

    ``holds(metrics)`` returns True when the claim holds for a run's metrics
    (``{name: number}``); ``statement`` is the sentence, shown when it does not.
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


@dataclass
class Run:
    """What an experiment's ``run`` returns.

    Attributes:
        experiment: the experiment's name, e.g. ``"autoencoder"``.
        budget: the budget dataclass it ran with.
        seed, device: as passed to ``run`` (device as a string).
        models: the trained models by name, on the CPU in eval mode.
        histories: their :class:`companion.train.History` by the same names.
        metrics: flat ``{name: number}`` (the names the references and claims use).
        results: anything else the chapter draws (curves, arrays, per-model reports).
        seconds: wall-clock time of the run.
    """

    experiment: str
    budget: Any
    seed: int
    device: str
    models: dict[str, torch.nn.Module] = field(default_factory=dict)
    histories: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def check(self, *names: str) -> None:
        """Assert the named claims of this run's experiment (all of them when none are named);
        raise :class:`ClaimFailed` naming each one that does not hold."""
        check_claims(get(self.experiment).CLAIMS, self.metrics, *names)


def check_claims(table: Mapping[str, Claim], metrics: Mapping[str, float], *names: str) -> None:
    """Assert the named claims of ``table`` on ``metrics`` (all when ``names`` is empty)."""
    for n in names:
        if n not in table:
            raise ValueError(f"unknown claim {n!r}; this experiment has {', '.join(table)}")
    failed = [table[n] for n in (names or tuple(table)) if not table[n].holds(metrics)]
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


def check_seed(seed) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")


def start(module: ModuleType | str, budget, seed: int, device) -> tuple[Any, Run, torch.device]:
    """Begin a run of ``module`` (or its ``__name__``): resolve the budget and the device,
    seed everything, start the clock."""
    import companion

    module = sys.modules[module] if isinstance(module, str) else module
    b = resolve(module, budget)
    check_seed(seed)
    dev = companion.get_device(device if device is not None else "cpu")
    companion.seed_everything(seed)
    run = Run(experiment=module.NAME, budget=b, seed=seed, device=str(dev))
    run.seconds = -time.perf_counter()
    return b, run, dev


def finish(run: Run) -> Run:
    """Stop the clock, put the models on the CPU in eval mode and the metrics as floats."""
    if not isinstance(run, Run):
        raise TypeError(f"finish takes the Run that start returned, got {type(run).__name__}")
    run.seconds += time.perf_counter()
    for m in run.models.values():
        m.cpu().eval()
    run.metrics = {k: float(v) for k, v in run.metrics.items()}
    return run


# --------------------------------------------------------------------------- run cache

#: The environment variable that names the folder of saved runs (unset: every call trains).
RUN_CACHE = "COMPANION_RUN_CACHE"


def cached(run_fn: Callable[..., Run]) -> Callable[..., Run]:
    """Let ``run`` reuse a finished CPU run when ``$COMPANION_RUN_CACHE`` names a folder.

    The first call trains and saves the :class:`Run` there; a later call with the same
    experiment, budget fields, seed, companion source files, PyTorch version, CPU thread count
    and data files on this machine loads it instead of training again. It then prints what the
    run printed and leaves Python's, NumPy's and PyTorch's random generators as the run left
    them, so the cells after it compute the same numbers. Readers never set the variable;
    ``make test`` and ``make book`` do, so the book build, nbval and the Colab-environment
    test train each chapter's models once between them.
    """
    if not callable(run_fn) or not hasattr(run_fn, "__module__"):
        raise TypeError(f"cached wraps an experiment's run function, got {type(run_fn).__name__}")

    @functools.wraps(run_fn)
    def run(budget="quick", *, seed: int = 0, device=None) -> Run:
        import companion

        folder = os.environ.get(RUN_CACHE)
        module = sys.modules[run_fn.__module__]
        if not folder or companion.get_device(device if device is not None else "cpu").type != "cpu":
            return run_fn(budget, seed=seed, device=device)
        b = resolve(module, budget)
        check_seed(seed)
        path = Path(folder) / f"{module.NAME}-{run_key(module, b, seed)}.pt"
        if path.is_file():
            saved = torch.load(path, weights_only=False)
            companion.seed_everything(seed)
            sys.stdout.write(saved["printed"])
            torch.set_rng_state(saved["rng"]["torch"])
            np.random.set_state(saved["rng"]["numpy"])
            random.setstate(saved["rng"]["python"])
            return saved["run"]
        out, sys.stdout = sys.stdout, _Tee(sys.stdout)
        try:
            result = run_fn(b, seed=seed, device=device)
        finally:
            out, sys.stdout = sys.stdout, out
        rng = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_suffix(f".{os.getpid()}.part")
        torch.save({"run": result, "printed": out.text.getvalue(), "rng": rng}, part)
        os.replace(part, path)                       # atomic: a reader never sees half a file
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
    check_seed(seed)
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
    ``{"experiment", "budget", "device", "seed", "seconds", "metrics", "reference"}``."""
    module = get(name)
    if budget not in BUDGETS:
        raise ValueError(f"budget must be one of {BUDGETS}, got {budget!r}")
    run = module.run(budget, seed=seed, device=device)
    record = {"experiment": name, "budget": budget, "device": run.device, "seed": seed,
              "seconds": round(run.seconds, 2), "metrics": dict(run.metrics), "reference": module.REFERENCES}
    if json_path is not None:
        write_json(record, json_path)
    return record


def write_json(record: dict, path: str | Path) -> Path:
    """Write a record as indented JSON, creating the folder."""
    if not isinstance(record, dict):
        raise TypeError(f"write_json takes a record dict, got {type(record).__name__}")
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder: give a file path for the JSON record")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def format_table(record: dict) -> str:
    """The metrics of a record as a plain-text table, published numbers beside ours."""
    missing = [k for k in ("experiment", "budget", "seconds", "metrics", "reference") if k not in record]
    if missing:
        raise ValueError(f"format_table takes a record from reproduce(); this one lacks {', '.join(missing)}")
    rows = [("metric", "ours", "published", "source")]
    for k, v in record["metrics"].items():
        ref = record["reference"].get(k)
        rows.append((k, f"{v:.4g}", published(ref["value"]) if ref else "", ref["source"] if ref else ""))
    for k, ref in record["reference"].items():
        if k not in record["metrics"]:
            rows.append((k, "", published(ref["value"]), ref["source"]))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    where = f", {record['device']}" if "device" in record else ""
    head = f"{record['experiment']} ({record['budget']} budget{where}, {record['seconds']:.1f} s)"
    return head + "\n" + "\n".join(lines)


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
