"""Firmware builds for a trained model folder: generate the sources the `wake` app needs (the compiled
model, the frontend tables, the detector constants from thresholds.json) and build/run it; or, for a
bare int8 .tflite, only the compiled model (the `bench` app: the MLPerf Tiny DUT).

The generated files go under a build folder, never into firmware/ (DESIGN.md: generated files live under
a build directory and open with a banner naming their generator and input hash).
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kws.errors import KwsError

REPO = Path(__file__).resolve().parents[3]


@dataclass
class WakeRun:
    events: list[tuple[str, int, int]]     # (label, score 0..255, t_ms)
    hops: int
    invocations: int
    frontend_ticks: int
    model_ticks: int
    ticks_hz: int
    busy_ticks: int      # outside board_idle() from the first audio block to the end of the stream
    total_ticks: int
    overruns: int        # audio blocks dropped because the app's FIFO was full
    uart: str


def _write_if_changed(path: Path, text: str) -> None:
    """Leave an identical file untouched, so make does not rebuild what did not change."""
    if not path.is_file() or path.read_text() != text:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)


def generate(model_dir: str | Path, gen_dir: str | Path, *, target: str = "cortex-m4") -> dict[str, Path]:
    """Write the generated sources for a model into gen_dir.

    model_dir: a model folder (kws train output): model.c/.h, kws_frontend_config.c/.h and
    kws_detector_config.h (for the wake app); or an int8 .tflite file: model.c/.h only (for the bench
    app). Returns the paths written ("model_c", "gen", and for a folder "frontend_h", "frontend_c").
    """
    from kws.compile import codegen

    src = Path(model_dir)
    gen = Path(gen_dir)
    if src.suffix == ".tflite":
        if not src.is_file():
            raise KwsError(f"{src}: no such .tflite file")
        c = codegen.compile_model(src, target=target, name="model")
        gen.mkdir(parents=True, exist_ok=True)
        _write_if_changed(gen / "model.h", c.header)
        _write_if_changed(gen / "model.c", c.source)
        return {"model_c": gen / "model.c", "gen": gen}

    from kws import config
    from kws.evaluate import codegen as det_codegen
    from kws.evaluate import streaming
    from kws.features import tables

    tflite = src / "model_int8.tflite"
    if not tflite.is_file() or not (src / "thresholds.json").is_file():
        raise KwsError(f"{src}: not a model folder (model_int8.tflite and thresholds.json are needed) "
                       "nor a .tflite file")
    _, dep = streaming.load_deployment(src)
    gen.mkdir(parents=True, exist_ok=True)
    c = codegen.compile_model(tflite, target=target, name="model")
    _write_if_changed(gen / "model.h", c.header)
    _write_if_changed(gen / "model.c", c.source)
    header, source = tables.write_c(tables.build(config.frontend_preset(dep.preset)), gen)
    _write_if_changed(gen / "kws_detector_config.h", det_codegen.detector_header(src))
    return {"model_c": gen / "model.c", "frontend_h": Path(header), "frontend_c": Path(source),
            "gen": gen}


def build_wake(model_dir: str | Path, *, board: str = "qemu_mps2_an386", build_dir: str | Path | None = None,
               extra_cflags: tuple[str, ...] = ()) -> Path:
    """Build the wake app for model_dir; extra_cflags e.g. ("-DKWS_WAKE_LINGER=1",) (see apps/wake/main.c)."""
    from kws.bench import qemu

    model_dir = Path(model_dir)
    root = Path(build_dir) if build_dir else REPO / "build" / "firmware" / f"wake-{model_dir.resolve().name}"
    target = "cortex-m4" if board != "host" else "host"
    files = generate(model_dir, root / "gen", target=target)
    return qemu.build(board, "wake", extra_srcs=[files["model_c"], files["frontend_c"]], extra_inc=[files["gen"]],
                      extra_cflags=["-include", str(files["frontend_h"]), *extra_cflags], build_dir=root)


_EVENT = re.compile(r"^wake (\S+) (\d+) (\d+)$")
_SUMMARY = re.compile(r"^wake: hops (\d+) invocations (\d+) detections (\d+) frontend_ticks (\d+) "
                      r"model_ticks (\d+) ticks_hz (\d+) busy_ticks (\d+) total_ticks (\d+) overruns (\d+)$")


def parse_wake_uart(uart: str) -> WakeRun:
    events, summary = [], None
    for line in uart.splitlines():
        line = line.strip()
        m = _EVENT.match(line)
        if m:
            events.append((m.group(1), int(m.group(2)), int(m.group(3))))
            continue
        m = _SUMMARY.match(line)
        if m:
            summary = [int(v) for v in m.groups()]
    if summary is None:
        last = (uart.strip().splitlines() or ["no output"])[-1]
        raise KwsError(f"wake app: no summary line in its output (last line: {last})")
    hops, inv, det, fe, nn, hz, busy, total, over = summary
    if det != len(events):
        raise KwsError(f"wake app: summary says {det} detections, {len(events)} event lines were read")
    return WakeRun(events, hops, inv, fe, nn, hz, busy, total, over, uart)


def run_wake_qemu(elf: Path, pcm: np.ndarray, *, timeout_s: float = 1800,
                  icount_shift: int | None = None, progress=None) -> WakeRun:
    """Stream int16 pcm through the wake app under QEMU in real time as the guest sees it (the board
    delivers one 20 ms block per 20 ms of virtual time); returns its events and cost counters.
    icount_shift: one instruction = 2^shift ns (default qemu.DEFAULT_ICOUNT_SHIFT = 6, a 15.6 MIPS core).
    progress: called as progress(done_s, total_s) with the seconds of audio the device has read (see
    _audio_progress); it does not change the run."""
    from kws.bench import qemu

    pcm = np.ascontiguousarray(pcm, dtype="<i2")
    with tempfile.TemporaryDirectory(prefix="kws-wake-") as tmp:
        audio = Path(tmp) / "wake_audio.raw"
        audio.write_bytes(pcm.tobytes())
        shift = qemu.DEFAULT_ICOUNT_SHIFT if icount_shift is None else icount_shift
        with _audio_progress(audio, len(pcm), progress) as watch:
            res = qemu.run_ok(elf, cwd=Path(tmp), timeout_s=timeout_s, icount_shift=shift,
                              on_start=watch.attach if watch else None)
    run = parse_wake_uart(res.uart)
    _progress_done(len(pcm), progress, watch)
    return run


def run_wake_host(exe: Path, pcm: np.ndarray, *, timeout_s: float = 600, progress=None) -> WakeRun:
    """The same app built for the host board (an x86 program reading wake_audio.raw).
    progress: as for run_wake_qemu."""
    import subprocess

    pcm = np.ascontiguousarray(pcm, dtype="<i2")
    with tempfile.TemporaryDirectory(prefix="kws-wake-host-") as tmp:
        audio = Path(tmp) / "wake_audio.raw"
        audio.write_bytes(pcm.tobytes())
        with _audio_progress(audio, len(pcm), progress) as watch, \
                subprocess.Popen([str(Path(exe).resolve())], cwd=tmp, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL) as proc:
            if watch:
                watch.attach(proc.pid)
            try:
                out, _ = proc.communicate(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                raise KwsError(f"{exe}: no result within {timeout_s:.0f} s") from None
            except BaseException:  # Ctrl-C: as subprocess.run, never leave it running
                proc.kill()
                raise
    if proc.returncode != 0:
        last = (out.strip().splitlines() or ["no output"])[-1]
        raise KwsError(f"{exe} exited with {proc.returncode}: {last}")
    run = parse_wake_uart(out)
    _progress_done(len(pcm), progress, watch)
    return run


AUDIO_RATE_HZ = 16000  # the wake app's audio (int16 mono)


@contextlib.contextmanager
def _audio_progress(audio: Path, samples: int, progress):
    """A kws.bench.readpos.ReadWatch reporting progress(seconds read, total seconds) from the position of
    the app's descriptor on its audio file (None without a progress callback)."""
    if progress is None:
        yield None
        return
    from kws.bench.readpos import ReadWatch

    total_s = samples / AUDIO_RATE_HZ
    with ReadWatch(audio, total_bytes=2 * samples,
                   report=lambda n: progress(n / 2 / AUDIO_RATE_HZ, total_s)) as watch:
        yield watch


