"""The README's quick start is what CI runs; keep them from drifting apart."""

from __future__ import annotations

import re

from tests.support.processes import REPO

README = (REPO / "README.md").read_text()


def _sh_blocks(text: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S)]


def test_quick_start_is_exactly_two_commands_run_and_test() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("\nThen ", 1)[0]
    blocks = _sh_blocks(quick_start)
    assert len(blocks) == 2
    run, test = blocks
    assert run.endswith("palisade serve")
    assert test.endswith("pytest")


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    quick_start = README.split("## Quick start", 1)[1]
    test_command = _sh_blocks(quick_start)[1]
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert test_command in ci
