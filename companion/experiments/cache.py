"""Saved runs without pickle: tensors in a safetensors file, everything else as JSON in its header.

A :class:`~companion.experiments.core.Run` is written as

* the weights of each model, and every tensor or array its results hold, as named tensors;
* one JSON document (the file's ``run`` metadata): each model's class name and config (it is
  rebuilt from :data:`companion.models.REGISTRY`, as a checkpoint is), the histories, the
  metrics as records, the results as a tree whose leaves are numbers, strings, tensor
  references or the few NamedTuple types of :func:`_named`, the text the run printed and the
  random generators' states.

Reading it runs no code from the file: safetensors holds only numbers, JSON only data, and the
only classes it can name are those of the registry and those NamedTuples. A file that is not
such a run (truncated, foreign, planted) raises :class:`NotARun`, naming the path.
"""
from __future__ import annotations

import json
import os
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

FORMAT = "companion-run-1"


class NotARun(ValueError):
    """A cache file that cannot be read back as a run."""


def _named() -> dict[str, type]:
    """The NamedTuple types a run's results may hold, by the name the file gives them."""
    from companion.data import Split
    from companion.data.sequences import Sequences
    from companion.models.vqvae2 import Codes

    return {"Split": Split, "Sequences": Sequences, "Codes": Codes}


def save_run(path: str | Path, run, printed: str, rng: dict) -> Path:
    """Write ``run`` (with what it printed and the generators' ``rng`` states) to ``path``,
    atomically (a reader never sees half a file)."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    models = {}
    for name, model in run.models.items():
        config = {f.name: _encode(getattr(model.config, f.name), tensors, f"config/{name}/{f.name}")
                  for f in fields(model.config)}                       # tuples stay tuples
        models[name] = {"class": type(model).__name__, "config": config}
        for k, v in model.state_dict().items():
            tensors[f"model/{name}/{k}"] = v.detach().cpu().contiguous().clone()
    tensors["rng/torch"] = rng["torch"].clone()
    numpy_state = rng["numpy"]
    tensors["rng/numpy"] = torch.from_numpy(numpy_state[1].astype(np.int64))
    doc = {
        "experiment": run.experiment, "seed": run.seed, "device": run.device, "seconds": run.seconds,
        "models": models,
        "histories": {name: _encode_history(name, h, tensors) for name, h in run.histories.items()},
        "metrics": run.metrics.records(),
        "results": _encode(run.results, tensors, "results"),
        "printed": printed,
        "rng": {"numpy": [numpy_state[0], int(numpy_state[2]), int(numpy_state[3]), float(numpy_state[4])],
                "python": _encode(rng["python"], tensors, "rng/python")},
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f"{path.name}.{os.getpid()}.part")
    try:
        save_file(tensors, str(part), metadata={"format": FORMAT, "run": json.dumps(doc)})
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)
    return path


def _encode_history(name: str, h, tensors: dict) -> dict:
    """A History with its per-step and per-epoch curves as float64 tensors (the JSON header
    stays small however long the training was); ``tolist`` gives back the same floats."""
    out = {"seconds": h.seconds}
    for field_name in ("train", "val", "tracked", "steps"):
        out[field_name] = {k: _encode(torch.tensor(v, dtype=torch.float64), tensors, f"history/{name}/{field_name}/{k}")
                           for k, v in getattr(h, field_name).items()}
    return out


def _decode_history(spec: dict, tensors: dict):
    from companion.train import History

    return History(seconds=spec["seconds"], **{f: {k: _decode(v, tensors).tolist() for k, v in spec[f].items()}
                                                 for f in ("train", "val", "tracked", "steps")})


def load_run(path: str | Path, budget) -> tuple[Any, str, dict]:
    """``(run, printed, rng)`` from a file :func:`save_run` wrote; ``budget`` is the budget the
    run was saved under (its key chose the file). Raises :class:`NotARun` for anything else."""
    from safetensors import safe_open

    from companion.experiments.core import Metrics, Run
    from companion.models import REGISTRY

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        if meta.get("format") != FORMAT:
            raise NotARun(f"{path} is not a saved run (no {FORMAT} header)")
        doc = json.loads(meta["run"])
        run = Run(experiment=doc["experiment"], budget=budget, seed=doc["seed"], device=doc["device"],
                  seconds=doc["seconds"], metrics=Metrics(doc["metrics"]))
        for name, spec in doc["models"].items():
            if spec["class"] not in REGISTRY:
                raise NotARun(f"{path}: unknown model class {spec['class']!r}")
            cls, config_cls = REGISTRY[spec["class"]]
            model = cls(config_cls(**{k: _decode(v, tensors) for k, v in spec["config"].items()}))
            prefix = f"model/{name}/"
            model.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
            run.models[name] = model.eval()
        run.histories = {name: _decode_history(h, tensors) for name, h in doc["histories"].items()}
        run.results = _decode(doc["results"], tensors)
        numpy_name, pos, has_gauss, cached = doc["rng"]["numpy"]
        rng = {"torch": tensors["rng/torch"],
               "numpy": (numpy_name, tensors["rng/numpy"].numpy().astype(np.uint32), pos, has_gauss, cached),
               "python": _decode(doc["rng"]["python"], tensors)}
        return run, doc["printed"], rng
    except NotARun:
        raise
    except Exception as e:           # safetensors' and json's own errors, missing keys, wrong shapes
        raise NotARun(f"{path} could not be read as a saved run ({type(e).__name__}: {e})") from e


# --------------------------------------------------------------------------- the results tree

def _encode(obj, tensors: dict, where: str):
    """``obj`` as JSON, its tensors and arrays moved to ``tensors`` under keys from ``where``."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, torch.Tensor):
        tensors[where] = obj.detach().cpu().contiguous().clone()
        return {"$tensor": where}
    if isinstance(obj, np.ndarray):
        tensors[where] = torch.from_numpy(np.ascontiguousarray(obj).copy())
        return {"$ndarray": where}
    if isinstance(obj, np.generic):
        return {"$numpy": obj.dtype.str, "value": obj.item()}
    if isinstance(obj, tuple) and hasattr(obj, "_fields") and _named().get(type(obj).__name__) is type(obj):
        return {"$named": type(obj).__name__,
                "fields": [_encode(v, tensors, f"{where}.{k}") for k, v in zip(obj._fields, obj)]}
    if type(obj) is tuple:
        return {"$tuple": [_encode(v, tensors, f"{where}[{i}]") for i, v in enumerate(obj)]}
    if type(obj) is list:
        return [_encode(v, tensors, f"{where}[{i}]") for i, v in enumerate(obj)]
    if type(obj) is dict:
        return {"$dict": [[_encode(k, tensors, f"{where}<key{i}>"), _encode(v, tensors, f"{where}[{i}]")]
                          for i, (k, v) in enumerate(obj.items())]}
    from companion.metrics.probes import Probe

    if isinstance(obj, Probe):
        return {"$probe": obj.dims, "steps": [_encode_estimator(step, tensors, f"{where}.{i}")
                                              for i, (_, step) in enumerate(obj.pipeline.steps)]}
    raise TypeError(f"a saved run cannot hold {type(obj).__name__} (at {where}); results hold numbers, strings, "
                    f"tensors, arrays, lists, tuples, dicts, {', '.join(_named())} and probes")


