#!/usr/bin/env python3
"""Sums a callgrind_annotate listing by function.

callgrind_annotate splits a function's cost by the file each line came from, so a function
with inlined library code (std::string, char_traits, ...) shows up several times. For self
cost this adds those parts together; for inclusive cost (--inclusive) the parts overlap, so it
takes the largest. It shortens the names (no parameter lists) and prints the top N as
"Ir  percent  [per unit]  function  [object: files]".

  callgrind_top.py LISTING [--inclusive] [--match REGEX] [--top N] [--per COUNT --unit NAME]

--match keeps only functions whose name matches (e.g. mailtap's own code and the library
calls it makes), which hides the event loop's plumbing from an inclusive listing.
"""
import argparse
import re
from collections import defaultdict

LINE = re.compile(r"^\s*([\d,]+)\s+\(\s*([\d.]+)%\)\s+(.*?)(?:\s+\[([^\[\]]*)\])?\s*$")


def short(function):
    """The name without its parameter list (operator() stays intact)."""
    function = function.replace(" [clone .actor]", " (coroutine)").replace(" [clone .isra.0]", "")
    depth = 0
    for i, c in enumerate(function):
        if c in "<":
            depth += 1
        elif c in ">":
            depth -= 1
        elif c == "(" and depth == 0 and not function[:i].endswith("operator"):
            return function[:i] + (" (coroutine)" if function.endswith(" (coroutine)") else "")
    return function


def main():
    p = argparse.ArgumentParser()
    p.add_argument("listing")
    p.add_argument("--inclusive", action="store_true")
    p.add_argument("--match", default="")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--per", type=float, default=0)
    p.add_argument("--unit", default="")
    a = p.parse_args()
    total = 0
    cost = defaultdict(int)
    files = defaultdict(set)
    objects = {}
    match = re.compile(a.match) if a.match else None
    for line in open(a.listing):
        m = LINE.match(line)
        if not m:
            continue
        ir = int(m.group(1).replace(",", ""))
        where, obj = m.group(3), m.group(4) or ""
        if obj.startswith("clone "):  # "[clone .actor]" is part of the name, not the object
            where, obj = f"{where} [{obj}]", ""
        if where == "PROGRAM TOTALS":
            total = ir
            continue
        file, _, function = where.partition(":")
        key = short(function)
        if match and not match.search(key):
            continue
        cost[key] = max(cost[key], ir) if a.inclusive else cost[key] + ir
        if obj:
            objects[key] = obj.rsplit("/", 1)[-1]
        if file != "???":
            files[key].add(file.rsplit("/", 1)[-1])
    if not total:
        return
    per = f", {total / a.per / 1e6:.1f} M per {a.unit}" if a.per else ""
    print(f"total {total:,} instructions{per}")
    for function, ir in sorted(cost.items(), key=lambda kv: -kv[1])[: a.top]:
        unit = f"{ir / a.per / 1e6:8.2f} M/{a.unit}" if a.per else ""
        where = ", ".join(sorted(files[function])[:3])
        obj = objects.get(function, "")
        print(f"{ir:>15,} {100.0 * ir / total:6.2f}% {unit}  {function}  [{obj}{': ' + where if where else ''}]")


if __name__ == "__main__":
    main()
