"""The package's layers are what its docstring says: every module imports only from its own
layer and the layers listed before it (imports inside functions included)."""
import ast
import re
from pathlib import Path

import companion

ROOT = Path(companion.__file__).parent
LAYERS = re.findall(r"^- :mod:`companion\.(\w+)`", companion.__doc__, flags=re.M)
#: what ``import companion`` / ``from companion import name`` reaches when name is no submodule
ROOT_LAYER = "models"          # companion/__init__ re-exports models.base.Output and runtime


def _layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "companion":
        return None
    return parts[1] if len(parts) > 1 else ROOT_LAYER


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "companion":
                for a in node.names:
                    yield a.name if (ROOT / a.name).exists() or (ROOT / f"{a.name}.py").exists() else ROOT_LAYER
            elif (layer := _layer_of(node.module)) is not None:
                yield layer
        elif isinstance(node, ast.Import):
            for a in node.names:
                if (layer := _layer_of(a.name)) is not None:
                    yield layer


def test_the_docstring_lists_every_subpackage():
    found = {p.stem if p.is_file() else p.name for p in ROOT.iterdir()
             if not p.name.startswith("_") and (p.suffix == ".py" or (p / "__init__.py").exists())}
    assert set(LAYERS) == found and len(LAYERS) == len(set(LAYERS))


def test_no_module_imports_from_a_layer_above_its_own():
    bad = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.name in ("__init__.py", "__main__.py") and len(rel.parts) == 1:
            continue                                   # the package root and the CLI sit on top
        own = LAYERS.index(rel.parts[0] if len(rel.parts) > 1 else rel.stem)
        for layer in _imports(path):
            if LAYERS.index(layer) > own:
                bad.append(f"companion/{rel} imports companion.{layer}")
    assert not bad, "\n".join(bad)


def _functions_with_a_seed():
    """(path, qualified name, function node) of every public function or method with a ``seed``."""
    for path in sorted(ROOT.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                for sub in node.body:
                    if isinstance(sub, ast.FunctionDef):
                        sub.qualname = f"{node.name}.{sub.name}"
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                args = [a.arg for a in (*node.args.args, *node.args.kwonlyargs)]
                if "seed" in args:
                    yield path.relative_to(ROOT), getattr(node, "qualname", node.name), node


def test_every_seed_is_checked_by_the_one_validator():
    """A public function that takes a seed checks it with companion.runtime.check_seed (or hands
    it to start/Run.train, which do), so that one rule holds everywhere: a non-negative int,
    NumPy integers included, bools refused."""
    unchecked = []
    for path, name, node in _functions_with_a_seed():
        calls = [n for n in ast.walk(node) if isinstance(n, ast.Call)]
        checks = any(isinstance(c.func, ast.Name) and c.func.id == "check_seed" for c in calls)
        hands_on = any(any(isinstance(a, ast.Name) and a.id == "seed" for a in c.args)
                       or any(k.arg == "seed" and isinstance(k.value, ast.Name) and k.value.id == "seed"
                              for k in c.keywords) for c in calls)      # passes seed on to a call that checks it
        if not (checks or hands_on) and name != "check_seed":
            unchecked.append(f"{path}:{name}")
    assert not unchecked, unchecked


def test_the_device_is_resolved_at_the_entry_points_only():
    """get_device is called by a run (once, in experiments.core.run_device, which the CLI uses
    too) and by fit, and nowhere else."""
    callers = {str(p.relative_to(ROOT)) for p in ROOT.rglob("*.py")
               if re.search(r"(?<![\w.])get_device\(", p.read_text().replace("def get_device(", ""))}
    assert callers == {"train.py", "experiments/core.py"}, callers


def test_the_one_seed_rule():
    import numpy as np
    import pytest

    from companion.runtime import check_seed
    assert check_seed(np.int64(3)) == 3 and type(check_seed(np.int32(2))) is int
    for bad, error in ((-1, ValueError), (True, TypeError), (1.0, TypeError), ("1", TypeError)):
        with pytest.raises(error, match="seed must be a non-negative int"):
            check_seed(bad)


def test_no_relative_imports():
    """(So that the layer check above sees every import.)"""
    for path in ROOT.rglob("*.py"):
        assert not any(isinstance(n, ast.ImportFrom) and n.level for n in ast.walk(ast.parse(path.read_text()))), path


def test_drawing_from_continues_the_generator_and_leaves_the_global_one():
    import torch

    from companion.runtime import drawing_from
    torch.manual_seed(7)
    want = torch.randn(5), torch.randn(3)                 # what manual_seed(7) gives, in two blocks
    torch.manual_seed(99)
    global_state = torch.get_rng_state()
    g = torch.Generator().manual_seed(7)
    with drawing_from(g):
        first = torch.randn(5)
    assert torch.equal(torch.get_rng_state(), global_state)           # untouched outside the block
    with drawing_from(g):
        second = torch.randn(3)                                       # the stream continues
    assert torch.equal(first, want[0]) and torch.equal(second, want[1])
    assert torch.equal(torch.get_rng_state(), global_state)
    with drawing_from(None):
        torch.randn(1)
    assert not torch.equal(torch.get_rng_state(), global_state)       # None: the global generator


def test_evaluate_with_a_generator_draws_what_manual_seed_drew():
    import torch

    from companion.models import VAE
    from companion.train import evaluate
    model = VAE(latent_size=2, hidden=(8,))
    x = torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(3)
    old = [evaluate(model, x)["loss"] for _ in range(2)]
    torch.manual_seed(5)
    state = torch.get_rng_state()
    g = torch.Generator().manual_seed(3)
    new = [evaluate(model, x, generator=g)["loss"] for _ in range(2)]
    assert new == old and old[0] != old[1] and torch.equal(torch.get_rng_state(), state)


def test_preserved_rngs_restores_python_numpy_and_torch():
    import random

    import numpy as np
    import torch

    from companion.runtime import preserved_rngs, seed_everything
    seed_everything(1)
    before = random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state()
    with preserved_rngs():
        seed_everything(2)
        random.random(), np.random.rand(), torch.rand(1)
    assert random.getstate() == before[0] and (np.random.get_state()[1] == before[1]).all()
    assert torch.equal(torch.get_rng_state(), before[2])
