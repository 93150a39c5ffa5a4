"""`kws bench`: argument parsing and the run loop (transport -> DUT -> perf / accuracy -> report)."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time
from pathlib import Path

from kws.errors import KwsError

MODES = ("perf", "accuracy", "energy", "stream")


def add_parser(sub, add) -> argparse.ArgumentParser:
    p = add(sub, "bench", "measure a device over the MLPerf Tiny DUT protocol (perf, accuracy, energy, stream)",
            """Drive a device that speaks the MLPerf Tiny DUT protocol - our bench app on a board, under
            QEMU or on the host, or another vendor's DUT - and measure it as MLPerf Tiny does.
            perf: 5 inputs, warm-up, N inferences per timed window of >= --min-window-s of device time,
            median throughput, latency = 1/throughput (under QEMU device time is instruction time:
            -icount shift=6, one instruction = 64 ns, and instructions per inference are reported).
            accuracy: top-1, per-class accuracy, confusion matrix and MLPerf's AUC over a dataset: audio in
            Speech Commands layout (features by our C frontend, mlperf_kws01) or MLPerf .bin files with
            y_labels.csv. Faults (reset, silence, garbage, e-[...]) are retried where the protocol allows;
            otherwise the run stops with one line and the partial results are saved with "complete": false.
            energy: with --monitor (LPM01A or Joulescope) and --io-manager, MLPerf Tiny's energy mode
            measured (5 windows >= 10 s, median); with --power-model BOARD an estimate from device time.
            stream: the wake app hears one long recording; FRR and false accepts per hour as kws eval.""",
            ["kws bench --mode perf --port /dev/ttyACM0",
             "kws bench --mode perf --board qemu_mps2_an386 --firmware firmware/build/qemu_mps2_an386/bench.elf "
             "--json perf.json",
             "kws bench --mode accuracy --board qemu_mps2_an386 --firmware bench.elf "
             "--dataset ../shared/data/real/speech_commands_v2_test --json acc.json "
             "--compare-tflm ../shared/models/reference/mlperf_tiny_kws_ref_model.tflite",
             "kws bench --mode accuracy --port socket://127.0.0.1:4444 --dataset kws01_bins/",
             "kws bench --mode energy --monitor lpm01a:/dev/ttyACM0 --io-manager /dev/ttyUSB0 --json energy.json"])
    p.add_argument("--mode", choices=MODES, required=True, help="what to measure")
    t = p.add_argument_group("device (one of)")
    t.add_argument("--port", default=None, metavar="URL",
                   help="a serial device or any pyserial URL: /dev/ttyACM0, socket://host:port, rfc2217://host:port")
    t.add_argument("--board", default=None, choices=["qemu_mps2_an386", "host"],
                   help="start the device here: QEMU (UART over TCP) or a host-board program (stdin/stdout)")
    t.add_argument("--firmware", default=None, metavar="FILE", help="the bench app image for --board")
    t.add_argument("--baud", type=int, default=None,
                   help="serial baud rate for --port (default 115200; --mode energy: 9600, MLPerf's energy mode)")
    p.add_argument("--model-id", default="kws01",
                   help="the model the device must report in m-model-[...] (default kws01; '' accepts any)")
    p.add_argument("--dataset", default=None, metavar="DIR",
                   help="accuracy (and perf inputs): DIR/<label>/*.wav|flac, or DIR/y_labels.csv + .bin files")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="use N items spread evenly over the dataset (default: all)")
    p.add_argument("--input-bytes", type=int, default=490, help="the model's input size (default 490: kws01)")
    p.add_argument("--min-window-s", type=float, default=10.0,
                   help="perf: shortest timed window in device seconds (MLPerf Tiny: 10)")
    p.add_argument("--inputs", type=int, default=5, help="perf: number of inputs (MLPerf Tiny: 5)")
    p.add_argument("--warmups", type=int, default=2, help="perf: warm-up inferences before each window")
    p.add_argument("--compare-tflm", default=None, metavar="MODEL.tflite",
                   help="accuracy: also run the same features through the tflite-micro interpreter")
    p.add_argument("--json", dest="json_out", default=None, metavar="OUT", help="write the results as JSON")
    p.add_argument("--md", default=None, metavar="OUT",
                   help="write the markdown summary here (default: beside --json, OUT with .md)")
    p.add_argument("--plot", default=None, metavar="PNG",
                   help="a PNG of the results: accuracy: the confusion matrix; perf: latency and throughput per "
                        "input with the median; stream: a timeline of utterances and detections with FRR and "
                        "FA/h (default: beside --json, <stem>_confusion.png / _perf.png / _stream.png)")
    p.add_argument("--power-model", default=None, metavar="BOARD",
                   help="energy: estimate energy per inference from device time and BOARD's datasheet currents "
                        "(labelled an estimate)")
    e = p.add_argument_group("energy (MLPerf Tiny energy mode: the bench app's energy build, a power monitor)")
    e.add_argument("--monitor", default=None, metavar="SPEC",
                   help="measure with a power monitor: lpm01a:URL (ST X-NUCLEO-LPM01A on its serial port) or "
                        "joulescope (pip install 'kws-toolchain[energy]')")
    e.add_argument("--io-manager", default=None, metavar="URL",
                   help="MLPerf Tiny's IO manager relaying the DUT's UART (else --port: the DUT's own UART at 9600)")
    e.add_argument("--voltage-v", type=float, default=3.3, help="supply voltage the monitor applies (default 3.3)")
    e.add_argument("--sample-rate-hz", type=int, default=1000, help="monitor sampling rate (default 1000)")
    p.add_argument("--timeout-s", type=float, default=20.0,
                   help="longest wait for one reply line, beyond an inference's expected time (default 20)")
    p.add_argument("--retries", type=int, default=3, help="retries of one input after a recoverable fault")
    p.add_argument("--chunk", type=int, default=None,
                   help="bytes per db command (default: 62 for --board, 31 for --port as the MLCommons runner)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    w = p.add_argument_group("stream (the wake app: --firmware is the wake app, or --port a board running it)")
    w.add_argument("--positives", action="append", default=[], metavar="DIR", help="wake-word clips (repeatable)")
    w.add_argument("--negatives", action="append", default=[], metavar="DIR",
                   help="audio without the wake word, played back to back per folder (repeatable)")
    w.add_argument("--noise", action="append", default=[], metavar="DIR", help="noise recordings (repeatable)")
    w.add_argument("--snr-db", type=float, default=None, help="also mix --noise under all audio at this SNR")
    return p


class _Progress:
    """tqdm on stderr (a simple text bar when tqdm is missing); silent with --no-progress."""

    def __init__(self, total: int, desc: str, enabled: bool):
        self.bar = None
        self.enabled = enabled
        self.desc, self.total = desc, total
        if not enabled:
            return
        self.tty = sys.stderr.isatty()
        self._last_pct = -1
        if not self.tty:  # a log file: a plain line every 10 %, no carriage returns
            return
        try:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, file=sys.stderr, unit="it", leave=False, dynamic_ncols=True)
        except ImportError:
            self.bar = None

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(done - self.bar.n)
        elif not self.tty:
            pct = 100 * done // max(total, 1) // 10 * 10
            if pct != self._last_pct:
                self._last_pct = pct
                print(f"{self.desc}: {done}/{total} ({pct} %)", file=sys.stderr, flush=True)
        elif done == total or done % max(1, total // 20) == 0:
            k = int(30 * done / max(total, 1))
            print(f"\r{self.desc} [{'#' * k}{'.' * (30 - k)}] {done}/{total}", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.enabled and self.tty:
            print(file=sys.stderr)


def _perf_inputs(args, items_x) -> list[bytes]:
    import numpy as np

    if items_x is not None and len(items_x):
        idx = np.linspace(0, len(items_x) - 1, min(args.inputs, len(items_x))).round().astype(int)
        return [items_x[i].tobytes() for i in idx]
    rng = np.random.default_rng(0)
    return [rng.integers(-128, 128, args.input_bytes, dtype=np.int8).tobytes() for _ in range(args.inputs)]


def _on_sigterm(_sig, _frame):
    raise KeyboardInterrupt


class _Run:
    """One run's bookkeeping, used as `with run:` around the part that talks to devices. While it lasts,
    SIGTERM raises KeyboardInterrupt (so open devices are closed and QEMU killed on the way out). The
    error that stops it is kept in .error: a KwsError is swallowed (the caller then saves the partial
    results and raises its own one-line error), an interrupt propagates."""

    def __init__(self):
        self.error: str | None = None
        self.log_lines: list[str] = []
        self._old = None
        self._installed = False

    def log(self, msg: str) -> None:
        self.log_lines.append(msg)
        print(f"kws bench: {msg}", file=sys.stderr)

    def __enter__(self) -> "_Run":
        with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
            self._old = signal.signal(signal.SIGTERM, _on_sigterm)
            self._installed = True
        return self

    def __exit__(self, etype, exc, _tb) -> bool:
        if self._installed:
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(signal.SIGTERM, self._old)
        if etype is not None and issubclass(etype, KeyboardInterrupt):
            self.error = "interrupted (Ctrl-C / SIGTERM)"
            return False
        if etype is not None and issubclass(etype, KwsError):
            self.error = str(exc)
            return True
        return False


def run_cli(args: argparse.Namespace) -> int:
    if args.mode == "energy":
        if args.power_model:
            from kws.bench import power

            if args.power_model not in power.boards():
                raise KwsError(f"--power-model {args.power_model}: no power model; known: {', '.join(power.boards())}")
        if args.monitor:
            return _run_energy(args)
        if not args.power_model:
            raise KwsError("--mode energy needs --monitor lpm01a:URL|joulescope (a measurement, with --io-manager "
                           "URL or --port URL) or --power-model BOARD (an estimate from device time)")
    elif args.monitor or args.io_manager:
        raise KwsError("--monitor and --io-manager belong to --mode energy")
    args.baud = args.baud or 115200
    if args.mode == "stream":
        return _run_stream(args)
    from kws.bench import accuracy, report, transport

    if not args.port and not args.board:
        raise KwsError("no device: give --port URL (a serial device, socket://host:port, rfc2217://...) "
                       "or --board qemu_mps2_an386|host --firmware FILE")
    if args.board and not args.port:
        if not args.firmware:
            raise KwsError(f"--board {args.board} needs --firmware FILE (the bench app built for it)")
        if not Path(args.firmware).is_file():
            raise KwsError(f"--firmware {args.firmware}: no such file")
    if args.mode == "accuracy" and not args.dataset:
        raise KwsError("--mode accuracy needs --dataset DIR (Speech Commands layout, or y_labels.csv + .bin)")
    if args.compare_tflm and not Path(args.compare_tflm).is_file():
        raise KwsError(f"--compare-tflm {args.compare_tflm}: no such file")
    if args.min_window_s <= 0 or args.inputs < 1 or args.retries < 0 or args.timeout_s <= 0:
        raise KwsError("--min-window-s and --timeout-s must be > 0, --inputs >= 1, --retries >= 0")
    progress_on = not args.no_progress

    # Inputs first (host work), so a started QEMU never waits on us.
    items, x, fmt = None, None, None
    if args.dataset:
        items, fmt = accuracy.list_items(Path(args.dataset))
        items = accuracy.subset(items, args.limit if args.mode == "accuracy" else (args.limit or args.inputs))
        bar = _Progress(len(items), "features", progress_on and len(items) > 200)
        try:
            x = accuracy.features(items, args.input_bytes, progress=bar)
        finally:
            bar.close()

    rep = report.new(args.mode, args.port or f"{args.board} {args.firmware}")
    md_path = args.md or (str(Path(args.json_out).with_suffix(".md")) if args.json_out else None)
    run = _Run()
    log = run.log
    dut = None
    try:
        with run, transport.open_link(port=args.port, board=args.board if not args.port else None,
                                 firmware=args.firmware, baud=args.baud) as link:
            rep["transport"] = link.describe
            from kws.bench.dut import Dut

            chunk = args.chunk or (31 if link.kind == "serial" else 62)
            dut = Dut(link, timeout_s=args.timeout_s, retries=args.retries, chunk=chunk,
                      expected_model=args.model_id, log=log)
            ident = dut.start(fresh_boot=link.kind in ("qemu", "host"))
            rep["device"] = {"name": ident.name, "profile": ident.profile, "model": ident.model}
            shift = getattr(link, "icount_shift", None)
            if args.mode in ("perf", "energy"):
                rep["perf"] = {}
                bar = _Progress(args.inputs, "perf windows", progress_on)
                try:
                    res = _run_perf(dut, args, x, rep["perf"], shift, bar)
                finally:
                    bar.close()
                rep["perf"] = res
                if args.mode == "energy":
                    rep["energy"] = _estimate_energy(args.power_model, res)
            else:
                _run_accuracy(dut, args, items, x, fmt, rep, progress_on)
            rep["complete"] = True
    finally:
        error = run.error
        if error is not None:
            rep["complete"] = False
            rep["error"] = error
        if dut is not None:
            rep["faults"] = {"retries": dut.stats.retries, "resets": dut.stats.resets, "log": run.log_lines[-50:]}
        if rep.get("perf") is not None and not rep.get("perf", {}).get("throughput_ips") and error:
            from kws.bench import perf as perf_mod

            rep["perf"] = perf_mod.summarize(rep["perf"].get("windows", []), icount_shift=None,
                                             min_window_s=args.min_window_s) | {"partial": True}
        if dut is not None or args.json_out:
            report.write(rep, args.json_out, md_path)
            if md_path:
                sys.stdout.write(report.markdown(rep))
    if error is not None and dut is None:
        raise KwsError(error)
    if error is not None:
        where = f" (partial results in {args.json_out}, marked incomplete)" if args.json_out else ""
        raise KwsError(f"bench stopped: {error}{where}")
    return 0


def _estimate_energy(board: str, perf_result: dict) -> dict:
    """--mode energy --power-model: energy per inference from the perf measurement's device time (under
    QEMU: its instruction count at the board's clock, one instruction per cycle). Always an estimate."""
    from kws.bench import power

    n = perf_result.get("instructions_per_inference")
    if n:
        out = power.estimate_from_instructions(board, n)
    else:
        out = power.estimate(board, perf_result["latency_ms"] / 1e3)
    out["board"] = board
    out["estimated"] = True
    return out


