"""Each system's public API has numpydoc docstrings with runnable examples, and help() lists it.

The public API of a package is its ``__all__``. Every class and function named there needs a
numpydoc docstring: a one-line summary ending with a period, a ``Parameters`` section naming every
parameter it takes (a class: its constructor's, in ``Parameters`` or ``Attributes``), ``Returns``
(or ``Yields``) when a function returns a value, and an ``Examples`` section with at least one
``>>>`` line (tests/test_doctests.py runs them).
``pydoc.render_doc(package)`` (what ``help(package)`` prints) must list every name in ``__all__``.

numpydoc is not a dependency, so the sections are parsed here, strictly: a section title is a line
that is exactly a known title, underlined by exactly as many dashes.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pydoc
import re
import textwrap

import pytest

SYSTEM_PACKAGES = [
    "redundancy.gf256",
    "redundancy.secret_sharing",
    "redundancy.regenerating",
    "redundancy.ecrm",
    "redundancy.abft",
    "redundancy.coded_inference",
    "redundancy.coded_inference.serving",
    "redundancy.erasure",
    "redundancy.convertible",
    "redundancy.coral",
    "redundancy.dart",
]
# Shared top-level modules without ``__all__``: their public API is what they define themselves.
SHARED_MODULES = ["redundancy.errors", "redundancy.storage_io", "redundancy.reproduce"]

SECTIONS = {
    "Parameters",
    "Returns",
    "Yields",
    "Receives",
    "Other Parameters",
    "Raises",
    "Warns",
    "Warnings",
    "See Also",
    "Notes",
    "References",
    "Examples",
    "Attributes",
    "Methods",
}


def parse_docstring(doc: str) -> tuple[list[str], dict[str, list[str]], list[str]]:
    """Split a cleaned docstring into (summary lines, {section: body lines}, problems)."""
    lines = doc.splitlines()
    problems: list[str] = []
    sections: dict[str, list[str]] = {}
    current: list[str] = []
    summary: list[str] = []
    index = 0
    while index < len(lines) and lines[index].strip():
        summary.append(lines[index])
        index += 1
    body = current
    while index < len(lines):
        line = lines[index]
        underline = lines[index + 1] if index + 1 < len(lines) else ""
        if underline.strip() and set(underline.strip()) == {"-"} and line.strip():
            title = line.strip()
            if title not in SECTIONS:
                problems.append(f"unknown section {title!r}")
            elif line != title or underline != "-" * len(title):
                problems.append(f"section {title!r}: title and underline must match, unindented")
            if title in sections:
                problems.append(f"section {title!r} appears twice")
            body = sections.setdefault(title, [])
            index += 2
            continue
        body.append(line)
        index += 1
    return summary, sections, problems


def documented_parameters(body: list[str]) -> set[str]:
    """Names declared in a Parameters section (``a, b : int`` declares both; stars dropped)."""
    names: set[str] = set()
    for line in body:
        if line and not line[0].isspace():
            for name in line.split(" : ")[0].split(","):
                names.add(name.strip().lstrip("*"))
    return names


def signature_parameters(obj: object) -> list[str] | None:
    """Parameter names a caller passes (``self``/``cls`` dropped); None if there is no signature."""
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    return [name for name in signature.parameters if name not in ("self", "cls")]


def returns_value(function: object) -> bool:
    """Whether a function returns something: by its annotation, else by its source."""
    annotation = inspect.signature(function).return_annotation
    if annotation is not inspect.Signature.empty:
        return annotation not in (None, "None")
    source = textwrap.dedent(inspect.getsource(inspect.unwrap(function)))
    tree = ast.parse(source)
    return any(
        isinstance(node, ast.Return)
        and node.value is not None
        and not (isinstance(node.value, ast.Constant) and node.value.value is None)
        for node in ast.walk(tree)
    )


def docstring_problems(obj: object) -> list[str]:
    """What is missing from ``obj``'s numpydoc docstring (empty list: nothing)."""
    doc = obj.__doc__ if isinstance(obj, type) else inspect.getdoc(obj)
    if isinstance(obj, type):
        doc = inspect.cleandoc(doc) if doc else doc
    if not doc or not doc.strip():
        return ["no docstring"]
    summary, sections, problems = parse_docstring(doc)
    if len(summary) != 1:
        problems.append("summary must be one line followed by a blank line")
    elif not summary[0].rstrip().endswith("."):
        problems.append("summary must end with a period")
    parameters = signature_parameters(obj)
    # A class may document its constructor's parameters as Attributes (a dataclass's fields).
    titles = ["Parameters", "Attributes"] if isinstance(obj, type) else ["Parameters"]
    if parameters:
        if not any(title in sections for title in titles):
            problems.append("no Parameters section")
        else:
            declared = set().union(*(documented_parameters(sections.get(t, [])) for t in titles))
            undocumented = [p for p in parameters if p not in declared]
            if undocumented:
                problems.append(f"Parameters section lacks {', '.join(undocumented)}")
    returns = not isinstance(obj, type) and returns_value(obj)
    if returns and "Returns" not in sections and "Yields" not in sections:
        problems.append("no Returns section")
    examples = sections.get("Examples", [])
    if not any(line.lstrip().startswith(">>> ") for line in examples):
        problems.append("no Examples section with a >>> line")
    return problems


