"""Dependencies run one way: jobs → platform → algorithms → envs → core, with no cycle between files.

Every .py file of the package is parsed with `ast`; every `import armillary…` / `from armillary… import …`, at
module level or inside a function (an import moved into a function still ties the two files together), becomes
an edge of the file-level import graph. The test fails on an edge against the layer order, on an edge between
algorithm folders that the table below does not allow, and on any cycle; it names the file and line.
Importing a package's submodule is an edge to that submodule's file only (Python's implicit import of the parent
`__init__.py` is not counted: it holds no code the importer asked for).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from conftest import REPO_ROOT

# Lower number = lower layer. A file may import its own layer or any layer below it.
LAYERS = {"core": 0, "envs": 1, "algorithms": 2, "platform": 3, "jobs": 4}

# Within algorithms/: which folders each folder may import ("registry" is algorithms/registry.py, the catalog).
# The shared folders are ppo/ (the PPO learner, env runner and hyperparameters every PPO-based method builds on)
# and skills/ (the skill-discovery machinery of VIC, DISDAIN and RVIC). A method folder never imports another
# method folder; ppo/ imports no other folder.
ALGORITHM_IMPORTS = {
    "registry": set(),
    "ppo": {"registry"},
    "dqn": {"registry"},
    "skills": {"registry", "ppo"},
    "vic": {"registry", "skills"},
    "disdain": {"registry", "skills"},
    "rvic": {"registry", "skills"},
    "domino": {"registry", "ppo"},
    "clip_reward": {"registry", "ppo"},
    "score": {"registry"},
    "self_consistency": {"registry", "ppo"},
    "long_context": set(),
}


def package_files() -> dict[str, Path]:
    """Module name → file, for every .py file of the armillary package."""
    files = {}
    for top in LAYERS:
        for path in sorted((REPO_ROOT / top).rglob("*.py")):
            parts = ("armillary", *path.relative_to(REPO_ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            files[".".join(parts)] = path
    return files


def imports_of(path: Path, modules: dict[str, Path]) -> list[tuple[str, int]]:
    """(imported armillary module that is a file of the package, line) for every import in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from a.b import c`: c is either a submodule (a file) or a name defined in a/b.
            names = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
                     for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            raise AssertionError(f"{path}:{node.lineno}: relative import; use the absolute armillary.… name")
        else:
            continue
        for name in names:
            if not name.startswith("armillary."):
                continue
            while name not in modules and "." in name:  # `import armillary.a.b` where b is a name in a
                name = name.rsplit(".", 1)[0]
            if name in modules and (name, node.lineno) not in found:
                found.append((name, node.lineno))
    return found


def graph() -> tuple[dict[str, Path], dict[str, list[tuple[str, int]]]]:
    modules = package_files()
    return modules, {name: imports_of(path, modules) for name, path in modules.items()}


def layer(module: str) -> str:
    return module.split(".")[1]


def algorithm_folder(module: str) -> str:
    parts = module.split(".")
    return parts[2] if len(parts) > 2 else "registry"  # armillary.algorithms.registry → "registry"


def where(modules, name, line) -> str:
    return f"{modules[name].relative_to(REPO_ROOT)}:{line}"


def test_the_package_has_the_layers_the_test_knows():
    modules = package_files()
    assert {layer(m) for m in modules} == set(LAYERS)
    folders = {algorithm_folder(m) for m in modules if layer(m) == "algorithms" and m != "armillary.algorithms"}
    assert folders == set(ALGORITHM_IMPORTS), "a new algorithm folder: say in ALGORITHM_IMPORTS what it may import"


def test_no_import_against_the_layer_order():
    modules, edges = graph()
    wrong = [f"{where(modules, src, line)}: {src} (layer {layer(src)}) imports {dst} (layer {layer(dst)})"
             for src, targets in edges.items() for dst, line in targets if LAYERS[layer(dst)] > LAYERS[layer(src)]]
    assert not wrong, "imports against jobs → platform → algorithms → envs → core:\n" + "\n".join(wrong)


def test_algorithm_folders_import_only_the_shared_folders_they_build_on():
    modules, edges = graph()
    wrong = []
    for src, targets in edges.items():
        if layer(src) != "algorithms" or src == "armillary.algorithms":
            continue
        for dst, line in targets:
            if layer(dst) != "algorithms" or algorithm_folder(dst) == algorithm_folder(src):
                continue
            if algorithm_folder(dst) not in ALGORITHM_IMPORTS[algorithm_folder(src)]:
                wrong.append(f"{where(modules, src, line)}: {algorithm_folder(src)}/ imports {dst}")
    assert not wrong, "imports between algorithm folders that ALGORITHM_IMPORTS does not allow:\n" + "\n".join(wrong)


def find_cycle(edges: dict[str, list[tuple[str, int]]]) -> list[str] | None:
    """One cycle of the graph as a list of modules (first == last), or None."""
    state: dict[str, int] = defaultdict(int)  # 0 unseen, 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target, _ in edges.get(node, []):
            if state[target] == 1:
                return path[path.index(target):] + [target]
            if state[target] == 0 and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if state[start] == 0 and (cycle := visit(start)):
            return cycle
    return None


def test_no_import_cycle_between_files():
    modules, edges = graph()
    cycle = find_cycle(edges)
    if cycle:
        steps = [f"{where(modules, a, next(line for t, line in edges[a] if t == b))}: {a} imports {b}"
                 for a, b in zip(cycle, cycle[1:])]
        raise AssertionError("import cycle between files:\n" + "\n".join(steps))


def test_the_checks_catch_a_cycle_and_report_it():
    edges = {"a": [("b", 1)], "b": [("c", 2)], "c": [("a", 3)], "d": [("a", 4)]}
    assert find_cycle(edges) == ["a", "b", "c", "a"]
    assert find_cycle({"a": [("b", 1)], "b": []}) is None
