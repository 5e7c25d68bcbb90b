"""`make gcp-bundle`: one folder per Cloud Run function, as the Python buildpack deploys it.

`gcloud functions deploy --source DIR` uploads DIR alone; the buildpack pip-installs the
`requirements.txt` beside `main.py` and runs functions-framework on it. So each folder gets
its function's `main.py`, the runtime requirements read from pyproject.toml (the
dependencies plus the function's extras) and a copy of the `smscode` package, which
main.py imports from beside itself.
"""

from __future__ import annotations

import argparse
import shutil
import tomllib
from collections.abc import Sequence
from pathlib import Path

# function folder -> (target, signature type, pyproject extras it needs at run time)
FUNCTIONS = {
    "issue_code": ("handle", "http", ("serve", "gcp")),
    "deliver_sms": ("deliver", "cloudevent", ("serve",)),
}


def requirements(pyproject: Path, extras: Sequence[str]) -> list[str]:
    """The project's dependencies plus those of `extras`, as pyproject.toml states them."""
    project = tomllib.loads(pyproject.read_text())["project"]
    optional = project["optional-dependencies"]
    return [*project["dependencies"], *(line for extra in extras for line in optional[extra])]


def build(root: Path, out: Path) -> list[Path]:
    """Write out/<function>/ for each function of the repository at `root`; the folders."""
    folders = []
    for name, (_, _, extras) in FUNCTIONS.items():
        folder = out / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        shutil.copy2(root / "functions" / name / "main.py", folder / "main.py")
        lines = requirements(root / "pyproject.toml", extras)
        (folder / "requirements.txt").write_text("\n".join(lines) + "\n")
        shutil.copytree(
            root / "shared" / "smscode",
            folder / "smscode",
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
        folders.append(folder)
    return folders


def main(argv: Sequence[str] | None = None) -> None:
    """Build the bundles; run from the repository's root."""
    parser = argparse.ArgumentParser(prog="python -m smscode_dev.bundle", description=__doc__)
    parser.add_argument("out", type=Path, nargs="?", default=Path("build/gcp"))
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the repository")
    args = parser.parse_args(argv)
    for folder in build(args.root, args.out):
        target, signature, _ = FUNCTIONS[folder.name]
        print(f"{folder}: --entry-point={target} ({signature})")


if __name__ == "__main__":
    main()
