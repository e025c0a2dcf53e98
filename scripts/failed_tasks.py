"""Print the failures an ansible-playbook log holds, with the task each belongs to.

    python scripts/failed_tasks.py LOG [--last N] [--max-lines M]

CI keeps only the end of a long run's output: scripts/integration.sh calls this for each target
that failed, so the reason is printed again at the very end (failures that were ignored with
`...ignoring` are left out; rescued ones cannot be told apart in the log and are kept).
"""

import argparse
import re
import sys

TASK = re.compile(r"^TASK \[(?P<name>.*)\] \*+$")
FAILURE = re.compile(r"^(fatal|failed): \[[^\]]+\].*=>")  # fatal: [h]: FAILED! =>, failed: [h] (item=x) =>


def is_continuation(line):
    """A result block goes on while its lines are indented or blank (literal blocks hold blanks)."""
    return line == "" or line.startswith((" ", "\t"))


def failure_blocks(lines):
    """[(task name, [lines of one failure result])] in log order, ignored failures left out."""
    blocks, task, index = [], "", 0
    while index < len(lines):
        line = lines[index]
        heading = TASK.match(line)
        if heading:
            task = heading.group("name")
        if not FAILURE.match(line):
            index += 1
            continue
        end = index + 1
        while end < len(lines) and is_continuation(lines[end]):
            end += 1
        ignored = end < len(lines) and lines[end].startswith("...ignoring")
        if not ignored:
            blocks.append((task, [text for text in lines[index:end] if text.strip()]))
        index = end
    return blocks


def render(blocks, last, max_lines):
    out = []
    for task, block in blocks[-last:]:
        out.append(f"--- TASK [{task}]")
        out.extend(block[:max_lines])
        if len(block) > max_lines:
            out.append(f"    ... {len(block) - max_lines} more lines in the log")
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log")
    parser.add_argument("--last", type=int, default=3, help="failures to print, the last ones")
    parser.add_argument("--max-lines", type=int, default=40, help="lines of each failure to print")
    args = parser.parse_args(argv)
    with open(args.log, encoding="utf-8", errors="replace") as handle:
        lines = handle.read().splitlines()
    blocks = failure_blocks(lines)
    if not blocks:
        print(f"no failed task in {args.log} (a failure before the first task: see its end)")
        print("\n".join(lines[-15:]))
        return 0
    print("\n".join(render(blocks, args.last, args.max_lines)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
