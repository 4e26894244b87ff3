"""The README's quick start is what CI runs; keep them from drifting apart."""

from __future__ import annotations

import re

from tests.support.processes import REPO

README = (REPO / "README.md").read_text()


def _sh_blocks(text: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S)]


def _quick_start() -> str:
    return README.split("## Quick start", 1)[1].split("\n## ", 1)[0]


def test_quick_start_opens_with_the_run_and_the_test_command() -> None:
    run, test = _sh_blocks(_quick_start())[:2]
    assert "\n" not in run
    assert "\n" not in test
    assert run.endswith("palisade serve")
    assert test.endswith("pytest")


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    test_command = _sh_blocks(_quick_start())[1]
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert test_command in ci
