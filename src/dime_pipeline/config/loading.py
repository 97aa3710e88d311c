"""Reading, validating and writing config files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    ValidationError,
)

from dime_pipeline.config.resources import check_resources
from dime_pipeline.config.study import DEFAULT_CONFIG, PipelineConfig
from dime_pipeline.errors import UserError, config_error, one_line


def validate_config(raw: dict[str, Any], what: str = "config") -> PipelineConfig:
    """Validate a config mapping, raising :class:`UserError` with one line naming the key; a
    study too big for this machine's memory (:func:`check_resources`) is refused too."""
    try:
        config = PipelineConfig.model_validate(raw)
    except ValidationError as error:
        raise config_error(error, what) from None
    check_resources(config, what)
    return config


def load_config(path: str | Path | None = None) -> PipelineConfig:
    """Read and validate a YAML config file (the packaged default when ``path`` is None)."""
    path = path or DEFAULT_CONFIG
    return validate_config(read_yaml_mapping(path, "config"), f"config {path}")


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (plain YAML keeps the
    last one silently, so a second ``frequency_hz:`` far down a file would win unnoticed).

    The error names the key's dotted path and marks the second occurrence. Keys brought in by a
    merge (``<<: *defaults``) may still be overridden: only keys written in the mapping count.
    """

    def construct_document(self, node: yaml.Node) -> Any:
        self._check_unique(node, (), set())
        return super().construct_document(node)

    def _check_unique(self, node: yaml.Node, where: tuple[str, ...], seen: set[int]) -> None:
        if id(node) in seen:  # an alias: checked where its anchor is (and no endless recursion)
            return
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._check_unique(item, (*where, str(index)), seen)
        elif isinstance(node, yaml.MappingNode):
            keys: set[Any] = set()
            for key_node, value_node in node.value:
                key = self._key(key_node)
                path = (*where, str(key))
                if key is not None:
                    if key in keys:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"duplicate key '{'.'.join(path)}'", key_node.start_mark
                        )
                    keys.add(key)
                self._check_unique(value_node, path, seen)

    def _key(self, node: yaml.Node) -> Any:
        """A scalar key's value (None for other keys: the constructor judges those)."""
        if not isinstance(node, yaml.ScalarNode) or node.tag == "tag:yaml.org,2002:merge":
            return None
        key = self.construct_object(node, deep=True)
        try:
            hash(key)
        except TypeError:
            return None
        return key


def read_yaml_mapping(path: str | Path, what: str) -> dict[str, Any]:
    """The top-level mapping of a YAML file (empty file: {}); UserError naming ``what`` and,
    for a syntax error, the problem and where it is."""
    try:
        raw = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=UniqueKeyLoader) or {}
    except OSError as error:
        raise UserError(f"cannot read {what} {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise UserError(f"{what} {path} is not UTF-8 text (is it a YAML file?)") from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = error.problem or error.context or "syntax error"
        raise UserError(f"{what} {path} is not valid YAML: {problem}{where}") from None
    except yaml.YAMLError as error:
        raise UserError(f"{what} {path} is not valid YAML: {one_line(error)}") from None
    if not isinstance(raw, dict):
        raise UserError(f"{what} {path}: top level must be a mapping of keys")
    return raw


def dump_config(config: PipelineConfig) -> str:
    """The YAML text of a validated config, every key spelled out."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
