"""``{{ expr }}`` templates: ``expr`` is a JMESPath expression over the run's variables (never evaluated as code).

A string value is inserted as it is; anything else (numbers, objects, ``null``) as JSON. In a JSON request body, a
string that is exactly one template (``"{{ order.id }}"``) becomes the value itself, keeping its type."""

from __future__ import annotations

import json
import re
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError

TEMPLATE_RE = re.compile(r"\{\{\s*(.+?)\s*\}\}", re.DOTALL)


class TemplateError(Exception):
    pass


def evaluate(expression: str, variables: dict[str, Any]) -> Any:
    try:
        return jmespath.search(expression, variables)
    except JMESPathError as error:
        raise TemplateError(f"bad expression “{expression}”: {error}") from error


def as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def render(text: str, variables: dict[str, Any]) -> str:
    """``text`` with each ``{{ expr }}`` replaced by its value."""
    return TEMPLATE_RE.sub(lambda match: as_text(evaluate(match.group(1), variables)), text)


def render_json(value: Any, variables: dict[str, Any]) -> Any:
    """A JSON value with every string in it rendered (object keys too); a string that is one whole template
    becomes the expression's value."""
    if isinstance(value, str):
        whole = TEMPLATE_RE.fullmatch(value.strip())
        if whole:
            return evaluate(whole.group(1), variables)
        return render(value, variables)
    if isinstance(value, dict):
        return {render(str(key), variables): render_json(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [render_json(item, variables) for item in value]
    return value
