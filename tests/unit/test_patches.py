"""lm_eval_tbd.patches: the one place that changes lm-eval, tested on small real modules written
to a temporary folder (and, for the switch, on lm-eval itself in a fresh interpreter)."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
import warnings

import pytest

from lm_eval_tbd import patches
from lm_eval_tbd.patches import Patch

OURS = """
def method(self):
    return "ours"

def wrap(init):
    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.wrapped = getattr(self, "wrapped", 0) + 1
    return __init__

def before(module):
    import os
    os.environ["TBD_TEST_BEFORE"] = "ran"
"""


MADE: list[Patch] = []


@pytest.fixture
def modules(tmp_path, monkeypatch):
    """A folder on sys.path for target modules; our functions in ``tbd_test_ours``. The patches
    a test makes are undone after it (the package's own, installed at start-up, stay)."""
    (tmp_path / "tbd_test_ours.py").write_text(OURS)
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    patches.uninstall(MADE)
    MADE.clear()
    for name in set(sys.modules) - before:
        if name.startswith("tbd_test_"):
            del sys.modules[name]
    importlib.invalidate_caches()


def write_target(folder, name: str, body: str = "class Model:\n    def __init__(self):\n        pass\n") -> None:
    (folder / f"{name}.py").write_text(textwrap.dedent(body))
    importlib.invalidate_caches()


def table(module: str, cls: str = "Model") -> list[Patch]:
    made = [Patch(module, cls, "generate_logprobs", "tbd_test_ours:method", "add", "test: add a method"),
            Patch(module, cls, "__init__", "tbd_test_ours:wrap", "wrap", "test: wrap the constructor")]
    MADE.extend(made)
    return made


def waiting_for(module: str) -> bool:
    return any(module in f.pending for f in sys.meta_path if isinstance(f, patches._Finder))


def test_a_module_imported_later_is_patched_when_imported(modules):
    write_target(modules, "tbd_test_later")
    patches.install(table("tbd_test_later"))
    assert "tbd_test_later" not in sys.modules  # installing imports nothing
    mod = importlib.import_module("tbd_test_later")
    assert mod.Model().generate_logprobs() == "ours"
    assert mod.Model().wrapped == 1
    assert not waiting_for("tbd_test_later")


def test_a_module_already_imported_is_patched_at_once(modules):
    write_target(modules, "tbd_test_now")
    mod = importlib.import_module("tbd_test_now")
    patches.install(table("tbd_test_now"))
    assert mod.Model().generate_logprobs() == "ours"


def test_a_failed_import_is_retried_on_the_next(modules):
    write_target(modules, "tbd_test_flaky", "raise ImportError('optional dependency missing')\n")
    patches.install(table("tbd_test_flaky"))
    with pytest.raises(ImportError, match="optional dependency"):
        importlib.import_module("tbd_test_flaky")
    write_target(modules, "tbd_test_flaky")  # the dependency was installed meanwhile
    sys.modules.pop("tbd_test_flaky", None)
    mod = importlib.import_module("tbd_test_flaky")
    assert mod.Model().generate_logprobs() == "ours"


def test_patches_are_idempotent_and_undone(modules):
    write_target(modules, "tbd_test_twice")
    mod = importlib.import_module("tbd_test_twice")
    original_init = mod.Model.__init__
    made = table("tbd_test_twice")
    for _ in range(3):
        patches.install(made)
    assert mod.Model().wrapped == 1  # wrapped once, not three times
    assert len([a for a in patches._applied if a[0] in made]) == 2
    patches.uninstall(made)
    assert mod.Model.__init__ is original_init and not hasattr(mod.Model, "generate_logprobs")


def test_add_method_only_if_absent_keeps_an_inherited_method(modules):
    class Base:
        def generate_logprobs(self):
            return "theirs"

    class Child(Base):
        pass

    assert not patches.add_method(Child, "generate_logprobs", lambda self: "ours", only_if_absent=True)
    # (add_method's own changes are undone by a plain uninstall(); these classes die with the test)
    assert Child().generate_logprobs() == "theirs"
    assert patches.add_method(Child, "other", lambda self: "ours")
    assert not patches.add_method(Child, "other", Child.__dict__["other"])  # the same function: no change
    patches._applied[:] = [a for a in patches._applied if a[1] is not Child]


def test_before_runs_ahead_of_the_module_code(modules, monkeypatch):
    monkeypatch.delenv("TBD_TEST_BEFORE", raising=False)
    write_target(modules, "tbd_test_before", "import os\nSEEN = os.environ.get('TBD_TEST_BEFORE')\n")
    MADE.append(Patch("tbd_test_before", None, "", "tbd_test_ours:before", "before", "test"))
    patches.install(MADE[-1:])
    assert importlib.import_module("tbd_test_before").SEEN == "ran"


def test_a_renamed_class_gives_one_clear_warning_and_no_crash(modules):
    write_target(modules, "tbd_test_renamed", "class RenamedModel:\n    pass\n")
    patches.install(table("tbd_test_renamed"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mod = importlib.import_module("tbd_test_renamed")  # the import itself succeeds
    ours = [w for w in caught if "lm_eval_tbd" in str(w.message)]
    assert len(ours) == 1, [str(w.message) for w in caught]
    message = str(ours[0].message)
    assert "tbd_test_renamed has no class Model" in message and "generate_logprobs, __init__" in message
    assert not hasattr(mod.RenamedModel, "generate_logprobs")


def test_the_table_names_a_reason_and_a_loadable_function_for_every_patch():
    for patch in patches.PATCHES:
        assert patch.kind in ("add", "default", "wrap", "before") and patch.reason
        module, _, attr = patch.func.partition(":")
        if patch.module == "lm_eval.models.vllm_causallms" and patch.kind != "before":
            continue  # importing the vLLM backend is cheap, but keep the check to what is always installed
        assert callable(getattr(importlib.import_module(module), attr)), patch.func
    assert {p.module for p in patches.PATCHES} == {
        "lm_eval.tasks.manager", "lm_eval.api.model", "lm_eval.models.huggingface",
        "lm_eval.models.openai_completions", "lm_eval.models.vllm_causallms"}


PROBE = """
import lm_eval.tasks.manager as manager, lm_eval.api.model as model
print(getattr(manager.TaskManager.__init__, "_lm_eval_tbd", False), hasattr(model.LM, "generate_logprobs"))
"""


@pytest.mark.parametrize(("value", "expected"), [("0", "False False"), ("off", "False False"), ("1", "True True")])
def test_the_autoload_switch(value, expected):
    env = {**os.environ, patches.ENV: value}
    proc = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split("\n")[-2] == expected


def test_importing_the_package_changes_nothing_in_lm_eval():
    code = ("import os; os.environ['LM_EVAL_TBD_AUTOLOAD'] = '0'\n"
            "import lm_eval_tbd.harness.task, lm_eval_tbd.backends.hf, lm_eval_tbd.backends.api\n"
            "import lm_eval.models.huggingface as hf\n"
            "print(hasattr(hf.HFLM, 'generate_logprobs'))")
    env = {**os.environ, patches.ENV: "0"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split("\n")[-2] == "False"


def test_the_start_up_hook_stays_cheap():
    """The .pth hook runs at every interpreter start: it must not load lm-eval, torch, numpy, or
    the slower standard modules (inspect, dataclasses, typing, logging: tens of milliseconds)."""
    from tests.helpers import ROOT

    code = ("import sys; before = set(sys.modules); import lm_eval_tbd._autoload; "
            "print(' '.join(sorted(set(sys.modules) - before)))")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-S", "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    loaded = set(proc.stdout.split())
    assert "lm_eval_tbd.patches" in loaded
    heavy = {"lm_eval", "torch", "numpy", "inspect", "dataclasses", "typing", "logging", "transformers"}
    assert not loaded & heavy, sorted(loaded & heavy)
