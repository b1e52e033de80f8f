"""Sphinx configuration: API reference from the docstrings, user guide, notebooks as tutorials.

Built offline (no intersphinx, MathJax served from the build folder), with ``-W -n`` by the test
suite (``tests/test_docs.py``). The API pages are written here at every build, one page per module
from its ``__all__``, so a new module or name cannot be left out.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))  # the package of this checkout, not an installed copy
sys.path.insert(0, str(DOCS))

import api_names  # noqa: E402
from sphinx.ext.napoleon.docstring import GoogleDocstring  # noqa: E402
from sphinx.util.nodes import make_refnode  # noqa: E402

project = "qk_lstm_qiskit"
author = "qk_lstm_qiskit contributors"
copyright = "2026, qk_lstm_qiskit contributors"
release = version = "0.1.0"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # MathJax copied into _static: maths renders without a network
    "sphinxarg.ext",
    "myst_nb",
]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
templates_path = ["_templates"]

html_theme = "furo"
smartquotes = False  # "--resume" stays two hyphens in the CLI reference
html_title = "qk_lstm_qiskit"
html_static_path: list[str] = []

# --- notebooks: rendered as stored (they are committed without outputs), never executed here
nb_execution_mode = "off"
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# --- autodoc / napoleon (Google-style docstrings with Args, Shape, Raises, Example sections)
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autodoc_class_signature = "mixed"
autodoc_default_options = {"members": True, "undoc-members": True, "show-inheritance": True}
autodoc_inherit_docstrings = False  # torch's and qiskit's docstrings are theirs, not ours
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_custom_sections = ["Shape", ("Warns", "raises_style")]
napoleon_use_rtype = False
napoleon_use_ivar = True  # "Attributes:" as fields: dataclass fields are documented once, by autodoc
add_module_names = False
python_use_unqualified_type_names = True

# --- nitpicky cross-references: third-party types have no inventory offline (no intersphinx)
nitpicky = True
THIRD_PARTY = ("torch", "nn", "numpy", "np", "qiskit", "qiskit_aer", "qiskit_ibm_runtime", "qiskit_machine_learning",
               "mthree", "scipy", "matplotlib", "argparse", "collections", "concurrent", "pathlib", "typing",
               "types", "threading", "os", "io", "logging", "dataclasses", "enum", "abc")
nitpick_ignore_regex = [
    (r"py:.*", rf"({'|'.join(THIRD_PARTY)})(\..*)?"),
    # builtins and typing names without an inventory
    (r"py:(class|obj|data)", r"(Any|Callable|Iterable|Iterator|Sequence|Mapping|Literal|Optional|Union|Self|"
                             r"TypeVar|Protocol|Path|Tensor|Module|Parameter|Generator|QuantumCircuit|"
                             r"ndarray|Figure|Axes|Namespace|ArgumentParser|SamplerPub|BaseSamplerV2|"
                             r"PrimitiveResult|BasePrimitiveJob|PassManager|Backend|BackendV2|"
                             r"int|float|str|bool|bytes|dict|list|tuple|set|frozenset|object|type|None|"
                             r"Ellipsis|slice|complex|iterable|callable|optional|default|DTypeLike|"
                             r"[A-Za-z_]+Error|[A-Za-z_]+Warning|KeyboardInterrupt)"),
]


# --- API pages: one per module of the package, its members exactly its __all__
def _module_page(name: str) -> str:
    module = importlib.import_module(name)
    title = f"``{name}``"
    lines = [title, "=" * len(title), "", f".. automodule:: {name}"]
    names = getattr(module, "__all__", None)
    if names is None:  # a subpackage without names of its own: its docstring and its modules
        children = [m for m in api_names.modules() if m.rsplit(".", 1)[0] == name]
        lines += ["   :no-members:", "", ".. currentmodule:: None", "", ".. autosummary::", ""]
        return "\n".join(lines + [f"   {c}" for c in children]) + "\n"
    homes = {public: api_names.home(name, public) for public in names}
    own = [public for public in names if homes[public] == f"{name}.{public}"]
    others = [public for public in names if public not in own]
    if not own:
        lines.append("   :no-members:")
    elif others:  # an explicit :members: list would also narrow the members of its classes
        lines.append(f"   :exclude-members: {', '.join(others)}")
    elsewhere = [homes[public] for public in others]
    if elsewhere:  # re-exports: documented once, where they are defined
        lines += ["", ".. rubric:: Re-exported here", "", ".. currentmodule:: None", "", ".. autosummary::", ""]
        lines += [f"   ~{target}" for target in elsewhere]
    return "\n".join(lines) + "\n"


def write_api_pages() -> None:
    out = DOCS / "api" / "generated"
    out.mkdir(parents=True, exist_ok=True)
    wanted = {f"{name}.rst": _module_page(name) for name in api_names.modules()}
    for stale in out.glob("*.rst"):
        if stale.name not in wanted:
            stale.unlink()
    for filename, text in wanted.items():
        path = out / filename
        if not path.exists() or path.read_text() != text:  # unchanged pages keep their time: fast rebuilds
            path.write_text(text)


def link_notebooks() -> None:
    """``docs/tutorials/<name>.ipynb`` → ``notebooks/<name>.ipynb`` for every committed notebook."""
    (DOCS / "tutorials").mkdir(exist_ok=True)  # holds only these links (ignored by git): absent in a fresh clone
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        link = DOCS / "tutorials" / notebook.name
        if not link.is_symlink():
            link.symlink_to(os.path.relpath(notebook, link.parent))


@functools.cache
def _reexports() -> dict[str, str]:
    """``{public path: documented path}`` for every name a module re-exports from another."""
    homes = {f"{module}.{name}": api_names.home(module, name)
             for module, names in api_names.public_names().items() for name in names}
    return {alias: home for alias, home in homes.items() if alias != home}


def resolve_by_suffix(app, env, node, contnode):
    """A Python reference by its public path (``qk_lstm_qiskit.QKLSTM``) or a short one (``FeatureMap``,
    ``GatedCell.run_sequence``) resolved if exactly one documented object is named so (its module, its
    class, or a unique dotted suffix), as if written ``~.FeatureMap``; an ambiguous or unknown name stays
    missing (a warning, an error under ``-W``)."""
    if node.get("refdomain") != "py":
        return None
    domain = env.get_domain("py")
    target = node["reftarget"]
    parts = target.split(".")
    for cut in range(len(parts), 0, -1):  # a re-export by its public path, or a dotted suffix of it:
        head, rest = ".".join(parts[:cut]), "".join("." + p for p in parts[cut:])  # statevector.ProductForm
        homes = {home for alias, home in _reexports().items() if alias == head or alias.endswith("." + head)}
        if len(homes) == 1:
            target = homes.pop() + rest
            break
    matches = domain.find_obj(env, node.get("py:module"), node.get("py:class"), target, None, 1)
    canonical = [(name, entry) for name, entry in matches if not entry.aliased]
    if len(canonical) != 1:
        return None
    name, entry = canonical[0]
    return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, name)


def _plain_attribute_docstring(self) -> list[str]:
    """Attribute and constant docstrings here are prose: napoleon would read ``"what: why"`` as a type."""
    return self._consume_to_end()


GoogleDocstring._parse_attribute_docstring = _plain_attribute_docstring


def shape_items(app, what, name, obj, options, lines: list[str]) -> None:
    """A ``Shape:`` section's entries (``input``: …, :meth:`angles`: …) as bullets, one per tensor;
    runs before napoleon, which then renders the section as it is."""
    indent = lambda line: len(line) - len(line.lstrip())  # noqa: E731
    i = 0
    while i < len(lines):
        if lines[i].strip() != "Shape:":
            i += 1
            continue
        header, i = indent(lines[i]), i + 1
        while i < len(lines) and (not lines[i].strip() or indent(lines[i]) > header):
            text = lines[i].lstrip()
            if text:
                bullet = text.startswith(("``", ":"))
                lines[i] = " " * indent(lines[i]) + ("- " if bullet else "  ") + text
            i += 1


def setup(app):
    app.connect("missing-reference", resolve_by_suffix)
    app.connect("autodoc-process-docstring", shape_items, priority=400)  # napoleon: 500
    write_api_pages()
    link_notebooks()