def _load_x(args, limit: int | None):
    """int8 features [n, input_bytes] of --dataset (None without one)."""
    from kws.bench import accuracy

    if not args.dataset:
        return None
    items, _ = accuracy.list_items(Path(args.dataset))
    items = accuracy.subset(items, limit)
    return accuracy.features(items, args.input_bytes)


def _run_energy(args: argparse.Namespace) -> int:
    """--mode energy --monitor: MLPerf Tiny's energy mode measured (kws.bench.energy_run)."""
    from kws.bench import energy_run, report

    if args.board:
        raise KwsError(f"--monitor measures a real DUT: --board {args.board} has no supply to measure "
                       "(use --power-model BOARD for an estimate)")
    if bool(args.io_manager) == bool(args.port):
        raise KwsError("--mode energy --monitor needs the DUT's UART: --io-manager URL (MLPerf Tiny's IO "
                       "manager) or --port URL (the DUT's own UART at 9600 baud), one of them")
    if args.inputs < 1 or args.min_window_s <= 0 or args.timeout_s <= 0:
        raise KwsError("--inputs must be >= 1, --min-window-s and --timeout-s > 0")
    energy_run.parse_monitor(args.monitor)
    x = _load_x(args, args.limit or args.inputs)
    inputs = _perf_inputs(args, x)
    md_path = args.md or (str(Path(args.json_out).with_suffix(".md")) if args.json_out else None)
    where = f"IO manager {args.io_manager}" if args.io_manager else f"{args.port} at {args.baud or energy_run.ENERGY_BAUD} baud"
    rep = report.new("energy", f"{where}; monitor {args.monitor}")
    rep["energy"] = result = {}
    run = _Run()
    log = run.log
    bar = _Progress(args.inputs, "energy windows", not args.no_progress)
    try:
        with run, contextlib.ExitStack() as stack:
            monitor = stack.enter_context(energy_run.open_monitor(args.monitor))
            if args.io_manager:
                from kws.bench.iomanager import IoManager

                dut = stack.enter_context(IoManager(args.io_manager, timeout_s=args.timeout_s))
                rep["io_manager"] = dut.name()
            else:
                from kws.bench import transport
                from kws.bench.dut import Dut

                link = stack.enter_context(transport.open_link(port=args.port, baud=args.baud or energy_run.ENERGY_BAUD))
                dut = energy_run.DirectDut(Dut(link, timeout_s=args.timeout_s, retries=args.retries,
                                               chunk=args.chunk or 26, expected_model=args.model_id, log=log))
            energy_run.measure(monitor=monitor, dut=dut, inputs=inputs, result=result, voltage_v=args.voltage_v,
                               sample_rate_hz=args.sample_rate_hz, min_window_s=args.min_window_s,
                               warmups=args.warmups, windows=args.inputs, expected_model=args.model_id,
                               timeout_s=args.timeout_s, log=log, progress=bar)
        if run.error is None:
            rep["complete"] = bool(result.get("complete"))
            rep["device"] = result.pop("device", None)
        if run.error is None and args.power_model and result.get("latency_ms"):
            est = _estimate_energy(args.power_model, {"latency_ms": result["latency_ms"]})
            result["power_model_estimate"] = {"uj_per_inference": est["uj_per_inference"], "board": args.power_model,
                                              "note": "the power model at the measured latency, for comparison"}
    finally:
        bar.close()
        error = run.error
        if error is not None:
            rep["complete"] = False
            rep["error"] = error
            rep["device"] = rep.get("device") or result.pop("device", None)
            rep["energy"] = energy_run.partial_summary(result)
        rep["log"] = run.log_lines[-50:]
        if args.json_out or error is None:
            report.write(rep, args.json_out, md_path)
            if md_path:
                sys.stdout.write(report.markdown(rep))
    if error is not None:
        saved = f" (partial results in {args.json_out}, marked incomplete)" if args.json_out else ""
        raise KwsError(f"bench stopped: {error}{saved}")
    return 0


