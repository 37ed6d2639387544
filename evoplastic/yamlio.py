"""Strict YAML reading for configs, sweep files and evaluation protocols.

PyYAML's safe loader differs from what a user expects in three ways, each fixed here:

- a duplicate key silently keeps the last value: here it is an error naming both lines;
- YAML 1.1 floats need a decimal point and a signed exponent, so ``1e-3`` and ``1e1`` load as
  strings: here any decimal number in scientific notation is a float (the YAML 1.2 rule);
- aliases are shared, not copied, so a few lines can expand to billions of values once a config
  is copied: here a document is refused past :data:`~evoplastic.limits.MAX_YAML_NODES` values.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from evoplastic import limits
from evoplastic.errors import UserError

_FLOAT = "tag:yaml.org,2002:float"
# YAML 1.2 core schema floats (plus 1.1's '_' separators), e.g. 1e-3, 1E5, 1.0e3, .5, -2., .inf
_FLOAT_RE = re.compile(r"""^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", re.X)


class _DuplicateKey(yaml.YAMLError):
    """A mapping repeats a key (message: "line N: duplicate key ...")."""


class StrictLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 floats and errors for duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise _DuplicateKey(f"line {line}: duplicate key {key!r} (first on line {seen[key]})")
            except TypeError:  # an unhashable key: the base class reports it
                break
            seen[key] = line
        return super().construct_mapping(node, deep)


StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _FLOAT]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
StrictLoader.add_implicit_resolver(_FLOAT, _FLOAT_RE, list("-+0123456789."))


def loads(text: str, source: str) -> Any:
    """Parse one YAML document; ``UserError('SOURCE: ...')`` if it is malformed or too big."""
    try:
        data = yaml.load(text, Loader=StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except _DuplicateKey as exc:
        raise UserError(f"{source}: {exc}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{source}: not valid YAML ({' '.join(str(exc).split())})") from None
    _check_nodes(data, source)
    return data


def load(path: str | Path, what: str) -> Any:
    """Read and parse the YAML file ``path`` (``what``: "config file", ... for messages)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such {what}")
    limits.check_file_size(path, limits.MAX_YAML_BYTES, what)
    try:
        text = path.read_text()
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not a text file ({exc.reason} at byte {exc.start})") from None
    return loads(text, str(path))


def _check_nodes(data: Any, source: str) -> None:
    """Refuse a document whose values, aliases expanded, number more than MAX_YAML_NODES."""
    count, stack = 0, [data]
    while stack:
        v = stack.pop()
        count += 1
        if count > limits.MAX_YAML_NODES:
            raise UserError(f"{source}: more than {limits.MAX_YAML_NODES:,} values once aliases are "
                            "expanded (limit); is an alias nested in itself?")
        if isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
