"""Reading YAML a user wrote, safely: no object construction (``safe_load``) and no alias bombs.

YAML aliases let a few hundred bytes name billions of nodes (each ``*a`` repeats everything under
``&a``); ``safe_load`` would build them all. :func:`load_yaml` first composes the node graph (aliases
stay shared, nothing is expanded), counts the nodes the document would expand to, and refuses one
above ``max_nodes`` before building anything.

>>> load_yaml("a: [1, 2]\\nb: {c: 3}", "example")
{'a': [1, 2], 'b': {'c': 3}}
>>> bomb = "a: &a [x, x, x, x, x, x, x, x, x]\\n" + "".join(
...     f"{k}: &{k} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\\n" for p, k in zip("abcdefgh", "bcdefghi"))
>>> load_yaml(bomb, "bomb.yaml")
Traceback (most recent call last):
...
ValueError: bomb.yaml: the YAML expands to more than 100000 values through its aliases (&anchor/*alias); refusing to read it
"""

from __future__ import annotations

__all__ = ["MAX_YAML_NODES", "load_yaml"]

#: Values a YAML document may expand to (scenario, layout and workload files hold a few hundred).
MAX_YAML_NODES = 100_000


def _expanded_size(root, limit: int) -> int:
    """Nodes the document expands to (aliases counted each time they are used), stopping past ``limit``."""
    import yaml

    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise ValueError("recursive")
        active.add(key)
        total = 1
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                total += size(k) + size(v)
                if total > limit:
                    break
        elif isinstance(node, yaml.SequenceNode):
            for v in node.value:
                total += size(v)
                if total > limit:
                    break
        active.discard(key)
        sizes[key] = total
        return total

    return size(root)


def load_yaml(text: str, where: str, max_nodes: int = MAX_YAML_NODES):
    """The data of a YAML document (``None`` for an empty one); ``ValueError`` naming ``where`` for
    invalid YAML, a recursive alias, or a document expanding to more than ``max_nodes`` values."""
    import yaml

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise ValueError(f"{where}: not valid YAML: {exc}") from None
    if root is None:
        return None
    try:
        n = _expanded_size(root, max_nodes)
    except ValueError:
        raise ValueError(f"{where}: the YAML refers to itself through an alias (&anchor/*alias)") from None
    except RecursionError:
        raise ValueError(f"{where}: the YAML nests too deeply") from None
    if n > max_nodes:
        raise ValueError(f"{where}: the YAML expands to more than {max_nodes} values through its aliases "
                         "(&anchor/*alias); refusing to read it")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"{where}: not valid YAML: {exc}") from None
