"""The experiments package: its modules' shape, the registry, the CLI, and each experiment's
plumbing on the ``smoke`` budget (seconds each).

The claims themselves are asserted where the quick budget runs: in the chapters, which nbval
executes (``test_every_claim_is_asserted_in_its_chapter`` checks that each one is).
"""
import ast
import dataclasses
import json
import math
import os
import re
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from companion import experiments
from companion.experiments.core import RUN_CACHE, Claim, ClaimFailed, Metrics, check_claims, metrics_of, name_of, run_key

ROOT = Path(__file__).resolve().parents[1]
NAMES = ["autoencoder", "denoising", "sparse", "k-sparse", "contractive", "vae", "beta-vae", "beta-vae-sweep",
         "vq-vae", "vq-vae-2", "td-vae", "after-the-survey"]


@pytest.fixture(autouse=True)
def _train_for_real(monkeypatch):
    """These tests train: a run cache named by the environment (make test sets one) is off."""
    monkeypatch.delenv(RUN_CACHE, raising=False)


def test_registry_holds_every_chapter():
    assert sorted(experiments.EXPERIMENTS) == sorted(NAMES)
    for name, m in experiments.EXPERIMENTS.items():
        assert m.NAME == name and (ROOT / f"{m.CHAPTER}.md").is_file()
        assert set(m.BUDGETS) == {"quick", "full", "smoke"}
        for b in m.BUDGETS.values():
            assert isinstance(b, m.Budget) and dataclasses.is_dataclass(b)
            with pytest.raises(dataclasses.FrozenInstanceError):
                b.epochs = 1
        assert m.CLAIMS and all(isinstance(c, Claim) and c.name == k for k, c in m.CLAIMS.items())
        for key, ref in m.REFERENCES.items():
            assert {"value", "source"} <= set(ref) and ref["source"], (name, key)


@pytest.mark.parametrize("name", NAMES)
def test_descriptions_come_from_the_budget(name):
    m = experiments.get(name)
    quick = m.describe(m.BUDGETS["quick"])
    quick_budget = m.BUDGETS["quick"]
    if hasattr(quick_budget, "model"):         # a sweep: its model's budget holds the training length
        changed = dataclasses.replace(quick_budget, model=dataclasses.replace(quick_budget.model, epochs=7777))
    else:
        changed = dataclasses.replace(quick_budget, epochs=7777)
    assert "7777" in m.describe(changed) or "7,777" in m.describe(changed) or name == "beta-vae", quick
    assert m.describe(m.BUDGETS["full"]) != quick


def test_table_and_published_ranges():
    record = {"experiment": "x", "budget": "quick", "seconds": 1.0, "metrics": {"a": 1.5},
              "reference": {"a": {"value": 2.0, "source": "paper"}, "b": {"value": 3.0, "source": "other"}}}
    table = experiments.format_table(record)
    assert "a" in table and "1.5" in table and "paper" in table and "other" in table
    record["reference"]["b"]["value"] = "0–0.4"                     # a range read off a figure
    assert "0–0.4" in experiments.format_table(record)
    md = experiments.references_table({"a": {"value": 2.0, "source": "paper", "label": "thing"}}, {"a": "1.5"})
    assert "| thing | 2 | paper | 1.5 |" in md


def test_bad_names_budgets_and_seeds():
    with pytest.raises(ValueError, match="unknown experiment"):
        experiments.reproduce("nope")
    with pytest.raises(ValueError, match="budget"):
        experiments.reproduce("autoencoder", "huge")
    m = experiments.get("autoencoder")
    with pytest.raises(ValueError, match="budget"):
        m.run("huge")
    with pytest.raises(TypeError, match="Budget"):
        m.run(experiments.get("vae").BUDGETS["smoke"])              # another chapter's budget
    with pytest.raises(ValueError, match="seed"):
        m.run("smoke", seed=-1)


def _metrics(**flat) -> Metrics:
    m = Metrics()
    for k, v in flat.items():
        m.record(k, v)
    return m


def test_claims_name_what_fails():
    table = {"up": Claim("up", "a rises", lambda m: m["a"] > 0), "down": Claim("down", "b falls", lambda m: m["b"] < 0)}
    check_claims(table, _metrics(a=1, b=-1))
    with pytest.raises(ClaimFailed, match="down: b falls"):
        check_claims(table, _metrics(a=1, b=1))
    with pytest.raises(ClaimFailed, match="up") as e:
        check_claims(table, _metrics(a=-1, b=1), "up")
    assert "down" not in str(e.value)
    with pytest.raises(ValueError, match="unknown claim"):
        check_claims(table, _metrics(a=1), "sideways")
    with pytest.raises(TypeError, match="metrics_of"):
        check_claims(table, {"a": 1, "b": -1})          # a record's flat dict: read it with metrics_of


