#!/usr/bin/env python3
"""Gate on an Autobahn report (kosoku's DIR/index.json). Standard library only.

A case passes when `behavior` is OK or INFORMATIONAL *and* `behaviorClose` is
OK or INFORMATIONAL. NON-STRICT fails here on purpose (e.g. 6.4.x: invalid
UTF-8 must fail fast in the first fragment), as do FAILED, UNIMPLEMENTED and
ERROR (kosoku's "could not run the case": refused connection, bad handshake).
A missing, unreadable or empty report fails, and so does a report with fewer
cases than `--expect` (kosoku happily reports a partial run: a client that
calls /updateReports early gets a report of just the cases it ran).

Usage: autobahn_gate.py DIR [--expect N] [--label NAME] [--agent NAME]
                            [--allow-non-strict]
Exit status: 0 pass, 1 fail.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter

PASS = {"OK", "INFORMATIONAL"}
BEHAVIORS = ["OK", "INFORMATIONAL", "NON-STRICT", "FAILED", "UNIMPLEMENTED", "ERROR"]
CLOSES = ["OK", "INFORMATIONAL", "FAILED", "FAILED BY CLIENT", "WRONG CODE", "UNCLEAN"]


def case_key(case_id: str) -> list:
    return [int(p) if p.isdigit() else p for p in case_id.split(".")]


def counts_line(counter: Counter, order: list[str]) -> str:
    names = order + sorted(k for k in counter if k not in order)
    return ", ".join(f"{n} {counter.get(n, 0)}" for n in names if n in order or counter.get(n))


def case_detail(outdir: str, entry: dict) -> str:
    """The human-readable reason from the per-case report, if there is one."""
    name = entry.get("reportfile")
    if not name:
        return ""
    try:
        with open(os.path.join(outdir, name), encoding="utf-8") as f:
            case = json.load(f)
    except (OSError, ValueError):
        return ""
    parts = []
    for key in ("result", "resultClose"):
        text = case.get(key)
        if text and text not in ("Actual events match at least one expected.",
                                 "Connection was properly closed"):
            text = " ".join(str(text).split())
            if text not in parts:
                parts.append(text)
    return " | ".join(parts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir", help="kosoku report directory (holds index.json)")
    ap.add_argument("--expect", type=int, default=0,
                    help="minimum number of cases per agent (fewer fails)")
    ap.add_argument("--label", default="", help="name for the summary line, e.g. server")
    ap.add_argument("--agent", default=None,
                    help="only this agent (default: every agent in the report)")
    ap.add_argument("--allow-non-strict", action="store_true",
                    help="count NON-STRICT as a pass (for calibrating other peers)")
    args = ap.parse_args()

    label = f"autobahn {args.label}".rstrip()
    passing = PASS | ({"NON-STRICT"} if args.allow_non_strict else set())
    index_path = os.path.join(args.dir, "index.json")

    try:
        with open(index_path, encoding="utf-8") as f:
            index = json.load(f)
    except FileNotFoundError:
        print(f"{label}: FAIL: no report at {index_path} "
              "(kosoku did not finish: timeout, crash, or no /updateReports)")
        return 1
    except (OSError, ValueError) as e:
        print(f"{label}: FAIL: unreadable report {index_path}: {e}")
        return 1
    if not isinstance(index, dict) or not index:
        print(f"{label}: FAIL: empty report {index_path}")
        return 1

    agents = sorted(index)
    if args.agent is not None:
        if args.agent not in index:
            print(f"{label}: FAIL: agent {args.agent!r} not in report (agents: {agents})")
            return 1
        agents = [args.agent]
    elif len(agents) > 1:
        print(f"{label}: note: {len(agents)} agents in report: {agents}; gating each")

    ok = True
    for agent in agents:
        cases = index[agent]
        if not isinstance(cases, dict):
            print(f"{label} [{agent}]: FAIL: malformed report entry")
            ok = False
            continue
        behaviors = Counter(str(c.get("behavior")) for c in cases.values())
        closes = Counter(str(c.get("behaviorClose")) for c in cases.values())
        print(f"{label}: {len(cases)} cases: {counts_line(behaviors, BEHAVIORS)}"
              f"  (agent {agent!r})")
        print(f"{label}: behaviorClose: {counts_line(closes, CLOSES)}")

        bad = [
            (cid, c) for cid, c in cases.items()
            if c.get("behavior") not in passing or c.get("behaviorClose") not in PASS
        ]
        bad.sort(key=lambda item: case_key(item[0]))
        for cid, c in bad:
            detail = case_detail(args.dir, c)
            print(f"  {cid:<8} behavior={c.get('behavior')}, "
                  f"behaviorClose={c.get('behaviorClose')}, "
                  f"remoteCloseCode={c.get('remoteCloseCode')}"
                  + (f" -- {detail}" if detail else ""))
        if bad:
            ok = False
            print(f"{label}: {len(bad)} case(s) not passing; details in "
                  f"{args.dir}/<reportfile>.json and {args.dir}/index.html")
        if len(cases) == 0 or len(cases) < args.expect:
            ok = False
            print(f"{label}: FAIL: {len(cases)} cases in report, expected "
                  f"{args.expect or 'at least 1'}")
        elif args.expect and len(cases) > args.expect:
            print(f"{label}: note: {len(cases)} cases, more than the {args.expect} expected")

    print(f"{label}: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
