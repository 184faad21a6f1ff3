#!/usr/bin/env python3
"""Layers point one way: every #include "..." in proxy/, storage/ and tools/ names a header of
the file's own target or of a target it links (directly or through the targets below it).

The table of targets comes from the build (CMake writes it as layers.txt, one line a target:
`target|room,room|dep,dep`), so the links in CMakeLists.txt and this check cannot drift apart.
A room is one folder (not its subfolders); each file belongs to the room of its folder, and a
folder that is in no room is an error too, so a new folder has to be given a place.

usage: layers_test.py SOURCE_DIR LAYERS_TXT
"""

import os
import re
import sys

CHECKED_TOP_FOLDERS = ("proxy", "storage", "tools")
SOURCE_SUFFIXES = (".cpp", ".hpp", ".h", ".cc")
INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.MULTILINE)


def read_layers(path):
    """{target: (rooms, deps)} from layers.txt; deps only name mailtap's own targets."""
    layers = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            target, rooms, deps = line.split("|")
            layers[target] = ([r for r in rooms.split(",") if r], [d for d in deps.split(",") if d])
    for target, (_, deps) in layers.items():
        for dep in deps:
            if dep not in layers:
                raise SystemExit(f"layers.txt: {target} links {dep}, which is not a layer")
    return layers


def below(layers, target, seen=None):
    """The targets `target` links, directly or through the ones it links."""
    seen = set() if seen is None else seen
    for dep in layers[target][1]:
        if dep not in seen:
            seen.add(dep)
            below(layers, dep, seen)
    return seen


def check_cycles(layers):
    problems = []
    for target in layers:
        if target in below(layers, target):
            problems.append(f"{target} links itself through its dependencies (a cycle)")
    return problems


def room_owners(layers):
    owners = {}
    problems = []
    for target, (rooms, _) in layers.items():
        for room in rooms:
            if room in owners:
                problems.append(f"room {room} is in two targets: {owners[room]} and {target}")
            owners[room] = target
    return owners, problems


def violations(layers, files):
    """files: {path relative to the source dir: text}. Returns one message per bad include."""
    owners, problems = room_owners(layers)
    problems += check_cycles(layers)
    visible = {t: {t} | below(layers, t) for t in layers}
    for path in sorted(files):
        room = os.path.dirname(path)
        target = owners.get(room)
        if target is None:
            problems.append(f"{path}: folder {room}/ is in no layer (add it to one in CMakeLists.txt)")
            continue
        for number, included in enumerate_includes(files[path]):
            inc_room = os.path.dirname(included)
            inc_target = owners.get(inc_room)
            if inc_target is None:
                problems.append(f"{path}:{number}: includes \"{included}\", whose folder is in no layer")
            elif inc_target not in visible[target]:
                problems.append(
                    f"{path}:{number}: includes \"{included}\" ({inc_target}), but {target} "
                    f"({room}/) may only see {', '.join(sorted(visible[target]))}")
    return problems


def enumerate_includes(text):
    for match in INCLUDE.finditer(text):
        yield text.count("\n", 0, match.start()) + 1, match.group(1)


def source_files(source_dir):
    files = {}
    for top in CHECKED_TOP_FOLDERS:
        for root, dirs, names in os.walk(os.path.join(source_dir, top)):
            dirs[:] = sorted(d for d in dirs if d != "assets")  # the web page's files, not C++
            for name in names:
                if name.endswith(SOURCE_SUFFIXES):
                    full = os.path.join(root, name)
                    with open(full, encoding="utf-8") as f:
                        files[os.path.relpath(full, source_dir)] = f.read()
    return files


def self_test():
    """The check itself must catch an upward and a sideways include, and pass a downward one."""
    layers = {"low": (["a"], []), "mid": (["b"], ["low"]), "side": (["c"], ["low"]),
              "top": (["d"], ["mid", "side"])}
    good = {"b/x.cpp": '#include "a/y.hpp"\n', "d/z.cpp": '#include "a/y.hpp"\n#include "c/w.hpp"\n'}
    upward = {"a/y.cpp": '#include "a/y.hpp"\n#include "b/x.hpp"\n'}
    sideways = {"c/w.cpp": '#include "b/x.hpp"\n'}
    assert violations(layers, good) == [], violations(layers, good)
    assert len(violations(layers, upward)) == 1 and ":2:" in violations(layers, upward)[0]
    assert len(violations(layers, sideways)) == 1
    assert violations(layers, {"e/v.cpp": ""}), "a folder in no layer must be reported"
    assert check_cycles({"p": ([], ["q"]), "q": ([], ["p"])})


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    self_test()
    source_dir, layers_txt = sys.argv[1], sys.argv[2]
    layers = read_layers(layers_txt)
    files = source_files(source_dir)
    problems = violations(layers, files)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} include(s) against the layers (docs/design.md, Layers)",
              file=sys.stderr)
        return 1
    print(f"{len(files)} files, {len(layers)} layers: every include points down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
