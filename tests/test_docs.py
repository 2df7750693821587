"""Every code block of the documentation site runs, or is checked where running it cannot be.

The README counts as a page: its quick starts are checked and run like the site's.

- Python blocks run as pasted, each in a fresh interpreter, in a directory holding the page's
  titled blocks (```` ```python title="app.py" ````) as files, so that a page's files import each
  other; a titled block that the page's own commands run (`python publish.py`) runs there, against
  the page's servers (`tests/live/test_doc_commands.py`). All of them pass mypy strict.
- Shell blocks: `tests/support/shell.py` sorts them into install, repository, server and client
  commands. Server and client blocks run in `tests/live/`; install and repository blocks are
  checked here: what they name must exist in pyproject.toml and the Makefile.
- JSON blocks parse.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from .support.markdown import README, ROOT, CodeBlock, blocks, pages
from .support.shell import commands, kind, shell_blocks

PAGES = [README, *pages()]
PYTHON = [block for page in PAGES for block in blocks(page) if block.language == "python"]
SHELL = [block for path in PAGES for block in shell_blocks(path)]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
# The groups `make test` installs, so the blocks that use their packages run against them.
TESTED_GROUPS = ("test", "docs", "phoenix")


def run_by_commands(block: CodeBlock) -> bool:
    """Whether a client command of the block's page runs it as a script (`python NAME`)."""
    if block.title is None:
        return False
    scripts = re.compile(rf"(?:^|\s)python3?\s+{re.escape(block.title)}(?:\s|$)", re.MULTILINE)
    return any(
        kind(other) == "client" and scripts.search(other.source)
        for other in shell_blocks(block.path)
    )


STANDALONE = [block for block in PYTHON if not run_by_commands(block)]


def write_page_files(page: Path, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for block in blocks(page):
        if block.title and block.language != "text":
            target = directory / block.title
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.source, encoding="utf-8")
    return directory


@pytest.fixture(scope="module")
def python_runs(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[CodeBlock, subprocess.CompletedProcess[str]]]:
    """Every standalone block, run as pasted; several at once, since each is a fresh interpreter."""
    root = tmp_path_factory.mktemp("pages")
    directories = {
        page: write_page_files(page, root / str(number)) for number, page in enumerate(PAGES)
    }

    def run(block: CodeBlock) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", block.source],
            cwd=directories[block.path],
            env={**os.environ, "HOME": str(directories[block.path])},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        yield dict(zip(STANDALONE, pool.map(run, STANDALONE), strict=True))


@pytest.mark.parametrize("block", STANDALONE, ids=str)
def test_python_block_runs_as_pasted(
    block: CodeBlock, python_runs: dict[CodeBlock, subprocess.CompletedProcess[str]]
) -> None:
    ran = python_runs[block]
    assert ran.returncode == 0, ran.stderr


def mypy_groups() -> list[dict[str, str]]:
    """The blocks as files, in as few directories as their names allow: `app.py` is on several
    pages, and one mypy run must see each module name once."""
    groups: list[dict[str, str]] = []
    for page in PAGES:
        files: dict[str, str] = {}
        for number, block in enumerate(blocks(page)):
            if block.language == "python":
                untitled = f"{page.stem.replace('-', '_')}_{page.parent.name}_block_{number}.py"
                files[block.title or untitled] = block.source
        for group in groups:
            if not files.keys() & group.keys():
                group.update(files)
                break
        else:
            groups.append(files)
    return groups


