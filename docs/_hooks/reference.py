"""MkDocs hook: the CLI, settings and state references, generated from the code at build time.

A page asks for a reference with a marker line, replaced when the site is built:

- ``<!-- generated: cli -->``: every command of the ``roost`` command tree (typer/click),
  walked recursively, with its usage line, help text, arguments and options;
- ``<!-- generated: settings -->``: every field of :class:`roost.runtime.RoostSettings` with
  its environment variable (``roost.runtime.settings.ENV_VARS``), kind, default and
  description, then the variables read outside the settings object;
- ``<!-- generated: states -->``: every :class:`roost.runtime.WorkState`, whether it is
  finished, and what it means (its member docstrings).

A new verb, option, setting or state appears in the docs without anyone editing them; a
marker that names no generator fails the build.
"""

from __future__ import annotations

import ast
import html
import inspect
import re
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import typer

from roost.cli.commands import app
from roost.runtime.models import WorkState
from roost.runtime.plugins import DISABLE_AUTOLOAD_ENV
from roost.runtime.settings import ENV_VARS, RoostSettings, parse_duration

__all__ = ["cli_reference", "on_page_markdown", "settings_reference", "states_reference"]

MARKER = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.M)


def _inline(text: str) -> str:
    """Markdown for one line of help text: code spans kept, the rest escaped."""
    parts = re.split(r"(`[^`]*`)", text)
    out: list[str] = []
    for part in parts:
        if part.startswith("`") and part.endswith("`") and len(part) > 1:
            out.append(part)
        else:
            escaped = html.escape(part, quote=False)
            out.append(re.sub(r"([*\\|\[\]])", r"\\\1", escaped))
    return "".join(out)


def _paragraphs(text: str) -> str:
    """Help text (wrapped, paragraphs split by blank lines) as Markdown paragraphs."""
    blocks: list[str] = []
    for block in re.split(r"\n\s*\n", inspect.cleandoc(text)):
        if block.startswith("\b"):  # click's "do not rewrap" marker: keep the lines
            lines = block.removeprefix("\b").strip("\n").splitlines()
            blocks.append("```text\n" + "\n".join(lines) + "\n```")
        else:
            blocks.append(_inline(" ".join(line.strip() for line in block.splitlines())))
    return "\n\n".join(blocks)


def _code(text: str) -> str:
    """``text`` as a code span that survives a table cell."""
    return "`" + text.replace("|", "\\|") + "`"


def _params_table(command: Any, ctx: Any) -> str:
    rows: list[str] = []
    for param in command.params:
        if getattr(param, "hidden", False):
            continue
        record = param.get_help_record(ctx)
        if record is None:  # click's plain arguments carry no help
            record = (param.human_readable_name, "")
        names, help_text = record
        rows.append(f"| {_code(names)} | {_inline(' '.join(help_text.split()))} |")
    if not rows:
        return ""
    return "| argument or option | meaning |\n|---|---|\n" + "\n".join(rows)


def _is_group(command: Any) -> bool:
    return hasattr(command, "list_commands")


def _walk(command: Any, ctx: Any, path: list[str]) -> Iterator[tuple[list[str], Any, Any]]:
    """Yield ``(path, command, context)`` for ``command`` and every subcommand, in order."""
    yield path, command, ctx
    if _is_group(command):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is None or sub.hidden:
                continue
            sub_ctx = sub.context_class(sub, info_name=name, parent=ctx)
            yield from _walk(sub, sub_ctx, [*path, name])


def cli_reference() -> str:
    """Markdown for the whole ``roost`` command tree: a summary, then one section per command."""
    root = typer.main.get_command(app)
    root_ctx = root.context_class(root, info_name="roost")
    summary = ["| command | what it does |", "|---|---|"]
    sections: list[str] = []
    for path, command, ctx in _walk(root, root_ctx, ["roost"]):
        title = " ".join(path)
        anchor = "-".join(path)
        if len(path) > 1 and not _is_group(command):
            first = _inline(command.get_short_help_str(limit=200))
            summary.append(f"| [`{title}`](#{anchor}) | {first} |")
        usage = command.get_usage(ctx).removeprefix("Usage: ")
        parts = [f"### {title} {{#{anchor}}}", f"```text\n{usage}\n```"]
        if command.help:
            parts.append(_paragraphs(command.help))
        table = _params_table(command, ctx)
        if table:
            if len(path) == 1:
                parts.append("Global options go before the command:")
            parts.append(table)
        sections.append("\n\n".join(parts))
    return "\n\n".join(["\n".join(summary), *sections]) + "\n"


