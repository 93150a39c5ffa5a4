"""The CLI: every stage listed, every command documented with examples, errors on one line, fast start."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kws import config
from kws.cli import build_parser, main

STAGES = ["data", "features", "train", "eval", "compile", "sim", "export", "bench"]
DATA_COMMANDS = ["synth", "fetch", "import", "record", "validate"]


def test_help_lists_every_stage(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for stage in STAGES:
        assert f"    {stage} " in out, stage


@pytest.mark.parametrize("argv", [[s] for s in STAGES if s != "data"] + [["data", c] for c in DATA_COMMANDS] + [["data"]])
def test_every_command_has_help_with_examples(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv + ["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "  kws " in out.split("examples:")[1]


def test_bench_without_a_device_says_so_in_one_line(capsys):
    assert main(["bench", "--mode", "perf"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("kws: error: no device: give --port URL")


def test_cli_does_not_import_tensorflow_and_starts_fast():
    code = "import sys, kws.cli; kws.cli.build_parser(); print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow','keras','numpy','soundfile')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_train_config_errors_are_one_line(tmp_path, capsys):
    cases = {
        "missing.toml": None,
        "bad.toml": "this is = = not toml",
        "unknown.toml": '[wake_word]\nword = "x"\n[model]\nsize = 3\n',
        "type.toml": '[wake_word]\nword = "x"\n[data]\nsynth_count = "many"\n',
        "noword.toml": "[data]\nseed = 1\n",
        "section.toml": '[wake_word]\nword = "x"\n[modle]\narch = "tc"\n',
        "listtype.toml": '[wake_word]\nword = "x"\n[detector]\nwindows = [1, "two"]\n',
        "range.toml": '[wake_word]\nword = "x"\n[augment]\nsnr_db = [20.0, 5.0]\n',
        "pair.toml": '[wake_word]\nword = "x"\n[augment]\nspeed = [0.9]\n',
        "bool.toml": '[wake_word]\nword = "x"\n[train]\nepochs = true\n',
        "preset.toml": '[wake_word]\nword = "x"\n[frontend]\npreset = "mfcc99"\n',
        "arch.toml": '[wake_word]\nword = "x"\n[model]\narch = "transformer"\n',
        "both.toml": '[wake_word]\nword = "x"\n[commands]\nlabels = ["yes"]\ndataset = "d"\n',
        "nodata.toml": '[wake_word]\nword = "x"\n[data]\nsynth_count = 0\n',
    }
    for name, text in cases.items():
        p = tmp_path / name
        if text is not None:
            p.write_text(text)
        assert main(["train", "--config", str(p)]) == 2, name
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"kws: error: {p}"), (name, err)
    assert main(["train"]) == 2
    assert "--config" in capsys.readouterr().err


def test_config_error_messages_name_the_key(tmp_path):
    from kws.errors import KwsError

    for text, key in [('[model]\nfilters = 2.5\n', "model.filters must be an integer"),
                      ('[augment]\nsnr_db = [20.0, 5.0]\n', "augment.snr_db"),
                      ('[detector]\nrefractory_ms = ["1s"]\n', "detector.refractory_ms must be an array of numbers"),
                      ('[train]\nlearning_rate = 1\n', None)]:
        p = tmp_path / "c.toml"
        p.write_text('[wake_word]\nword = "x"\n' + text)
        if key is None:
            assert config.load_train_config(p).train.learning_rate == 1.0     # an integer is a fine number
            continue
        with pytest.raises(KwsError, match=key.replace(".", r"\.")):
            config.load_train_config(p)


def test_word_no_voice_can_say_is_refused_before_anything_is_written(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--word", "日本語", "--out", "m"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no installed voice" in err[0]
    assert list(tmp_path.iterdir()) == []


def test_default_config_parses():
    cfg = config.load_train_config(config.__file__.rsplit("/toolchain/", 1)[0] + "/configs/default.toml")
    assert cfg.word == "hey nova" and cfg.data.synth_count > 0 and cfg.out == "models/hey_nova"


def test_parser_has_no_duplicate_commands():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(sub.choices) == set(STAGES)


def test_train_short_form_is_the_default_config_for_the_word():
    from kws.train.pipeline import config_from_args

    cfg = config_from_args(config_path=None, word="Computer", out=None)
    default = config.load_train_config(config.__file__.rsplit("/toolchain/", 1)[0] + "/configs/default.toml")
    assert cfg.word == "Computer" and cfg.out == "models/computer" and cfg.is_wake_word
    assert cfg.model == default.model and cfg.augment == default.augment and cfg.train == default.train
    assert config_from_args(config_path=None, word="hey you", out="m/x").out == "m/x"
    from kws.errors import KwsError

    with pytest.raises(KwsError, match="either --config or --word"):
        config_from_args(config_path="configs/default.toml", word="x", out=None)
