"""Execute each chapter's notebook from a fresh kernel and time it, in seconds and in
reference units, so that figures from different machines compare.

    .venv/bin/python scripts/time_chapters.py                       # every chapter
    .venv/bin/python scripts/time_chapters.py chapters/08_vq_vae.md  # some chapters
    .venv/bin/python scripts/time_chapters.py --repo /tmp/before --repo .   # before vs after

A benchmark, not a test: the budget is about 60 s per chapter on 2 CPU cores (chapter 9:
120 s, chapter 10: 90 s). Run it with nothing else running; two torch jobs on 2 cores slow
each other down many times over.

The **reference workload** is a fixed amount of CPU training, timed in a fresh process
before the first chapter and again after every chapter: 300 Adam steps of a 784-400-784 MLP
on batches of 128, and 60 steps of a small conv net (two stride-2 convolutions and two
transposed ones, 32 channels) on batches of 64 28×28 images. It runs with PyTorch's default
thread count, as a chapter does. A chapter's time divided by the reference's time ("ref ×")
is a property of the chapter, roughly independent of the machine's speed. Each run is divided
by the mean of the two references timed just before and just after it: a shared machine's
speed can drift by half within one sitting, and a reference taken only at the start and the
end would charge that drift to whichever chapters ran in the slow stretch.

With ``--repo`` given more than once, each chapter is run in every checkout in turn (the
kernel imports ``companion`` from that checkout, through ``PYTHONPATH``), so that a before
and an after are measured in one run on one machine, pair by pair; ``--rounds N`` repeats
every pair N times, the order reversed in every other round, and reports medians (the ratio
column: the median of the rounds' ratios of ref × values). The run cache
(``$COMPANION_RUN_CACHE``) is switched off: every chapter trains.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

REFERENCE = r"""
import time, torch
from torch import nn
torch.manual_seed(0)
mlp = nn.Sequential(nn.Linear(784, 400), nn.ReLU(), nn.Linear(400, 784))
conv = nn.Sequential(nn.Conv2d(1, 32, 4, 2, 1), nn.ReLU(), nn.Conv2d(32, 32, 4, 2, 1), nn.ReLU(),
                     nn.ConvTranspose2d(32, 32, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(32, 1, 4, 2, 1))
x, img = torch.rand(128, 784), torch.rand(64, 1, 28, 28)
for net, data, steps in ((mlp, x, 300), (conv, img, 60)):
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    for _ in range(5):   # warm-up: allocator and kernels
        opt.zero_grad(); nn.functional.mse_loss(net(data), data).backward(); opt.step()
    start = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad(); nn.functional.mse_loss(net(data), data).backward(); opt.step()
    print(time.perf_counter() - start)
"""


def reference_seconds() -> tuple[float, float]:
    """(MLP seconds, conv-net seconds) of the reference workload, in a fresh process."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", REFERENCE], capture_output=True, text=True, check=True, env=env)
    mlp, conv = (float(v) for v in out.stdout.split())
    return mlp, conv


def time_chapter(md: Path, repo: Path) -> float:
    """Wall-clock seconds to execute ``md`` top to bottom in a fresh kernel whose
    ``companion`` is imported from ``repo``."""
    import jupytext
    from nbclient import NotebookClient

    os.environ.pop("COMPANION_RUN_CACHE", None)
    os.environ["PYTHONPATH"] = str(repo)
    nb = jupytext.read(md)
    client = NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(md.parent)}})
    start = time.perf_counter()
    client.execute()
    return time.perf_counter() - start


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("chapters", nargs="*", help="chapter .md files, by name (default: all)")
    ap.add_argument("--repo", action="append", type=Path,
                    help="a checkout to time (repeatable; default: this one)")
    ap.add_argument("--rounds", type=int, default=1, help="times each chapter is run in each checkout (default 1)")
    args = ap.parse_args(argv)
    if args.rounds < 1:
        ap.error("--rounds must be ≥ 1")
    repos = [r.resolve() for r in (args.repo or [ROOT])]
    names = [Path(c).name for c in args.chapters] or sorted(p.name for p in (ROOT / "chapters").glob("*.md"))

    ref = sum(reference_seconds())
    print(f"reference workload: {ref:.2f} s", flush=True)
    runs: dict[tuple[str, Path], list[tuple[float, float]]] = {}     # (seconds, ref ×) per round
    for rnd in range(args.rounds):
        for name in names:
            for repo in (repos if rnd % 2 == 0 else repos[::-1]):
                seconds = time_chapter(repo / "chapters" / name, repo)
                ref_after = sum(reference_seconds())
                units = seconds / ((ref + ref_after) / 2)
                ref = ref_after
                runs.setdefault((name, repo), []).append((seconds, units))
                print(f"  {name:<32} {repo.name:<12} {seconds:6.1f} s  {units:5.1f} ref ×  "
                      f"(reference now {ref:.2f} s)", flush=True)

    med = statistics.median
    head = " | ".join(f"{r.name}: s | ref ×" for r in repos)
    pair = len(repos) == 2
    print(f"\nmedians of {args.rounds} round(s); ref × = seconds / the reference timed around the run\n")
    print(f"| chapter | {head} |" + (" after / before (ref ×) |" if pair else ""))
    print("| --- |" + " --- | --- |" * len(repos) + (" --- |" if pair else ""))
    for name in names:
        cells = " | ".join(f"{med(s for s, _ in runs[name, r]):.1f} | {med(u for _, u in runs[name, r]):.1f}"
                           for r in repos)
        ratio = ""
        if pair:
            a, b = runs[name, repos[0]], runs[name, repos[1]]
            ratio = f" {med(ub / ua for (_, ua), (_, ub) in zip(a, b)):.2f} |"
        print(f"| {name} | {cells} |{ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
