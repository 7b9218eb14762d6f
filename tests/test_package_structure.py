"""The package's shape: no import cycles between resnet_det modules, no oversized module, no
citation of a document that is not in the repository, and tools/ run from the installed package
(no sys.path edits).

The import graph is read from the source with ``ast`` (nothing is imported), so a cycle is
found even where the import order of the test run happens to hide it.
"""

import ast
import os
import subprocess
from typing import Dict, List, Optional, Set

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "resnet_det"
TOOLS = os.path.join(ROOT, "tools")
# One concept per module; this is only a backstop against a module that grew two.
MAX_MODULE_LINES = 800


# --------------------------------------------------------------------------------------------
# Modules and their module-level imports
# --------------------------------------------------------------------------------------------
def package_modules(root: str = ROOT, package: str = PACKAGE) -> Dict[str, str]:
    """{dotted module name: file} for every .py file of the package (a package is its
    __init__)."""
    modules = {}
    for folder, dirs, files in os.walk(os.path.join(root, package)):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            parts = os.path.relpath(path, root)[: -len(".py")].split(os.sep)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def collect_imports(tree: ast.Module, *, deferred: bool = False) -> List[ast.stmt]:
    """The import statements that run when the module is imported: at module level, including
    inside module-level if/try/with/for blocks and class bodies, but not inside functions (they
    run later, once the module is complete) and never under ``if TYPE_CHECKING:``. With
    ``deferred``, imports inside functions count too."""
    found: List[ast.stmt] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append(child)
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                visit(ast.Module(body=child.orelse, type_ignores=[]))
            elif (
                isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
                and not deferred
            ):
                continue
            else:
                visit(child)

    visit(tree)
    return found


def _resolve_from(module: str, is_package: bool, node: ast.ImportFrom) -> Optional[str]:
    """The absolute name ``from <...> import`` refers to, relative levels resolved."""
    if node.level == 0:
        return node.module
    base = module.split(".") if is_package else module.split(".")[:-1]
    if node.level - 1 > len(base) - 1:
        raise ValueError(f"{module}: relative import beyond the top-level package")
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph(modules: Dict[str, str], *, deferred: bool = False) -> Dict[str, Set[str]]:
    """{module: set of package modules it imports at import time}.

    ``import a.b`` and ``from a import b`` (b a submodule) are edges to a.b. ``from a import
    name`` (name not a submodule) is an edge to ``a`` itself, i.e. to the package's
    __init__: a submodule that takes a name from its own package's __init__, while that
    __init__ imports the submodule, is a cycle. The implicit import of parent packages that
    Python does for ``a.b`` is not an edge: by then the parent is already being imported.
    ``deferred``: count imports inside functions too (see :func:`collect_imports`).
    """
    graph: Dict[str, Set[str]] = {}
    for module, path in modules.items():
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), filename=path)
        is_package = os.path.basename(path) == "__init__.py"
        edges: Set[str] = set()
        for node in collect_imports(tree, deferred=deferred):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                source = _resolve_from(module, is_package, node)
                targets = []
                for alias in node.names:
                    sub = f"{source}.{alias.name}"
                    targets.append(sub if sub in modules else source)
            edges.update(t for t in targets if t in modules and t != module)
        graph[module] = edges
    return graph


def find_cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """One cycle (a path that returns to its start) per strongly connected component of more
    than one module (Tarjan's algorithm, iterative)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    on_stack: Set[str] = set()
    stack: List[str] = []
    components: List[List[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return [_cycle_in(graph, set(c)) for c in components]


def _cycle_in(graph: Dict[str, Set[str]], component: Set[str]) -> List[str]:
    """A shortest cycle through the component's first module (breadth-first search)."""
    start = min(component)
    parent: Dict[str, Optional[str]] = {start: None}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & component):
                if child == start:
                    path = [node]
                    while parent[path[-1]] is not None:
                        path.append(parent[path[-1]])
                    return list(reversed(path)) + [start]
                if child not in parent:
                    parent[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"no cycle through {start} in {sorted(component)}")  # pragma: no cover


