"""``python -m chaos``: the chaos room's own small CLI (the ``peakload`` CLI wraps the same entry points).

Usage::

    python -m chaos platform up|down|status [--state-dir DIR] [--replicas N]
    python -m chaos drill backup|corruption [--state-dir DIR] [--results DIR] [--require-321]
    python -m chaos run EXPERIMENT [--state-dir DIR] [--results DIR]
    python -m chaos validate [EXPERIMENT]
    python -m chaos list
"""

from __future__ import annotations

import argparse
import sys

from chaos import cli_entry as ce
from peakload.core import PeakloadError

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m chaos", description="platform, backup drills, chaos experiments")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("platform")
    p.add_argument("action", choices=["up", "down", "status"])
    p.add_argument("--state-dir")
    p.add_argument("--replicas", type=int, default=3)
    p.add_argument("--base-port", type=int)
    d = sub.add_parser("drill")
    d.add_argument("kind", choices=["backup", "corruption"])
    d.add_argument("--state-dir")
    d.add_argument("--results")
    d.add_argument("--repo", type=int, default=1, help="corruption drill: repository to corrupt")
    d.add_argument(
        "--require-321", action="store_true", help="backup drill: fail when the 3-2-1 policy is not met (it never is on one host)"
    )
    r = sub.add_parser("run")
    r.add_argument("experiment")
    r.add_argument("--state-dir")
    r.add_argument("--results")
    v = sub.add_parser("validate")
    v.add_argument("experiment", nargs="?")
    sub.add_parser("list")
    args = ap.parse_args(argv)
    try:
        return _dispatch(args)
    except PeakloadError as exc:  # bad input: one line and its exit code, no traceback
        print(f"python -m chaos {args.cmd}: error: {exc}", file=sys.stderr)
        return exc.exit_code


def _dispatch(args: argparse.Namespace) -> int:
    if args.cmd == "platform":
        if args.action == "up":
            res = ce.platform_up(args.state_dir, replicas=args.replicas, base_port=args.base_port)
        elif args.action == "down":
            res = ce.platform_down(args.state_dir)
        else:
            res = ce.platform_status(args.state_dir)
    elif args.cmd == "drill":
        res = (
            ce.drill_backup(args.state_dir, results_dir=args.results, require_policy=args.require_321)
            if args.kind == "backup"
            else ce.drill_corruption(args.state_dir, repo=args.repo, results_dir=args.results)
        )
    elif args.cmd == "run":
        res = ce.chaos_run(args.experiment, state_dir=args.state_dir, results_dir=args.results)
    elif args.cmd == "validate":
        res = ce.chaos_validate(args.experiment)
    else:
        print("\n".join(ce.chaos_list()))
        return 0
    print(res.summary())
    return res.exit_code


if __name__ == "__main__":
    sys.exit(main())
