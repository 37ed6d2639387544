"""Help text: every option says what it is; the top level shows examples and points to the README."""

from __future__ import annotations

import argparse

import pytest

from evoplastic.cli import build_parser


def _parsers(p: argparse.ArgumentParser, path: str = "evoplastic"):
    yield path, p
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{path} {name}")


def test_every_option_has_help() -> None:
    missing = [f"{path} {'/'.join(a.option_strings) or a.dest}" for path, p in _parsers(build_parser())
               for a in p._actions if not a.help and not isinstance(a, argparse._SubParsersAction)]
    assert not missing, missing


def test_top_level_help_has_examples_and_readme(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    out = capsys.readouterr().out
    assert out.count("\n  evoplastic ") >= 3 and "README" in out
    assert "reference fetch" in out and "docs/method.md" in out