# --------------------------------------------------------------------------------------------
# The checker's own behaviour, on a package written here
# --------------------------------------------------------------------------------------------
def _write_package(root, files: Dict[str, str], deferred: bool = False) -> Dict[str, Set[str]]:
    for rel, text in files.items():
        path = root / "pkg" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return import_graph(package_modules(str(root), "pkg"), deferred=deferred)


PACKAGE_FILES = {
    "__init__.py": "from .a import f\n",
    "a.py": "import os\nfrom . import b\nfrom .sub import g\nimport pkg.sub.c\n"
    "def later():\n    from . import d\n",
    "b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import f\n"
    "else:\n    from .d import x\ntry:\n    from .c_missing import y\nexcept ImportError:\n    "
    "pass\n",
    "d.py": "x = 1\nclass K:\n    from .e import t\n",
    "e.py": "t = 1\n",
    "sub/__init__.py": "g = 1\n",
    "sub/c.py": "from .. import d\nfrom ..sub import g\n",
}


def test_graph_reads_relative_and_absolute_imports(tmp_path):
    graph = _write_package(tmp_path, PACKAGE_FILES)
    assert graph["pkg"] == {"pkg.a"}
    # from . import b -> the submodule; from .sub import g -> the subpackage's __init__;
    # the import inside a function does not count.
    assert graph["pkg.a"] == {"pkg.b", "pkg.sub", "pkg.sub.c"}
    assert graph["pkg.b"] == {"pkg.d"}  # TYPE_CHECKING skipped, its else branch counted
    assert graph["pkg.d"] == {"pkg.e"}  # a class body runs at import time
    assert graph["pkg.sub.c"] == {"pkg.d", "pkg.sub"}
    assert find_cycles(graph) == []


def test_deferred_imports_are_counted_on_request(tmp_path):
    files = dict(PACKAGE_FILES, **{"d.py": "def f():\n    from .a import later\n"})
    assert find_cycles(_write_package(tmp_path, files)) == []
    graph = _write_package(tmp_path, files, deferred=True)
    assert graph["pkg.a"] == {"pkg.b", "pkg.sub", "pkg.sub.c", "pkg.d"}
    assert find_cycles(graph) == [["pkg.a", "pkg.d", "pkg.a"]]  # the shortest of its component


def test_cycles_are_found_and_printed_as_paths(tmp_path):
    graph = _write_package(
        tmp_path,
        {
            "__init__.py": "from .a import f\n",
            "a.py": "from . import helper\nf = 1\n",  # helper is a name of __init__: an edge to it
            "b.py": "from .c import z\n",
            "c.py": "from .b import w\n",
        },
    )
    assert graph["pkg.a"] == {"pkg"}
    cycles = sorted(find_cycles(graph))
    assert cycles == [["pkg", "pkg.a", "pkg"], ["pkg.b", "pkg.c", "pkg.b"]]


# --------------------------------------------------------------------------------------------
# The package itself
# --------------------------------------------------------------------------------------------
def test_no_import_cycles_inside_the_package():
    modules = package_modules()
    assert "resnet_det.engine.defaults" in modules and "resnet_det" in modules
    graph = import_graph(modules)
    cycles = find_cycles(graph)
    assert not cycles, "import cycles inside resnet_det:\n" + "\n".join(
        " -> ".join(c) for c in cycles
    )


def test_no_cycles_through_deferred_imports_either():
    # An import inside a function only postpones a cycle: the two modules still cannot be
    # understood (or moved) one without the other.
    cycles = find_cycles(import_graph(package_modules(), deferred=True))
    assert not cycles, (
        "import cycles inside resnet_det through imports inside functions:\n"
        + "\n".join(" -> ".join(c) for c in cycles)
    )


def test_no_module_over_the_size_limit():
    too_long = {}
    for module, path in package_modules().items():
        with open(path, encoding="utf-8") as f:
            n = sum(1 for _ in f)
        if n > MAX_MODULE_LINES:
            too_long[module] = n
    assert not too_long, (
        f"modules over {MAX_MODULE_LINES} lines (one concept per module): {too_long}"
    )


