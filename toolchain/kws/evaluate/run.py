"""`kws eval`: stream real audio through the deployed path and report FRR at fixed false accepts per
hour, with intervals and the hours of negative audio behind them.

Positives: every audio file under the --positives folders holds one wake word; each is played with
1 s of quiet before and after, and it is a hit when a detection falls between the utterance's start
and 1 s after its end. Negatives: the files of each --negatives folder are played back to back as one
long stream; every detection is a false accept, debounced over 1 s. --noise files are negatives too,
and with --snr-db they are also mixed under every positive and negative at that SNR.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from kws.errors import KwsError

# scoring/streaming (scipy, tflite-micro) are imported where used: `kws --help` builds this parser.


def _files(dirs: list[str], what: str) -> list[Path]:
    from kws.data import audio

    out = []
    for d in dirs:
        p = Path(d)
        if p.is_file():
            out.append(p)
        elif p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and audio.is_audio_name(f))
            if not found:
                raise KwsError(f"{what} {p}: no audio files in it")
            out += found
        else:
            raise KwsError(f"{what} {p}: no such file or folder")
    return out


def _mix(x, noise: list, snr_db: float | None, rng):
    """float32 x with a noise segment at snr_db (x unchanged without noise or SNR)."""
    from kws.train import augment

    if snr_db is None or not noise:
        return x
    return augment.add_noise(x, augment.noise_segment(noise, len(x), rng), snr_db)


def collect_streams(model, dep, *, positives: list[str], negatives: list[str], noise: list[str] | None = None,
                    snr_db: float | None = None, progress: bool = True) -> list:
    """ScoredStreams of all the audio, scored by model (streaming.Int8Model) as deployed (dep)."""
    import numpy as np

    from kws.evaluate import streaming
    from kws.train.dataset import load_audio

    pos_files = _files(positives, "--positives")
    noise_files = _files(noise, "--noise") if noise else []
    noise_audio = [load_audio(f) for f in noise_files]
    rng = np.random.default_rng(0)
    streams = []
    bar = _bar(len(pos_files), "positives", progress)
    for f in pos_files:
        x = _mix(load_audio(f), noise_audio, snr_db, rng)
        streams.append(streaming.positive_stream(x, name=str(f), model=model, dep=dep))
        bar.update(1)
    bar.close()
    for d in negatives:
        files = _files([d], "--negatives")
        clips = [_mix(load_audio(f), noise_audio, snr_db, rng) for f in files]
        streams.append(streaming.negative_stream(clips, name=str(d), model=model, dep=dep))
        if progress:
            print(f"  negatives {d}: {len(files)} files, {streams[-1].duration_s / 60:.1f} min")
    for f, x in zip(noise_files, noise_audio):
        streams.append(streaming.negative_stream([x], name=str(f), model=model, dep=dep))
    if not any(s.kind == "negative" for s in streams):
        raise KwsError("kws eval: no negative audio (give --negatives DIR or --noise DIR)")
    return streams


def _bar(total: int, desc: str, enabled: bool):
    try:
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, disable=not enabled, leave=False)
    except ImportError:     # pragma: no cover - tqdm ships with the train extras
        class _Null:
            def update(self, n): pass
            def close(self): pass
        return _Null()


def evaluate_model(model_dir: str | Path, *, positives: list[str], negatives: list[str], noise: list[str] | None = None,
                   snr_db: float | None = None, progress: bool = True) -> tuple[dict, dict]:
    """(the `kws eval` report as a dict (see scoring.report_json), the raw sweep for plotting)."""
    from kws.evaluate import scoring, streaming
    from kws.evaluate.detector import DetectorParams

    model_bytes, dep = streaming.load_deployment(Path(model_dir))
    model = streaming.Int8Model(model_bytes)
    t0 = time.monotonic()
    streams = collect_streams(model, dep, positives=positives, negatives=negatives or [], noise=noise,
                              snr_db=snr_db, progress=progress)
    sw = scoring.sweep(streams, window=dep.window, refractory=dep.refractory)
    deployed = scoring.evaluate(streams, DetectorParams(dep.threshold, dep.window, dep.refractory))
    report = scoring.report_json(sw, evaluation=deployed)
    report["model"] = str(model_dir)
    report["detector"] = {"threshold": dep.threshold, "window": dep.window, "refractory": dep.refractory,
                          "refractory_ms": dep.invocations_to_ms(dep.refractory), "stride_hops": dep.stride_hops}
    report["audio"] = {"positives": positives, "negatives": negatives, "noise": noise or [], "snr_db": snr_db}
    report["seconds"] = round(time.monotonic() - t0, 1)
    report["invocations"] = int(sum(len(s.scores) for s in streams))
    return report, sw


def _fmt(entry: dict) -> str:
    if entry.get("threshold") is None:
        return f"not reached ({entry.get('note', '')})"
    lo, hi = entry["ci95"]
    return f"FRR {100 * entry['frr']:.1f} % (95 % CI {100 * lo:.1f}-{100 * hi:.1f} %) at threshold {entry['threshold']}"


def run_cli(args) -> int:
    from kws.fileio import write_text

    report, sweep = evaluate_model(args.model_dir, positives=args.positives, negatives=args.negatives or [],
                            noise=args.noise, snr_db=args.snr_db, progress=not args.quiet)
    ev = report["evaluation"]
    print(f"{report['positives']} positives, {report['negative_hours']:.3f} h of negative audio "
          f"({report['invocations']:,} model invocations in {report['seconds']:.0f} s)")
    for k, entry in report["frr_at_faph"].items():
        print(f"  at {k} FA/h: {_fmt(entry)}")
    lo, hi = ev["frr_ci95"]
    flo, fhi = ev["faph_ci95"]
    print(f"  shipped detector (threshold {ev['threshold']}, window {ev['window']}, refractory {ev['refractory']}): "
          f"FRR {100 * ev['frr']:.1f} % ({100 * lo:.1f}-{100 * hi:.1f} %), {ev['false_accepts']} false accepts = "
          f"{ev['faph']:.2f}/h ({flo:.2f}-{fhi:.2f})")
    det = args.det or (str(Path(args.json_out).with_suffix(".det.png")) if args.json_out else None)
    if det:
        from kws.evaluate import plots

        plots.det_curve_png({Path(args.model_dir).name: sweep}, det, title=f"DET: {Path(args.model_dir).name}",
                            overwrite=True)
        print(f"wrote {det}")
    if args.json_out:
        write_text(args.json_out, json.dumps(report, indent=1) + "\n")
        print(f"wrote {args.json_out}")
    return 0


def add_parser(sub, add) -> None:
    p = add(sub, "eval", "stream audio through the deployed path and report FRR / false accepts per hour",
            """Stream audio through exactly what the device runs (C frontend, int8 model in tflite-micro, the
            integer detector with its smoothing and refractory period) and report the false-reject rate at
            0.5 and 1 false accepts per hour over a threshold sweep, with exact 95 % intervals (binomial for
            FRR, Poisson for FAPH) and the hours of negative audio behind them. A positive file holds one
            wake word (a hit: a detection from its start to 1 s after its end); negative files are played
            back to back per folder (false accepts debounced over 1 s).""",
            ["kws eval models/hey_nova --positives data/real/hey_nova --negatives data/real/speech --json nova.json",
             "kws eval models/jarvis --positives ../shared/data/real/picovoice_wwb/jarvis "
             "--negatives ../shared/data/real/fsdd --noise ../shared/data/real/background_noise"])
    p.add_argument("model_dir", help="a model folder written by kws train (model_int8.tflite + thresholds.json)")
    p.add_argument("--positives", action="append", required=True, metavar="DIR", help="wake-word audio (repeatable)")
    p.add_argument("--negatives", action="append", default=[], metavar="DIR", help="audio without the wake word (repeatable)")
    p.add_argument("--noise", action="append", default=None, metavar="DIR", help="noise recordings (repeatable)")
    p.add_argument("--snr-db", type=float, default=None, help="also mix --noise under all audio at this SNR")
    p.add_argument("--json", dest="json_out", default=None, help="write the report as JSON here")
    p.add_argument("--det", default=None, help="write the DET curve PNG here (default: beside --json)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
