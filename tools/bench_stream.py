#!/usr/bin/env python3
"""Plays real audio to the wake-word firmware with `kws bench --mode stream` and rewrites the `stream`
section of BENCHMARKS.md.

    .venv/bin/python tools/bench_stream.py [--model models/jarvis] [--shared ../shared] [--snr-db DB]
                                           [--positives DIR|FILE ...] [--negatives DIR ...] [--out BENCHMARKS.md]

- Builds the `wake` app for qemu_mps2_an386 (Cortex-M4F) with the model folder's compiled model, frontend
  tables and detector constants (`python -m kws.compile.firmware build`, as `make firmware` does; the same
  ELF as tools/bench_firmware.py). The model folder must exist: `make train CONFIG=configs/jarvis.toml`.
- Runs the real CLI, `kws bench --mode stream --board qemu_mps2_an386 --firmware <wake.elf> --positives ...
  --negatives ... --noise ... --json ...`: one long recording (every positive clip with 1 s of quiet
  around it, each negatives folder back to back, each noise file) played to the app in device time under
  QEMU -icount, its own detections scored with `kws eval`'s rules.
- Runs `kws eval` (the host simulation: C frontend + int8 model in tflite-micro + the integer detector,
  each clip from a fresh state) on the same audio with the same model, and puts both side by side.
Default audio, all real speech from ../shared/data/real: positives = Picovoice "jarvis" recordings;
negatives = Speech Commands v2 test, FSDD digits, Picovoice "view glass"; noise = Speech Commands
background noise (as negative audio; also mixed under everything with --snr-db).
Every child process runs with a timeout and is killed (with any QEMU it started) on the way out.
The JSON reports stay in build/bench-stream/.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "toolchain"))
sys.path.insert(0, str(REPO / "tools"))

from benchmarks_md import write_section  # noqa: E402

OUT = REPO / "build" / "bench-stream"
BOARD = "qemu_mps2_an386"
CLOCK_HZ = 80_000_000          # the duty cycle figure assumes one instruction per cycle at this clock
BUILD_TIMEOUT_S = 600
BENCH_TIMEOUT_S = 1800
EVAL_TIMEOUT_S = 1200


# --- child processes: timeouts, output teed to our log, killed with their descendants ----------------
def _descendants(pid: int) -> list[int]:
    """Every live descendant of pid (QEMU runs in its own session, so a process group does not reach it)."""
    out: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            children = Path(f"/proc/{pid}/task/{tid}/children").read_text().split()
        except OSError:
            continue
        for c in map(int, children):
            out += [c, *_descendants(c)]
    return out


def _stop(proc: subprocess.Popen) -> None:
    """SIGINT first (the CLI then kills its QEMU itself), SIGKILL to it and every descendant after 10 s."""
    if proc.poll() is not None:
        return
    kids = _descendants(proc.pid)
    try:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    kids += _descendants(proc.pid)
    for pid in [proc.pid, *kids]:
        for kill in (os.killpg, os.kill):
            try:
                kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def _child_setup() -> None:
    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_DFL)   # a background job's ignored SIGINT survives exec


def run(cmd: list[str], *, timeout_s: float, what: str) -> tuple[list[tuple[float, str]], float]:
    """Run cmd (stdout + stderr teed to ours, each line timestamped); ([(t, line)], wall seconds).
    Raises SystemExit when it fails or outlives timeout_s (it is killed first)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO / "toolchain"),
                                                                     os.environ.get("PYTHONPATH")])))
    print("$ " + " ".join(cmd), flush=True)
    t0 = time.monotonic()
    lines: list[tuple[float, str]] = []
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace", preexec_fn=_child_setup)

    def tee() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.append((time.monotonic() - t0, line.rstrip("\n")))
            print(f"  | {line}", end="", flush=True)

    reader = threading.Thread(target=tee, daemon=True)
    reader.start()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _stop(proc)
        raise SystemExit(f"bench_stream: {what} did not finish within {timeout_s:g} s (killed)") from None
    finally:
        _stop(proc)   # a no-op when it has exited; on Ctrl-C / SIGTERM it takes any QEMU with it
    reader.join(timeout=10)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"bench_stream: {what} failed (exit {proc.returncode}): {' '.join(cmd)}")
    return lines, wall


