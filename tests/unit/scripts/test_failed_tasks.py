"""scripts/failed_tasks.py finds the failures in an ansible-playbook log that were not ignored."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "failed_tasks.py"
spec = importlib.util.spec_from_file_location("failed_tasks", SCRIPT)
failed_tasks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(failed_tasks)

LOG = """
PLAY [localhost] ***************************************************************

TASK [ignored one] *************************************************************
fatal: [host1]: FAILED! =>
    changed: false
    msg: ignored
...ignoring

TASK [loop fails] **************************************************************
ok: [host1] => (item=true)
failed: [host1] (item=false) =>
    item: 'false'
    module_stderr: |-
        first line

        after a blank line
    rc: 127

TASK [unreachable] *************************************************************
fatal: [host2]: UNREACHABLE! =>
    msg: no route
    unreachable: true

PLAY RECAP *********************************************************************
host1                      : ok=1    changed=0    unreachable=0    failed=1    skipped=0
""".splitlines()


def test_ignored_failures_are_left_out_and_the_others_kept_with_their_task():
    blocks = failed_tasks.failure_blocks(LOG)
    assert [task for task, block in blocks] == ["loop fails", "unreachable"]


def test_a_block_runs_on_through_blank_lines_of_a_literal_until_the_next_unindented_line():
    block = failed_tasks.failure_blocks(LOG)[0][1]
    assert block[0].startswith("failed: [host1] (item=false)")
    assert "        after a blank line" in block
    assert block[-1] == "    rc: 127"


def test_render_keeps_the_last_failures_and_says_what_it_cut():
    out = failed_tasks.render(failed_tasks.failure_blocks(LOG), last=1, max_lines=2)
    assert out == [
        "--- TASK [unreachable]",
        "fatal: [host2]: UNREACHABLE! =>",
        "    msg: no route",
        "    ... 1 more lines in the log",
    ]


def test_a_log_without_failed_tasks_prints_its_end(tmp_path, capsys):
    log = tmp_path / "target.log"
    log.write_text("ERROR! the playbook could not be parsed\n")
    assert failed_tasks.main([str(log)]) == 0
    assert "the playbook could not be parsed" in capsys.readouterr().out
