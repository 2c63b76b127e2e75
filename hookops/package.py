"""Build the deployable zip of the function app, honouring `.funcignore`.

    python -m hookops.package [--out dist/app.zip] [--list]

The zip holds the project folder as Azure Functions expects it (host.json, function_app.py and
requirements.txt at the root) minus everything `.funcignore` excludes. Dependencies are not
bundled: deploy with a remote build, e.g.
`az functionapp deployment source config-zip --src dist/app.zip --build-remote true ...`.

`.funcignore` uses gitignore syntax (the one Core Tools and azd read): `#` comments, `!` negation,
a trailing `/` for folders only, a `/` elsewhere anchoring the pattern to the project root,
`*`, `?`, `[...]` and `**`. As in git, a file inside an excluded folder cannot be re-included.
The zip is reproducible: entries sorted, fixed timestamps.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IGNORE_FILE = ".funcignore"
REQUIRED = ("host.json", "function_app.py", "requirements.txt")
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def _translate(pattern: str) -> str:
    """Regex source for one gitignore glob (no leading/trailing slash handling)."""
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("/**", i) and i + 3 == n:
            out.append("/.*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            j = pattern.find("]", i + 2)
            if j == -1:
                out.append(re.escape(c))
                i += 1
                continue
            body = pattern[i + 1:j]
            if body[0] in "!^":
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = j + 1
        elif c == "\\" and i + 1 < n:
            out.append(re.escape(pattern[i + 1]))
            i += 2
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


@dataclass(frozen=True)
class Rule:
    pattern: str
    regex: re.Pattern
    negate: bool
    dir_only: bool

    @classmethod
    def parse(cls, line: str) -> "Rule | None":
        text = line.rstrip("\n\r")
        if not text.endswith("\\ "):
            text = text.rstrip()
        if not text or text.startswith("#"):
            return None
        negate = text.startswith("!")
        if negate:
            text = text[1:]
        elif text.startswith("\\!") or text.startswith("\\#"):
            text = text[1:]
        dir_only = text.endswith("/")
        body = text.rstrip("/")
        if not body:
            return None
        anchored = "/" in body
        body = body.lstrip("/")
        prefix = "^" if anchored else "^(?:.*/)?"
        return cls(line.strip(), re.compile(prefix + _translate(body) + "$"), negate, dir_only)

    def matches(self, path: str, is_dir: bool) -> bool:
        if self.dir_only and not is_dir:
            return False
        return bool(self.regex.match(path))


class IgnoreRules:
    """gitignore-style rules; the last matching rule decides."""

    def __init__(self, lines: list[str] | tuple[str, ...] = ()):
        self.rules = [r for r in (Rule.parse(line) for line in lines) if r]

    @classmethod
    def from_file(cls, path: Path) -> "IgnoreRules":
        return cls(path.read_text(encoding="utf-8").splitlines() if path.exists() else [])

    def ignored(self, path: str, is_dir: bool = False) -> bool:
        result = False
        for rule in self.rules:
            if rule.matches(path, is_dir):
                result = not rule.negate
        return result


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