def _on_sigterm(signum, frame):
    raise KeyboardInterrupt


# --- the audio and the model ----------------------------------------------------------------------
def inventory(paths: list[str]) -> list[dict]:
    """[{path, files, minutes}] with kws eval's notion of an audio file (kws.data.audio.is_audio_name)."""
    import soundfile as sf

    from kws.data import audio

    out = []
    for p in map(Path, paths):
        files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file() and audio.is_audio_name(f))
        seconds = sum(sf.info(str(f)).duration for f in files)
        out.append({"path": str(p), "files": len(files), "minutes": seconds / 60})
    return out


def _rel(path: str, shared: Path) -> str:
    try:
        return "../shared/" + str(Path(path).resolve().relative_to(shared.resolve()))
    except ValueError:
        return path


def _commit() -> str:
    git = ["git", "-C", str(REPO)]
    sha = subprocess.run(git + ["rev-parse", "--short=10", "HEAD"], capture_output=True, text=True,
                         timeout=30).stdout.strip() or "unknown"
    dirty = subprocess.run(git + ["status", "--porcelain", "--untracked-files=no", "--", "toolchain", "firmware"],
                           capture_output=True, text=True, timeout=30).stdout.split("\n")
    dirty = [line[3:] for line in dirty if line.strip()]
    return f"`{sha}`" + (f" with uncommitted changes to {', '.join(f'`{d}`' for d in dirty)}" if dirty else "")


# --- the section ----------------------------------------------------------------------------------
def _pct_ci(v: float, ci: list[float]) -> str:
    return f"{100 * v:.1f} % ({100 * ci[0]:.1f}–{100 * ci[1]:.1f})"


def _rate_ci(v: float, ci: list[float]) -> str:
    return f"{v:.2f} ({ci[0]:.2f}–{ci[1]:.2f})"


def _by_folder(counts: dict[str, int], folders: list[str]) -> dict[str, int]:
    out = {f: 0 for f in folders}
    for name, n in counts.items():
        for f in folders:
            if name == f or name.startswith(f.rstrip("/") + "/"):
                out[f] += n
                break
    return out


