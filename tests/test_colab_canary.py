"""The Colab canary (scripts/colab_canary.py and its weekly workflow), everything but the
network fetch: the workflow parses and is wired to the script, the script writes and reads the
freeze header, derives Colab's PyTorch, reports what moved, and runs the same tests as the
suite's Colab test with the freeze it is given. The full run against the shipped freeze is
``python scripts/colab_canary.py run --torch local`` (minutes; it is the suite's Colab test
with every chapter)."""
from __future__ import annotations

import datetime as dt
import importlib.util
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "colab-canary.yml"
spec = importlib.util.spec_from_file_location("colab_canary", ROOT / "scripts" / "colab_canary.py")
canary = sys.modules.setdefault("colab_canary", importlib.util.module_from_spec(spec))
spec.loader.exec_module(canary)

OS_INFO = "# generated\nUbuntu 22.04.5 LTS\nPython 3.12.13\nR version 4.5.3\n"
FREEZE = "# a comment\n" + "".join(f"pkg{i}==1.{i}\n" for i in range(120)) + \
    "torch==2.11.0+cu128\nnumpy==2.2.1\nipywidgets==7.7.1\npip==24.1.2\n"


def test_the_workflow_parses_and_runs_weekly_and_by_hand():
    wf = yaml.safe_load(WORKFLOW.read_text())
    triggers = wf.get("on", wf.get(True))                 # YAML 1.1 reads a bare `on` as true
    assert "workflow_dispatch" in triggers
    (cron,) = [s["cron"] for s in triggers["schedule"]]
    minute, hour, day, month, weekday = cron.split()
    assert (day, month) == ("*", "*") and weekday.isdigit(), f"{cron!r} is not once a week"
    assert wf["permissions"]["issues"] == "write"
    steps = wf["jobs"]["canary"]["steps"]
    runs = "\n".join(s.get("run", "") for s in steps)
    assert "scripts/colab_canary.py fetch" in runs and "scripts/colab_canary.py run" in runs
    setup = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python"))
    assert setup["with"]["python-version"] == "${{ steps.freeze.outputs.python }}", "Colab's Python, from fetch"
    on_failure = [s for s in steps if s.get("if") == "failure()"]
    assert on_failure and "gh issue create" in on_failure[0]["run"]


def test_fetch_writes_colabs_list_with_a_header(tmp_path):
    """fetch against a local copy of backend-info (a file:// URL): the network is the only difference."""
    mirror = tmp_path / "backend-info"
    mirror.mkdir()
    (mirror / canary.FREEZE_NAME).write_text(FREEZE)
    (mirror / canary.OS_INFO_NAME).write_text(OS_INFO)
    out = tmp_path / "freeze.txt"
    assert canary.fetch(out, base=mirror.as_uri() + "/") == "3.12"
    text = out.read_text()
    assert text.startswith("# Packages preinstalled on a Google Colab GPU runtime (Python 3.12 there)")
    assert f"state of {dt.date.today().isoformat()}" in text and text.endswith(FREEZE)
    assert canary.pins(text)["torch"] == "2.11.0+cu128"


def test_a_page_that_is_not_a_freeze_is_refused(tmp_path):
    with pytest.raises(ValueError, match="does not look like Colab's freeze"):
        canary.with_header("<html>rate limited</html>", OS_INFO, dt.date.today())
    with pytest.raises(ValueError, match="no Python version"):
        canary.with_header(FREEZE, "Ubuntu\n", dt.date.today())
    bare = tmp_path / "bare.txt"
    bare.write_text(FREEZE)
    with pytest.raises(ValueError, match="no header"):
        canary.run(bare)                                   # refused before any test runs


def test_colabs_torch_in_its_cpu_build_and_what_moved(tmp_path):
    new = canary.with_header(FREEZE, OS_INFO, dt.date(2027, 1, 4))
    assert canary.torch_spec(new) == "torch==2.11.0"
    moved = dict((n, (a, b)) for n, a, b in canary.changes(canary.SHIPPED.read_text(), new))
    shipped = canary.pins(canary.SHIPPED.read_text())
    assert moved["numpy"] == (shipped["numpy"], "2.2.1")
    assert moved["python"][1] == "3.12" and "ipywidgets" not in moved       # 7.7.1 in both
    freeze = tmp_path / "f.txt"
    freeze.write_text(new)
    _, env = canary.command(freeze)
    assert (env["COLAB_TORCH"], env["COLAB_TORCH_INDEX"]) == ("torch==2.11.0", canary.TORCH_CPU_INDEX)
    md = canary.report(freeze, 1, "FAILED tests/test_colab_env.py::x", env)
    assert "FAILED" in md and "| numpy |" in md and "colab_canary.py fetch --out tests/data" in md


def test_a_run_on_the_shipped_freeze_is_the_suites_colab_test_with_every_chapter():
    cmd, env = canary.command(canary.SHIPPED, "all", "local")
    assert cmd[:3] == [sys.executable, "-m", "pytest"] and "tests/test_colab_env.py" in cmd
    assert Path(env["COLAB_FREEZE"]) == canary.SHIPPED and env["COLAB_CHAPTERS"] == "all"
    assert env["COLAB_TORCH"] == canary.LOCAL_TORCH == "torch==2.13.0"