def test_no_tracked_file_cites_a_document_outside_the_repository():
    # The team's design note is not part of the repository, so nothing may send a reader to it;
    # what the code needs from it lives in docs/. (The name is assembled so that this file does
    # not contain it.)
    needle = "design" + ".md"
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the tracked files are unknown")
    offenders = []
    for rel in listed.stdout.decode().split("\0"):
        path = os.path.join(ROOT, rel)
        if not rel or not os.path.isfile(path):
            continue
        with open(path, "rb") as f:
            if needle.encode() in f.read():
                offenders.append(rel)
    assert not offenders, f"tracked files citing {needle} (not in the repository): {offenders}"


def test_one_atomic_file_writer():
    # resnet_det.utils.file_io is the package's one atomic writer (temporary file, fsync, rename);
    # a second copy drifts (the one weights.py had did not fsync). Renaming a whole generated
    # folder into place (os.rename of a directory) is another thing and not looked for.
    writer = os.path.join(ROOT, PACKAGE, "utils", "file_io.py")
    copies = {}
    for module, path in package_modules().items():
        if path == writer:
            continue
        with open(path, encoding="utf-8") as f:
            text = f.read()
        found = [s for s in ("os.replace(", "mkstemp(", "NamedTemporaryFile(") if s in text]
        if found:
            copies[module] = found
    assert not copies, f"atomic writers besides resnet_det.utils.file_io: {copies}"


# --------------------------------------------------------------------------------------------
# tools/: applications of the installed package
# --------------------------------------------------------------------------------------------
_PATH_EDITS = ("insert", "append", "extend", "remove", "pop", "clear")


def _is_sys_path(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "path"
        and isinstance(node.value, ast.Name)
        and node.value.id == "sys"
    )


def sys_path_edits(source: str) -> List[int]:
    """Line numbers where ``source`` changes the import path: sys.path.insert/append/...,
    an assignment to sys.path or one of its items, or site.addsitedir."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            func = node.func
            if _is_sys_path(func.value) and func.attr in _PATH_EDITS:
                lines.append(node.lineno)
            elif func.attr == "addsitedir":
                lines.append(node.lineno)
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if _is_sys_path(t) or (isinstance(t, ast.Subscript) and _is_sys_path(t.value)):
                    lines.append(node.lineno)
    return sorted(lines)


def test_path_edit_checker_finds_every_form():
    edits = (
        "import sys, site\n"
        "sys.path.insert(0, '..')\n"
        "sys.path.append('x')\n"
        "sys.path = ['y']\n"
        "sys.path[0:0] = ['z']\n"
        "sys.path += ['w']\n"
        "site.addsitedir('v')\n"
    )
    assert sys_path_edits(edits) == [2, 3, 4, 5, 6, 7]
    # Reading the path is not editing it.
    assert sys_path_edits("import sys\nprint(sys.path[0], list(sys.path))\n") == []


def test_no_tool_edits_sys_path():
    # The tools import the installed package (pip install -e .) and, by name, their helper
    # packages beside them in tools/ (Python puts a script's folder first on sys.path).
    offenders = {}
    for folder, dirs, files in os.walk(TOOLS):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(f for f in files if f.endswith(".py")):
            path = os.path.join(folder, name)
            with open(path, encoding="utf-8") as f:
                found = sys_path_edits(f.read())
            if found:
                offenders[os.path.relpath(path, ROOT)] = found
    assert os.path.isfile(os.path.join(TOOLS, "train_net.py"))
    assert not offenders, f"files under tools/ editing sys.path (file: lines): {offenders}"


def test_no_benchmark_module_inside_the_package():
    # Benchmark rows are applications (tools/benchmarks/), not part of what users import.
    benches = [
        module
        for module in package_modules()
        if any(part.startswith("bench") for part in module.split(".")[1:])
    ]
    assert not benches, f"benchmark modules inside {PACKAGE}: {benches}"
    assert os.path.isfile(os.path.join(TOOLS, "benchmarks", "rows.py"))


def test_the_package_imports_nothing_from_tools():
    # Imports run one way: tools/ import resnet_det, never the reverse (inside functions too).
    tool_names = {
        name[: -len(".py")] if name.endswith(".py") else name
        for name in os.listdir(TOOLS)
        if name.endswith(".py") or os.path.isfile(os.path.join(TOOLS, name, "__init__.py"))
    }
    assert {"benchmarks", "reproduction", "train_net"} <= tool_names
    offenders = {}
    for module, path in package_modules().items():
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), filename=path)
        for node in collect_imports(tree, deferred=True):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                names = [node.module] if node.level == 0 and node.module else []
            found = [n for n in names if n.split(".")[0] in tool_names | {"tools"}]
            if found:
                offenders.setdefault(module, []).extend(found)
    assert not offenders, f"{PACKAGE} modules importing tools' code: {offenders}"


# --------------------------------------------------------------------------------------------
# Layers and the model's one reading of the config
# --------------------------------------------------------------------------------------------
def function_imports(modules: Dict[str, str], package: str = PACKAGE) -> List[str]:
    """``module:line`` of every import of the package's own modules inside a function."""
    found = []
    for module, path in sorted(modules.items()):
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), filename=path)
        is_package = os.path.basename(path) == "__init__.py"
        for func in ast.walk(tree):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(func):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom):
                    names = [_resolve_from(module, is_package, node) or ""]
                else:
                    continue
                if any(n == package or n.startswith(f"{package}.") for n in names):
                    found.append(f"{module}:{node.lineno}")
    return sorted(set(found))


