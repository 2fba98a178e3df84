"""The ``pytest --contam`` audit gates on one real-student pass: members against non-members half
A (should fail once detection works), half B against half A (a negative control that must pass)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

GATE_CONFIG = """\
# Audit-mode gates on the real student (no labels used): members against non-members half A
# should fail once detection works; half B against half A is a negative control that must pass.
[tool.pytest_contam]
results = "{results}"
top = 3

[tool.pytest_contam.benchmarks.rs_members]
reference = "rs_nonmembers_a"
max_auc = 0.75
alpha = 0.01

[tool.pytest_contam.benchmarks.rs_nonmembers_b]
reference = "rs_nonmembers_a"
max_auc = 0.75
alpha = 0.01
"""


def gates(run_dir: Path, work: Path, name: str) -> dict:
    """Run the gates of GATE_CONFIG on the pass in ``run_dir`` (in ``work/gate-NAME``); returns
    pytest's exit status and each gate's verdict, AUC, p-value and error."""
    folder = work / f"gate-{name}"
    folder.mkdir(exist_ok=True)
    (folder / "pyproject.toml").write_text(GATE_CONFIG.format(results=run_dir.resolve().as_posix()))
    report = folder / "gate.json"
    report.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "pytest", "--contam", "-q", "-p", "no:cacheprovider", "--rootdir", str(folder),
           "-c", str(folder / "pyproject.toml"), f"--contam-json={report}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=folder)
    if not report.is_file():
        raise SystemExit(f"pytest --contam wrote no report (exit {proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    data = json.loads(report.read_text())
    return {"exit_status": proc.returncode,
            # a gate without figures (too few questions left, say) has "audit": null and its error
            **{k: {"passed": v["passed"], "auc": (v.get("audit") or {}).get("auc"),
                   "p_value": (v.get("audit") or {}).get("p_value"),
                   # no machine paths in results meant to be committed
                   "error": v["error"].replace(str(work.resolve()), work.name) if v.get("error") else None}
               for k, v in data["benchmarks"].items()}}
