"""lm_eval_tbd.core.atomic: atomic writes leave no temporary file behind, also when SIGTERM
interrupts them; JSON-safe non-finite floats."""

import math
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading

import pytest

from lm_eval_tbd.core.atomic import write_json_atomic, write_text_atomic

# A writer whose fsync blocks: it reports that the temporary file is written, then waits for the
# test's signal in the middle of the atomic write.
SLOW_WRITER = textwrap.dedent("""
    import os, sys, time
    from lm_eval_tbd.core import atomic

    def slow_fsync(fd):
        print("writing", flush=True)
        time.sleep(60)

    atomic.os.fsync = slow_fsync
    {setup}
    atomic.write_text_atomic(sys.argv[1], "new content\\n")
""")


def interrupted_write(tmp_path, setup: str = "") -> subprocess.CompletedProcess:
    """Run SLOW_WRITER on ``tmp_path / "out.json"``, send SIGTERM mid-write, and return the result."""
    target = tmp_path / "out.json"
    proc = subprocess.Popen([sys.executable, "-c", SLOW_WRITER.format(setup=setup), str(target)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "writing\n", proc.stderr.read()
        assert [p.name.startswith(".out.json.") for p in tmp_path.iterdir()] == [True]  # mid-write
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_sigterm_mid_write_removes_the_temporary_file_and_still_terminates(tmp_path):
    result = interrupted_write(tmp_path)
    assert result.returncode == -signal.SIGTERM, result.stderr  # ended by the signal, as usual
    assert list(tmp_path.iterdir()) == []


def test_sigterm_mid_write_with_a_python_handler_runs_it_and_cleans_up(tmp_path):
    setup = "import signal; signal.signal(signal.SIGTERM, lambda s, f: sys.exit(7))"
    result = interrupted_write(tmp_path, setup)
    assert result.returncode == 7, result.stderr
    assert list(tmp_path.iterdir()) == []


def test_previous_sigterm_handler_is_restored(tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    write_json_atomic(tmp_path / "a.json", {"x": 1})
    assert signal.getsignal(signal.SIGTERM) is before
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_write_from_another_thread_leaves_signals_alone(tmp_path):
    errors = []

    def write():
        try:
            write_text_atomic(tmp_path / "sub" / "t.txt", "text")
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    thread = threading.Thread(target=write)
    thread.start()
    thread.join()
    assert errors == [] and (tmp_path / "sub" / "t.txt").read_text() == "text"


def test_failed_write_removes_the_temporary_file(tmp_path):
    with pytest.raises(ValueError):
        write_json_atomic(tmp_path / "nan.json", {"x": float("nan")})  # refused before writing
    with pytest.raises(TypeError):
        write_text_atomic(tmp_path / "t.txt", b"bytes")  # fails inside the write
    assert list(tmp_path.iterdir()) == []


def test_json_safe_spells_non_finite_floats():
    from lm_eval_tbd.core.atomic import json_safe

    assert json_safe({"a": [math.inf, -math.inf, math.nan, 1.5], "b": (None, "x")}) == \
        {"a": ["Infinity", "-Infinity", "NaN", 1.5], "b": [None, "x"]}


def test_written_file_gets_the_mode_of_a_plain_open(tmp_path):
    old = os.umask(0o027)
    try:
        written = write_text_atomic(tmp_path / "r.json", "{}")
        (tmp_path / "plain").write_text("{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(written.stat().st_mode) == stat.S_IMODE((tmp_path / "plain").stat().st_mode) == 0o640


def test_a_target_that_cannot_be_a_file_is_said_in_words(tmp_path):
    # "[Errno 17] File exists: '.../f'" and "Is a directory: '.../.out.x.tmp' -> ..." named no cause
    (tmp_path / "out").mkdir()
    with pytest.raises(IsADirectoryError, match=f"^{tmp_path / 'out'}: is a directory; give the path of the file"):
        write_text_atomic(tmp_path / "out", "x")
    (tmp_path / "f").write_text("")
    with pytest.raises(NotADirectoryError, match=f"^{tmp_path / 'f' / 'a' / 'r.json'}: cannot be written, "
                                                 f"{tmp_path / 'f'} is a file, not a folder"):
        write_text_atomic(tmp_path / "f" / "a" / "r.json", "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f", "out"]  # nothing left beside them
