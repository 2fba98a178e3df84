"""lm_eval_tbd.harness.task: what importing the task loads."""


def test_task_import_leaves_statistics_libraries_for_aggregation_time():
    # scikit-learn and scipy are loaded when an aggregation runs, not with the task: their import
    # time and memory would otherwise weigh on every TBD run (see benchmarks/speed.py).
    import subprocess
    import sys

    code = "import sys, lm_eval_tbd.harness.task; assert not {'sklearn', 'scipy'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)