def section(*, model: Path, th: dict, model_hash: str, commit: str, shared: Path, pos: list[dict],
            neg: list[dict], noise: list[dict], snr_db: float | None, dev: dict, qemu_wall: float | None,
            bench_wall: float, ev: dict | None, eval_wall: float | None, script_s: float,
            default_audio: bool) -> str:
    d = dev["device"] or {}
    diff = (0, 0)
    try:
        synth = json.loads((model / "metrics.json").read_text())["streaming_test"]["evaluation"]
    except (OSError, KeyError, ValueError):
        synth = None
    e = ev["evaluation"] if ev else None
    busy = d.get("busy_share")
    from kws.bench import qemu

    mips = 1e3 / (1 << qemu.DEFAULT_ICOUNT_SHIFT)
    na = "–"
    rows = [
        ("positive clips", f"{dev['positives']:,}", f"{e['positives']:,}" if e else na),
        ("misses", f"{dev['misses']}", f"{e['misses']}" if e else na),
        ("FRR (95 % CI)", _pct_ci(dev["frr"], dev["frr_ci95"]), _pct_ci(e["frr"], e["frr_ci95"]) if e else na),
        ("false accepts", f"{dev['false_accepts']}", f"{e['false_accepts']}" if e else na),
        ("FA/h (95 % CI)", _rate_ci(dev["faph"], dev["faph_ci95"]), _rate_ci(e["faph"], e["faph_ci95"]) if e else na),
        ("negative audio", f"{dev['negative_hours']:.2f} h", f"{e['negative_hours']:.2f} h" if e else na),
        ("detections, all audio", f"{dev['detections']:,}", na),
        ("model invocations", f"{d['invocations']:,}" if d else na, f"{ev['invocations']:,}" if ev else na),
        ("audio blocks dropped (overruns)", f"{d['overruns']}" if d else na, "n/a (no real time)"),
        ("core busy (outside the idle wait)",
         f"{100 * busy:.1f} % of device time at {mips:.1f} M instr/s = {100 * busy * mips * 1e6 / CLOCK_HZ:.2f} % "
         f"at {CLOCK_HZ // 1_000_000} MHz" if busy is not None else na, "n/a"),
        ("wall time", (f"{qemu_wall:.0f} s QEMU" if qemu_wall is not None else "") +
         f"{' / ' if qemu_wall is not None else ''}{bench_wall:.0f} s whole command",
         f"{eval_wall:.0f} s whole command" if eval_wall is not None else na),
    ]
    if e:
        dm, em = set(dev["missed_names"]), set(e["missed_names"])
        diff = (len(dm - em), len(em - dm))
        rows.append(("clips missed by this one only", f"{len(dm - em)}", f"{len(em - dm)}"))
    folders = [x["path"] for x in neg] + [x["path"] for x in noise]
    fa_dev = _by_folder(dev["false_accepts_by_stream"], folders)
    fa_ev = _by_folder(e["false_accepts_by_stream"], folders) if e else {}
    audio_rows = [f"| {_rel(x['path'], shared)} | positives | {x['files']:,} | {x['minutes']:.1f} + "
                  f"{2 * x['files'] / 60:.1f} of quiet | | |" for x in pos]
    audio_rows += [f"| {_rel(x['path'], shared)} | {role} | {x['files']:,} | {x['minutes']:.1f} | "
                   f"{fa_dev[x['path']]} | {fa_ev[x['path']] if e else na} |"
                   for role, xs in (("negatives", neg), ("noise (negatives)", noise)) for x in xs]
    total_min = dev["audio_s"] / 60
    det = ev["detector"] if ev else {}
    lines = [
        "## Wake-word stream on the device (`kws bench --mode stream`)",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} at commit {commit}; rerun: `.venv/bin/python tools/bench_stream.py` "
        f"(`make bench-stream`; the script took {script_s / 60:.1f} min on a 2-core machine). Model: `{model.name}` "
        f"(model_int8.tflite sha256 `{model_hash}`, trained on synthetic speech only by `make train "
        f"CONFIG=configs/{model.name}.toml`, so every clip below is unseen; {th['preset']}, {th['window_frames']} "
        f"frames, model every {th['stride_hops']} hops; shipped detector: threshold {th['threshold']}, window "
        f"{th['window']}, refractory {th['refractory']} invocations, calibrated for {th.get('target_faph', '?')} "
        "FA/h on synthetic validation audio).",
        "",
        f"Audio: {total_min:.1f} min of real recordings from ../shared/data/real, 16 kHz int16"
        + (f", noise mixed under all of it at {snr_db:g} dB SNR" if snr_db is not None else ", no noise mixed in")
        + ". The app hears it as one recording: each positive clip with 1 s of quiet before and after, then "
        "each negatives folder back to back, then each noise file. `kws eval` gets the same folders (the same "
        "clips, in the same order, the same noise mix) but scores each positive clip and each negatives folder "
        "from a fresh state.",
        "",
        "| folder | role | files | minutes | false accepts: app | false accepts: kws eval |",
        "|---|---|---:|---:|---:|---:|",
        *audio_rows,
        "",
        f"| same audio, same model, shipped detector | `wake` app, {BOARD} under QEMU | `kws eval` (host simulation) |",
        "|---|---:|---:|",
        *[f"| {a} | {b} | {c} |" for a, b, c in rows],
        "",
    ]
    if ev:
        sweep = []
        for k, x in ev["frr_at_faph"].items():
            sweep.append(f"{_pct_ci(x['frr'], x['ci95'])} at {k} FA/h (threshold {x['threshold']})"
                         if x.get("threshold") is not None else f"no threshold reaches {k} FA/h")
        lines += [f"`kws eval`'s threshold sweep on the same audio (window {det.get('window')}, refractory "
                  f"{det.get('refractory')}; each threshold picked on this same audio, so in-sample and optimistic, and "
                  "resting on the one or two false accepts that set it): FRR " + "; ".join(sweep) + ".", ""]
    lines += [
        "What the numbers mean. A positive clip counts as found when the app reports a detection between the "
        "start of its utterance and 1 s after its end; FRR = misses / positive clips, with the exact "
        "(Clopper-Pearson) 95 % interval. Every detection in negative audio is a false accept (detections "
        "within 1 s of each other count once); FA/h = false accepts per hour of negative audio, with the exact "
        "(Garwood, Poisson) 95 % interval. The app's figures are its own detections (`wake <label> <score> <t_ms>` "
        "on its UART), after its own smoothing and refractory period, on the device's clock.",
        "",
        "Device time under QEMU is instruction time: `-icount shift="
        f"{qemu.DEFAULT_ICOUNT_SHIFT}` makes every guest instruction last {1 << qemu.DEFAULT_ICOUNT_SHIFT} ns of "
        f"virtual time (a {mips:.1f} M instructions/s core), and the board delivers one 20 ms audio block per "
        "20 ms of that time. Overruns would mean the app fell behind its audio at that speed; the busy share is "
        "the part of virtual time spent outside the idle wait, and its value at "
        f"{CLOCK_HZ // 1_000_000} MHz assumes one instruction per cycle (real Cortex-M4 code takes more cycles "
        "for loads, stores and branches). QEMU's wall time only says how long this benchmark takes here.",
        "",
        "Limits. The negative audio is short: with "
        f"{dev['negative_hours']:.2f} h the FA/h interval is wide (even 0 false accepts leaves an upper bound "
        f"of {3.689 / dev['negative_hours']:.1f}/h), so these figures cannot confirm a target such as 0.5 FA/h; "
        "that takes tens of hours. "
        + ("The negatives are isolated words and digits (Speech Commands, FSDD), another wake phrase (\"view "
           "glass\") and four noise files, not hours of conversation, television or real rooms. The "
           f"{sum(x['files'] for x in pos)} positives all come from one corpus (Picovoice's wake-word benchmark), "
           "so the FRR interval covers sampling within it, not other microphones, rooms or distances. All the "
           "real negative audio in ../shared is used: more hours need more recordings, not replays of these. "
           if default_audio else "")
        + (f"The model was trained on synthetic voices only; on its synthetic test split the shipped detector "
           f"misses {100 * synth['frr']:.1f} % of wake words, on these real speakers {100 * dev['frr']:.1f} %"
           + (" (and `kws eval` agrees): that gap is the model's, not the firmware's." if e else ".")
           if synth else ""),
        "",
        "Why the two columns can differ at all: on the same samples the app and `kws eval` detect the same "
        "events with the same scores and times (tools/bench_firmware.py checks that), but here the app hears "
        "one continuous stream, where `kws eval` starts each clip and each negatives folder afresh. So on the "
        f"device the model runs on one {th['stride_hops'] * 20} ms grid for the whole stream (a clip's "
        "invocations fall at other instants than in `kws eval`), its ~1 s input window and the smoothing window "
        "at the start of a clip still hold the end of the previous one, and a refractory period can run on "
        "from one clip into the next. Clips whose score is near the threshold then flip between hit and miss"
        + (f" ({diff[0]} missed by the app only, {diff[1]} by `kws eval` only; the FRRs differ by "
           f"{100 * abs(dev['frr'] - e['frr']):.1f} points, "
           + ("inside both 95 % intervals)" if dev["frr_ci95"][0] <= e["frr"] <= dev["frr_ci95"][1]
              and e["frr_ci95"][0] <= dev["frr"] <= e["frr_ci95"][1] else "**outside** the 95 % intervals)")
           if e else "") + ".",
    ]
    return "\n".join(lines)


