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


#: Seconds a reader's function may take on one case before :func:`check` stops it.
TIME_LIMIT = 10.0


class CaseTimedOut(BaseException):
    """A reader's function ran past :data:`TIME_LIMIT` on one case (a BaseException, so that
    the reader's own ``except Exception`` cannot swallow it)."""


def check(exercise_id: str, fn: Callable, *, verbose: bool = True, time_limit: float = TIME_LIMIT) -> CheckResult:
    """Run the hidden cases of ``exercise_id`` against ``fn`` and report.

    Each case gives ``fn`` its own copies of the inputs, and an answer that changes an input in
    place fails, naming it (the bug that makes a clean target noisy). A case that runs past
    ``time_limit`` seconds is stopped, where the platform allows it (the main thread on Linux
    and macOS). Prints (when ``verbose``) and returns a :class:`CheckResult`, which is truthy on
    a pass.
    """
    if exercise_id not in REGISTRY:
        raise ValueError(f"unknown exercise {exercise_id!r}; known: {', '.join(sorted(REGISTRY))}")
    if not callable(fn):
        raise TypeError(f"check expects a function, got {type(fn).__name__}")
    if isinstance(time_limit, bool) or not isinstance(time_limit, (int, float)) or not time_limit > 0:
        raise ValueError(f"time_limit must be a positive number of seconds, got {time_limit!r}")
    ex = REGISTRY[exercise_id]
    names = _parameter_names(ex.reference)
    cases = ex.cases()
    problem = None
    for i, case in enumerate(cases, start=1):
        expected = ex.reference(*_copies(case))
        args = _copies(case)                           # the reader's own inputs, and a record of them
        pristine = _copies(case)
        shown = ", ".join(_describe(a) for a in args)
        try:
            with _time_limit(time_limit):
                got = fn(*args)
        except CaseTimedOut:
            problem = f"case {i} ({shown}): your function ran for more than {time_limit:g} s (an endless loop?)"
            break
        except Exception as e:  # the reader's code failed: say how, on which input
            problem = f"case {i} ({shown}): your function raised {type(e).__name__}: {e}"
            break
        changed = [names[j] if j < len(names) else f"argument {j + 1}"
                   for j, (a, b) in enumerate(zip(args, pristine)) if _changed(a, b)]
        if changed:
            problem = (f"case {i} ({shown}): your function changed {', '.join(changed)} in place; "
                       f"compute a new tensor instead (x * mask, not x.mul_(mask) or x.data[...] = …)")
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


def _copies(case: tuple) -> tuple:
    """A case's arguments with every tensor copied (a leaf again, requiring grad as before)."""
    def copy(a):
        if isinstance(a, torch.Tensor):
            return a.detach().clone().requires_grad_(a.requires_grad)
        if isinstance(a, (list, tuple)) and not hasattr(a, "_fields"):
            return type(a)(copy(x) for x in a)
        return a
    return tuple(copy(a) for a in case)


def _changed(a, b) -> bool:
    """Whether the reader's argument ``a`` no longer equals its untouched copy ``b``."""
    if isinstance(a, torch.Tensor):
        return a.shape != b.shape or not torch.equal(a.detach(), b.detach()) and not (
            a.is_floating_point() and torch.equal(a.detach().isnan(), b.detach().isnan())
            and torch.equal(a.detach().nan_to_num(), b.detach().nan_to_num()))
    if isinstance(a, (list, tuple)) and not hasattr(a, "_fields"):
        return len(a) != len(b) or any(_changed(x, y) for x, y in zip(a, b))
    return False


def _parameter_names(f: Callable) -> list[str]:
    import inspect

    try:
        return [p.name for p in inspect.signature(f).parameters.values()]
    except (TypeError, ValueError):
        return []


class _time_limit:
    """Raise :class:`CaseTimedOut` in the block after ``seconds``, where SIGALRM exists and this
    is the main thread; elsewhere the block runs without a limit."""

    def __init__(self, seconds: float) -> None:
        import signal
        import threading

        self.seconds = seconds
        self.active = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()

    def __enter__(self):
        if self.active:
            import signal
            import time

            def stop(signum, frame):
                raise CaseTimedOut()

            self.previous = signal.signal(signal.SIGALRM, stop)
            self.outer = signal.setitimer(signal.ITIMER_REAL, self.seconds, self.seconds)   # (left, interval)
            self.started = time.monotonic()
        return self

    def __exit__(self, *exc) -> None:
        if self.active:
            import signal
            import time

            try:
                signal.setitimer(signal.ITIMER_REAL, 0)
            finally:
                signal.signal(signal.SIGALRM, self.previous if self.previous is not None else signal.SIG_DFL)
                left, interval = self.outer
                if left > 0:                          # an outer timer (pytest-timeout, say) keeps running
                    signal.setitimer(signal.ITIMER_REAL, max(left - (time.monotonic() - self.started), 1e-3),
                                     interval)
