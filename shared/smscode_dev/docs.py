"""The reference pages made from their one source, so that they cannot drift from it.

An MkDocs hook (mkdocs.yml `hooks`): a page's `<!-- settings -->` becomes the table of
`settings.Settings` (name, default, meaning from each field's description), `<!-- http-api -->`
every operation of `openapi.yaml`, and `<!-- cli -->` the `smscode` commands from their own
parsers. A setting without a description stops the build (`make docs`, `make check`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from importlib import resources
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from smscode.entrypoints import cli
from smscode.settings import Settings
from smscode_dev import cli as dev_cli

METHODS = ("get", "post", "put", "patch", "delete")


class UndocumentedSetting(Exception):
    """A setting whose field has no description: the reference would have nothing to say."""


def _cell(text: str) -> str:
    """Text fit for one Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


# -- settings ---------------------------------------------------------------------------------


def undocumented(model: type[BaseModel] = Settings) -> list[str]:
    """The environment variables of `model` whose field has no description."""
    return [name.upper() for name, field in model.model_fields.items() if not field.description]


def _shown_default(field: FieldInfo) -> str:
    extra = field.json_schema_extra
    if isinstance(extra, dict) and isinstance(extra.get("shown"), str):
        return str(extra["shown"])
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if value is None or (isinstance(value, dict | tuple | frozenset) and not value):
        return "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, tuple | frozenset):
        return f"`{','.join(sorted(value))}`"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`"


def _bounds(field: FieldInfo) -> str:
    """What the field accepts beyond its type: its bounds or its choices."""
    found: dict[str, Any] = {}
    for constraint in field.metadata:
        for name in ("ge", "gt", "le", "lt", "min_length", "max_length"):
            if getattr(constraint, name, None) is not None:
                found[name] = getattr(constraint, name)
    choices = getattr(field.annotation, "__args__", ())
    if choices and all(isinstance(choice, str) for choice in choices):
        return "One of " + ", ".join(f"`{choice}`" for choice in choices) + "."
    parts = []
    low = found.get("ge", found.get("gt"))
    high = found.get("le", found.get("lt"))
    if low is not None and high is not None:
        parts.append(f"From {low} to {high}" if "ge" in found else f"Above {low}, up to {high}")
    elif low is not None:
        parts.append(f"At least {low}" if "ge" in found else f"Above {low}")
    elif high is not None:
        parts.append(f"At most {high}")
    shortest, longest = found.get("min_length"), found.get("max_length")
    if shortest is not None and longest is not None:
        parts.append(f"{shortest} to {longest} characters")
    elif shortest is not None:
        parts.append(f"at least {shortest} characters")
    text = ", ".join(parts)
    return f"{text[:1].upper()}{text[1:]}." if parts else ""


def settings_table(model: type[BaseModel] = Settings) -> str:
    """Every setting: its variable, its default and what it means, in settings.py's order.

    Raises:
        UndocumentedSetting: a field has no description.
    """
    missing = undocumented(model)
    if missing:
        raise UndocumentedSetting(
            "settings without a description in settings.py: " + ", ".join(missing)
        )
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for name, field in model.model_fields.items():
        meaning = " ".join(part for part in (field.description or "", _bounds(field)) if part)
        rows.append(f"| `{name.upper()}` | {_shown_default(field)} | {_cell(meaning)} |")
    return "\n".join(rows)


# -- the HTTP API -----------------------------------------------------------------------------


@cache
def openapi() -> dict[str, Any]:
    """The API description the server answers at GET /openapi.yaml (read once; not changed)."""
    text = resources.files("smscode").joinpath("openapi.yaml").read_text(encoding="utf-8")
    safe = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C loader is 10x faster
    document: dict[str, Any] = yaml.load(text, Loader=safe)  # noqa: S506 (a safe loader)
    return document


def operations(document: Mapping[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Each (METHOD, path, operation) of the description, in its order."""
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield method.upper(), path, {**item[method], "_shared": item.get("parameters", [])}


def _resolve(document: Mapping[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _type(document: Mapping[str, Any], schema: Any) -> str:
    schema = _resolve(document, schema)
    if "const" in schema:
        return f"`{schema['const']}`"
    if "enum" in schema:
        return " or ".join("null" if value is None else f"`{value}`" for value in schema["enum"])
    kind = schema.get("type", "object")
    return " or ".join(kind) if isinstance(kind, list) else str(kind)


def _body(document: Mapping[str, Any], operation: Mapping[str, Any]) -> list[str]:
    """The request body: each field of each content type's schema."""
    body = operation.get("requestBody")
    if not body:
        return []
    content = _resolve(document, body)["content"]
    lines = [f"**Body** ({', '.join(f'`{kind}`' for kind in content)}):", ""]
    lines += ["| field | type | meaning |", "| --- | --- | --- |"]
    seen: set[str] = set()
    for media in content.values():
        schema = _resolve(document, media["schema"])
        for name, prop in schema.get("properties", {}).items():
            if name in seen:
                continue
            seen.add(name)
            meaning = _resolve(document, prop).get("description", "")
            lines.append(f"| `{name}` | {_type(document, prop)} | {_cell(meaning)} |")
    return [*lines, ""]


_ERROR_FIELDS = ("status", "error", "message")  # every error body's; others are named


def _errors(document: Mapping[str, Any], schema: Any) -> list[str]:
    """The `error` codes (native) or Twilio codes a response body may carry."""
    schema = _resolve(document, schema)
    options = schema.get("oneOf", [schema])
    codes = []
    for option in options:
        properties = _resolve(document, option).get("properties", {})
        error = properties.get("error", {})
        if "const" in error:
            extra = [f"`{name}`" for name in properties if name not in _ERROR_FIELDS]
            codes.append(f"`{error['const']}`" + (f" (+ {', '.join(extra)})" if extra else ""))
    return codes


def _flat(document: Mapping[str, Any], schema: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Each (dotted name, schema) of an object schema, nested objects and arrays' items too."""
    for name, prop in _resolve(document, schema).get("properties", {}).items():
        yield f"{prefix}{name}", prop
        inner = _resolve(document, prop)
        if inner.get("type") == "array" and "items" in inner:
            yield from _flat(document, inner["items"], f"{prefix}{name}[].")
        elif "properties" in inner:
            yield from _flat(document, inner, f"{prefix}{name}.")


def _fields(document: Mapping[str, Any], schema: Any, heading: str) -> list[str]:
    """An object schema's fields as a table (what a success answers)."""
    rows = [
        f"| `{name}` | {_type(document, prop)} | "
        f"{_cell(_resolve(document, prop).get('description', ''))} |"
        for name, prop in _flat(document, schema)
    ]
    if not rows:
        return []
    return [heading, "", "| field | type | meaning |", "| --- | --- | --- |", *rows, ""]


def _header(document: Mapping[str, Any], name: str, header: Any) -> str:
    """A response header: its name, and its fixed value or meaning."""
    header = _resolve(document, header)
    schema = _resolve(document, header.get("schema", {}))
    said = header.get("description", "")
    if "const" in schema:
        said = f"`{schema['const']}`"
    elif "pattern" in schema and not said:
        said = f"matching `{schema['pattern']}`"
    return f"`{name}`" + (f" {said}" if said else "")


def _answers(document: Mapping[str, Any], operation: Mapping[str, Any]) -> list[str]:
    lines = ["| status | meaning |", "| --- | --- |"]
    returned: list[str] = []
    for status, response in operation["responses"].items():
        response = _resolve(document, response)
        meaning = response.get("description", "")
        schemas = [media.get("schema") for media in response.get("content", {}).values()]
        codes = [code for schema in schemas if schema for code in _errors(document, schema)]
        if codes:
            meaning += f" ({', '.join(codes)})"
        headers = [_header(document, name, header) for name, header in
                   response.get("headers", {}).items()]  # fmt: skip
        if headers:
            meaning += f" Headers: {'; '.join(headers)}."
        lines.append(f"| {status} | {_cell(meaning)} |")
        json_schema = response.get("content", {}).get("application/json", {}).get("schema")
        if status.startswith("2") and json_schema and not returned:
            returned = _fields(document, json_schema, f"**Answer {status}**:")
    return [*lines, "", *returned]


def _parameters(document: Mapping[str, Any], operation: Mapping[str, Any]) -> list[str]:
    found = [
        _resolve(document, p) for p in [*operation["_shared"], *operation.get("parameters", [])]
    ]
    if not found:
        return []
    lines = ["| parameter | in | meaning |", "| --- | --- | --- |"]
    for parameter in found:
        meaning = parameter.get("description", "") or _type(document, parameter["schema"])
        lines.append(f"| `{parameter['name']}` | {parameter['in']} | {_cell(meaning)} |")
    return [*lines, ""]


def _security(document: Mapping[str, Any], operation: Mapping[str, Any]) -> list[str]:
    schemes = [name for option in operation.get("security", []) for name in option]
    if not schemes:
        return []
    named = document["components"]["securitySchemes"]
    return [
        "**Key**: "
        + "; or ".join(_cell(named[scheme]["description"]).rstrip(".") for scheme in schemes)
        + ".",
        "",
    ]


def http_api(document: Mapping[str, Any] | None = None) -> str:
    """Every operation of openapi.yaml: summary, key, parameters, body and answers."""
    document = document or openapi()
    lines: list[str] = []
    for method, path, operation in operations(document):
        lines += [f"### `{method} {path}`", "", _cell(operation["summary"]), ""]
        if operation.get("description"):
            lines += [operation["description"].strip(), ""]
        lines += _security(document, operation)
        lines += _parameters(document, operation)
        lines += _body(document, operation)
        lines += _answers(document, operation)
    return "\n".join(lines)


# -- the command line -------------------------------------------------------------------------


def commands() -> dict[str, argparse.ArgumentParser]:
    """`smscode` and each of its commands' parsers, `dev`'s from the dev package."""
    parser = cli.parser()
    found = {"smscode": parser}
    for action in parser._actions:  # argparse has no public way to its subcommands
        if isinstance(action, argparse._SubParsersAction):
            found |= {f"smscode {name}": sub for name, sub in action.choices.items()}
    found["smscode dev"] = dev_cli.parser()
    return found


def cli_reference() -> str:
    """Each command's `--help`, as it prints it."""
    lines: list[str] = []
    for name, parser in commands().items():
        parser.formatter_class = _wide
        lines += [f"### `{name}`", "", "```text", parser.format_help().rstrip(), "```", ""]
    return "\n".join(lines)


def _wide(prog: str) -> argparse.HelpFormatter:
    return argparse.HelpFormatter(prog, width=96)


# -- the hook ---------------------------------------------------------------------------------

MARKERS: dict[str, Callable[[], str]] = {
    "<!-- settings -->": settings_table,
    "<!-- http-api -->": http_api,
    "<!-- cli -->": cli_reference,
}


def render(markdown: str) -> str:
    """The page with each generated section in place of its marker."""
    for marker, make in MARKERS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, make())
    return markdown


def on_page_markdown(markdown: str, **_: Any) -> str:
    """MkDocs' hook: each page's Markdown, before it is rendered."""
    return render(markdown)