def test_python_blocks_pass_mypy_strict(tmp_path: Path) -> None:
    groups = mypy_groups()
    assert sum(len(group) for group in groups) == len(PYTHON)
    for number, group in enumerate(groups):
        directory = tmp_path / f"group_{number}"
        directory.mkdir()
        for name, source in group.items():
            (directory / name).parent.mkdir(parents=True, exist_ok=True)
            (directory / name).write_text(source, encoding="utf-8")
        # Module names from the group's directory: `mysite/settings.py` is `mysite.settings`.
        # `make lint`'s cache: the standard library and the installed packages, already checked
        # there, are not checked again (about 50 seconds of the suite's time).
        checked = subprocess.run(
            [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(ROOT / ".mypy_cache")]
            + ["--explicit-package-bases", str(directory)],
            cwd=ROOT,  # for pyproject.toml's settings for third-party packages
            env={**os.environ, "MYPYPATH": str(directory)},
            capture_output=True,
            text=True,
            check=False,
        )
        assert checked.returncode == 0, checked.stdout


def requirements_under_test() -> dict[str, set[str]]:
    """Each package the tested groups install, with the extras they ask of it."""
    found: dict[str, set[str]] = {}
    for group in TESTED_GROUPS:
        for entry in PYPROJECT["dependency-groups"][group]:
            if isinstance(entry, str):
                requirement = Requirement(entry)
                found.setdefault(canonicalize_name(requirement.name), set()).update(
                    requirement.extras
                )
    return found


INSTALLS = [block for block in SHELL if kind(block) == "install"]
REPOSITORY = [block for block in SHELL if kind(block) == "repository"]


@pytest.mark.parametrize("block", INSTALLS, ids=str)
def test_install_commands_name_what_pyproject_provides(block: CodeBlock) -> None:
    extras = set(PYPROJECT["project"]["optional-dependencies"])
    tested = requirements_under_test()
    for words in commands(block):
        for word in words[2:]:
            if word.startswith("-"):
                continue
            requirement = Requirement(word)
            name = canonicalize_name(requirement.name)
            if name == "ops-session":
                assert requirement.extras <= extras, f"{block}: no extra {requirement.extras}"
            else:
                assert name in tested, f"{block}: `make test` does not install {name}"
                assert requirement.extras <= tested[name], f"{block}: {word} is not tested"


def makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([A-Za-z][\w-]*):", text, re.MULTILINE))


@pytest.mark.parametrize("block", REPOSITORY, ids=str)
def test_repository_commands_exist(block: CodeBlock) -> None:
    for words in commands(block):
        if words[0] == "make":
            assert set(words[1:]) <= makefile_targets(), f"{block}: no target {words[1:]}"
            continue
        assert (ROOT / words[0]).exists(), f"{block}: {words[0]} is not in the virtualenv"
        if words[1:3] and words[1] == "-m":
            main = ROOT / words[2].replace(".", "/") / "__main__.py"
            assert main.exists(), f"{block}: no module {words[2]} to run"
            for option in (word for word in words[3:] if word.startswith("--")):
                assert f'"{option}"' in main.read_text(encoding="utf-8"), f"{block}: {option}"


def test_every_shell_block_is_one_command_kind_or_a_script() -> None:
    for block in SHELL:
        if kind(block) == "server":
            [words] = commands(block)
            assert not {"|", "&&", ";", "&"} & set(words), f"{block}: one command per server"


def test_json_blocks_parse() -> None:
    documents = [block for page in PAGES for block in blocks(page) if block.language == "json"]
    assert documents
    for block in documents:
        json.loads(block.source)


def test_titles_name_one_file_each_per_page() -> None:
    for page in PAGES:
        titles = [block.title for block in blocks(page) if block.title and block.language != "text"]
        assert len(titles) == len(set(titles)), f"{page.name} names a file twice"


def test_the_benchmark_report_is_a_page_of_the_site() -> None:
    """`make bench` writes docs/benchmarks.md (benchmarks/__main__.py), which the nav lists."""
    main = (ROOT / "benchmarks" / "__main__.py").read_text(encoding="utf-8")
    assert 'default=ROOT / "docs"' in main and '"benchmarks.md"' in main
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert re.search(r"^\s+- Performance: benchmarks\.md$", nav, re.MULTILINE)
    assert shlex.split("make bench")[1] in makefile_targets()
