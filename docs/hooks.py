"""MkDocs hooks: the pages that describe code are generated from that code at build time.

- ``<!-- generated:settings -->`` becomes a table of every ``POLICYBOT_*`` variable, read from the
  settings model ``bot.config.Settings`` (type, default, bounds, description), grouped by the
  ``# --- …`` section comments of ``bot/config.py``.
- ``<!-- generated:floors -->`` becomes the CI floors of ``eval/floors.json``.
- ``<!-- generated:openapi -->`` becomes the endpoints and schemas of the HTTP API, read from the
  app itself (``bot.api.app.create_app(...).openapi()``), so the page is the schema the server serves.

Nothing here is hand-copied, so the pages cannot drift from the code. The app is only created, never
started: no index is loaded and no network is used.
"""

from __future__ import annotations

import inspect
import json
import re
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

SETTINGS_MARKER = "<!-- generated:settings -->"
OPENAPI_MARKER = "<!-- generated:openapi -->"
FLOORS_MARKER = "<!-- generated:floors -->"
ROOT = Path(__file__).resolve().parent.parent
ENV_PREFIX = "POLICYBOT_"


# --- helpers ----------------------------------------------------------------------------------------

def _cell(text: Any) -> str:
    """Text that is safe inside one Markdown table cell: one line, ``|`` escaped, and ``<`` / ``>``
    outside code spans shown as text (a description's ``<name>`` is not an HTML tag)."""
    parts = " ".join(str(text).split()).split("`")
    for i in range(0, len(parts), 2):  # even parts are outside code spans
        parts[i] = parts[i].replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts).replace("|", "\\|")


def _anchor(name: str) -> str:
    return "schema-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


# --- configuration ----------------------------------------------------------------------------------

def env_name(field: str) -> str:
    """The environment variable of a settings field (the model reads ``POLICYBOT_<FIELD>``)."""
    return ENV_PREFIX + field.upper()


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return " or ".join(_type_name(a) for a in args)
    if origin is Literal:
        return " or ".join(f"`{a}`" for a in get_args(annotation))
    if origin in (list, tuple, set):
        inner = ", ".join(_type_name(a) for a in get_args(annotation))
        return f"JSON list of {inner}"
    names = {"Path": "path", "SecretStr": "secret", "str": "text", "int": "integer", "float": "number",
             "bool": "true/false"}
    name = getattr(annotation, "__name__", str(annotation))
    return names.get(name, name)


def _default(field_name: str, info: Any, root: Path) -> str:
    from pydantic_core import PydanticUndefined

    value = info.default
    if value is PydanticUndefined and info.default_factory is not None:
        value = info.default_factory()
    if value is None or value is PydanticUndefined:
        return "unset"
    if isinstance(value, Path):
        try:
            return f"`{value.relative_to(root).as_posix()}/` of the project root"
        except ValueError:
            return f"`{value}`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, (list, dict)):
        return f"`{json.dumps(value)}`"
    return f"`{value}`"


def _bounds(info: Any) -> str:
    words = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}
    parts = []
    for item in info.metadata:
        for attr, sign in words.items():
            if getattr(item, attr, None) is not None:
                parts.append(f"{sign} {getattr(item, attr)}")
        if getattr(item, "pattern", None):
            parts.append(f"matches `{item.pattern}`")
    return ", ".join(parts)


def _groups(model: type) -> list[tuple[str, list[str]]]:
    """Fields in source order under the ``# --- title ---`` comments of the model's class body."""
    source = inspect.getsource(model)
    groups: list[tuple[str, list[str]]] = [("Settings", [])]
    for line in source.splitlines():
        heading = re.match(r"\s*# --- (.+?)\s*-*\s*$", line)
        if heading:
            groups.append((heading.group(1).rstrip(" -"), []))
            continue
        field = re.match(r"\s{4}(\w+)\s*:", line)
        if field and field.group(1) in model.model_fields:
            groups[-1][1].append(field.group(1))
    placed = {f for _, fields in groups for f in fields}
    missing = [f for f in model.model_fields if f not in placed]
    if missing:
        groups.append(("Other settings", missing))
    return [(title, fields) for title, fields in groups if fields]


def settings_markdown() -> str:
    """Every field of ``bot.config.Settings`` as ``POLICYBOT_*`` rows, grouped as in ``bot/config.py``."""
    from bot import config
    from bot.config import Settings

    root = Path(getattr(config, "_DEFAULT_ROOT", Path.cwd()))  # where path defaults are anchored
    out = []
    for title, fields in _groups(Settings):
        out += [f"### {title}", "", "| variable | type | default | meaning |", "|---|---|---|---|"]
        for name in fields:
            info = Settings.model_fields[name]
            kind = _type_name(info.annotation)
            bounds = _bounds(info)
            if bounds:
                kind += f" ({bounds})"
            out.append(f"| `{env_name(name)}` | {_cell(kind)} | {_cell(_default(name, info, root))} "
                       f"| {_cell(info.description or '')} |")
        out.append("")
    return "\n".join(out)


# --- HTTP API ---------------------------------------------------------------------------------------

def openapi_schema() -> dict:
    """The OpenAPI document of the app, exactly as ``/openapi.json`` serves it (default settings)."""
    from bot.api.app import create_app
    from bot.config import Settings

    return create_app(Settings.model_construct()).openapi()


