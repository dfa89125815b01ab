"""The command line: ``python -m companion list`` and ``python -m companion reproduce NAME``."""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m companion",
                                     description="Reproduce the headline experiments of the book.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the registered experiments")
    rep = sub.add_parser("reproduce", help="train and evaluate one experiment")
    rep.add_argument("name")
    rep.add_argument("--budget", choices=["quick", "full", "smoke"], default="quick",
                     help="quick: what the chapter runs (default); full: closer to the papers; smoke: seconds, "
                          "checks the plumbing only")
    rep.add_argument("--json", metavar="PATH", help="also write the metrics as JSON to PATH")
    rep.add_argument("--seed", type=int, default=0, help="seed of the whole run (default 0)")
    rep.add_argument("--device", default="cpu", metavar="auto|cpu|cuda",
                     help="where to train and evaluate: auto (a GPU when there is one), cpu (default), "
                          "cuda or cuda:N")
    args = parser.parse_args(argv)

    from companion import experiments

    if args.command == "list":
        for name, module in sorted(experiments.EXPERIMENTS.items()):
            print(f"{name:<12} {module.describe(module.BUDGETS['quick'])}")
        return 0
    if args.name not in experiments.EXPERIMENTS:
        print(f"error: unknown experiment {args.name!r}; available: "
              f"{', '.join(sorted(experiments.EXPERIMENTS))}", file=sys.stderr)
        return 2
    if args.seed < 0:
        print(f"error: --seed must be a non-negative integer, got {args.seed}", file=sys.stderr)
        return 2
    if args.json:
        from companion.runtime import check_writable
        try:
            check_writable(args.json, "--json")
        except (TypeError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    try:
        from companion.experiments.core import run_device
        device = run_device(args.device)                # resolved once, here; the run keeps it
    except (ValueError, TypeError) as e:
        print(f"error: --device: {e}", file=sys.stderr)
        return 2
    record = experiments.reproduce(args.name, args.budget, json_path=args.json, seed=args.seed, device=device)
    print(experiments.format_table(record))
    if args.json:
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
