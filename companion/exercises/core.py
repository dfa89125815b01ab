"""The machinery behind :func:`check`: an exercise registry and a case-by-case comparison."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from companion.runtime import check_seed


@dataclass
class Exercise:
    """One auto-checked exercise.

    Attributes:
        id: the name readers pass to :func:`check`, e.g. ``"ae.mse"``.
        title: one line shown in the report.
        cases: returns a list of argument tuples, each one hidden test case.
        reference: the reference solution, called with the same arguments.
        hint: what to look at when a case fails.
        atol, rtol: tolerances of the value comparison.
        compare: optional ``(got, expected) -> str | None`` replacing the value comparison;
            returns a description of the mismatch, or None when they agree.
        properties: optional ``(args, got) -> str | None`` for exercises whose answer is
            random (a corruption process, say): checks properties of ``got`` instead of
            comparing it with the reference's output.
    """

    id: str
    title: str
    cases: Callable[[], list[tuple]]
    reference: Callable
    hint: str
    atol: float = 1e-5
    rtol: float = 1e-4
    compare: Callable[[torch.Tensor, torch.Tensor], str | None] | None = None
    properties: Callable[[tuple, object], str | None] | None = None


@dataclass
class CheckResult:
    """Outcome of :func:`check`; true when every case passed."""

    exercise: str
    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def _repr_markdown_(self) -> str:
        return self.message

    def __str__(self) -> str:
        return self.message


REGISTRY: dict[str, Exercise] = {}


def seeded(seed: int) -> torch.Generator:
    """A generator for an exercise's hidden cases, so that they repeat exactly."""
    seed = check_seed(seed)
    return torch.Generator().manual_seed(seed)


def tensor_problem(got, shape) -> str | None:
    """For ``properties`` checkers: why ``got`` is not a tensor of ``shape``, or None."""
    if isinstance(shape, str) or not all(isinstance(s, int) and not isinstance(s, bool) for s in shape):
        raise TypeError(f"shape must be a tuple of ints (or a torch.Size), got {shape!r}")
    if not isinstance(got, torch.Tensor):
        return f"expected a torch.Tensor, got {_describe(got)}"
    if tuple(got.shape) != tuple(shape):
        return f"expected shape {tuple(shape)}, got {tuple(got.shape)}"
    return None


def register(exercise: Exercise) -> Exercise:
    """Add an exercise to the registry behind :func:`check`."""
    if not isinstance(exercise, Exercise):
        raise TypeError(f"register takes an Exercise, got {type(exercise).__name__}")
    if exercise.id in REGISTRY:
        raise ValueError(f"exercise {exercise.id!r} is registered twice")
    REGISTRY[exercise.id] = exercise
    return exercise


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor of shape {tuple(value.shape)}"
    return type(value).__name__


def _mismatch(got, expected, ex: Exercise) -> str | None:
    """A sentence describing how ``got`` differs from ``expected``, or None if it matches."""
    if isinstance(expected, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            return f"expected a torch.Tensor, got {_describe(got)}"
        if got.shape != expected.shape:
            return f"expected shape {tuple(expected.shape)}, got {tuple(got.shape)}"
        if expected.dtype == torch.bool:                          # masks: compare exactly
            if got.dtype != torch.bool:
                return f"expected a boolean mask (dtype torch.bool), got dtype {got.dtype}"
            wrong = (got != expected).sum().item()
            return None if wrong == 0 else f"{wrong} of {expected.numel()} entries differ"
        if not expected.is_floating_point():                      # indices: compare exactly
            if got.is_floating_point() or got.dtype == torch.bool:
                return f"expected integer indices (dtype {expected.dtype}), got dtype {got.dtype}"
            wrong = (got.long() != expected.long()).sum().item()
            return None if wrong == 0 else f"{wrong} of {expected.numel()} entries differ"
        if not got.is_floating_point():
            return f"expected a floating-point tensor, got dtype {got.dtype}"
        if ex.compare is not None:
            return ex.compare(got, expected)
        got_, exp_ = got.detach().double(), expected.detach().double()
        if not torch.isfinite(got_).all():
            return "your result contains NaN or inf"
        if not torch.allclose(got_, exp_, atol=ex.atol, rtol=ex.rtol):
            err = (got_ - exp_).abs().max().item()
            return (f"values differ: largest absolute error {err:.3g} "
                    f"(e.g. expected {exp_.flatten()[:3].tolist()}, got {got_.flatten()[:3].tolist()})")
        return None
    if isinstance(expected, float):
        try:
            got_f = float(got)
        except (TypeError, ValueError):
            return f"expected a number, got {_describe(got)}"
        if abs(got_f - expected) > ex.atol + ex.rtol * abs(expected):
            return f"expected {expected:.6g}, got {got_f:.6g}"
        return None
    return None if got == expected else f"expected {expected!r}, got {got!r}"


def check(exercise_id: str, fn: Callable, *, verbose: bool = True) -> CheckResult:
    """Run the hidden cases of ``exercise_id`` against ``fn`` and report.

    Prints (when ``verbose``) and returns a :class:`CheckResult`, which is truthy on a pass.
    """
    if exercise_id not in REGISTRY:
        raise ValueError(f"unknown exercise {exercise_id!r}; known: {', '.join(sorted(REGISTRY))}")
    if not callable(fn):
        raise TypeError(f"check expects a function, got {type(fn).__name__}")
    ex = REGISTRY[exercise_id]
    cases = ex.cases()
    problem = None
    for i, args in enumerate(cases, start=1):
        expected = ex.reference(*args)
        shown = ", ".join(_describe(a) for a in args)
        try:
            got = fn(*args)
        except Exception as e:  # the reader's code failed: say how, on which input
            problem = f"case {i} ({shown}): your function raised {type(e).__name__}: {e}"
            break
        if (isinstance(got, torch.Tensor) and isinstance(expected, torch.Tensor) and got.is_floating_point()
                and expected.is_floating_point() and got.dtype != expected.dtype):
            got = got.to(expected.dtype)               # a right value in another float dtype is right
        try:
            why = ex.properties(args, got) if ex.properties is not None else _mismatch(got, expected, ex)
        except Exception as e:                         # an answer of a shape or type no rule foresaw
            why = (f"your answer ({_describe(got)}) could not be compared with the expected "
                   f"{_describe(expected)}: {type(e).__name__}: {e}")
        if why is not None:
            problem = f"case {i} ({shown}): {why}"
            break
    if problem is None:
        result = CheckResult(ex.id, True, f"✅ {ex.id} — {ex.title}: all {len(cases)} cases pass.")
    else:
        result = CheckResult(ex.id, False, f"❌ {ex.id} — {ex.title}: {problem}.\nHint: {ex.hint}")
    if verbose:
        print(result.message)
    return result
