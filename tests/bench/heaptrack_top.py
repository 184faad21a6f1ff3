#!/usr/bin/env python3
"""Condenses heaptrack_print's "PEAK MEMORY CONSUMERS" into one line per allocation path.

heaptrack_print lists, for each allocation site, the memory it held at the heap's peak and the
full backtraces leading to it. This prints the peak, then for each backtrace the bytes held
and the first few frames in mailtap's own code (function and file:line), which is where a
change would go.

  heaptrack_top.py HEAPTRACK_PRINT_OUTPUT [--paths N] [--frames N]
"""
import argparse
import re

PEAK = re.compile(r"^(\S+) peak memory consumed over (\d+) calls from")
PATH = re.compile(r"^\s*(\S+) consumed over (\d+) calls from:")
AT = re.compile(r"^\s+at (\S+)")


def own_frames(frames, limit):
    out = []
    for function, where in frames:
        name = re.sub(r"\(.*\)$", "", function)
        if re.match(r"^(?:\S+ )?mailtap::", name):
            out.append(f"{name} ({where.rsplit('/', 1)[-1]})" if where else name)
        if len(out) == limit:
            break
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("listing")
    p.add_argument("--paths", type=int, default=12)
    p.add_argument("--frames", type=int, default=3)
    a = p.parse_args()
    lines = open(a.listing).read().splitlines()
    # A site with one backtrace prints it under its peak line; a site with several prints one
    # "X consumed over N calls from:" block per backtrace, which then replace the site's entry.
    paths, current = [], None
    for i, line in enumerate(lines):
        if m := PEAK.match(line):
            current = [m.group(1), m.group(2), [], True]
            paths.append(current)
        elif m := PATH.match(line):
            if paths and paths[-1][3] and paths[-1] is current:
                paths.pop()
            current = [m.group(1), m.group(2), [], False]
            paths.append(current)
        elif current is not None and line.strip() and not AT.match(line) \
                and not line.strip().startswith(("in ", "and ")):
            nxt = AT.match(lines[i + 1]) if i + 1 < len(lines) else None
            current[2].append((line.strip(), nxt.group(1) if nxt else ""))
        if line.startswith(("peak heap memory consumption", "peak RSS", "calls to allocation")):
            print(line)
            current = None

    def size(text):
        units = {"B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
        return float(text[:-1]) * units.get(text[-1], 1) if text[-1] in units else float(text)

    for held, calls, frames, _ in sorted(paths, key=lambda p: -size(p[0]))[: a.paths]:
        chain = " <- ".join(own_frames(frames, a.frames)) or (frames[0][0] if frames else "?")
        print(f"{held:>8} over {calls:>6} calls: {chain}")


if __name__ == "__main__":
    main()
