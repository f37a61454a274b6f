"""The docs stay true: every error message a user can meet is in docs/troubleshooting.md, every
command has a guide, and the links of the docs and of README's Documentation section resolve.

Messages are read from the code itself (the literal text of each ``raise`` of a Baselinr error,
of a config validator and of a CLI option check), so a new or reworded message fails here until
the troubleshooting page quotes it. A few are also triggered through the real CLI and must match
one of the page's quoted messages, placeholders (``<file>``) standing for the variable parts.
"""

from __future__ import annotations

import ast
import inspect
import re
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

import baselinr.errors
from baselinr.cli import main


ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
TROUBLESHOOTING = DOCS / "troubleshooting.md"

# A literal piece of a message shorter than this ("task ", ": ") says nothing on its own.
MIN_FRAGMENT = 12
_EDGES = " \t\n:;,.'\"()"

# The exception types whose messages reach the user: every BaselinrError (one `error:` line, or a
# task's error in the summary and `baselinr status`), click's option checks in the CLI, and the
# config validators' ValueErrors (pydantic turns them into `<file>: <field>: <message>`).
BASELINR_ERRORS = {name for name, cls in inspect.getmembers(baselinr.errors, inspect.isclass)
                   if issubclass(cls, baselinr.errors.BaselinrError)}
RAISED_ELSEWHERE = {"baselinr/cli.py": {"BadParameter"}, "baselinr/config/models.py": {"ValueError"},
                    "baselinr/integrations/dagster/__init__.py": {"ImportError"}}

# Messages that are not raised but printed, logged or stored (notes, warnings, task outcomes):
# the fixed part of each, which must be in the code and on the page.
OTHER_MESSAGES = [
    "nothing to apply: the plan has no tasks",
    "nothing to resume: no unfinished run",
    "nothing to resume: every task of run",
    "to re-run what did not succeed",
    "interrupted, but every task had already finished: nothing to resume",
    "aborted; finished tasks are recorded, running ones will show as interrupted",
    "a dead runner of this run left on the",
    "profiling.tables is empty: the plan has no tasks",
    "matched no table in warehouse",
    "matched no column of",
    "with different settings; the settings of",
    "(the earlier of equally specific entries)",
    "left out: cannot read its columns",
    "which serialises access: it runs one task at a time although",
    "failed; the log says why",
    "cannot store results:",
    "internal error:",
    "--fail-fast: stopped after",
    "interrupted (Ctrl-C)",
    "could not record run",
    "could not cancel the queries left on",
    "lease renewal for run",
    "was taken over by another runner; this runner stops at its next",
    "could not release the lease of run",
    "event hook",
    "failed to close",
    "hook could not deliver",
    "events not delivered",
    "gave up flushing after",
    "still serving metrics on port",
    "cannot be stored as JSON",
]


# -- reading messages out of the code ----------------------------------------------------------

def _constants(tree: ast.Module) -> dict[str, str]:
    """Module-level string constants (``REPLAN = "re-run baselinr plan"``), to inline them."""
    out: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            out.update({t.id: node.value.value for t in node.targets if isinstance(t, ast.Name)})
    return out


def _pieces(node: ast.AST, constants: dict[str, str]) -> list[list[str]]:
    """Each variant of a message (an ``a if c else b`` has two) as its literal pieces; the variable
    parts split them."""
    if isinstance(node, ast.IfExp):
        return _pieces(node.body, constants) + _pieces(node.orelse, constants)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):  # "..." + (" (hint)" if hint else "")
        return [left[:-1] + [left[-1] + right[0]] + right[1:]
                for left in _pieces(node.left, constants) for right in _pieces(node.right, constants)
                if left and right] or [[]]
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [[node.value]]
    if isinstance(node, ast.JoinedStr):
        pieces, current = [], ""
        for part in node.values:
            if isinstance(part, ast.Constant):
                current += part.value
            elif isinstance(part.value, ast.Name) and part.value.id in constants:
                current += constants[part.value.id]
            else:
                pieces.append(current)
                current = ""
        return [pieces + [current]]
    return [[]]  # a message built elsewhere (a driver's text): nothing fixed to quote


def raised_messages() -> list[tuple[str, list[str]]]:
    """(where, fixed fragments) of every message raised to the user, from the source."""
    found = []
    for path in sorted([*(ROOT / "baselinr").rglob("*.py"), *(ROOT / "planner").rglob("*.py")]):
        rel = path.relative_to(ROOT).as_posix()
        wanted = BASELINR_ERRORS | RAISED_ELSEWHERE.get(rel, set())
        tree = ast.parse(path.read_text(encoding="utf-8"))
        constants = _constants(tree)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args):
                continue
            func = node.exc.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name not in wanted:
                continue
            for pieces in _pieces(node.exc.args[0], constants):
                fragments = [p.strip(_EDGES) for p in pieces]
                found.append((f"{rel}:{node.lineno}", [f for f in fragments if len(f) >= MIN_FRAGMENT]))
    return found


