"""Build the deployable zip of the function app, honouring `.funcignore`.

    python -m hookops.package [--out dist/app.zip] [--list]

The zip holds the project folder as Azure Functions expects it (host.json, function_app.py and
requirements.txt at the root) minus everything `.funcignore` excludes. Dependencies are not
bundled: deploy with a remote build, e.g.
`az functionapp deployment source config-zip --src dist/app.zip --build-remote true ...`.

`.funcignore` uses gitignore syntax (the one Core Tools and azd read), matched by pathspec's
GitIgnoreSpec. As in git, a file inside an excluded folder cannot be re-included: the walk does
not enter excluded folders. An invalid pattern (e.g. a trailing backslash) is an error.
The zip is reproducible: entries sorted, fixed timestamps.
"""
from __future__ import annotations

import argparse
import os
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pathspec
from pathspec.patterns.gitwildmatch import GitWildMatchPatternError

ROOT = Path(__file__).resolve().parent.parent
IGNORE_FILE = ".funcignore"
REQUIRED = ("host.json", "function_app.py", "requirements.txt")
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


class IgnoreRules:
    """gitignore-style rules; the last matching rule decides."""

    def __init__(self, lines: list[str] | tuple[str, ...] = ()):
        self.spec = pathspec.GitIgnoreSpec.from_lines(lines)

    @classmethod
    def from_file(cls, path: Path) -> IgnoreRules:
        if not path.exists():
            return cls()
        try:
            return cls(path.read_text(encoding="utf-8").splitlines())
        except GitWildMatchPatternError as exc:
            raise ValueError(f"{path.name}: {exc}") from exc

    def ignored(self, path: str, is_dir: bool = False) -> bool:
        """Whether the project-relative POSIX `path` is excluded (a folder when `is_dir`)."""
        return self.spec.match_file(path + "/" if is_dir else path)


def select_files(root: Path, rules: IgnoreRules, exclude: set[Path] = frozenset()) -> list[str]:
    """Project-relative POSIX paths of the files to package, sorted."""
    chosen: list[str] = []
    for folder, dirs, files in os.walk(root):
        rel_folder = Path(folder).relative_to(root).as_posix()
        rel_folder = "" if rel_folder == "." else rel_folder + "/"
        dirs[:] = sorted(d for d in dirs if not rules.ignored(rel_folder + d, is_dir=True))
        for name in files:
            rel = rel_folder + name
            full = Path(folder) / name
            if rules.ignored(rel) or full.resolve() in exclude or not full.is_file():
                continue
            chosen.append(rel)
    return sorted(chosen)


@dataclass
class Package:
    path: Path
    files: list[str]
    size: int


def build(root: Path = ROOT, out: Path | None = None) -> Package:
    """Write the zip and return what went into it. Raises FileNotFoundError if a required file is missing."""
    root = root.resolve()
    out = (out if out is not None else root / "dist" / "app.zip")
    out = (out if out.is_absolute() else Path.cwd() / out).resolve()
    missing = [name for name in REQUIRED if not (root / name).is_file()]
    if missing:
        raise FileNotFoundError(f"not a Functions project folder: {', '.join(missing)} missing in {root}")
    rules = IgnoreRules.from_file(root / IGNORE_FILE)
    files = select_files(root, rules, exclude={out})
    dropped = [name for name in REQUIRED if name not in files]
    if dropped:
        raise ValueError(f"{IGNORE_FILE} excludes {', '.join(dropped)}, which the package needs")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for rel in files:
            full = root / rel
            info = zipfile.ZipInfo(rel, date_time=ZIP_DATE)
            mode = 0o755 if os.access(full, os.X_OK) else 0o644
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, full.read_bytes())
    os.replace(tmp, out)
    return Package(out, files, out.stat().st_size)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hookops.package",
        description="Build the deployable zip of the function app, honouring .funcignore.")
    parser.add_argument("--out", type=Path, default=Path("dist/app.zip"),
                        help="zip to write, relative to the current folder (default: dist/app.zip)")
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="project folder to package (default: this repository)")
    parser.add_argument("--list", action="store_true", help="also print every packaged file")
    args = parser.parse_args(argv)
    try:
        package = build(args.root, args.out)
    except (FileNotFoundError, ValueError) as exc:
        print(f"package: {exc}", file=sys.stderr)
        return 1
    if args.list:
        for name in package.files:
            print(name)
    try:
        shown = package.path.relative_to(Path.cwd())
    except ValueError:
        shown = package.path
    print(f"wrote {shown}: {len(package.files)} files, {package.size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
