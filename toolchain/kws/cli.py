"""`kws`: the command line. Parses arguments and dispatches to the stage functions; nothing else.

Stage modules are imported only when their command runs, so `kws --help` stays fast (TensorFlow is
never imported by commands that do not train).
"""

from __future__ import annotations

import argparse
import sys
import textwrap

from kws import __version__
from kws.errors import KwsError

_F = argparse.RawDescriptionHelpFormatter


def _examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def _add(sub, name: str, help_: str, description: str, examples: list[str]) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help_, description=textwrap.dedent(description).strip(),
                          epilog=_examples(*examples), formatter_class=_F)


def _data_parsers(sub) -> None:
    p = _add(sub, "data", "acquire and validate audio (synth, fetch, import, record, validate)",
             "Get audio in and prove it is fit to train on. Every command writes 16 kHz mono 16-bit WAV "
             "under OUT/<label>/ and one OUT/manifest.csv.",
             ["kws data synth --word 'hey nova' --count 400 --negatives 800 --out data/nova",
              "kws data validate data/nova --json data/nova-report.json"])
    dsub = p.add_subparsers(dest="data_command", metavar="COMMAND", required=True)

    s = _add(dsub, "synth", "synthesize a wake word (and negatives) with every installed voice",
             """Synthesize WORD with every voice the machine has (espeak-ng accents x variants x speed x
             pitch, flite, festival), resampled to 16 kHz. --negatives adds an _unknown_ class of other and
             confusable words and a _silence_ class of generated noise. The same seed gives the same bytes.""",
             ["kws data synth --word 'hey nova' --count 200 --out data/nova",
              "kws data synth --word computer --count 500 --negatives 1000 --seed 7 --out data/computer"])
    s.add_argument("--word", required=True, help="the wake word or phrase")
    s.add_argument("--count", type=int, required=True, help="number of wake-word clips")
    s.add_argument("--out", required=True, help="output folder (must not exist, or be empty)")
    s.add_argument("--negatives", type=int, default=0,
                   help="number of negative clips (two thirds _unknown_ speech, one third _silence_)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    s.add_argument("--jobs", type=int, default=None, help="parallel synthesis processes (default: CPU count)")

    f = _add(dsub, "fetch", "download (or take a local archive of) a public dataset",
             """Download Google Speech Commands v0.02 where the network allows (resumable, progress bar,
             SHA-256 checked) or take a local archive; extract it safely; write a manifest with splits from
             validation_list.txt / testing_list.txt and the dataset's speaker-hash rule.""",
             ["kws data fetch speech_commands_v2 --out data/speech_commands_v2",
              "kws data fetch speech_commands_v2 --archive ~/Downloads/speech_commands_v0.02.tar.gz --out data/sc2"])
    f.add_argument("dataset", choices=["speech_commands_v2"], help="dataset name")
    f.add_argument("--out", required=True, help="output folder (must not exist, or be empty)")
    f.add_argument("--archive", help="use this local archive instead of downloading")
    f.add_argument("--url", help="download from this URL instead of the dataset's own")
    f.add_argument("--sha256", help="expected SHA-256 of the archive (default: the dataset's known hash)")
    f.add_argument("--download-dir", default=None,
                   help="where the (partial) download is kept for resuming (default: OUT's parent)")

    i = _add(dsub, "import", "bring in any folder of labelled audio, converted to 16 kHz mono",
             """Import SRC/<label>/**/*.{wav,flac,ogg,aiff} (layout folders) or a Speech Commands tree
             (layout speech_commands), resampling to 16 kHz and mixing down to mono.""",
             ["kws data import ~/recordings --out data/mine",
              "kws data import ../shared/data/real/fsdd --out data/fsdd16k --speaker-regex '^\\d+_([a-z]+)_'"])
    i.add_argument("src", help="source folder")
    i.add_argument("--out", required=True, help="output folder (must not exist, or be empty)")
    i.add_argument("--layout", choices=["folders", "speech_commands"], default="folders")
    i.add_argument("--speaker-regex", default=None,
                   help="regex on the file name whose first group is the speaker id")

    r = _add(dsub, "record", "record clips from a microphone with prompts and a level meter",
             """Record COUNT takes of LABEL from the default (or given) input device: a prompt per take,
             a live level meter, leading/trailing silence trimmed.""",
             ["kws data record --label hey_nova --count 20 --out data/mine",
              "kws data record --label _unknown_ --count 10 --seconds 3 --out data/mine --speaker alice"])
    r.add_argument("--label", required=True)
    r.add_argument("--count", type=int, required=True)
    r.add_argument("--out", required=True, help="dataset folder (created if missing; clips are added)")
    r.add_argument("--seconds", type=float, default=2.0, help="length of each take before trimming")
    r.add_argument("--speaker", default=None, help="speaker id for the manifest (default: user name)")
    r.add_argument("--device", default=None, help="sounddevice input device name or index")

    v = _add(dsub, "validate", "check every clip and quarantine the ones unfit to train on",
             """Check every clip (decoding, rate, channels, duration, clipping, silence, DC offset, NaN,
             duplicates, label balance, speaker leakage, speech-like energy) and write a markdown + JSON
             report with histograms. Failing clips move to DIR/_quarantine/<reason>/ and the manifest says
             why; nothing is deleted. Exit status 1 when errors remain.""",
             ["kws data validate data/nova",
              "kws data validate ../shared/data/real/fsdd --no-quarantine --report-dir /tmp/fsdd-report --sample-rate-hz 8000"])
    v.add_argument("dir", help="dataset folder (with manifest.csv, or <label>/ sub-folders)")
    v.add_argument("--json", dest="json_out", default=None, help="also write the JSON report here")
    v.add_argument("--report-dir", default=None, help="folder for report.md/report.json/PNGs (default DIR/_report)")
    v.add_argument("--no-quarantine", action="store_true", help="report only: move nothing, write nothing in DIR")
    v.add_argument("--sample-rate-hz", type=int, default=16000, help="expected sample rate (default 16000)")
    v.add_argument("--min-duration-s", type=float, default=0.2)
    v.add_argument("--max-duration-s", type=float, default=30.0)


def _later_parsers(sub) -> None:
    """Stages that later issues build; they exist now so `kws --help` shows the whole pipeline."""
    later: list[tuple[str, int, str, str]] = []  # (name, issue, help, example); none left
    for name, issue, help_, example in later:
        p = _add(sub, name, f"{help_} (arrives with issue {issue})", f"{help_[0].upper()}{help_[1:]}.", [example])
        p.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        p.set_defaults(not_yet=issue)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kws", formatter_class=_F,
        description="kws: always-on keyword spotting for microcontrollers.\n\n"
                    "Pipeline: data -> features -> train -> eval -> compile -> firmware -> bench.",
        epilog=_examples("kws data synth --word 'hey nova' --count 200 --out data/nova",
                         "kws train --config configs/default.toml",
                         "kws <command> --help"))
    parser.add_argument("--version", action="version", version=f"kws {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _data_parsers(sub)
    t = _add(sub, "train", "build a wake-word model from a config (data, train, quantize, calibrate)",
             """Build a wake-word model. With --config the TOML file says everything; --word/--out is the
             short form with all defaults (synthetic data).""",
             ["kws train --config configs/default.toml", "kws train --word computer --out models/computer"])
    t.add_argument("--config", default=None, help="TOML config (see configs/default.toml)")
    t.add_argument("--word", default=None, help="wake word (short form, all defaults)")
    t.add_argument("--out", default=None, help="model folder (default from the config or the word)")
    t.add_argument("--strategy", choices=["default", "mirrored", "multiworker"], default="default",
                   help="tf.distribute strategy: one device, all local devices, or the workers in TF_CONFIG")
    t.add_argument("--cpu-devices", type=int, default=None,
                   help="split the CPU into N logical devices (to run --strategy mirrored on one CPU)")
    t.add_argument("--finetune-from", default=None, metavar="MODEL_DIR",
                   help="start from this trained model and adapt it on the config's data (few real clips)")
    t.add_argument("--epochs", type=int, default=None, help="override train.epochs (or train.finetune_epochs)")
    t.add_argument("--force", action="store_true",
                   help="replace an existing model folder (the old one is kept as OUT.old-<time>)")
    f = _add(sub, "features", "compute int8 features with the C frontend (the device's own code)",
             """Features of audio files or folders (16 kHz mono; nothing is resampled silently) with the
             integer C frontend the firmware runs. OUT.npz holds x int8 [N, frames, coeffs], names, labels.""",
             ["kws features ../shared/data/real/speech_commands_v2_test --preset mlperf_kws01 --out sc_test.npz",
              "kws features data/nova/hey_nova --preset ww_logmel40 --clip-samples 24000 --out nova.npz"])
    f.add_argument("inputs", nargs="+", metavar="IN", help="audio files or folders (searched recursively)")
    f.add_argument("--preset", default="mlperf_kws01", help="frontend preset (mlperf_kws01, ww_logmel40)")
    f.add_argument("--out", required=True, help="output .npz (must not exist)")
    f.add_argument("--clip-samples", type=int, default=None,
                   help="pad/cut every clip to this many samples (presets without a fixed clip length)")
    from kws.evaluate import run as eval_run

    eval_run.add_parser(sub, _add)
    from kws.compile import commands as compile_commands

    compile_commands.add_parsers(sub, _add)
    from kws.bench import commands as bench_commands

    bench_commands.add_parser(sub, _add)
    _later_parsers(sub)
    return parser


def _dispatch(args: argparse.Namespace) -> int:
    if getattr(args, "not_yet", None):
        print(f"kws {args.command}: not implemented yet (tracked in issue {args.not_yet})", file=sys.stderr)
        return 2
    if args.command == "data":
        from kws.data import commands
        return commands.run(args)
    if args.command == "features":
        from kws.features import extract
        info = extract.extract(args.inputs, preset=args.preset, out=args.out, clip_samples=args.clip_samples)
        print(f"wrote {info['out']}: x {info['shape']} int8 ({info['preset']})")
        return 0
    if args.command == "eval":
        from kws.evaluate import run as eval_run
        return eval_run.run_cli(args)
    if args.command in ("compile", "sim", "export"):
        from kws.compile import commands as compile_commands
        return compile_commands.run_cli(args)
    if args.command == "bench":
        from kws.bench import commands as bench_commands
        return bench_commands.run_cli(args)
    if args.command == "train":
        from kws.train import pipeline
        return pipeline.run_cli(config_path=args.config, word=args.word, out=args.out, strategy=args.strategy,
                                cpu_devices=args.cpu_devices, finetune_from=args.finetune_from, epochs=args.epochs,
                                force=args.force)
    raise AssertionError(args.command)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except KwsError as exc:
        print(f"kws: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kws: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
