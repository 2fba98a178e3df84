"""lm_eval_tbd.harness.runner: the lm_eval child process does not outlive its parent (the gate's
model mode, the demo): SIGTERM to the parent stops the child first."""

import os
import signal
import subprocess
import sys
import time

PARENT = """
import sys
from lm_eval_tbd.harness.runner import run_lm_eval
child = [sys.executable, "-c", "import os, time; open({pidfile!r}, 'w').write(str(os.getpid())); time.sleep(120)"]
run_lm_eval(child, check=False)
print("the parent went on", flush=True)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by its parent) counts as gone
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ", 1)[1][0] != "Z"


def _wait_for(path, timeout=30.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return int(path.read_text())
        time.sleep(0.05)
    raise AssertionError(f"{path} never written")


def test_sigterm_to_the_parent_stops_the_lm_eval_child(tmp_path):
    # SIGTERM to pytest --contam in model mode left the lm_eval child running
    pidfile = tmp_path / "child.pid"
    parent = subprocess.Popen([sys.executable, "-c", PARENT.format(pidfile=str(pidfile))], stdout=subprocess.PIPE,
                              text=True)
    child = _wait_for(pidfile)
    parent.send_signal(signal.SIGTERM)
    parent.wait(timeout=30)
    assert parent.returncode == -signal.SIGTERM  # it still dies of the signal, as before
    assert "went on" not in parent.stdout.read()
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def test_the_output_is_captured_as_before():
    from lm_eval_tbd.harness.runner import run_lm_eval

    proc = run_lm_eval([sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr)"])
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "out\n", "err\n")
    failed = run_lm_eval([sys.executable, "-c", "import sys; sys.exit(3)"], check=False)
    assert failed.returncode == 3