def _progress_done(samples: int, progress, watch) -> None:
    """The app printed its end-of-stream summary: it has read the whole file."""
    if progress is not None and (watch is None or watch.best < 2 * samples):
        progress(samples / AUDIO_RATE_HZ, samples / AUDIO_RATE_HZ)


def cost_summary(run: WakeRun, seconds: float, *, qemu: bool, clock_hz: int = 80_000_000) -> str:
    """The always-on cost of a wake run in one paragraph. Under QEMU the ticks are instruction time
    (-icount shift=DEFAULT_ICOUNT_SHIFT), so instructions, and a duty cycle at clock_hz assuming one
    instruction per cycle; on the host, wall-clock time of this machine."""
    busy = 100 * run.busy_ticks / max(run.total_ticks, 1)
    text = (f"busy {busy:.1f} % of the stream's {run.total_ticks / run.ticks_hz:.1f} s (the rest idle), "
            f"{run.overruns} overruns")
    if not qemu:
        return text + " (host board: wall-clock time)"
    from kws.bench import qemu as q

    per_tick = q.ticks_to_instructions(1, q.DEFAULT_ICOUNT_SHIFT)
    fe = run.frontend_ticks * per_tick / max(run.hops, 1)
    nn = run.model_ticks * per_tick / max(run.invocations, 1)
    ips = run.busy_ticks * per_tick / seconds
    return (text + f"; instructions: frontend {fe:,.0f} per hop, model {nn:,.0f} per invocation, "
            f"{ips:,.0f} per second of audio in all = {100 * ips / clock_hz:.2f} % duty cycle at "
            f"{clock_hz / 1e6:.0f} MHz (one instruction per cycle)")