def test_function_import_counter_finds_relative_and_absolute_forms(tmp_path):
    files = {
        "__init__.py": "",
        "a.py": "def f():\n    from . import b\n    import os\n",
        "b.py": "def g():\n    if True:\n        from pkg.a import f\n",
    }
    root = tmp_path / "pkg"
    root.mkdir()
    for name, text in files.items():
        (root / name).write_text(text)
    modules = package_modules(str(tmp_path), "pkg")
    assert function_imports(modules, "pkg") == ["pkg.a:2", "pkg.b:3"]


def test_at_most_ten_imports_of_the_package_inside_functions():
    # An import inside a function hides a dependency (and often a cycle); it is kept only for
    # a heavy optional dependency or a documented reason.
    found = function_imports(package_modules())
    assert len(found) <= 10, f"{len(found)} imports of {PACKAGE} inside functions: {found}"


def test_config_imports_nothing_from_modeling():
    # config/ sits below modeling/: the model's description reads the config, never the
    # reverse (inside functions too).
    graph = import_graph(package_modules(), deferred=True)
    config = {m for m in graph if m == f"{PACKAGE}.config" or m.startswith(f"{PACKAGE}.config.")}
    assert config, "no config modules found"
    edges = {
        m: sorted(t for t in graph[m] if t.startswith(f"{PACKAGE}.modeling"))
        for m in sorted(config)
    }
    offenders = {m: t for m, t in edges.items() if t}
    assert not offenders, f"config/ modules importing modeling/: {offenders}"


def _registered_names():
    """The names of the registered backbones, heads and classifiers."""
    from resnet_det.modeling import registry

    names = set()
    for parts in (
        registry.BACKBONES,
        registry.PROPOSAL_GENERATORS,
        registry.ROI_HEADS,
        registry.BOX_HEADS,
        registry.MASK_HEADS,
        registry.CLASSIFIERS,
    ):
        names.update(parts.names())
    return names