def source_text() -> str:
    """Every string literal of the code, f-strings and implicit concatenations joined, one a line."""
    texts = []
    for path in [*(ROOT / "baselinr").rglob("*.py"), *(ROOT / "planner").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.JoinedStr):
                texts.append("".join(p.value if isinstance(p, ast.Constant) else "\0" for p in node.values))
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                texts.append(node.value)
    return "\n".join(texts)


# -- reading the troubleshooting page ------------------------------------------------------------

_QUOTED = re.compile(r"^\s*- (`+) ?(.+?) ?\1(?!`)", re.MULTILINE)  # a bullet that opens with a code span
_PLACEHOLDER = re.compile(r"<[a-z][a-z0-9_ .-]*>")


def quoted_messages() -> list[str]:
    """The messages the page quotes: each bullet's leading code span."""
    return [m.group(2) for m in _QUOTED.finditer(TROUBLESHOOTING.read_text(encoding="utf-8"))]


def as_pattern(quoted: str) -> re.Pattern[str]:
    """A quoted message as a regex: each ``<placeholder>`` matches any text."""
    parts = _PLACEHOLDER.split(quoted)
    return re.compile(".*".join(re.escape(p) for p in parts), re.DOTALL)


def documented(message: str) -> str | None:
    """The page's quoted message that ``message`` (a real one) is an instance of. Quotes with
    almost nothing fixed (``<task>: <status>: <error>``) would match anything and do not count."""
    specific = [q for q in quoted_messages() if len(re.sub(r"\W", "", _PLACEHOLDER.sub("", q))) >= 10]
    return next((q for q in specific if as_pattern(q).fullmatch(message)), None)


# -- the tests -----------------------------------------------------------------------------------

def test_the_code_raises_messages_to_check() -> None:
    found = raised_messages()
    assert len(found) > 50 and sum(1 for _, fragments in found if fragments) > 50
    assert len(quoted_messages()) > 50


def test_every_raised_message_is_quoted_on_the_troubleshooting_page() -> None:
    page = TROUBLESHOOTING.read_text(encoding="utf-8")
    missing = [f"{where}: {fragment!r}" for where, fragments in raised_messages()
               for fragment in fragments if fragment not in page]
    assert not missing, ("docs/troubleshooting.md does not quote these messages (add or update an entry, "
                         "with <placeholders> for the variable parts):\n" + "\n".join(missing))


@pytest.mark.parametrize("fragment", OTHER_MESSAGES)
def test_printed_and_logged_messages_are_in_the_code_and_on_the_page(fragment: str) -> None:
    assert fragment in source_text(), f"{fragment!r} is no longer in the code: update this list and the page"
    assert fragment in TROUBLESHOOTING.read_text(encoding="utf-8"), f"docs/troubleshooting.md lacks {fragment!r}"


def test_quoted_messages_are_well_formed() -> None:
    for quoted in quoted_messages():
        assert as_pattern(quoted).fullmatch(_PLACEHOLDER.sub("x", quoted)), quoted


# -- real messages through the real CLI ------------------------------------------------------------

