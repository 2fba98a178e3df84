"""A non-editable install from a built wheel: the package, its `.pth` autoload hook and the task
YAMLs land in site-packages, stock lm-eval finds the TBD tasks, and `pytest --contam` loads the
plugin from the wheel's entry point and runs a gate.

The fresh environment is a new virtualenv holding only the wheel; the (large) dependencies are
reached through a `.pth` line naming this interpreter's site-packages, which holds no copy of
the package itself (the development install is a path hook that the new environment does not
process), so everything of ours it imports comes from the wheel.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from lm_eval_tbd.core.record import GenerationRecord
from tests.helpers import ROOT, offline_env


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory):
    d = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(d / "dist"), str(ROOT)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = (d / "dist").glob("lm_eval_tbd-*.whl")
    venv = d / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q",
                              str(wheel)], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-3000:]
    return python, site, d


def run(python, code_or_args, cwd, **env):
    args = ["-c", code_or_args] if isinstance(code_or_args, str) else code_or_args
    environ = offline_env(**env)
    environ.pop("PYTHONPATH", None)  # a checkout on the path would shadow the installed wheel
    return subprocess.run([str(python), *args], capture_output=True, text=True, cwd=cwd, env=environ)


def test_wheel_puts_package_hook_and_tasks_in_site_packages(wheel_env):
    python, site, d = wheel_env
    assert (site / "lm_eval_tbd.pth").is_file()
    assert (site / "lm_eval_tbd" / "tasks" / "tbd_aime24.yaml").is_file()
    proc = run(python, "import lm_eval_tbd, pytest_contam; print(lm_eval_tbd.__file__); print(pytest_contam.__file__)", d)
    assert proc.returncode == 0, proc.stderr
    assert all(line.startswith(str(site)) for line in proc.stdout.split()), proc.stdout


def test_stock_lm_eval_finds_the_tasks_from_the_wheel(wheel_env):
    python, _, d = wheel_env
    proc = run(python, "from lm_eval.tasks import TaskManager; tm = TaskManager(); "
                       "print(sorted(t for t in tm.all_tasks if t.startswith('tbd')))", d)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert {"tbd_aime", "tbd_aime24", "tbd_aime25", "tbd_math500", "tbd_gsm8k", "tbd_jsonl"} <= set(eval(proc.stdout))


def test_pytest_contam_runs_from_the_wheel(wheel_env):
    python, _, d = wheel_env
    results = d / "results" / "m"
    results.mkdir(parents=True)
    lines = []
    for i, p in enumerate((0.99, 0.98, 0.97)):
        record = GenerationRecord(token_ids=[1, 2], logprobs=[__import__("math").log(p)] * 2, finish_reason="length")
        lines.append(json.dumps({"doc_id": i, "doc": {"id": f"q{i}", "question": f"Q{i}?"}, "resps": [[record.to_json()]],
                                 "tbd": (1 - p) ** 0.6}))
    (results / "samples_tbd_x_2026-01-01T00-00-00.000000.jsonl").write_text("\n".join(lines) + "\n")
    (d / "gate.toml").write_text(textwrap.dedent(f"""\
        [tool.pytest_contam]
        results = "{results.parent}"
        [tool.pytest_contam.benchmarks.tbd_x]
        score_cutoff = 0.2
        max_flagged_fraction = 0.5
        """))
    proc = run(python, ["-m", "pytest", "--contam", "--contam-config", str(d / "gate.toml"), "-p", "no:cacheprovider",
                        "--rootdir", str(d)], d)
    # every question is below the cutoff: the gate fails, which shows the plugin loaded and ran
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "contam::tbd_x" in proc.stdout and "FAILED" in proc.stdout
