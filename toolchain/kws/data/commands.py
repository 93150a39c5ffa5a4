"""`kws data <command>`: argument namespaces -> stage functions. No logic of its own."""

from __future__ import annotations

import argparse
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    cmd = args.data_command
    if cmd == "synth":
        from kws.data import synth
        rows = synth.synth(word=args.word, count=args.count, out=Path(args.out), negatives=args.negatives,
                           seed=args.seed, jobs=args.jobs)
        print(f"wrote {len(rows)} clips and {Path(args.out) / 'manifest.csv'}")
        return 0
    if cmd == "fetch":
        from kws.data import fetch
        root = fetch.fetch(args.dataset, out=Path(args.out), archive=args.archive, url=args.url,
                           sha256=args.sha256, download_dir=args.download_dir)
        print(f"dataset ready in {root}")
        return 0
    if cmd == "import":
        from kws.data import importer
        rows = importer.import_audio(Path(args.src), out=Path(args.out), layout=args.layout,
                                     speaker_regex=args.speaker_regex)
        print(f"imported {len(rows)} clips into {args.out}")
        return 0
    if cmd == "record":
        from kws.data import record
        paths = record.record(label=args.label, count=args.count, out=Path(args.out), seconds=args.seconds,
                              speaker=args.speaker, device=args.device)
        print(f"recorded {len(paths)} clips into {args.out}")
        return 0
    if cmd == "validate":
        from kws.data import validate
        report = validate.validate(Path(args.dir), json_out=args.json_out, report_dir=args.report_dir,
                                   quarantine=not args.no_quarantine, sample_rate_hz=args.sample_rate_hz,
                                   min_duration_s=args.min_duration_s, max_duration_s=args.max_duration_s)
        print(report.summary_line())
        return 1 if report.errors_remaining else 0
    raise AssertionError(cmd)