def _attribute_docs(cls: type) -> dict[str, str]:
    """The docstrings written under the fields of ``cls`` (``x: int = 1`` then a string)."""
    tree = ast.parse(inspect.cleandoc("\n" + inspect.getsource(cls)))
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs: dict[str, str] = {}
    for node, following in zip(body, body[1:], strict=False):
        targets = [node.target] if isinstance(node, ast.AnnAssign) else []
        targets += node.targets if isinstance(node, ast.Assign) else []
        if (
            len(targets) == 1
            and isinstance(targets[0], ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[targets[0].id] = inspect.cleandoc(following.value.value)
    return docs


def _rst_to_markdown(text: str) -> str:
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"`\1`", text)
    return text.replace("``", "`")


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _kind(annotation: Any, parser: Callable[..., Any] | None, metadata: list[Any]) -> str:
    """What a setting's variable holds: duration, boolean, integer, number, path or text."""
    if parse_duration in (parser, *(getattr(m, "func", None) for m in metadata)):
        return "duration"
    types = typing.get_args(annotation) or (annotation,)
    for python_type, kind in ((bool, "boolean"), (int, "integer"), (float, "number")):
        if python_type in types:
            return kind
    return "path" if Path in types else "text"


def _default(value: Any, kind: str) -> str:
    if value is None:
        return "unset"
    if kind == "boolean":
        return "`1`" if value else "`0`"
    if kind == "duration":
        return f"`{_duration(float(value))}`"
    return f"`{value}`"


def settings_reference() -> str:
    """Markdown table of every setting, from ``RoostSettings`` and ``ENV_VARS``."""
    docs = _attribute_docs(RoostSettings)
    rows = [
        "| variable | kind | default | meaning (field of `RoostSettings`) |",
        "|---|---|---|---|",
    ]
    for name, field in RoostSettings.model_fields.items():
        entry = ENV_VARS.get(name)
        if entry is None:
            raise ValueError(f"setting {name!r} has no environment variable in ENV_VARS")
        variable, parser = (entry, None) if isinstance(entry, str) else (entry[0], entry[1])
        kind = _kind(field.annotation, parser, field.metadata)
        meaning = field.description or docs.get(name, "")
        meaning = re.sub(rf"^``{re.escape(variable)}``\.\s*", "", meaning)
        meaning = " ".join(_rst_to_markdown(meaning).split())
        if not meaning:
            raise ValueError(f"setting {name!r} has no description")
        default = _default(field.get_default(call_default_factory=True), kind)
        rows.append(f"| `{variable}` | {kind} | {default} | {meaning} (`{name}`) |")
    other = (
        f"Read outside the settings object: `{DISABLE_AUTOLOAD_ENV}` (any non-empty value: load"
        " no installed plugins, only Roost's built-in ones); `ROOST_SECRETS_DIR` (a directory"
        " of files named after the variables above, read after the environment and `.env`)."
    )
    return "\n".join(rows) + "\n\n" + other + "\n"


def states_reference() -> str:
    """Markdown table of every work state, from ``WorkState`` and its member docstrings."""
    docs = _attribute_docs(WorkState)
    rows = ["| state | finished | meaning |", "|---|---|---|"]
    for state in WorkState:
        meaning = " ".join(_rst_to_markdown(docs.get(state.name, "")).split())
        if not meaning:
            raise ValueError(f"work state {state.value!r} has no description")
        finished = "yes" if state.is_terminal else "no"
        rows.append(f"| `{state.value}` | {finished} | {meaning} |")
    return "\n".join(rows) + "\n"


GENERATORS: dict[str, Callable[[], str]] = {
    "cli": cli_reference,
    "settings": settings_reference,
    "states": states_reference,
}


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """Replace each ``<!-- generated: NAME -->`` line with what its generator writes."""

    def generate(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in GENERATORS:
            raise ValueError(f"unknown generated reference {name!r}; known: {sorted(GENERATORS)}")
        return GENERATORS[name]()

    return MARKER.sub(generate, markdown)