def _schema_type(schema: dict) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{_anchor(name)})"
    if "anyOf" in schema or "oneOf" in schema:
        options = [_schema_type(s) for s in schema.get("anyOf", schema.get("oneOf", []))]
        return " or ".join(dict.fromkeys(options))
    if "enum" in schema:
        return " or ".join(f"`{json.dumps(v, ensure_ascii=False)}`" for v in schema["enum"])
    if "const" in schema:
        return f"`{json.dumps(schema['const'], ensure_ascii=False)}`"
    kind = schema.get("type")
    if kind == "array":
        return f"array of {_schema_type(schema.get('items', {}))}"
    if kind == "object" and "additionalProperties" in schema and isinstance(schema["additionalProperties"], dict):
        return f"object of {_schema_type(schema['additionalProperties'])}"
    if kind:
        return str(kind)
    return "any"


def _limits(schema: dict) -> str:
    words = {"minimum": "≥", "exclusiveMinimum": ">", "maximum": "≤", "exclusiveMaximum": "<",
             "minLength": "length ≥", "maxLength": "length ≤", "minItems": "items ≥", "maxItems": "items ≤"}
    parts = [f"{sign} {schema[key]}" for key, sign in words.items() if key in schema]
    if "pattern" in schema:
        parts.append(f"matches `{schema['pattern']}`")
    return ", ".join(parts)


def _operation(path: str, method: str, op: dict) -> list[str]:
    out = [f"#### `{method.upper()} {path}`", ""]
    if op.get("summary"):
        out += [f"**{op['summary']}**", ""]
    if op.get("description"):
        out += [op["description"].strip(), ""]
    params = op.get("parameters", [])
    if params:
        out += ["| parameter | in | required | type | description |", "|---|---|---|---|---|"]
        for p in params:
            schema = p.get("schema", {})
            kind = _schema_type(schema)
            if _limits(schema):
                kind += f" ({_limits(schema)})"
            out.append(f"| `{p['name']}` | {p.get('in', '')} | {'yes' if p.get('required') else 'no'} | {_cell(kind)} "
                       f"| {_cell(p.get('description', ''))} |")
        out.append("")
    body = op.get("requestBody")
    if body:
        for media, content in body.get("content", {}).items():
            out += [f"Request body (`{media}`{', required' if body.get('required') else ''}): "
                    f"{_schema_type(content.get('schema', {}))}", ""]
    responses = op.get("responses", {})
    if responses:
        out += ["| status | meaning | body |", "|---|---|---|"]
        for status, response in responses.items():
            bodies = [f"{_schema_type(c.get('schema', {}))} (`{media}`)" for media, c in response.get("content", {}).items()]
            out.append(f"| {status} | {_cell(response.get('description', ''))} | {_cell(', '.join(bodies))} |")
        out.append("")
    return out


def _schema(name: str, schema: dict) -> list[str]:
    out = [f"#### {name} {{#{_anchor(name)}}}", ""]
    if schema.get("description"):
        out += [schema["description"].strip(), ""]
    properties = schema.get("properties", {})
    required = set(schema.get("required", []))
    if properties:
        out += ["| field | type | required | default | description |", "|---|---|---|---|---|"]
        for field, prop in properties.items():
            kind = _schema_type(prop)
            if _limits(prop):
                kind += f" ({_limits(prop)})"
            default = f"`{json.dumps(prop['default'], ensure_ascii=False)}`" if "default" in prop else ""
            out.append(f"| `{field}` | {_cell(kind)} | {'yes' if field in required else 'no'} | {_cell(default)} "
                       f"| {_cell(prop.get('description', ''))} |")
        out.append("")
    elif schema.get("type"):
        out += [f"Type: {_schema_type(schema)}", ""]
    return out


def openapi_markdown(spec: dict | None = None) -> str:
    """Endpoints, then schemas, of the OpenAPI document."""
    spec = spec or openapi_schema()
    info = spec.get("info", {})
    out = [f"OpenAPI {spec.get('openapi', '')}, *{info.get('title', '')}* version {info.get('version', '')}.", ""]
    out += ["### Endpoints", ""]
    for path, operations in spec.get("paths", {}).items():
        for method, op in operations.items():
            out += _operation(path, method, op)
    out += ["### Schemas", ""]
    for name, schema in spec.get("components", {}).get("schemas", {}).items():
        out += _schema(name, schema)
    return "\n".join(out)


# --- CI floors -------------------------------------------------------------------------------------

def floors_markdown(path: Path | None = None) -> str:
    """``eval/floors.json`` as one table per gated set: overall first, then each tag."""
    floors = json.loads((path or ROOT / "eval" / "floors.json").read_text(encoding="utf-8"))
    out = []
    for name, sets in floors.items():
        if name.startswith("_"):
            continue
        out += [f"**`eval/{name}`**", "", "| rows | metric | floor |", "|---|---|---|"]
        groups = [("overall", sets.get("overall", {}))] + [(f"tag `{t}`", m) for t, m in sets.get("by_tag", {}).items()]
        for label, metrics in groups:
            for metric, value in metrics.items():
                bound = f"≤ {value}" if metric == "false_refusal_rate" else f"≥ {value}"
                out.append(f"| {label} | `{metric}` | {bound} |")
        out.append("")
    return "\n".join(out)


# --- the hook ---------------------------------------------------------------------------------------

GENERATORS = {SETTINGS_MARKER: settings_markdown, OPENAPI_MARKER: openapi_markdown, FLOORS_MARKER: floors_markdown}


def on_page_markdown(markdown: str, page, config, files) -> str:
    for marker, generate in GENERATORS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, generate())
    return markdown