def _run_stream(args: argparse.Namespace) -> int:
    """--mode stream: the wake app hears one long recording; its detections are scored as kws eval does."""
    from kws.bench import report, stream

    if not args.port and not args.board:
        raise KwsError("no device: give --port URL (a board running the wake app) or "
                       "--board qemu_mps2_an386|host --firmware <wake app>")
    rep = report.new("stream", args.port or f"{args.board} {args.firmware}")
    md_path = args.md or (str(Path(args.json_out).with_suffix(".md")) if args.json_out else None)
    bar = None

    def progress(done_s: float, total_s: float) -> None:  # seconds of audio given to the device
        nonlocal bar
        import math

        total = max(1, math.ceil(total_s))
        if bar is None:
            bar = _Progress(total, "stream (audio s)", not args.no_progress)
        bar(total if done_s >= total_s else min(int(done_s), total - 1), total)

    try:
        res = stream.run(positives=args.positives, negatives=args.negatives, noise=args.noise or None,
                         snr_db=args.snr_db, port=args.port, board=None if args.port else args.board,
                         firmware=args.firmware, baud=args.baud, timeout_s=max(args.timeout_s, 60.0),
                         log=lambda m: print(f"kws bench: {m}", file=sys.stderr), progress=progress)
    finally:
        if bar is not None:
            bar.close()
    rep["stream"] = res
    rep["complete"] = res.pop("complete")
    if not rep["complete"]:
        rep["error"] = "the device did not report the end of the stream"
    png = args.plot or (str(Path(args.json_out).with_name(Path(args.json_out).stem + "_stream.png"))
                        if args.json_out else None)
    if png:
        from kws.bench import plots

        got = plots.stream_png(res, Path(png), title=f"kws bench --mode stream: {rep['transport']}")
        res["plot_png"] = str(got) if got else None
    report.write(rep, args.json_out, md_path)
    if md_path:
        sys.stdout.write(report.markdown(rep))
    if not rep["complete"]:
        raise KwsError(f"bench stopped: {rep['error']}" + (f" (partial results in {args.json_out})" if args.json_out else ""))
    return 0


