"""Vendor the openAPIV3Schema of a CustomResourceDefinition from a clone of its repository:

    python tests/data/crds/vendor.py <git dir of the clone> <path of the CRD YAML in it>

Writes <group>_<kind>_<version>.json beside this file for every served version, without the
schemas' "description" texts (a fifth of the size, nothing a validator reads), and prints the
line for tests/data/README.md: the repository's commit, the path and the file's sha256.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent


def without_descriptions(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: without_descriptions(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [without_descriptions(v) for v in node]
    return node


def main(git_dir: str, path: str) -> int:
    git = ["git", "-C", git_dir]
    commit = subprocess.check_output([*git, "rev-parse", "HEAD"], text=True).strip()
    raw = subprocess.check_output([*git, "show", f"HEAD:{path}"])
    crd = yaml.safe_load(raw)
    group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
    for version in crd["spec"]["versions"]:
        if not version.get("served"):
            continue
        name = f"{group}_{kind}_{version['name']}.json".lower()
        schema = without_descriptions(version["schema"]["openAPIV3Schema"])
        (HERE / name).write_text(json.dumps(schema, sort_keys=True, separators=(",", ":")) + "\n")
        print(f"{name}: commit {commit}, {path}, sha256 {hashlib.sha256(raw).hexdigest()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
