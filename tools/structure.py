"""Structure facts for the package: arrows between subpackages, largest functions and files.

Run: python tools/structure.py [--package octseg]
Prints the import arrows between octseg's top-level subpackages (with the number of import
statements behind each), any cycles among them, the ten longest functions (lines) and the ten
longest modules. Used for the before/after figures of restructures.
"""

from __future__ import annotations

import argparse
import ast
from collections import Counter
from pathlib import Path

import grimp


def top(module: str, package: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else package


def arrows(package: str) -> Counter:
    graph = grimp.build_graph(package)
    counts: Counter = Counter()
    for importer in graph.modules:
        for imported in graph.find_modules_directly_imported_by(importer):
            a, b = top(importer, package), top(imported, package)
            if a != b and imported.startswith(package):
                details = graph.get_import_details(importer=importer, imported=imported)
                counts[(a, b)] += max(1, len(details))
    return counts


def cycles(counts: Counter) -> list[tuple[str, str]]:
    return sorted((a, b) for (a, b) in counts if (b, a) in counts and a < b)


def functions(root: Path) -> list[tuple[int, str]]:
    rows = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                rows.append(
                    (node.end_lineno - node.lineno + 1, f"{path}:{node.lineno} {node.name}")
                )
    return sorted(rows, reverse=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", default="octseg")
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args()
    counts = arrows(args.package)
    print(f"arrows between subpackages: {len(counts)}")
    for (a, b), n in sorted(counts.items()):
        print(f"  {a} -> {b} ({n})")
    print(f"two-way arrows (package-level loops): {cycles(counts) or 'none'}")
    root = Path(args.package)
    print("longest functions (lines):")
    for n, where in functions(root)[: args.top]:
        print(f"  {n:4d} {where}")
    files = sorted(
        ((len(p.read_text().splitlines()), str(p)) for p in root.rglob("*.py")), reverse=True
    )
    print("longest modules (lines):")
    for n, where in files[: args.top]:
        print(f"  {n:5d} {where}")


if __name__ == "__main__":
    main()
