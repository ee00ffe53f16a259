"""Shared options are defined once (flowlens/cli/common.py) and identical on every command."""

from __future__ import annotations

import inspect
from collections import defaultdict
from typing import Any

import pytest
import typer

from flowlens.cli import app
from flowlens.cli.common import (
    DEPRECATED_SHORT_FLAGS,
    SHARED_OPTIONS,
    ExplanationFormat,
    SimulationFormat,
)
from flowlens.policy.render import EXPLANATION_FORMATS, SIMULATION_FORMATS
from tests.helpers import run_cli

COMMANDS = typer.main.get_command(app).commands  # type: ignore[attr-defined]


def _options(command: Any) -> list[Any]:
    return [p for p in command.params if getattr(p, "opts", None) and p.opts[0].startswith("-")]


def _long(option: Any) -> str | None:
    return next((o for o in option.opts if o.startswith("--")), None)


def _shorts(option: Any) -> tuple[str, ...]:
    return tuple(o for o in option.opts if not o.startswith("--"))


def _kind(option: Any) -> Any:
    """The option's value type, however this Typer version records it."""
    descriptor = getattr(option, "type_descriptor", None)
    if descriptor is not None:
        return descriptor.annotation
    type_ = getattr(option, "type", None)
    return type_.to_info_dict() if hasattr(type_, "to_info_dict") else repr(type_)


def _callback(option: Any) -> Any:
    callback = option.callback
    return getattr(callback, "__wrapped__", callback)


def signature(option: Any) -> dict[str, Any]:
    """Everything a user meets of an option: names, help, default, type, checks."""
    return {
        "opts": tuple(option.opts),
        "secondary_opts": tuple(option.secondary_opts),
        "help": option.help,
        "default": option.default,
        "type": _kind(option),
        "multiple": option.multiple,
        "is_flag": getattr(option, "is_flag", None),
        "required": option.required,
        "hidden": option.hidden,
        "min": getattr(option, "min", None),
        "max": getattr(option, "max", None),
        "show_default": option.show_default,
        "callback": _callback(option),
    }


def _built(annotation: Any, default: Any) -> Any:
    """The option Typer makes of one shared definition, on a command of its own."""
    one = typer.Typer()

    def command(**_: Any) -> None:
        pass

    parameter = inspect.Parameter(
        "value", inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )
    command.__signature__ = inspect.Signature([parameter])  # type: ignore[attr-defined]
    one.command()(command)
    return typer.main.get_command(one).params[0]


DEFINED = {name: signature(_built(*spec)) for name, spec in SHARED_OPTIONS.items()}
SHARED_FLAGS = {d["opts"][0] for d in DEFINED.values()}


def _uses() -> dict[str, list[tuple[str, Any]]]:
    found: dict[str, list[tuple[str, Any]]] = defaultdict(list)
    for name, command in COMMANDS.items():
        for option in _options(command):
            flag = _long(option)
            if flag is not None:
                found[flag].append((name, option))
    return found


def test_every_shared_option_is_the_one_defined_in_common() -> None:
    problems = []
    for flag, uses in sorted(_uses().items()):
        if flag not in SHARED_FLAGS:
            continue
        for command, option in uses:
            got = signature(option)
            if got not in DEFINED.values():
                closest = [n for n, d in DEFINED.items() if d["opts"][0] == flag]
                diff = {k: (got[k], DEFINED[closest[0]][k]) for k in got if got[k] != DEFINED[closest[0]][k]}
                problems.append(f"{command} {flag}: differs from common's {closest}: {diff}")
    assert not problems, "\n".join(problems)


def test_an_option_on_several_commands_is_a_shared_one() -> None:
    repeated = {flag: [c for c, _ in uses] for flag, uses in _uses().items() if len(uses) > 1}
    strays = {flag: commands for flag, commands in repeated.items() if flag not in SHARED_FLAGS}
    assert not strays, f"define these once in flowlens/cli/common.py: {strays}"


def test_a_short_flag_means_the_same_option_on_every_command() -> None:
    meaning: dict[str, set[str]] = defaultdict(set)
    for name, command in COMMANDS.items():
        for option in _options(command):
            for short in _shorts(option):
                if (name, short) in DEPRECATED_SHORT_FLAGS:
                    assert option.hidden, f"{name} {short} is deprecated: keep it out of --help"
                    continue
                meaning[short].add(_long(option) or short)
    clashes = {short: longs for short, longs in meaning.items() if len(longs) > 1}
    assert not clashes, clashes


def test_each_variant_of_a_flag_has_its_names_and_short_flag() -> None:
    by_flag: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    for definition in DEFINED.values():
        by_flag[definition["opts"][0]].add(definition["opts"])
    assert all(len(names) == 1 for names in by_flag.values()), by_flag


def test_the_commands_that_read_a_window_take_since_until_and_namespace_alike() -> None:
    for name in ("query", "simulate", "suggest", "report"):
        flags = {_long(o) for o in _options(COMMANDS[name])}
        assert {"--store", "--since", "--until"} <= flags, name
    for name in ("query", "simulate", "suggest"):
        namespace = next(o for o in _options(COMMANDS[name]) if _long(o) == "--namespace")
        assert tuple(namespace.opts) == ("--namespace", "-n"), name
    for name in ("query", "simulate", "explain"):
        out = next(o for o in _options(COMMANDS[name]) if _long(o) == "--out")
        assert tuple(out.opts) == ("--out", "-o"), name


def test_the_cli_format_names_are_the_libraries() -> None:
    assert tuple(SimulationFormat) == SIMULATION_FORMATS
    assert tuple(ExplanationFormat) == EXPLANATION_FORMATS


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["query", "denied", "--since", "yesterday-ish"], "--since: cannot read 'yesterday-ish'"),
        (["simulate", "--policies", "p.yaml", "--until", "soon"], "--until: cannot read 'soon'"),
        (["suggest", "-n", "Shop"], "--namespace 'Shop' is not a Kubernetes namespace name"),
        (["simulate", "--policies", "p.yaml", "-n", "a/b"], "--namespace 'a/b' is not a Kubernetes"),
        (["query", "denied", "--namespace", "x" * 64], "is not a Kubernetes namespace name"),
        (["report", "--since", "tomorrow"], "--since: cannot read 'tomorrow'"),
    ],
)
def test_a_bad_shared_option_stops_every_command_the_same_way(args: list[str], message: str) -> None:
    result = run_cli(*args)
    assert result.code == 2, result
    assert result.stderr == f"flowlens: error: {result.stderr.removeprefix('flowlens: error: ')}"
    assert message in result.stderr and result.stdout == ""