@pytest.mark.parametrize("name", NAMES)
def test_smoke_run_plumbing(name, tmp_path, monkeypatch, capsys):
    """Every experiment runs end to end on its smoke budget: CPU models in eval mode,
    finite metrics, a JSON record, and every claim evaluates (true or false, no error).
    With $COMPANION_RUN_CACHE set the run is saved, and a second call loads it: the same
    metrics and models, what it printed printed again, the random generators where the
    training left them."""
    m = experiments.get(name)
    monkeypatch.setenv(RUN_CACHE, str(tmp_path / "runs"))
    record = experiments.reproduce(name, "smoke", json_path=tmp_path / "out.json")
    after_training = _draws()
    printed = capsys.readouterr().out
    (saved,) = (tmp_path / "runs").glob(f"{name}-*.safetensors")
    again = m.run("smoke")
    assert _draws() == after_training and capsys.readouterr().out == printed
    assert again.metrics == record["metrics"] and set(again.models) == set(m.run("smoke").models)
    assert len(list((tmp_path / "runs").iterdir())) == 1                 # loaded, not saved again
    assert json.loads((tmp_path / "out.json").read_text()) == record
    assert set(record) == {"experiment", "budget", "device", "seed", "seconds", "metrics", "reference", "values"}
    assert record["budget"] == "smoke" and record["device"] == "cpu"
    assert record["metrics"] and all(math.isfinite(v) for v in record["metrics"].values()), record["metrics"]
    assert metrics_of(record) == again.metrics and metrics_of(record).records() == again.metrics.records()
    golden = json.loads((ROOT / "tests" / "data" / "smoke_metric_names.json").read_text())
    assert list(record["metrics"]) == golden[name]       # the flat names and their order, as before issue 38
    for claim in m.CLAIMS.values():
        assert claim.holds(again.metrics) in (True, False)


def _draws() -> tuple:
    return torch.rand(3).tolist(), np.random.rand(3).tolist(), random.random()


def test_run_cache_key_follows_budget_seed_and_threads(monkeypatch, tmp_path):
    """A saved run is reused only for the same budget, seed and thread count; other calls
    train and save their own; without the variable nothing is saved."""
    m = experiments.get("autoencoder")
    b = m.BUDGETS["smoke"]
    keys = {run_key(m, b, 0), run_key(m, b, 1), run_key(m, dataclasses.replace(b, epochs=b.epochs + 1), 0)}
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(threads + 1)
        keys.add(run_key(m, b, 0))
    finally:
        torch.set_num_threads(threads)
    assert len(keys) == 4 and run_key(m, b, 0) == run_key(m, m.BUDGETS["smoke"], 0)
    monkeypatch.delenv(RUN_CACHE, raising=False)
    m.run("smoke")
    monkeypatch.setenv(RUN_CACHE, str(tmp_path))
    m.run("smoke", seed=1)
    m.run("smoke", seed=1)
    assert len(list(tmp_path.iterdir())) == 1


def test_run_returns_cpu_models_and_repeats_exactly():
    m = experiments.get("autoencoder")
    a, b = m.run("smoke", seed=3), m.run("smoke", seed=3)
    assert a.metrics == b.metrics and a.seed == 3 and a.budget == m.BUDGETS["smoke"]
    for model in a.models.values():
        assert not model.training
        assert all(p.device.type == "cpu" for p in model.parameters())
    assert set(a.histories) >= {"explorer", "linear"}
    assert m.run("smoke", seed=4).metrics != a.metrics              # the seed reaches the run


def test_every_claim_is_asserted_in_its_chapter():
    """Each chapter calls its experiment once and asserts each of its claims by name."""
    for name, m in experiments.EXPERIMENTS.items():
        text = (ROOT / f"{m.CHAPTER}.md").read_text()
        if hasattr(m, "RECORD"):          # a sweep: the chapter reads its saved record instead of running it
            assert f"{m.__name__.rsplit('.', 1)[1]} as " in text and ".record()" in text, m.__name__
        else:
            assert text.count('.run("quick"') == 1, f"{m.CHAPTER} should call run(\"quick\") exactly once"
        for claim in m.CLAIMS:
            assert f'"{claim}"' in text, f"{m.CHAPTER} does not assert the claim {claim!r}"