def main() -> int:
    signal.signal(signal.SIGTERM, _on_sigterm)
    t_start = time.monotonic()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(REPO / "models" / "jarvis"), help="model folder (default models/jarvis)")
    ap.add_argument("--shared", default=str(REPO.parent / "shared"))
    ap.add_argument("--positives", action="append", default=None, metavar="DIR|FILE",
                    help="wake-word audio (default ../shared/data/real/picovoice_wwb/jarvis)")
    ap.add_argument("--negatives", action="append", default=None, metavar="DIR",
                    help="negative audio (default Speech Commands test, FSDD, Picovoice view_glass)")
    ap.add_argument("--noise", action="append", default=None, metavar="DIR",
                    help="noise recordings (default ../shared/data/real/background_noise)")
    ap.add_argument("--snr-db", type=float, default=None, help="also mix the noise under all audio at this SNR")
    ap.add_argument("--no-eval", action="store_true", help="skip the kws eval comparison")
    ap.add_argument("--bench-timeout-s", type=float, default=BENCH_TIMEOUT_S,
                    help=f"kill the stream run after this long (default {BENCH_TIMEOUT_S} s)")
    ap.add_argument("--out", default=str(REPO / "BENCHMARKS.md"))
    args = ap.parse_args()

    model = Path(args.model)
    if not (model / "thresholds.json").is_file() or not (model / "model_int8.tflite").is_file():
        raise SystemExit(f"bench_stream: {model}: no trained model there; run `make train CONFIG=configs/jarvis.toml` "
                         "first (it writes models/jarvis)")
    shared = Path(args.shared)
    real = shared / "data" / "real"
    if not real.is_dir():
        raise SystemExit(f"bench_stream: {real}: not found (the real audio lives in ../shared)")
    positives = args.positives or [str(real / "picovoice_wwb" / "jarvis")]
    negatives = args.negatives or [str(real / "speech_commands_v2_test"), str(real / "fsdd"),
                                   str(real / "picovoice_wwb" / "view_glass")]
    noise = args.noise if args.noise is not None else [str(real / "background_noise")]
    th = json.loads((model / "thresholds.json").read_text())
    model_hash = hashlib.sha256((model / "model_int8.tflite").read_bytes()).hexdigest()[:12]
    commit = _commit()
    pos_inv, neg_inv, noise_inv = inventory(positives), inventory(negatives), inventory(noise)
    OUT.mkdir(parents=True, exist_ok=True)

    py = sys.executable
    lines, _ = run([py, "-m", "kws.compile.firmware", "build", "--model", str(model), "--board", BOARD],
                   timeout_s=BUILD_TIMEOUT_S, what="building the wake app")
    built = [line.split(" ", 1)[1] for _, line in lines if line.startswith("built ")]
    if not built or not Path(built[-1]).is_file():
        raise SystemExit("bench_stream: the firmware build reported no image")
    elf = built[-1]

    audio_args = [a for p in positives for a in ("--positives", p)] + [a for n in negatives for a in ("--negatives", n)]
    audio_args += [a for n in noise for a in ("--noise", n)]
    audio_args += ["--snr-db", f"{args.snr_db:g}"] if args.snr_db is not None else []
    bench_json = OUT / "stream.json"
    bench_json.unlink(missing_ok=True)
    lines, bench_wall = run([py, "-m", "kws.cli", "bench", "--mode", "stream", "--board", BOARD, "--firmware", elf,
                             *audio_args, "--json", str(bench_json)],
                            timeout_s=args.bench_timeout_s, what="kws bench --mode stream")
    rep = json.loads(bench_json.read_text())
    if not rep.get("complete"):
        raise SystemExit(f"bench_stream: the stream run did not complete: {rep.get('error')}")
    dev = rep["stream"]
    # QEMU starts right after the CLI logs the recording it built; the rest is QEMU plus scoring (ms).
    t_rec = [t for t, line in lines if "recording:" in line]
    qemu_wall = bench_wall - t_rec[0] if t_rec else None

    ev, eval_wall = None, None
    if not args.no_eval:
        eval_json = OUT / "eval.json"
        eval_json.unlink(missing_ok=True)
        _, eval_wall = run([py, "-m", "kws.cli", "eval", str(model), *audio_args, "--json", str(eval_json),
                            "--det", str(OUT / "eval.det.png"), "--quiet"],
                           timeout_s=EVAL_TIMEOUT_S, what="kws eval")
        ev = json.loads(eval_json.read_text())

    body = section(model=model, th=th, model_hash=model_hash, commit=commit, shared=shared, pos=pos_inv,
                   neg=neg_inv, noise=noise_inv, snr_db=args.snr_db, dev=dev, qemu_wall=qemu_wall,
                   bench_wall=bench_wall, ev=ev, eval_wall=eval_wall, script_s=time.monotonic() - t_start,
                   default_audio=not (args.positives or args.negatives or args.noise is not None))
    write_section(Path(args.out), "stream", "tools/bench_stream.py", body)
    print(body)
    overruns = (dev.get("device") or {}).get("overruns", 0)
    return 0 if overruns == 0 else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("bench_stream: interrupted", file=sys.stderr)
        sys.exit(130)
