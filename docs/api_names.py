"""The package's public names and where each is documented (used by ``conf.py`` and ``tests/test_docs.py``).

A module's public names are exactly its ``__all__``. Each object is documented once, on the page of
the module that defines it; a module that re-exports a name (the package, a subpackage's
``__init__``) links to that page instead.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from functools import cache

PACKAGE = "qk_lstm_qiskit"


@cache
def modules() -> tuple[str, ...]:
    """Every module of the package, subpackages' ``__init__`` included, sorted."""
    root = importlib.import_module(PACKAGE)
    return tuple(sorted([PACKAGE] + [info.name for info in pkgutil.walk_packages(root.__path__, PACKAGE + ".")]))


@cache
def _assigned(module_name: str) -> frozenset[str]:
    """Names bound by a top-level assignment, class or function definition in the module's source."""
    tree = ast.parse(inspect.getsource(importlib.import_module(module_name)))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
    return frozenset(names)


def home(module_name: str, name: str) -> str:
    """The dotted name under which ``module_name.name`` is documented: the module that defines it."""
    if name in _assigned(module_name):
        return f"{module_name}.{name}"
    obj = getattr(importlib.import_module(module_name), name)
    for other in modules():
        if other != module_name and name in _assigned(other) and getattr(importlib.import_module(other), name, None) is obj:
            return f"{other}.{name}"
    return f"{module_name}.{name}"  # defined elsewhere (e.g. a third-party alias): documented here


def public_names() -> dict[str, list[str]]:
    """``{module: [its __all__ names]}`` for every module that has an ``__all__``."""
    found = {}
    for module_name in modules():
        names = getattr(importlib.import_module(module_name), "__all__", None)
        if names is not None:
            found[module_name] = list(names)
    return found
