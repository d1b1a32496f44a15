"""Every subcommand's --help renders (argparse formats help text with %: a bare % in a help string is a crash)."""
from __future__ import annotations

import argparse

import pytest

from buckbi.cli import build_parser

PARSER = build_parser()
SUBCOMMANDS = PARSER._subparsers._group_actions[0].choices


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_every_subcommand_help_renders(name, capsys):
    with pytest.raises(SystemExit) as done:
        PARSER.parse_args([name, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage:") and "--help" in out
    # every option's help text is there, with its defaults filled in
    for action in SUBCOMMANDS[name]._actions:
        if action.help and action.help is not argparse.SUPPRESS and "%(default)" in action.help:
            assert "%(default)" not in out