#: The places a chapter calls fit itself: chapter 1 trains its model with a loop written on the
#: page (training in plain view), checks step by step that fit takes exactly the same steps, and
#: shows fit's divergence guard stopping a run with an absurd learning rate.
FIT_SHOWN = {"chapters/01_autoencoder": ['assert fit_history.steps["loss"] == step_losses', "TrainingDiverged"]}


def test_no_chapter_trains_or_types_a_published_number():
    for m in experiments.EXPERIMENTS.values():
        text = (ROOT / f"{m.CHAPTER}.md").read_text()
        calls = len(re.findall(r"(?<![\w.])fit\(", text))          # not PCA(...).fit(x), np.polyfit(...)
        if m.CHAPTER in FIT_SHOWN:
            assert calls == len(FIT_SHOWN[m.CHAPTER]) and all(s in text for s in FIT_SHOWN[m.CHAPTER]), m.CHAPTER
        else:
            assert calls == 0, m.CHAPTER
        fields = dataclasses.asdict(m.BUDGETS["quick"])                  # a target such as ρ = 0.05 is a setting
        settings = {v for v in [*fields.values(), *fields.get("model", {}).values()] if not isinstance(v, dict)}
        for ref in m.REFERENCES.values():
            v = ref["value"]
            if isinstance(v, float) and v != int(v) and v not in settings:   # e.g. 13.87, 86.76
                assert f"{v:g}" not in text, f"{m.CHAPTER} types the published {v:g}"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_only_the_cli_imports_the_experiments():
    for path in (ROOT / "companion").rglob("*.py"):
        rel = path.relative_to(ROOT / "companion")
        if rel.parts[0] == "experiments" or rel.name == "__main__.py":
            continue
        bad = {m for m in _imports(path) if m.startswith("companion.experiments")}
        assert not bad, f"companion/{rel} imports {bad}"


def test_cli_list():
    out = subprocess.run([sys.executable, "-m", "companion", "list"], capture_output=True, text=True, check=True)
    listed = [line.split()[0] for line in out.stdout.splitlines() if line.strip()]
    assert sorted(listed) == sorted(NAMES), listed


def test_cli_refuses_bad_arguments_before_training(tmp_path):
    for args, message in ((["nope"], "unknown experiment"), (["vae", "--seed", "-1"], "--seed"),
                          (["vae", "--json", str(tmp_path)], "folder")):
        out = subprocess.run([sys.executable, "-m", "companion", "reproduce", *args], capture_output=True, text=True)
        assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_cli_reproduce_writes_json(tmp_path):
    path = tmp_path / "sub" / "out.json"
    out = subprocess.run([sys.executable, "-m", "companion", "reproduce", "autoencoder", "--budget", "smoke",
                          "--seed", "2", "--json", str(path)], capture_output=True, text=True, check=True)
    record = json.loads(path.read_text())
    assert record["seed"] == 2 and record["budget"] == "smoke" and record["device"] == "cpu"
    assert record["reference"]["pca_test_mse_k30"]["value"] == 13.87
    assert "ae_test_mse_k30" in out.stdout and "published" in out.stdout


def test_filter_roughness_orders_smooth_below_noisy():
    from companion.metrics import filter_roughness

    g = torch.Generator().manual_seed(0)
    noisy = torch.randn(10, 28 * 28, generator=g)
    yy, xx = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    smooth = torch.stack([torch.exp(-((xx - c) ** 2 + (yy - 14) ** 2) / 30).flatten() for c in range(5, 25, 2)])
    assert filter_roughness(smooth, (1, 28, 28)) < 0.2 < filter_roughness(noisy, (1, 28, 28))
    with pytest.raises(ValueError, match="pixels"):
        filter_roughness(noisy, (1, 20, 20))


def test_the_saved_sweep_record_is_the_quick_sweep_of_this_chapters_model():
    """Chapter 7 quotes a record written by ``reproduce beta-vae-sweep``: it must hold every
    (setting, β, seed) of the quick budget, satisfy the sweep's claims, and come from the
    chapter's own model (the same budget but for the data and β)."""
    from companion.experiments import ch07_beta_vae as chapter, ch07_sweep as sweep
    record = sweep.record()
    b = sweep.BUDGETS["quick"]
    assert record["experiment"] == sweep.NAME and record["budget"] == "quick" and record["seed"] == 0
    m = metrics_of(record)
    expected = {(k, (("setting", s), ("beta", beta), ("seed", i))) for s in b.settings for beta in b.betas
                for i in range(b.seeds) for k in ("mig", "active")} | {("seeds", ()), ("largest_beta", ())}
    assert {(r["metric"], tuple(r["dims"].items())) for r in m.records()} == expected
    check_claims(sweep.CLAIMS, m, *sweep.CLAIMS)
    model = dataclasses.replace(chapter.BUDGETS["quick"], capacity=None, tc_weight=None)
    assert b.model == model and max(b.betas) == max(chapter.BUDGETS["quick"].betas)