def _decode(obj, tensors: dict):
    if not isinstance(obj, (dict, list)):
        return obj
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    if "$tensor" in obj:
        return tensors[obj["$tensor"]]
    if "$ndarray" in obj:
        return tensors[obj["$ndarray"]].numpy()
    if "$numpy" in obj:
        return np.array(obj["value"], dtype=np.dtype(obj["$numpy"]))[()]
    if "$named" in obj:
        types = _named()
        if obj["$named"] not in types:
            raise NotARun(f"unknown result type {obj['$named']!r}")
        return types[obj["$named"]](*(_decode(v, tensors) for v in obj["fields"]))
    if "$tuple" in obj:
        return tuple(_decode(v, tensors) for v in obj["$tuple"])
    if "$dict" in obj:
        return {_decode(k, tensors): _decode(v, tensors) for k, v in obj["$dict"]}
    if "$probe" in obj:
        from sklearn.pipeline import make_pipeline

        from companion.metrics.probes import Probe

        return Probe(make_pipeline(*(_decode_estimator(s, tensors) for s in obj["steps"])), obj["$probe"])
    raise NotARun(f"unknown entry in a saved run: {sorted(obj)}")


def _estimators() -> dict[str, type]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    return {"StandardScaler": StandardScaler, "LogisticRegression": LogisticRegression}


def _encode_estimator(est, tensors: dict, where: str) -> dict:
    """A fitted scikit-learn step of a probe: its class, its parameters and its fitted attributes."""
    name = type(est).__name__
    if name not in _estimators():
        raise TypeError(f"a saved probe holds {', '.join(_estimators())} steps, got {name}")
    fitted = {k: _encode(v, tensors, f"{where}.{k}") for k, v in vars(est).items()
              if k.endswith("_") and not k.startswith("_")}
    return {"class": name, "params": est.get_params(), "fitted": fitted}


def _decode_estimator(spec: dict, tensors: dict):
    types = _estimators()
    if spec["class"] not in types:
        raise NotARun(f"unknown probe step {spec['class']!r}")
    est = types[spec["class"]](**spec["params"])
    for k, v in spec["fitted"].items():
        setattr(est, k, _decode(v, tensors))
    return est
