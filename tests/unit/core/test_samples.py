"""lm_eval_tbd.core.samples: reading runs back from an lm_eval output folder (the session's real
lm_eval run on the tiny model, the main_run fixture)."""

import pytest


def test_load_run_refuses_runs_of_several_models(main_run, tmp_path):
    import shutil

    from lm_eval_tbd.core.samples import load_run

    out, _ = main_run
    (samples,) = sorted(out.rglob("samples_tbd_aime24_*.jsonl"))
    for model in ("modelA", "modelB"):
        (tmp_path / model).mkdir()
        shutil.copy(samples, tmp_path / model / samples.name)
    with pytest.raises(ValueError, match="runs of task 'tbd_aime24' from several models"):
        load_run(tmp_path, "tbd_aime24")
    assert len(load_run(tmp_path / "modelA", "tbd_aime24").questions) == 4