def test_the_saved_full_record_is_the_full_budget_of_chapter_7():
    """Chapter 7 quotes the full budget's record: it must be that budget's run, with every
    metric the current full budget reports."""
    from companion.experiments import ch07_beta_vae as chapter
    record = chapter.full_record()
    b = chapter.BUDGETS["full"]
    assert record["experiment"] == chapter.NAME and record["budget"] == "full" and record["seed"] == 0
    names = [name_of(beta=beta) for beta in b.betas] + ["capacity", "tcvae"]
    expected = {f"{n}_{k}" for n in names for k in chapter.REPORTED} | {"factors", "capacity_target"}
    assert set(record["metrics"]) == expected and dict(metrics_of(record)) == record["metrics"]
    assert record["metrics"]["capacity_target"] == b.capacity and record["metrics"]["factors"] == 5


def test_metrics_are_read_back_by_metric_and_dimensions():
    m = Metrics()
    assert m.record("mig", 0.2, setting="asymmetric", beta=16.0, seed=0) == "asymmetric_beta16_seed0_mig"
    m.record("mig", 0.05, setting="asymmetric", beta=1, seed=0)
    m.record("mig", 0.3, setting="asymmetric", beta=16, seed=1)
    assert m.record("test_mse_k{k}", torch.tensor(3.5), model="ae", k=2) == "ae_test_mse_k2"
    assert m.record("kl", 1, beta=0.3) == "beta0.3_kl" and m.record("factors", np.int64(5)) == "factors"
    assert m.value("test_mse_k{k}", model="ae", k=2) == 3.5 and m["ae_test_mse_k2"] == 3.5
    assert m.series("mig", over="beta", setting="asymmetric", seed=0) == {1: 0.05, 16.0: 0.2}
    assert list(m.series("mig", over="beta", setting="asymmetric", seed=0)) == [1, 16]
    assert m.series("mig", over="seed", setting="asymmetric", beta=16) == {0: 0.2, 1: 0.3}
    assert m.series("mig", over="seed", setting="symmetric", beta=16) == {}
    assert m.table("mig", rows="beta", columns="seed", setting="asymmetric") == {1: {0: 0.05}, 16: {0: 0.2, 1: 0.3}}
    assert Metrics(m.records()) == m and Metrics(m.records()).records() == m.records()
    assert json.loads(json.dumps(m.records())) == m.records()
    with pytest.raises(ValueError, match="recorded twice"):
        m.record("mig", 0.1, setting="asymmetric", beta=16, seed=1)
    with pytest.raises(KeyError, match="no 'mig' recorded"):
        m.value("mig", beta=16)
    with pytest.raises(TypeError, match="a number"):
        m.record("curve", [1, 2])
    with pytest.raises(TypeError, match="string or a number"):
        m.record("x", 1.0, beta=None)
    assert len(m) == 6 and "factors" in m and not hasattr(m, "__setitem__")


def test_a_refused_run_train_changes_nothing():
    """A bad fit argument is refused with the generators and the run as they were."""
    import random as _random
    from companion.experiments.core import start
    from companion.models import Autoencoder
    _, r = start(experiments.get("autoencoder"), "smoke", 0, None)
    x = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(123), np.random.seed(123), _random.seed(123)
    before = torch.get_rng_state(), np.random.get_state()[1].copy(), _random.getstate()
    with pytest.raises(ValueError, match="epochs"):
        r.train("a", lambda: Autoencoder(code_size=2, hidden=(8,)), x, epochs=0)
    assert torch.equal(torch.get_rng_state(), before[0]) and (np.random.get_state()[1] == before[1]).all()
    assert _random.getstate() == before[2] and not r.models and not r.histories


