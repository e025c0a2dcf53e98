"""Quality gates of the roles, run by `make lint`:

- every variable in defaults/main.yml is an option of meta/argument_specs.yml with the
  same default, and every option with a default is in defaults/main.yml;
- every variable in defaults/main.yml is used by the role (tasks, handlers, templates,
  vars, files): no dead settings an operator would set for nothing;
- the "Variables" table of the role's README is the one generated from the argument
  specs (between the markers below).

    python scripts/check_roles.py          # check (exit 1 with every problem listed)
    python scripts/check_roles.py --write  # regenerate the README tables
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
BEGIN = "<!-- BEGIN ROLE VARIABLES (generated from meta/argument_specs.yml by scripts/check_roles.py --write) -->"
END = "<!-- END ROLE VARIABLES -->"
USED_IN = ("tasks", "handlers", "templates", "vars", "files")


def load_yaml(path: Path):
    return yaml.safe_load(path.read_text()) if path.exists() else None


def cell(text) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def variables_table(options: dict) -> str:
    lines = ["| variable | type | default | description |", "|---|---|---|---|"]
    for name, spec in options.items():
        kind = spec.get("type", "str")
        if kind == "list" and spec.get("elements"):
            kind = "list of %s" % spec["elements"]
        if spec.get("choices"):
            kind += " (%s)" % ", ".join(map(str, spec["choices"]))
        default = (
            "required"
            if spec.get("required")
            else "`%s`" % cell(yaml.safe_dump(spec.get("default")).strip().removesuffix("...").strip())
        )
        description = spec.get("description", "")
        if isinstance(description, list):
            description = " ".join(description)
        lines.append("| `%s` | %s | %s | %s |" % (name, cell(kind), default, cell(description)))
    return "\n".join(lines)


def role_text(role: Path) -> str:
    parts = []
    for folder in USED_IN:
        for path in sorted((role / folder).rglob("*")) if (role / folder).is_dir() else []:
            if path.is_file():
                parts.append(path.read_text(errors="replace"))
    return "\n".join(parts)


def check_role(role: Path, write: bool) -> list[str]:
    problems = []
    defaults = load_yaml(role / "defaults" / "main.yml") or {}
    specs = load_yaml(role / "meta" / "argument_specs.yml") or {}
    # Options of every entry point (main, then tasks_from entry points such as backup_now).
    entry_points = specs.get("argument_specs") or {}
    options = {}
    for entry in sorted(entry_points, key=lambda name: name != "main"):
        for name, spec in ((entry_points[entry] or {}).get("options") or {}).items():
            options.setdefault(name, spec)
    for name, value in defaults.items():
        if name not in options:
            problems.append(
                "%s: defaults/main.yml sets %s, meta/argument_specs.yml does not document it" % (role.name, name)
            )
        elif options[name].get("default") != value:
            problems.append(
                "%s: %s defaults to %r in defaults/main.yml but %r in meta/argument_specs.yml"
                % (role.name, name, value, options[name].get("default"))
            )
    for name, spec in options.items():
        if "default" in spec and name not in defaults:
            problems.append("%s: argument spec gives %s a default that defaults/main.yml lacks" % (role.name, name))
    used = role_text(role)
    for name in defaults:
        if not re.search(r"\b%s\b" % re.escape(name), used):
            problems.append("%s: %s is in defaults/main.yml but the role never uses it" % (role.name, name))
    readme = role / "README.md"
    text = readme.read_text() if readme.exists() else ""
    table = "%s\n%s\n%s" % (BEGIN, variables_table(options), END)
    if options and (BEGIN not in text or END not in text):
        if write:
            text = text.rstrip() + "\n\n## Variables (reference)\n\n" + table + "\n"
            readme.write_text(text)
        else:
            problems.append(
                "%s: README.md has no generated variables table (run scripts/check_roles.py --write)" % role.name
            )
    elif options:
        current = text[text.index(BEGIN) : text.index(END) + len(END)]
        if current != table:
            if write:
                readme.write_text(text.replace(current, table))
            else:
                problems.append(
                    "%s: README.md variables table differs from meta/argument_specs.yml (--write)" % role.name
                )
    return problems


def main(argv: list[str]) -> int:
    write = "--write" in argv
    problems = []
    for role in sorted((REPO / "roles").iterdir()):
        if role.is_dir():
            problems += check_role(role, write)
    for problem in problems:
        print("check_roles: " + problem)
    if not problems:
        print(
            "check_roles: %d roles: defaults, argument specs, README tables agree; no unused defaults"
            % len([r for r in (REPO / "roles").iterdir() if r.is_dir()])
        )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