def main(argv: list[str] | None = None) -> int:
    """`make firmware` / `make sim`: python -m kws.compile.firmware build|sim --model DIR [--board B] [--wav F];
    the firmware Makefile's MODEL=: python -m kws.compile.firmware gen --model DIR|FILE.tflite --out DIR."""
    import argparse
    import sys

    ap = argparse.ArgumentParser(prog="python -m kws.compile.firmware")
    ap.add_argument("action", choices=["build", "sim", "gen"])
    ap.add_argument("--model", required=True, help="model folder (kws train output); gen also takes an int8 .tflite")
    ap.add_argument("--board", default="qemu_mps2_an386")
    ap.add_argument("--wav", help="audio to stream through the wake app (sim)")
    ap.add_argument("--out", help="folder for the generated sources (gen)")
    args = ap.parse_args(argv)
    try:
        if args.action == "gen":
            if not args.out:
                raise KwsError("gen needs --out DIR")
            generate(args.model, args.out, target="host" if args.board == "host" else "cortex-m4")
            print(f"generated {args.out}", file=sys.stderr)
            return 0
        if Path(args.model).suffix == ".tflite":
            raise KwsError(f"{args.action} needs a model folder; for a .tflite use "
                           "make -C firmware BOARD=<board> MODEL=<file.tflite> (the bench app)")
        if args.action == "sim" and args.board not in ("qemu_mps2_an386", "host"):
            raise KwsError(f"BOARD={args.board}: make sim runs qemu_mps2_an386 or host")
        image = build_wake(args.model, board=args.board)
        print(f"built {image}")
        if args.action == "build":
            return 0
        if not args.wav:
            raise KwsError("make sim needs WAV=<audio file>")
        from kws.data import audio
        from kws.train.augment import to_int16

        data, rate = audio.read(args.wav)
        x = audio.to_mono(data)
        pcm = to_int16(audio.resample(x, rate, 16000) if rate != 16000 else x)
        run = run_wake_qemu(image, pcm) if args.board == "qemu_mps2_an386" else run_wake_host(image, pcm)
        for label, score, t_ms in run.events:
            print(f"wake {label} {score} {t_ms}")
        print(f"{len(run.events)} detections in {len(pcm) / 16000:.1f} s of audio ({run.invocations} model invocations)")
        print(cost_summary(run, len(pcm) / 16000, qemu=args.board == "qemu_mps2_an386"))
        return 0
    except KwsError as e:
        print(f"kws: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
