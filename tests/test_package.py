"""The deployable zip (`python -m hookops.package`): what the function app needs, nothing else.

Built into a temporary folder from the repository as it is, and from a scratch project that has
every kind of file `.funcignore` must keep out (so the test does not depend on what happens to
be lying around in the work tree).
"""
from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from hookops import package

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = re.compile(
    r"^(tests/|bicep/|docs/|scripts/|bench/|node_modules/|\.venv[^/]*/|\.git/|\.azure/|\.azurite/|dist/)"
    r"|(^|/)__pycache__/|\.py[cod]$|(^|/)local\.settings\.json$")


@pytest.fixture(scope="module")
def repo_zip(tmp_path_factory) -> tuple[package.Package, list[str]]:
    out = tmp_path_factory.mktemp("package") / "app.zip"
    built = package.build(ROOT, out)
    with zipfile.ZipFile(out) as zf:
        assert zf.testzip() is None
        return built, zf.namelist()


def test_zip_has_the_function_app_at_its_root(repo_zip):
    _, names = repo_zip
    for required in ("function_app.py", "host.json", "requirements.txt"):
        assert required in names, f"{required} missing from the package"


def test_zip_has_every_handlers_module(repo_zip):
    _, names = repo_zip
    modules = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "handlers").rglob("*.py")
                     if "__pycache__" not in p.parts)
    assert "handlers/__init__.py" in modules
    assert set(modules) <= set(names), set(modules) - set(names)


def test_zip_has_nothing_the_app_does_not_run(repo_zip):
    _, names = repo_zip
    assert [n for n in names if FORBIDDEN.search(n)] == []
    assert "hookops/package.py" not in names


