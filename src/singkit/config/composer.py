"""The composer every round-trip config load uses (singkit.config.layers.yaml_rt): bounded work
for hostile YAML (singkit.config.yamlsafe says why and holds the limits). Apart from yamlsafe so
that reading a config whose parse is cached never imports ruamel."""

from __future__ import annotations

from typing import Any

from ruamel.yaml.composer import Composer, ComposerError
from ruamel.yaml.events import AliasEvent
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

from singkit.config.yamlsafe import ALIAS_BUDGET, ALIAS_FACTOR, MAX_DEPTH


class BoundedComposer(Composer):
    """ruamel's Composer that refuses, at the offending node's mark, what would make later work
    unbounded: nesting deeper than MAX_DEPTH (also through aliases), an alias to a node that
    contains it, alias expansion past the budget, and a mapping key that is not a scalar.

    Node sizes and depths are kept per node as it is composed (each node once), so the checks
    cost O(written nodes) whatever the aliases would expand to."""

    def compose_document(self) -> Any:
        self._size: dict[int, int] = {}
        self._depth: dict[int, int] = {}
        self._written = 0
        self._aliased = 0
        return super().compose_document()

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.parser.check_event(AliasEvent):
            event = self.parser.peek_event()
            node = super().compose_node(parent, index)
            if id(node) not in self._size:
                raise ComposerError(None, None, f"`*{event.anchor}` refers to a node that contains it (a loop); "
                                    "YAML data for singkit cannot contain itself", event.start_mark)
            self._aliased += self._size[id(node)]
            budget = max(ALIAS_BUDGET, ALIAS_FACTOR * self._written)
            if self._aliased > budget:
                raise ComposerError(None, None, f"`*{event.anchor}` makes the aliases expand past {budget:,} values "
                                    "(an alias bomb?); write the values out, or use fewer aliases", event.start_mark)
            return node
        if self.loader.max_depth and self.depth + 1 > self.loader.max_depth:
            raise ComposerError(None, None, f"nested more than {self.loader.max_depth} levels deep; a config needs a few",
                                self.parser.peek_event().start_mark)
        node = super().compose_node(parent, index)
        self._written += 1
        children: list[Any] = []
        if isinstance(node, SequenceNode):
            children = node.value
        elif isinstance(node, MappingNode):
            for key, value in node.value:
                if not isinstance(key, ScalarNode):
                    kind = "a list" if isinstance(key, SequenceNode) else "a mapping"
                    raise ComposerError(None, None, f"a mapping key must be a name, not {kind} (`? ` starts a complex key)",
                                        key.start_mark)
                children += (key, value)
        self._size[id(node)] = 1 + sum(self._size.get(id(c), 1) for c in children)
        depth = 1 + max((self._depth.get(id(c), 1) for c in children), default=0)
        if depth > MAX_DEPTH:  # only aliases can get here: written nesting stops at max_depth above
            raise ComposerError(None, None, f"aliases nest this value more than {MAX_DEPTH} levels deep; "
                                "write it out", node.start_mark)
        self._depth[id(node)] = depth
        return node