@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A SQLite warehouse with tables ``flights`` and ``planes``, a config, and its plan."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DOCS_TEST_UNSET", raising=False)
    with sqlite3.connect(tmp_path / "wh.db") as raw:
        raw.execute("CREATE TABLE flights (id INTEGER, carrier TEXT)")
        raw.execute("CREATE TABLE planes (tailnum TEXT)")
    (tmp_path / "config.yml").write_text(
        "source: {type: sqlite, filepath: wh.db}\n"
        "storage: {connection: {type: sqlite, filepath: store.db}}\n"
        "profiling: {tables: [{pattern: '*'}]}\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["plan", "-c", "config.yml", "-o", "plan.json"], prog_name="baselinr")
    assert result.exit_code == 0, result.output
    return tmp_path


def _write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return path.name


def _edited_plan(project: Path) -> str:
    text = (project / "plan.json").read_text(encoding="utf-8")
    return _write(project / "edited.json", text.replace('"environment": "development"', '"environment": "prod"'))


BAD_INPUT = {
    "config file not found": lambda p: ["plan", "-c", "nope.yml"],
    "invalid YAML": lambda p: ["plan", "-c", _write(p / "bad.yml", "source: {type: sqlite, filepath: [wh.db}\n")],
    "unknown key": lambda p: ["plan", "-c", _write(p / "key.yml", "source: {type: sqlite, filepath: wh.db}\n"
                                                                  "profling: {}\n")],
    "unset variable": lambda p: ["plan", "-c", _write(p / "env.yml", "source: {type: sqlite, "
                                                                     "filepath: '${DOCS_TEST_UNSET}'}\n")],
    "table not found": lambda p: ["plan", "-c", _write(p / "table.yml", "source: {type: sqlite, filepath: wh.db}\n"
                                                                        "profiling: {tables: [{table: flihgts}]}\n")],
    "warehouse file gone": lambda p: ["profile", "-c", _write(p / "gone.yml", "source: {type: sqlite, filepath: "
                                                                              "gone.db}\nprofiling: {tables: "
                                                                              "[{table: a}]}\n")],
    "plan file not found": lambda p: ["apply", "nope.json", "-c", "config.yml"],
    "not JSON": lambda p: ["apply", _write(p / "notjson.json", "tasks: []\n"), "-c", "config.yml"],
    "edited plan": lambda p: ["diff", "plan.json", _edited_plan(p)],
    "unknown cap warehouse": lambda p: ["apply", "plan.json", "-c", "config.yml", "--cap", "dwh=2"],
    "unknown run id": lambda p: ["status", "no-such-run", "-c", "config.yml"],
    "usage": lambda p: ["diff", "plan.json"],
}


@pytest.mark.parametrize("case", BAD_INPUT)
def test_real_bad_input_messages_are_documented(project: Path, case: str) -> None:
    result = CliRunner().invoke(main, BAD_INPUT[case](project), prog_name="baselinr")
    assert (result.exit_code, result.stdout) == (2, ""), result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    message = result.stderr.removeprefix("error: ").rstrip("\n")
    assert documented(message), f"docs/troubleshooting.md quotes no message that {message!r} is an instance of"


def test_real_task_failure_and_summary_messages_are_documented(project: Path) -> None:
    with sqlite3.connect(project / "wh.db") as raw:
        raw.execute("ALTER TABLE flights ADD COLUMN late INTEGER")  # after the plan: stale
    result = CliRunner().invoke(main, ["apply", "plan.json", "-c", "config.yml"], prog_name="baselinr")
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    failed = next(line for line in lines if line.startswith("failed: "))
    assert failed.startswith("failed: sqlite.main.flights: stale plan: ")
    assert documented(failed.split(": ", 2)[2]), failed
    assert documented(lines[-1]), lines[-1]  # run `baselinr resume <run>` to re-run what did not succeed
    resumed = CliRunner().invoke(main, ["resume", "-c", "config.yml"], prog_name="baselinr")
    assert resumed.exit_code == 1 and "stale: columns added or changed" in resumed.stderr, resumed.output


# -- a guide per command, and links that resolve -------------------------------------------------

def cli_commands() -> list[str]:
    """The commands `baselinr --help` lists."""
    help_text = CliRunner().invoke(main, ["--help"], prog_name="baselinr").output
    section = help_text.split("Commands:", 1)[1]
    return [line.split()[0] for line in section.splitlines() if line.startswith("  ") and line.split()]


def test_every_command_has_a_guide() -> None:
    commands = cli_commands()
    assert {"plan", "diff", "apply", "resume", "status", "profile"} <= set(commands)
    pages = {p.name: p.read_text(encoding="utf-8") for p in DOCS.glob("*.md")}
    for command in commands:
        guides = [name for name, text in pages.items()
                  if re.search(rf"`(baselinr )?{command}`", text.splitlines()[0]) and f"baselinr {command}" in text]
        assert guides, f"no docs/*.md page has `{command}` in its title and shows `baselinr {command}`"


_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes."""
    headings = re.findall(r"^#+ (.+)$", page.read_text(encoding="utf-8"), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", sorted(p.name for p in DOCS.glob("*.md")))
def test_relative_links_of_the_docs_resolve(page: str) -> None:
    source = DOCS / page
    for target in _LINK.findall(source.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (source.parent / path).resolve() if path else source
        assert linked.exists(), f"{page}: link to {target}: no such file"
        if anchor and linked.suffix == ".md":
            assert anchor in _anchors(linked), f"{page}: link to {target}: no such heading"


def readme_documentation_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^## Documentation\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, "README.md has no '## Documentation' section"
    return match.group(1)


def test_readme_documentation_section_names_every_page_and_only_existing_files() -> None:
    section = readme_documentation_section()
    named = set(re.findall(r"(?:docs|specs|examples)/[\w./-]+\.\w+", section))
    assert named, section
    assert not [n for n in named if not (ROOT / n).exists()], named
    unlisted = [f"docs/{p.name}" for p in DOCS.glob("*.md") if f"docs/{p.name}" not in named]
    assert not unlisted, f"README.md's Documentation section does not say what is in {unlisted}"


def test_plan_guide_quotes_the_code() -> None:
    """The diff and summary wording docs/plan.md shows is the code's own."""
    guide, code = (DOCS / "plan.md").read_text(encoding="utf-8"), source_text()
    for text in ("row estimates only (not a change)", "changed since the plan", "left out: cannot read its columns"):
        assert text in guide and text in code, text