def test_every_local_import_of_the_packaged_code_is_packaged(repo_zip):
    """A module missing from the zip is an import error at indexing: "0 functions found"."""
    built, names = repo_zip
    local = {p.stem if p.suffix == ".py" else p.name for p in ROOT.iterdir()
             if (p.suffix == ".py" or (p / "__init__.py").exists())}
    packaged = {n.split("/")[0].removesuffix(".py") for n in names}
    with zipfile.ZipFile(built.path) as zf:
        for name in (n for n in names if n.endswith(".py")):
            tree = ast.parse(zf.read(name), filename=name)
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    tops = [alias.name.split(".")[0] for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    tops = [node.module.split(".")[0]]
                else:
                    continue
                for top in tops:
                    if top in local:
                        assert top in packaged, f"{name} imports {top}, which .funcignore leaves out"


def test_build_is_reproducible(repo_zip, tmp_path):
    built, _ = repo_zip
    again = package.build(ROOT, tmp_path / "again.zip")
    assert again.path.read_bytes() == built.path.read_bytes()


def test_command_line_writes_the_zip_and_says_what_it_wrote(tmp_path):
    out = tmp_path / "cli" / "app.zip"
    done = subprocess.run([sys.executable, "-m", "hookops.package", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert out.is_file()
    match = re.search(r"^wrote (.+): (\d+) files, ([\d,]+) bytes$", done.stdout, re.M)
    assert match, done.stdout
    with zipfile.ZipFile(out) as zf:
        assert int(match[2]) == len(zf.namelist())
    assert int(match[3].replace(",", "")) == out.stat().st_size


# --------------------------------------------------------------------------------------------
# .funcignore on a scratch project with everything that must stay out
# --------------------------------------------------------------------------------------------

SCRATCH_FILES = {
    # kept
    "function_app.py": True, "host.json": True, "requirements.txt": True,
    "handlers/__init__.py": True, "handlers/intake.py": True, "handlers/sub/deep.py": True,
    # left out
    "tests/test_x.py": False, "tests/doubles/keyvault.py": False,
    "bicep/main.bicep": False, "bicep/modules/storage.bicep": False,
    ".venv/lib/python3.11/site-packages/x.py": False, ".venv-checkov/bin/checkov": False,
    "node_modules/azurite/index.js": False,
    "local.settings.json": False, "local.settings.json.example": False,
    "handlers/__pycache__/intake.cpython-311.pyc": False, "__pycache__/function_app.cpython-311.pyc": False,
    "handlers/stale.pyc": False, "docs/deploy.md": False, "scripts/checkov.sh": False,
    "hookops/cli.py": False, "hookops/host/runner.py": False, "hookops/doubles/preservica.py": False,
    ".azurite/__azurite_db_queue__.json": False, ".git/HEAD": False,
    ".azure/dev/.env": False, "dist/old.zip": False, ".pytest_cache/v/x": False,
    "README.md": False, "Makefile": False, "pyproject.toml": False, "requirements-dev.txt": False,
    "azure.yaml": False, "package.json": False, ".python_packages/lib/x.py": False,
}


def test_funcignore_keeps_out_tests_infra_venvs_and_local_settings(tmp_path):
    project = tmp_path / "project"
    for rel in SCRATCH_FILES:
        path = project / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x = 1\n" if rel.endswith(".py") else "{}\n")
    shutil.copy(ROOT / ".funcignore", project / ".funcignore")
    built = package.build(project, tmp_path / "app.zip")
    expected = {rel for rel, keep in SCRATCH_FILES.items() if keep}
    assert set(built.files) == expected
    with zipfile.ZipFile(built.path) as zf:
        assert set(zf.namelist()) == expected


def test_missing_required_file_is_an_error(tmp_path):
    (tmp_path / "host.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="function_app.py"):
        package.build(tmp_path, tmp_path / "app.zip")


def test_funcignore_excluding_a_required_file_is_an_error(tmp_path):
    for name in ("function_app.py", "host.json", "requirements.txt"):
        (tmp_path / name).write_text("{}")
    (tmp_path / ".funcignore").write_text("*.json\n")
    with pytest.raises(ValueError, match="host.json"):
        package.build(tmp_path, tmp_path / "out" / "app.zip")


def test_output_inside_the_project_is_not_packaged_into_itself(tmp_path):
    for name in ("function_app.py", "host.json", "requirements.txt"):
        (tmp_path / name).write_text("{}")
    first = package.build(tmp_path, tmp_path / "app.zip")
    second = package.build(tmp_path, tmp_path / "app.zip")
    assert "app.zip" not in first.files and "app.zip" not in second.files


# --------------------------------------------------------------------------------------------
# The gitignore-style matcher
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("patterns, path, is_dir, ignored", [
    (["*.pyc"], "a/b/c.pyc", False, True),
    (["*.pyc"], "a/b/c.py", False, False),
    (["tests/"], "tests", True, True),
    (["tests/"], "tests", False, False),            # a file named tests is not the folder
    (["tests/"], "sub/tests", True, True),          # no inner slash: matches at any depth
    (["/build"], "build", True, True),
    (["/build"], "sub/build", True, False),         # leading slash anchors to the root
    (["docs/*.md"], "docs/a.md", False, True),
    (["docs/*.md"], "sub/docs/a.md", False, False),  # inner slash anchors too
    (["docs/*.md"], "docs/x/a.md", False, False),    # * does not cross /
    (["docs/**/*.png"], "docs/a/b/c.png", False, True),
    (["docs/**/*.png"], "docs/c.png", False, True),
    (["**/cache"], "a/b/cache", True, True),
    (["logs/**"], "logs/a/b.txt", False, True),
    (["*.md", "!KEEP.md"], "KEEP.md", False, False),
    (["*.md", "!KEEP.md"], "OTHER.md", False, True),
    (["!KEEP.md", "*.md"], "KEEP.md", False, True),  # the last matching rule decides
    (["*.py[cod]"], "x.pyo", False, True),
    (["*.py[cod]"], "x.py", False, False),
    (["file?.txt"], "file1.txt", False, True),
    (["file?.txt"], "file10.txt", False, False),
    (["\\#notes"], "#notes", False, True),
    (["# comment", ""], "# comment", False, False),
    (["__azurite_db*__.json"], "__azurite_db_queue__.json", False, True),
    ([".venv-*/"], ".venv-checkov", True, True),
    # The hand-written matcher got these wrong (it ignored the path); git does not:
    (["doc**.md"], "docs/a/b.md", False, False),      # ** not between slashes is a plain *: it stops at /
    (["a[/]b"], "a/b", False, False),                 # a bracket expression never matches a slash
])
def test_ignore_rules(patterns, path, is_dir, ignored):
    assert package.IgnoreRules(patterns).ignored(path, is_dir) is ignored


def test_an_invalid_pattern_is_an_error_naming_the_file(tmp_path):
    for name in ("function_app.py", "host.json", "requirements.txt"):
        (tmp_path / name).write_text("{}")
    (tmp_path / ".funcignore").write_text("docs\\\n")  # a trailing backslash escapes nothing
    with pytest.raises(ValueError, match=r"\.funcignore"):
        package.build(tmp_path, tmp_path / "out" / "app.zip")


def test_a_file_in_an_excluded_folder_cannot_be_reincluded(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "keep.md").write_text("x")
    (tmp_path / "top.md").write_text("x")
    rules = package.IgnoreRules(["docs/", "!docs/keep.md"])
    assert package.select_files(tmp_path, rules) == ["top.md"]
