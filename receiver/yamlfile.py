"""Load YAML while remembering the line of every key, so errors can name their place."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from .errors import ConfigError


@dataclass
class YamlDocument:
    data: Any
    file: str
    lines: dict[tuple, int] = field(default_factory=dict)

    def line_of(self, path: tuple) -> int | None:
        """The line of `path`, or of its nearest ancestor that has one."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(())

    def error(self, path: tuple, message: str) -> ConfigError:
        return ConfigError(message, file=self.file, path=format_path(path), line=self.line_of(path))


def format_path(path: tuple) -> str:
    """("rules", 2, "config", "words") -> "rules[2].config.words"."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_yaml(text: str, file: str) -> YamlDocument:
    """Parse one YAML document; a syntax error becomes a ConfigError with its line."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(f"not valid YAML: {getattr(exc, 'problem', exc)}", file=file,
                          line=mark.line + 1 if mark else None) from None
    finally:
        loader.dispose()
    doc = YamlDocument(data, file)
    if node is not None:
        _record_lines(node, (), doc.lines)
    return doc


def _record_lines(node: yaml.Node, path: tuple, lines: dict[tuple, int]) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            _record_lines(value_node, path + (key,), lines)
            lines[path + (key,)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _record_lines(item, path + (i,), lines)


def errors_to_config_error(doc: YamlDocument, messages: Any, prefix: tuple = ()) -> ConfigError:
    """Turn marshmallow's nested error messages into one ConfigError naming every place."""
    problems = list(_walk(messages, prefix))
    first_path, _ = problems[0]
    lines = [f"{format_path(p) or '(top)'} (line {doc.line_of(p)}): {msg}" for p, msg in problems]
    if len(lines) == 1:
        return doc.error(first_path, problems[0][1])
    error = doc.error(first_path, problems[0][1])
    error.args = (f"{doc.file}: {len(lines)} problems:\n  " + "\n  ".join(lines),)
    error.message = error.args[0]
    return error


def _walk(messages: Any, path: tuple):
    if isinstance(messages, dict):
        for key, value in messages.items():
            if key == "_schema":
                yield from _walk(value, path)
            else:
                yield from _walk(value, path + (key,))
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        yield path, " ".join(_explain(m) for m in messages)
    elif isinstance(messages, list):
        for item in messages:
            yield from _walk(item, path)
    else:
        yield path, str(messages)


def _explain(message: str) -> str:
    # marshmallow says "Unknown field." for an unexpected key; say what that means here.
    return "unknown key (not one this section accepts)" if message == "Unknown field." else message
