"""The output-name check shared by the benchmark scripts, and that each script applies it."""

import argparse
import importlib

import pytest

from benchmarks import _cli


@pytest.mark.parametrize("stem", ["real_student", "speed-smollm2", "run.2", "_x", "N200"])
def test_plain_stems_pass(stem):
    _cli.check_stem(argparse.ArgumentParser(), "--name", stem)


@pytest.mark.parametrize("stem", ["", ".", "..", ".hidden", "../x", "a/b", "a\\b", "a b", "é"])
def test_other_stems_exit_naming_the_option(stem, capsys):
    with pytest.raises(SystemExit) as err:
        _cli.check_stem(argparse.ArgumentParser(), "--stem", stem)
    assert err.value.code == 2
    assert f"--stem {stem!r}: use letters, digits" in capsys.readouterr().err


@pytest.mark.parametrize("script, argv, option", [
    ("real_student", ["--name", ".hidden"], "--name"),
    ("beyond", ["--name", "../real_student"], "--name"),
    ("beyond", ["--stem", "a/b"], "--stem"),
])
def test_scripts_refuse_a_bad_stem(script, argv, option, capsys):
    module = importlib.import_module(f"benchmarks.{script}")
    with pytest.raises(SystemExit) as err:
        module.main(argv)
    assert err.value.code == 2
    assert f"{option} {argv[1]!r}: use letters" in capsys.readouterr().err