def _run_perf(dut, args, x, partial: dict, shift, bar) -> dict:
    from kws.bench import perf

    res = perf.measure(dut, _perf_inputs(args, x), min_window_s=args.min_window_s, warmups=args.warmups,
                       icount_shift=shift, progress=bar, partial=partial)
    png = args.plot or (str(Path(args.json_out).with_name(Path(args.json_out).stem + "_perf.png"))
                        if args.json_out else None)
    if png:
        from kws.bench import plots

        got = plots.perf_png(res, Path(png), title=f"kws bench --mode {args.mode}: "
                             f"{args.port or f'{args.board} {args.firmware}'}, {len(res['windows'])} inputs")
        res["plot_png"] = str(got) if got else None
    return res


def _run_accuracy(dut, args, items, x, fmt, rep: dict, progress_on: bool) -> None:
    import numpy as np

    from kws.bench import accuracy

    n = len(items)
    labels = np.array([it.label for it in items])
    preds, scores, raws = [], [], []
    acc = {"dataset": str(args.dataset), "dataset_format": fmt, "of": n}
    rep["accuracy"] = acc

    def update(final: bool) -> None:
        k = len(preds)
        acc.update(accuracy.metrics(np.array(preds, int), labels[:k], np.array(scores) if k else None))
        acc["done"] = k
        acc["items"] = [[items[i].name, int(labels[i]), int(preds[i])] for i in range(k)]
        if final and args.compare_tflm and k:
            tp, tout = accuracy.tflm_predictions(Path(args.compare_tflm), x[:k])
            t = {"model": str(args.compare_tflm), "n": k, "top1": float((tp == labels[:k]).mean()),
                 "predictions_differ": int((tp != np.array(preds)).sum()), "values_differ": None}
            if all(r is not None for r in raws):
                t["values_differ"] = int((tout.astype(int) != np.array(raws, int)).sum())
            acc["tflm"] = t
        png = args.plot or (str(Path(args.json_out).with_name(Path(args.json_out).stem + "_confusion.png"))
                            if args.json_out else None)
        if final and png and k:
            got = accuracy.confusion_png(acc["confusion"], Path(png),
                                         f"{acc['dataset']}: top-1 {100 * acc['top1']:.2f} % (n={k})")
            acc["confusion_png"] = str(got) if got else None

    bar = _Progress(n, "accuracy", progress_on)
    try:
        t0 = time.monotonic()
        for i, it in enumerate(items):
            inf = dut.run_input(x[i].tobytes(), 1, 0, raw=True, what=f"item {i + 1}/{n} ({it.name})")
            if inf.raw is not None and len(inf.raw) == len(accuracy.LABELS):
                p = int(np.argmax(inf.raw))
            else:
                p = int(np.argmax(inf.results))
            if len(inf.results) != len(accuracy.LABELS):
                from kws.bench.dut import DutFatal

                raise DutFatal(f"item {i + 1}: the device returned {len(inf.results)} results, kws01 has "
                               f"{len(accuracy.LABELS)} classes")
            preds.append(p)
            scores.append(inf.results)
            raws.append(inf.raw)
            bar(i + 1, n)
        acc["wall_s"] = round(time.monotonic() - t0, 1)
    finally:
        bar.close()
        complete = len(preds) == n
        try:
            update(final=True)
        except KwsError as e:  # the tflm comparison must not hide the device's results
            acc["tflm_error"] = str(e)
        if not complete:
            acc["partial"] = True
