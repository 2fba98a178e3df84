"""``lm-eval-tbd make-task``: the task YAML loads back, through lm-eval's own loader, with the
exact paths and options it was given."""

import json

import pytest

from lm_eval_tbd.app.cli import main
from lm_eval_tbd.harness.custom_tasks import write_jsonl_task

# a backslash, both quote kinds, ": " (a YAML mapping indicator), "#", and non-ASCII text
AWKWARD = ["back\\slash", "it's \"quoted\"", "key: value # not a comment", "unicodé ✓ 題"]


def _questions(folder):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "q.jsonl"
    path.write_text(json.dumps({"id": "a", "question": "A?"}) + "\n", encoding="utf-8")
    return path


def _load(path, **kwargs):
    from lm_eval.tasks._yaml_loader import load_yaml

    return load_yaml(path, **kwargs)


@pytest.mark.parametrize("name", AWKWARD + ["".join(AWKWARD)])
def test_make_task_yaml_gives_back_the_exact_path(tmp_path, capsys, name):
    data = _questions(tmp_path / name)
    assert main(["make-task", "my_heldout", str(data), "--dir", str(tmp_path / "tasks")]) == 0
    assert "wrote" in capsys.readouterr().out
    config = _load(tmp_path / "tasks" / "my_heldout.yaml", resolve_func=False, recursive=False)
    assert config["metadata"]["tbd_data_file"] == str(data.resolve())
    assert config["task"] == "my_heldout" and config["metadata"]["version"] == 1.0
    assert config["custom_dataset"].endswith("lm_eval_tbd.core.data.load_jsonl")


def test_make_task_yaml_resolves_its_function_and_template(tmp_path):
    data = _questions(tmp_path / AWKWARD[0])
    path = write_jsonl_task("my_heldout", data, tmp_path / "tasks", tbd_max_tokens=100, tbd_input_scores=True,
                            tbd_server_args={"repeat_penalty": 1.0})
    config = _load(path, resolve_func=True, recursive=True)
    from lm_eval_tbd.core.data import load_jsonl

    assert config["custom_dataset"].__module__ == load_jsonl.__module__
    assert config["custom_dataset"].__name__ == "load_jsonl"
    assert config["class"].__name__ == "TBDTask"  # from the included template
    assert config["metadata"] == {"version": 1.0, "tbd_data_file": str(data.resolve()), "tbd_input_scores": True,
                                  "tbd_max_tokens": 100, "tbd_server_args": {"repeat_penalty": 1.0}}


@pytest.mark.parametrize("name", ["evil\n", "evil\nx", "evil ", "1st", "", "a.b"])
def test_make_task_refuses_a_name_that_is_not_one(tmp_path, capsys, name):
    # "evil\n" was accepted: the check's $ matched before a trailing newline
    data = _questions(tmp_path)
    assert main(["make-task", name, str(data), "--dir", str(tmp_path / "tasks")]) == 2
    assert f"task name {name!r}: use letters, digits" in capsys.readouterr().err
    assert not (tmp_path / "tasks").exists()


@pytest.mark.parametrize("name", ["tbd_aime25", "tbd_aime", "tbd_jsonl"])
def test_make_task_refuses_the_name_of_a_builtin_task(tmp_path, capsys, name):
    # make-task tbd_aime25 custom.jsonl silently shadowed the built-in task
    data = _questions(tmp_path)
    assert main(["make-task", name, str(data), "--dir", str(tmp_path / "tasks")]) == 2
    assert f"task name {name!r} is one of lm-eval-tbd's own tasks" in capsys.readouterr().err
