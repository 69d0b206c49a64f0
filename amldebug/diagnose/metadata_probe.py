"""Run by the image's own Python (``python -c``, any Python 3): for each top-level package named in
argv[1] (JSON: [[site-packages folder or "", package], ...]), the distribution that installed it
and what its METADATA says (Name, Version, Requires-Python); with no packages, every distribution
on sys.path. Prints one JSON line. Not imported by amldebug: ``diagnose.image`` sends its text."""

import json
import os
import sys


def _infos(folder):
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    return [os.path.join(folder, n) for n in names if n.endswith((".dist-info", ".egg-info"))]


def _read(info, name):
    try:
        with open(os.path.join(info, name), encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _tops(info):
    """Top-level names a distribution installed: RECORD's paths, else top_level.txt."""
    tops = set()
    for line in _read(info, "RECORD").splitlines() + _read(info, "installed-files.txt").splitlines():
        path = line.split(",", 1)[0].replace("\\", "/")
        if not path or path.startswith(".."):
            continue
        first = path.split("/", 1)[0]
        if first.endswith((".dist-info", ".egg-info", ".data")) or first == "__pycache__":
            continue
        tops.add(first[:-3] if "/" not in path and first.endswith(".py") else first)
    tops.update(line.strip() for line in _read(info, "top_level.txt").splitlines() if line.strip())
    return tops


def _headers(info):
    found = {}
    for line in (_read(info, "METADATA") or _read(info, "PKG-INFO")).splitlines():
        if not line.strip():
            break  # the description follows the headers
        key, _, value = line.partition(":")
        if key in ("Name", "Version", "Requires-Python") and key not in found:
            found[key] = value.strip()
    return {"name": found.get("Name", ""), "version": found.get("Version", ""),
            "requires_python": found.get("Requires-Python") or None}


def main(argv):
    wanted = json.loads(argv[1]) if len(argv) > 1 else []
    path = [p for p in sys.path if p and os.path.isdir(p)]
    packages = {}
    for site, top in wanted:
        for folder in ([site] if site else []) + [p for p in path if p != site]:
            match = [info for info in _infos(folder) if top in _tops(info)]
            if match:
                packages[top] = dict(_headers(match[0]), site=folder)
                break
    every = []
    if not wanted:
        seen = set()
        for folder in path:
            for info in _infos(folder):
                entry = dict(_headers(info), site=folder)
                if entry["name"] and entry["name"].lower() not in seen:
                    seen.add(entry["name"].lower())
                    every.append(entry)
    print(json.dumps({"python": "%d.%d.%d" % sys.version_info[:3], "packages": packages, "every": every}))


if __name__ == "__main__":
    main(sys.argv)
