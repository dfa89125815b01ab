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