def name_comparisons(source: str, registered) -> List[int]:
    """Line numbers of comparisons that choose a part by its name: a comparison (==, !=, in,
    not in) with a registered name or with the ``name`` / ``NAME`` attribute of something, or
    an identity test (``is``) against a registered builder."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left] + list(node.comparators)
        constants = [
            c
            for o in operands
            for c in ([o] if isinstance(o, ast.Constant) else getattr(o, "elts", []))
            if isinstance(c, ast.Constant)
        ]
        strings = [c.value for c in constants]
        names = [
            o
            for o in ast.walk(node)
            if isinstance(o, ast.Attribute) and o.attr in ("name", "NAME", "__name__")
        ]
        if any(isinstance(s, str) and s in registered for s in strings):
            lines.append(node.lineno)
        elif names and any(isinstance(s, str) for s in strings):
            lines.append(node.lineno)
        elif any(isinstance(op, (ast.Is, ast.IsNot)) for op in node.ops) and any(
            isinstance(o, ast.Name) and o.id in ("VGG", "ResNet", "CifarResNet", "FPNBackbone")
            for o in operands
        ):
            lines.append(node.lineno)
    return sorted(lines)


def test_name_comparison_checker_finds_every_form():
    registered = {"Res5ROIHeads", "build_vgg_backbone"}
    source = (
        "if cfg.MODEL.ROI_HEADS.NAME == 'Res5ROIHeads': pass\n"
        "if 'vgg' in spec.name.lower(): pass\n"
        "if builder is VGG: pass\n"
        "ok = name in ('build_vgg_backbone',)\n"
        "if x == 3 or entry.res5_head is None: pass\n"  # not a name: fine
    )
    assert name_comparisons(source, registered) == [1, 2, 3, 4]


def test_no_part_is_chosen_by_comparing_its_name():
    # A backbone or head is chosen by its registry entry (and what the entry offers, e.g.
    # res5_head / fc_head), never by testing its name: a new entry then needs no other edit.
    registered = _registered_names()
    assert {"Res5ROIHeads", "VGGFCHead", "build_vgg_backbone"} <= registered
    offenders = {}
    for module, path in package_modules().items():
        with open(path, encoding="utf-8") as f:
            found = name_comparisons(f.read(), registered)
        if found:
            offenders[module] = found
    assert not offenders, f"modules choosing a part by its name (module: lines): {offenders}"


# The paper's C4 detector (Res5ROIHeads, FrozenBN) at ResNet-18 size, no data: set-up, the
# engine's checks and the build of a whole run.
_C4_RUN = [
    "MODEL.RESNETS.DEPTH",
    "18",
    "MODEL.RESNETS.RES2_OUT_CHANNELS",
    "64",
    "MODEL.RESNETS.SHORTCUT",
    "C",
    "MODEL.ROI_HEADS.NUM_CLASSES",
    "3",
    "MODEL.BACKBONE.FREEZE_AT",
    "0",
    "DATASETS.TRAIN",
    "()",
    "DATASETS.TEST",
    "()",
    "SOLVER.MAX_ITER",
    "1",
    "SOLVER.STEPS",
    "()",
]


def test_shortcut_is_read_once_per_run(tmp_path):
    """MODEL.RESNETS.SHORTCUT reaches every convolution of a C4 detector (backbone and res5
    box head) from one read of the config: default_setup, the trainer's checks and the build
    read the model's description (docs/internals.md, "From the YAML file to the
    convolution")."""
    from resnet_det.config import get_cfg
    from resnet_det.engine import default_setup
    from resnet_det.engine.detection import DetectionTrainer
    from resnet_det.modeling.detection import Res5BoxHead

    cfg = get_cfg()
    cfg.merge_from_list(_C4_RUN + ["OUTPUT_DIR", str(tmp_path)])
    reads = []

    class SpyNode(type(cfg.MODEL.RESNETS)):
        def __getitem__(self, key):
            if key == "SHORTCUT":
                reads.append(key)
            return super().__getitem__(key)

    cfg.MODEL.RESNETS = SpyNode(cfg.MODEL.RESNETS)
    assert cfg.MODEL.RESNETS.SHORTCUT == "C" and reads == ["SHORTCUT"]  # the spy counts
    reads.clear()
    default_setup(cfg)
    trainer = DetectionTrainer(cfg)
    trainer.resume_or_load(resume=False)
    assert reads == ["SHORTCUT"]
    # ... and that one read built option C (a projection on every block) everywhere.
    head = trainer.model.roi_heads.box_head
    assert isinstance(head, Res5BoxHead)
    blocks = [b for s in trainer.model.backbone.stages for b in s] + list(head.res5)
    assert len(blocks) == 8 and all(b.shortcut is not None for b in blocks)
