"""What every verb of the command tree has: its group class and the common options.

:class:`RoostGroup` turns a usage error (a missing option, a value out of range, an unknown
command) into one ``error:`` line and exit code 2, and shows no ``<bool>`` metavars.
:func:`verb` gives a command ``--log-level``, ``--log-format`` and ``-v/--verbose`` (the same
options work before the command, for every command at once).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

import typer
from typer.core import TyperGroup

from roost.cli import logs
from roost.cli.context import EXIT_BAD_INPUT, GlobalOptions, fail, options
from roost.runtime.errors import SettingsError
from roost.runtime.log_choices import LOG_FORMATS, LOG_LEVELS

__all__ = [
    "LogFormatOption",
    "LogLevelOption",
    "RoostGroup",
    "VerboseOption",
    "remember",
    "setup_logging",
    "verb",
]

F = TypeVar("F", bound=Callable[..., Any])

LogLevelOption = Annotated[
    str | None,
    typer.Option(
        "--log-level",
        metavar="LEVEL",
        help=f"Log records at this level and above ({', '.join(LOG_LEVELS)}; "
        "overrides ROOST_LOG_LEVEL).",
        show_default=False,
        rich_help_panel="Common options",
    ),
]
LogFormatOption = Annotated[
    str | None,
    typer.Option(
        "--log-format",
        metavar="FORMAT",
        help="Log as text lines or JSON Lines (text, json; overrides ROOST_LOG_FORMAT).",
        show_default=False,
        rich_help_panel="Common options",
    ),
]
VerboseOption = Annotated[
    bool,
    typer.Option(
        "--verbose",
        "-v",
        help="Say which server and namespace were read; `roost worker` prints every step.",
        rich_help_panel="Common options",
    ),
]


def _choose(flag: str, value: str | None, choices: Sequence[str]) -> str | None:
    if value is None:
        return None
    lowered = value.strip().lower()
    if lowered not in choices:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(choices)}", param_hint=flag)
    return lowered


def setup_logging(
    ctx: typer.Context,
    default_level: int = logging.ERROR,
    *,
    traceback_lines: int | None = logs.DEFAULT_TRACEBACK_LINES,
    record_filter: logging.Filter | None = None,
) -> None:
    """Configure logging for this command: flags, then ``ROOST_LOG_*``, then its default.

    Raises:
        typer.Exit: ``ROOST_LOG_LEVEL`` or ``ROOST_LOG_FORMAT`` is malformed (exit 2, one
            line).
    """
    from roost.runtime.settings import read_env  # pydantic-settings: not for --help

    opts = options(ctx)
    try:
        level_name = opts.log_level or read_env("log_level")
        fmt = opts.log_format or read_env("log_format") or "text"
    except SettingsError as exc:
        fail(str(exc), EXIT_BAD_INPUT)
    level = logging.getLevelNamesMapping()[level_name.upper()] if level_name else default_level
    logs.configure(level, fmt, traceback_lines=traceback_lines, record_filter=record_filter)


def remember(
    ctx: typer.Context, log_level: str | None, log_format: str | None, verbose: bool
) -> GlobalOptions:
    """Merge the common options given to a command into the global ones and return them."""
    root = ctx.find_root()
    opts = options(ctx)
    update: dict[str, Any] = {}
    if log_level is not None:
        update["log_level"] = _choose("--log-level", log_level, LOG_LEVELS)
    if log_format is not None:
        update["log_format"] = _choose("--log-format", log_format, LOG_FORMATS)
    if verbose:
        update["verbose"] = True
    if update:
        opts = dataclasses.replace(opts, **update)
        root.obj = opts
    return opts


def verb(default_level: int = logging.ERROR) -> Callable[[F], F]:
    """Give a command the common options, and configure logging before it runs.

    Short-lived commands show only errors by default: the runtime warns, for instance, when
    a Redis keeps nothing on disk; ``roost worker`` shows that once at start (it defaults to
    info), while ``roost status`` would repeat it on every call.

    Args:
        default_level: the level shown when neither a flag nor ``ROOST_LOG_LEVEL`` says.
    """

    def decorate(fn: F) -> F:
        signature = inspect.signature(fn, eval_str=True)
        added = [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=a)
            for name, default, a in (
                ("log_level", None, LogLevelOption),
                ("log_format", None, LogFormatOption),
                ("verbose", False, VerboseOption),
            )
        ]
        parameters = [*signature.parameters.values(), *added]
        if "ctx" not in signature.parameters:
            raise TypeError(f"{fn.__name__}: a verb takes the typer context as `ctx`")

        @functools.wraps(fn)
        def wrapper(
            *args: Any,
            log_level: str | None = None,
            log_format: str | None = None,
            verbose: bool = False,
            **kwargs: Any,
        ) -> Any:
            ctx: typer.Context = kwargs["ctx"]
            remember(ctx, log_level, log_format, verbose)
            setup_logging(ctx, default_level)
            return fn(*args, **kwargs)

        wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
        return wrapper  # type: ignore[return-value]

    return decorate


class RoostGroup(TyperGroup):
    """A command group whose usage errors are one ``error:`` line (exit 2), never a box."""

    def get_params(self, ctx: Any) -> list[Any]:
        """The group's parameters, with tidy metavars (see :func:`_tidy_metavars`)."""
        params = super().get_params(ctx)
        _tidy_metavars(params)
        return params

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        """A subcommand, with tidy metavars (its help option included)."""
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _tidy_metavars(command.get_params(ctx))
        return command

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the command; usage errors print ``error: <message>`` and exit 2."""
        if not standalone_mode:
            return super().main(
                args, prog_name, complete_var, standalone_mode, windows_expand_args, **extra
            )
        try:
            code = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except typer.TyperException as exc:  # typer's click: usage and parameter errors
            ctx = getattr(exc, "ctx", None)
            if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
                typer.echo(ctx.get_help())
            else:
                typer.echo(f"error: {_usage_message(exc, ctx)}", err=True)
            sys.exit(exc.exit_code)
        except typer.Abort:
            typer.echo("error: aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def _usage_message(exc: typer.TyperException, ctx: Any) -> str:
    message = " ".join(exc.format_message().split())
    if ctx is not None:
        message += f" (see `{ctx.command_path} --help`)"
    return message


def _tidy_metavars(params: Sequence[Any]) -> None:
    """Flags show no metavar, values their name (``--limit LIMIT``), not ``<int>``."""
    for param in params:
        if param.metavar is not None:
            continue
        if param.param_type_name == "option" and (param.is_flag or param.count):
            param.metavar = ""
        elif not getattr(getattr(param, "type_descriptor", None), "is_choice", False):
            param.metavar = (param.name or "value").upper()
