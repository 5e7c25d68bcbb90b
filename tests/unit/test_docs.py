"""The documentation cannot drift: every setting, route and command is in the site, every
module and file it names exists, and every link of the README resolves."""

from __future__ import annotations

import importlib
import re
from functools import cache
from pathlib import Path

import pytest
from markdown.extensions.toc import slugify
from pydantic import Field

from smscode.entrypoints import http
from smscode.settings import Settings
from smscode_dev import docs

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "docs").rglob("*.md"))
PROSE = [ROOT / "README.md", ROOT / "bench" / "README.md", *PAGES]
# Where the generated tables go: a page that lost its marker would lose its table.
MARKED = {
    "reference/settings.md": "<!-- settings -->",
    "reference/http-api.md": "<!-- http-api -->",
    "reference/cli.md": "<!-- cli -->",
}


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


@cache
def _shown(path: Path) -> str:
    """A page as the site shows it: its generated tables in place."""
    return docs.render(_text(path))


def _page(name: str) -> str:
    return _shown(ROOT / "docs" / name)


@pytest.mark.parametrize(("name", "marker"), MARKED.items())
def test_each_reference_page_keeps_its_generated_table(name: str, marker: str) -> None:
    assert marker in _text(ROOT / "docs" / name)


def test_the_settings_page_lists_every_setting_with_its_description() -> None:
    page = _page("reference/settings.md")
    for name, field in Settings.model_fields.items():
        assert f"| `{name.upper()}` |" in page, name
        assert field.description, name
        assert " ".join(field.description.split()) in page, name


def test_a_setting_added_without_a_description_fails_the_check() -> None:
    # given: a new field with no description, as someone might add it to settings.py
    class Extended(Settings):
        new_knob: int = 5
        documented_knob: int = Field(default=5, description="A knob with its meaning.")

    # then: the check names it, and the page (so `make docs`) refuses to build
    assert docs.undocumented(Extended) == ["NEW_KNOB"]
    with pytest.raises(docs.UndocumentedSetting, match="NEW_KNOB"):
        docs.settings_table(Extended)
    assert docs.undocumented(Settings) == []


def test_the_api_page_lists_every_operation_of_openapi_yaml() -> None:
    page = _page("reference/http-api.md")
    operations = list(docs.operations(docs.openapi()))
    assert len(operations) >= 17
    for method, path, _ in operations:
        assert f"### `{method} {path}`" in page


def _template(pattern: str) -> str:
    """A route's regex as an OpenAPI path: `(?P<name>...)` -> `{name}`."""
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)+", r"{\1}", pattern)
    return re.sub(r"\\(.)", r"\1", path)


def test_every_route_the_server_answers_is_in_openapi_yaml() -> None:
    described = {(method, path) for method, path, _ in docs.operations(docs.openapi())}
    paths = {path for _, path in described}
    twilio = {"{service}": "{ServiceSid}", "{sid}": "{Sid}"}
    for pattern, methods in http.routes():
        path = _template(pattern.pattern)
        for ours, theirs in twilio.items():
            path = path.replace(ours, theirs)
        if path.startswith("/v2(?:"):
            continue  # Twilio's 404 for any other /v2 path
        if path.startswith("/v2/"):
            assert path in paths, path  # every method answers there, most with Twilio's 405
            continue
        assert {(method, path) for method in methods} <= described, path


def test_the_cli_page_shows_every_command_and_option() -> None:
    page = _page("reference/cli.md")
    for name, parser in docs.commands().items():
        assert f"### `{name}`" in page
        for action in parser._actions:
            for option in action.option_strings:
                assert option in page, (name, option)
    assert {"smscode serve", "smscode worker", "smscode dev"} <= set(docs.commands())


def _resolves(dotted: str) -> bool:
    """`smscode.a.b.c`: a module, or an attribute (one or two deep) of one."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            if not hasattr(found, name):
                return False
            found = getattr(found, name)
        return True
    return False


@pytest.mark.parametrize("page", PROSE, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_module_the_docs_name_exists(page: Path) -> None:
    text = _text(page)
    names = {
        match.group(1)
        for match in re.finditer(r"(?<![\w/.-])(smscode(?:_dev)?(?:\.[A-Za-z_]\w*)+)", text)
        if not text[match.end() :].startswith(("/", "-"))
    }
    # logger names and task names that are not modules
    names -= {"smscode.deliver", "smscode.api", "smscode.service", "smscode.delivery"}
    names -= {name for name in names if f'"logger": "{name}"' in text}
    assert not [name for name in sorted(names) if not _resolves(name)]


# A file the docs name in backticks: from the repository, the package, or its adapters.
_FILE = re.compile(
    r"`((?:[\w.-]+/)+[\w.-]+\.(?:py|lua|yml|yaml|toml|md|json|html|js|css|dot|svg))`"
)
_BASES = ("", "shared/smscode/", "shared/smscode/adapters/", "shared/", "tests/integration/")


@pytest.mark.parametrize("page", PROSE, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_file_the_docs_name_exists(page: Path) -> None:
    missing = [
        name
        for name in set(_FILE.findall(_text(page)))
        if "<" not in name
        and "NAME" not in name
        and not any((ROOT / base / name).exists() for base in _BASES)
        and not name.startswith(("build/", "bench/results/"))
    ]
    assert missing == []


def test_the_architecture_page_names_every_module() -> None:
    page = _page("concepts/architecture.md")
    for package in ("smscode", "smscode_dev"):
        for module in (ROOT / "shared" / package).rglob("*.py"):
            if module.name != "__init__.py" and module.name != "__main__.py":
                assert module.stem in page, module.relative_to(ROOT)


def test_the_architecture_page_names_no_module_that_is_gone() -> None:
    page = _text(ROOT / "docs" / "concepts" / "architecture.md")
    named = set(re.findall(r"(?<![\w{,])(\w+)\.py\b", page))  # `redis_store.py`
    for group in re.findall(r"\{([\w,]+)\}\.py", page):  # `providers/{console,aliyun}.py`
        named |= set(group.split(","))
    folders = ("shared", "functions", "tests", "examples", "bench")
    existing = {module.stem for folder in folders for module in (ROOT / folder).rglob("*.py")}
    assert sorted(named - existing - {"NAME"}) == []  # NAME: "a new provider's NAME.py"


@cache
def _anchors(page: Path) -> set[str]:
    """The heading ids MkDocs gives a page (Python-Markdown's toc slugify)."""
    headings = re.findall(r"^#{1,6} (.+?)\s*$", _shown(page), re.MULTILINE)
    return {slugify(heading.replace("`", ""), "-") for heading in headings}


@pytest.mark.parametrize(
    "page",
    [ROOT / "README.md", ROOT / "bench" / "README.md", *PAGES],
    ids=lambda page: str(page.relative_to(ROOT)),
)
def test_every_relative_link_resolves(page: Path) -> None:
    """MkDocs --strict checks the links between pages; this also checks the READMEs' and
    the pages' links to files of the repository."""
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", _text(page)):
        if re.match(r"[a-z]+:", target):
            continue  # a URL
        file, _, anchor = target.partition("#")
        linked = (page.parent / file).resolve() if file else page
        if not linked.exists() or (
            anchor and linked.suffix == ".md" and anchor not in _anchors(linked)
        ):
            broken.append(target)
    assert broken == []