def test_run_train_is_the_one_training_step():
    """Run.train seeds, builds from the seed, fits on the run's device and keeps the model in
    eval mode with its history; it refuses what it decides itself, and a name given twice."""
    from companion.experiments.core import start
    from companion.models import Autoencoder
    m = experiments.get("autoencoder")
    _, r = start(m, "smoke", 0, None)
    x = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    build = lambda: Autoencoder(code_size=2, hidden=(8,))          # noqa: E731
    a = r.train("a", build, x, epochs=1)
    b = r.train("b", build, x, epochs=1)
    c = r.train("c", build, x, epochs=1, seed=1)
    assert not a.training and r.histories["a"].epochs == 1 and r.device == "cpu"
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))       # same seed, same model
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))
    for bad, error, words in ((lambda: r.train("a", build, x, epochs=1), ValueError, "already"),
                              (lambda: r.train("d", build(), x, epochs=1), TypeError, "function of no arguments"),
                              (lambda: r.train("d", build, x, epochs=1, device="cpu"), TypeError, "decides device"),
                              (lambda: r.train("d", build, x, epochs=1, seed=-1), ValueError, "non-negative")):
        with pytest.raises(error, match=words):
            bad()
    assert set(r.models) == {"a", "b", "c"}


def test_every_experiment_trains_through_run_train():
    """No experiment module calls fit, seeds, or moves a model itself: Run.train and finish do."""
    pattern = re.compile(r"(?<![\w.])fit\(|seed_everything\(|\.cpu\(\)\.eval\(\)|torch\.manual_seed\(")
    for path in sorted((ROOT / "companion" / "experiments").glob("ch*.py")):
        hits = [line.strip() for line in path.read_text().splitlines() if pattern.search(line)]
        assert not hits, f"{path.name}: {hits}"


def test_no_experiment_parses_a_metric_name():
    """Claims and runs read numbers by metric and dimensions; no experiment module takes a
    name apart (startswith/endswith/split/slicing by len on a key)."""
    pattern = re.compile(r"\.(startswith|endswith|rsplit|split)\(|\[len\(")
    for path in sorted((ROOT / "companion" / "experiments").glob("ch*.py")):
        hits = [line for line in path.read_text().splitlines() if pattern.search(line)]
        assert not hits, f"{path.name} parses strings: {hits}"


class _Planted:
    """What a crafted pickle could do on load: make a folder (here, only if pickle runs)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_a_planted_or_broken_cache_file_runs_nothing_and_is_retrained(tmp_path, monkeypatch):
    """The run cache holds no pickle: a planted pickle under a run's name executes nothing, a
    truncated file is reported by path; both are trained again and replaced."""
    m = experiments.get("autoencoder")
    folder = tmp_path / "runs"
    folder.mkdir()
    monkeypatch.setenv(RUN_CACHE, str(folder))
    path = folder / f"{m.NAME}-{run_key(m, m.BUDGETS['smoke'], 0)}.safetensors"
    marker = tmp_path / "pwned"
    torch.save({"run": _Planted(marker)}, path)
    with pytest.warns(UserWarning, match=str(path)):
        first = m.run("smoke")
    assert not marker.exists()
    again = m.run("smoke")                                   # the replaced file loads
    assert again.metrics == first.metrics
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.warns(UserWarning, match="could not be read"):
        third = m.run("smoke")
    assert third.metrics == first.metrics


@pytest.mark.parametrize("name", ["vae", "vq-vae-2", "td-vae", "beta-vae"])
def test_a_saved_run_comes_back_whole(name, tmp_path):
    """Models (config and weights), histories, metrics and every result (tensors, arrays, dicts
    with number keys, tuples, Sequences, Codes, a fitted probe) round-trip exactly."""
    from companion.experiments.cache import load_run, save_run
    m = experiments.get(name)
    run = m.run("smoke")
    rng = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    back, printed, rng_back = load_run(save_run(tmp_path / "r.safetensors", run, "hello", rng), run.budget)
    assert printed == "hello" and torch.equal(rng_back["torch"], rng["torch"]) and rng_back["python"] == rng["python"]
    assert (rng_back["numpy"][1] == rng["numpy"][1]).all() and rng_back["numpy"][2:] == rng["numpy"][2:]
    assert back.metrics.records() == run.metrics.records() and back.seconds == run.seconds
    for k, model in run.models.items():
        again = back.models[k]
        assert type(again) is type(model) and again.config == model.config and not again.training
        assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    assert {k: vars(h) for k, h in back.histories.items()} == {k: vars(h) for k, h in run.histories.items()}
    _same_tree(back.results, run.results)


def _same_tree(a, b):
    from companion.metrics.probes import Probe
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _same_tree(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same_tree(x, y)
    elif isinstance(a, Probe):
        x = np.random.default_rng(0).random((5, a.dims)).astype(np.float32)
        assert (a(x) == b(x)).all() and np.array_equal(a.proba(x), b.proba(x))
    else:
        assert a == b or (a != a and b != b)