def is_class_or_function(obj: object) -> bool:
    """Classes and functions, decorated ones (``functools.cache``) included."""
    return inspect.isclass(obj) or inspect.isfunction(inspect.unwrap(obj))


def public_objects(module: object) -> dict[str, object]:
    """The classes and functions among ``module.__all__``."""
    objects = {name: getattr(module, name) for name in module.__all__}
    return {name: obj for name, obj in objects.items() if is_class_or_function(obj)}


def report(problems: dict[str, list[str]]) -> str:
    return "\n".join(f"{name}: {'; '.join(found)}" for name, found in sorted(problems.items()))


@pytest.mark.parametrize("package", SYSTEM_PACKAGES)
def test_package_declares_its_public_api(package):
    module = importlib.import_module(package)
    assert isinstance(getattr(module, "__all__", None), list | tuple), f"{package} has no __all__"
    assert module.__all__, f"{package}.__all__ is empty"
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert not missing, f"{package}.__all__ names what it does not have: {missing}"


@pytest.mark.parametrize("package", SYSTEM_PACKAGES)
def test_public_api_has_numpydoc_docstrings(package):
    module = importlib.import_module(package)
    objects = public_objects(module)
    problems = {name: docstring_problems(obj) for name, obj in objects.items()}
    problems = {name: found for name, found in problems.items() if found}
    assert not problems, f"{len(problems)} of {len(objects)} public names:\n{report(problems)}"


@pytest.mark.parametrize("package", SYSTEM_PACKAGES)
def test_help_lists_the_public_api(package):
    module = importlib.import_module(package)
    text = pydoc.render_doc(module, renderer=pydoc.plaintext)
    unlisted = [
        name
        for name in module.__all__
        if not re.search(rf"^ *(class {name}\b|{name}\(|{name} = )", text, re.MULTILINE)
    ]
    assert not unlisted, f"help({package}) does not list {unlisted}"


@pytest.mark.parametrize("name", SHARED_MODULES)
def test_shared_modules_have_numpydoc_docstrings(name):
    module = importlib.import_module(name)
    objects = {
        key: obj
        for key, obj in vars(module).items()
        if not key.startswith("_") and is_class_or_function(obj) and obj.__module__ == name
    }
    assert objects
    problems = {key: docstring_problems(obj) for key, obj in objects.items()}
    problems = {key: found for key, found in problems.items() if found}
    assert not problems, f"{len(problems)} of {len(objects)} public names:\n{report(problems)}"


# The checker itself, on docstrings whose verdict is known.


def _documented(a: int, *, b: int = 0) -> int:
    """Add two numbers.

    Parameters
    ----------
    a : int
        First.
    b : int, default 0
        Second.

    Returns
    -------
    int
        The sum.

    Examples
    --------
    >>> _documented(1, b=2)
    3
    """
    return a + b


def test_checker_accepts_a_complete_docstring():
    assert docstring_problems(_documented) == []


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("    b : int, default 0\n        Second.\n", "", "Parameters section lacks b"),
        ("    Returns\n    -------\n    int\n        The sum.\n", "", "no Returns section"),
        ("    >>> _documented(1, b=2)\n    3\n", "", "no Examples section with a >>> line"),
        ("Parameters\n    ----------", "Params\n    ------", "unknown section 'Params'"),
        ("two numbers.", "two\n    numbers.", "summary must be one line"),
    ],
)
def test_checker_rejects_an_incomplete_docstring(old, new, expected):
    def broken(a: int, *, b: int = 0) -> int:
        return a + b

    source = inspect.getsource(_documented)
    docstring = ast.get_docstring(ast.parse(source).body[0], clean=False)
    assert old in docstring
    broken.__doc__ = docstring.replace(old, new, 1)
    assert any(expected in problem for problem in docstring_problems(broken))


def test_checker_rejects_a_mismatched_underline_and_a_long_summary():
    def function() -> None:
        pass

    function.__doc__ = "Do it\nover two lines.\n\nExamples\n-----\n>>> 1\n1\n"
    problems = docstring_problems(function)
    assert "summary must be one line followed by a blank line" in problems
    assert any("underline must match" in problem for problem in problems)
