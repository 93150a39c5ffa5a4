"""Energy monitors and the IO manager for `kws bench --mode energy` (MLPerf Tiny's energy setup).

The setup (DESIGN.md decision 6): the DUT runs the bench app built in energy mode (9600 baud, timestamps
are falling edges of its timestamp pin, board_timestamp_pulse()). It is powered by an energy monitor
and talks to the host only through an IO manager that relays its UART (MLPerf Tiny's runner: the IO
manager is an Arduino speaking `%`-terminated commands; `dut <cmd>` passes a command to the DUT and its
lines come back prefixed `[dut]: `). The monitor sees the timestamp line as events on its trace. Energy
of one window = the trace's energy between the last two timestamp edges (the ones `infer N W` makes
around the N timed runs), divided by N; each window >= 10 s; the result is the median of 5 windows.

The harness's calls, in order (every wait has a timeout; every failure is a one-line KwsError):

    mon = Lpm01a("/dev/ttyACM0")  or  Joulescope()         # an EnergyMonitor
    mon.open(voltage_v=3.3)                                 # take control, configure, power the DUT
    io = iomanager.IoManager("/dev/ttyUSB0")                # relays the DUT's UART
    io.dut_load(input_bytes)
    n = runs_for_window(seconds_per_inference)              # N so that the window lasts >= 10 s
    windows = [measure_window(mon, lambda: io.dut_infer(n, 10), n_inferences=n, sample_rate_hz=1000)
               for _ in range(5)]
    summary = summarize(windows)                            # {"uj_per_inference": median, "estimated": False, ...}
    mon.close(); io.close()

measure_window() = mon.start(rate); run(); trace = mon.stop(); trace.energy_between_last_edges().
A Trace is monitor-independent: sample times, energy per sample (J) and the timestamp edge times.
"""

from __future__ import annotations

import math
import re
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from kws.errors import KwsError

MIN_WINDOW_S = 10.0     # MLPerf Tiny: every timed window lasts at least 10 s
WINDOWS = 5             # ... and the result is the median of 5


# --- the trace -------------------------------------------------------------------------------------
@dataclass
class Trace:
    """One acquisition of an energy monitor.

    t_s:          float64 [n], start time of each sample interval, seconds since the acquisition began
    energy_j:     float64 [n], energy delivered during each sample interval (J)
    edges_s:      float64 [k], times of the timestamp line's falling edges on the same clock (s)
    sample_rate_hz: samples per second (each interval lasts 1 / sample_rate_hz)
    voltage_v:    the supply voltage (None when the monitor measured it per sample)
    source:       which monitor made it
    warnings:     what went wrong but did not invalidate the trace (dropped samples, garbled lines)
    """

    t_s: np.ndarray
    energy_j: np.ndarray
    edges_s: np.ndarray
    sample_rate_hz: float
    voltage_v: float | None = None
    source: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return len(self.energy_j) / self.sample_rate_hz

    def energy_between(self, t0_s: float, t1_s: float) -> float:
        """Energy (J) from t0_s to t1_s; samples cut by either bound count pro rata."""
        if not t1_s > t0_s:
            raise KwsError(f"energy window {t0_s:g}..{t1_s:g} s is empty")
        dt = 1.0 / self.sample_rate_hz
        start = np.asarray(self.t_s, dtype=np.float64)
        overlap = np.clip(np.minimum(start + dt, t1_s) - np.maximum(start, t0_s), 0.0, dt) / dt
        return float(np.sum(np.asarray(self.energy_j, dtype=np.float64) * overlap))

    def last_edges(self) -> tuple[float, float]:
        """The last two timestamp edges (s); KwsError when the trace has fewer than two."""
        if len(self.edges_s) < 2:
            raise KwsError(f"{self.source or 'energy monitor'}: {len(self.edges_s)} timestamp edge(s) in the "
                           f"trace, need 2 (is the DUT's timestamp pin wired to the monitor's event input, "
                           f"and the firmware built in energy mode?)")
        t0, t1 = float(self.edges_s[-2]), float(self.edges_s[-1])
        return t0, t1

    def energy_between_last_edges(self) -> tuple[float, float]:
        """(energy J, duration s) between the last two timestamp edges."""
        t0, t1 = self.last_edges()
        if t1 > self.duration_s + 1.0 / self.sample_rate_hz:
            raise KwsError(f"{self.source}: timestamp edge at {t1:.3f} s is past the end of the trace "
                           f"({self.duration_s:.3f} s of samples)")
        return self.energy_between(t0, t1), t1 - t0


def falling_edges(level: np.ndarray, sample_rate_hz: float) -> np.ndarray:
    """Times (s) where a digital level sampled at sample_rate_hz goes 1 -> 0 (the time of the first 0
    sample). level: [n] of 0/1 (any nonzero is 1)."""
    b = np.asarray(level) != 0
    idx = np.flatnonzero(b[:-1] & ~b[1:]) + 1
    return idx.astype(np.float64) / sample_rate_hz


def runs_for_window(seconds_per_inference: float, *, min_window_s: float = MIN_WINDOW_S,
                    margin: float = 1.1) -> int:
    """N inferences so that one timed window lasts at least min_window_s (with a 10 % margin)."""
    if not seconds_per_inference > 0:
        raise KwsError(f"seconds per inference must be positive, got {seconds_per_inference!r}")
    return max(1, math.ceil(min_window_s * margin / seconds_per_inference))


@dataclass(frozen=True)
class EnergyWindow:
    """One timed window: energy and duration between the last two edges, N inferences."""

    energy_j: float
    duration_s: float
    n_inferences: int
    warnings: tuple[str, ...] = ()

    @property
    def uj_per_inference(self) -> float:
        return self.energy_j / self.n_inferences * 1e6

    @property
    def average_power_mw(self) -> float:
        return self.energy_j / self.duration_s * 1e3


def measure_window(monitor: "EnergyMonitor", run: Callable[[], object], *, n_inferences: int,
                   sample_rate_hz: int = 1000, min_window_s: float = MIN_WINDOW_S) -> EnergyWindow:
    """Starts the monitor, calls run() (which must make the DUT run `infer n_inferences W` and return
    once it reported m-infer-done), stops the monitor and measures between the last two edges.
    The monitor is stopped whatever run() does. KwsError when the window is shorter than min_window_s."""
    if n_inferences < 1:
        raise KwsError(f"n_inferences must be >= 1, got {n_inferences}")
    monitor.start(sample_rate_hz)
    try:
        run()
    finally:
        trace = monitor.stop()
    energy, duration = trace.energy_between_last_edges()
    if duration < min_window_s:
        raise KwsError(f"energy window lasted {duration:.2f} s < {min_window_s:g} s: raise N "
                       f"(now {n_inferences}; runs_for_window() picks it from the seconds per inference)")
    return EnergyWindow(energy, duration, n_inferences, tuple(trace.warnings))


def summarize(windows: Sequence[EnergyWindow]) -> dict:
    """The JSON record of an energy run: the median µJ per inference over the windows (MLPerf: 5)."""
    if not windows:
        raise KwsError("no energy windows were measured")
    uj = [w.uj_per_inference for w in windows]
    return {
        "uj_per_inference": statistics.median(uj),
        "estimated": False,
        "windows": [{"uj_per_inference": w.uj_per_inference, "energy_j": w.energy_j,
                     "duration_s": w.duration_s, "n": w.n_inferences,
                     "average_power_mw": w.average_power_mw, "warnings": list(w.warnings)} for w in windows],
        "complete": len(windows) >= WINDOWS,
    }


# --- monitors ---------------------------------------------------------------------------------------
class EnergyMonitor:
    """What the harness needs of a power monitor. Use as a context manager (close() on the way out)."""

    name = "energy monitor"

    def open(self, *, voltage_v: float = 3.3) -> None:
        """Take control of the instrument, configure it and power the DUT at voltage_v."""
        raise NotImplementedError

    def start(self, sample_rate_hz: int) -> None:
        """Begin an acquisition (samples and timestamp events) at sample_rate_hz."""
        raise NotImplementedError

    def stop(self) -> Trace:
        """End the acquisition; return everything it recorded."""
        raise NotImplementedError

    def close(self) -> None:
        """Stop anything running, power the DUT off where the monitor supplies it, release the device."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _open_serial(url: str, baudrate: int, what: str):
    import serial

    try:
        return serial.serial_for_url(url, baudrate=baudrate, timeout=0.05, write_timeout=5)
    except (serial.SerialException, ValueError, OSError) as e:
        raise KwsError(f"{what}: cannot open {url}: {e}") from None


class _LineReader:
    """Lines from a pyserial port with timeouts; keeps partial lines across reads."""

    def __init__(self, port, what: str):
        self.port = port
        self.what = what
        self._buf = b""

    def read_line(self, timeout_s: float) -> str | None:
        """The next line (CR/LF stripped, decoded leniently), or None after timeout_s without one."""
        deadline = time.monotonic() + timeout_s
        while True:
            i = self._buf.find(b"\n")
            if i >= 0:
                line, self._buf = self._buf[:i], self._buf[i + 1:]
                return line.replace(b"\r", b"").replace(b"\0", b"").decode("ascii", "replace")
            if time.monotonic() >= deadline:
                return None
            try:
                chunk = self.port.read(4096)
            except Exception as e:  # serial.SerialException, OSError: the device went away
                raise KwsError(f"{self.what}: reading failed: {e}") from None
            self._buf += chunk
            if len(self._buf) > 1 << 20:
                raise KwsError(f"{self.what}: over 1 MiB without a line end (wrong baud rate?)")

    def write(self, data: bytes) -> None:
        try:
            self.port.write(data)
            self.port.flush()
        except Exception as e:
            raise KwsError(f"{self.what}: writing failed: {e}") from None


# X-NUCLEO-LPM01A (PowerShield). Sources: ST UM2243 (the PowerShield user manual, its command set) as
# summarized in the command table of MLCommons tiny's benchmark/runner/power_manager.py, and that
# runner's use of it: 3686400 baud; commands end in CR LF; replies "ack <command> [value]" or
# "error <command>" then "Error detail: <text>", possibly after the "PowerShield > " prompt;
# ascii_dec samples "dddd-ee" = dddd * 10^-ee (several may share a line), "TimeStamp: SSSs MMMms,
# buff NN%" lines, "event N ..." lines for edges on the event input (eventsrc d7 fal), and
# "Acquisition completed" after `stop`.
LPM01A_BAUD = 3_686_400
LPM01A_FREQS = (100_000, 50_000, 20_000, 10_000, 5_000, 2_000, 1_000, 500, 200, 100, 50, 20, 10, 5, 2, 1)
LPM01A_ASCII_MAX_UNLIMITED_HZ = 5_000   # UM2243: ascii_dec streams without limit up to 5 kHz only
_SAMPLE = re.compile(rb"(\d{4})([+-])(\d{2})")
_TIMESTAMP = re.compile(r"TimeStamp:\s*[<>]?\s*(\d+)s\s+(\d+)ms(?:,\s*buff\s+(\d+)%)?")
_EVENT = re.compile(r"^event\s+(\d+)")
_PROMPT = "PowerShield > "


def _freq_arg(hz: int) -> str:
    return f"{hz // 1000}k" if hz >= 1000 and hz % 1000 == 0 else str(hz)


def decode_bin_hexa(word: int) -> float:
    """One bin_hexa sample (16 bits): the top nibble is a negative power of 16, the rest the mantissa
    (UM2243 via the runner's table: 0x52A0 -> 0x2A0 * 16^-5 = 640.9 µA)."""
    return (word & 0x0FFF) * 16.0 ** -(word >> 12)


class Lpm01aStream:
    """Parser of the LPM01A acquisition stream (ascii_dec), fed lines; robust to garbage.

    Samples become values (J per sample in output energy mode, A in current mode); an `event` line marks
    an edge at the sample count reached so far; TimeStamp lines check that no samples were dropped.
    """

    def __init__(self, sample_rate_hz: int):
        self.rate = sample_rate_hz
        self.values: list[float] = []
        self.edges: list[int] = []          # sample index of each event
        self.messages: list[str] = []       # other lines (acks, status, summary)
        self.errors: list[str] = []
        self.garbled = 0
        self.dropped = 0
        self.completed = False
        self._last_ts: tuple[float, int] | None = None

    def feed_line(self, line: str) -> None:
        text = line.replace(_PROMPT, "").strip()
        if not text:
            return
        if "Acquisition completed" in text:
            self.completed = True
            self.messages.append(text)
            return
        m = _EVENT.match(text)
        if m:
            self.edges.append(len(self.values))
            return
        if text.startswith("TimeStamp"):
            m = _TIMESTAMP.match(text)
            if not m:
                self.garbled += 1
                return
            t = int(m.group(1)) + int(m.group(2)) / 1000
            if self._last_ts is not None:
                expect = round((t - self._last_ts[0]) * self.rate)
                got = len(self.values) - self._last_ts[1]
                if got < expect:
                    self.dropped += expect - got
            self._last_ts = (t, len(self.values))
            return
        if text[0].isdigit():
            raw = text.replace(" ", "").encode("ascii", "replace")
            samples = list(_SAMPLE.finditer(raw))
            # every byte of a sample line must belong to a sample: a line with a cut or corrupted sample
            # is dropped whole (its samples cannot be placed in time), counted, and reported
            if not samples or sum(m.end() - m.start() for m in samples) != len(raw):
                self.garbled += 1
                return
            for m in samples:
                mant, sign, exp = int(m.group(1)), m.group(2), int(m.group(3))
                self.values.append(mant * 10.0 ** (-exp if sign == b"-" else exp))
            return
        if "\ufffd" in text or not text.isprintable():
            self.garbled += 1
            return
        if text.lower().startswith("error") or text.startswith("Error detail"):
            self.errors.append(text)
            return
        self.messages.append(text)


class Lpm01a(EnergyMonitor):
    """ST X-NUCLEO-LPM01A (PowerShield) over its serial command set.

    url: anything pyserial opens (the PowerShield's ST-LINK VCP, e.g. /dev/ttyACM0, or socket:// for a
    test double). Output type `energy` (each sample = energy integrated over 1/freq, in J) in ascii_dec
    format, software trigger, infinite acquisition, events on D7 falling edges (the DUT's timestamp
    pin). reply_timeout_s bounds every command; stop_timeout_s bounds the wait for the end marker.
    """

    name = "LPM01A"

    def __init__(self, url: str, *, baudrate: int = LPM01A_BAUD, reply_timeout_s: float = 2.0,
                 stop_timeout_s: float = 10.0, output: str = "energy"):
        if output not in ("energy", "current"):
            raise KwsError(f"LPM01A output must be 'energy' or 'current', got {output!r}")
        self.url = url
        self.output = output
        self.reply_timeout_s = reply_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.voltage_v: float | None = None
        self._io = _LineReader(_open_serial(url, baudrate, "LPM01A"), f"LPM01A on {url}")
        self._thread: threading.Thread | None = None
        self._stream: Lpm01aStream | None = None
        self._running = False
        self._reader_error: KwsError | None = None
        self._controlled = False
        self._stop_deadline = 0.0

    # commands
    def command(self, cmd: str) -> str:
        """Sends cmd; returns the text after `ack <cmd>` (may be empty). KwsError on error or timeout."""
        if self._running:
            raise KwsError(f"LPM01A: {cmd!r} while an acquisition runs (stop it first)")
        self._io.write(cmd.encode("ascii") + b"\r\n")
        deadline = time.monotonic() + self.reply_timeout_s
        head = cmd.split()[0]
        while True:
            line = self._io.read_line(max(deadline - time.monotonic(), 0.0))
            if line is None:
                raise KwsError(f"LPM01A on {self.url}: no reply to {cmd!r} within {self.reply_timeout_s:g} s "
                               f"(is it the PowerShield, at {LPM01A_BAUD} baud?)")
            text = line.replace(_PROMPT, "").strip()
            if text.startswith("ack") and head in text:
                rest = text[3:].strip()
                return rest[len(cmd):].strip() if rest.startswith(cmd) else rest[len(head):].strip()
            if text.startswith("error") and head in text:
                detail = text
                more = self._io.read_line(0.5)
                if more and "Error detail" in more:
                    detail = more.replace(_PROMPT, "").replace("Error detail:", "").strip()
                raise KwsError(f"LPM01A refused {cmd!r}: {detail}")
            # anything else (banner, echo, stale data) is skipped

    def open(self, *, voltage_v: float = 3.3) -> None:
        if not 1.8 <= voltage_v <= 3.3:
            raise KwsError(f"LPM01A supplies 1.8..3.3 V, got {voltage_v:g} V")
        self.command("htc")
        self._controlled = True
        self.command("pwr off")
        self.command(f"volt {int(round(voltage_v * 1000))}m")
        self.command(f"output {self.output}")
        self.command("format ascii_dec")
        self.command("acqtime 0")
        self.command("trigsrc sw")
        self.command("eventsrc d7 fal")
        self.command("pwr on")
        self.voltage_v = voltage_v

    def start(self, sample_rate_hz: int) -> None:
        if sample_rate_hz not in LPM01A_FREQS:
            raise KwsError(f"LPM01A sampling rates: {', '.join(map(str, LPM01A_FREQS))} Hz; got {sample_rate_hz}")
        if sample_rate_hz > LPM01A_ASCII_MAX_UNLIMITED_HZ:
            raise KwsError(f"LPM01A streams ascii_dec without a time limit only up to "
                           f"{LPM01A_ASCII_MAX_UNLIMITED_HZ} Hz (UM2243); a >= 10 s window needs that")
        if self.output == "energy" and sample_rate_hz > 10_000:
            raise KwsError("LPM01A energy output integrates over at least 100 µs (<= 10 kHz)")
        self.command(f"freq {_freq_arg(sample_rate_hz)}")
        self.command("start")
        self._stream = Lpm01aStream(sample_rate_hz)
        self._reader_error = None
        self._running = True
        self._thread = threading.Thread(target=self._read_loop, name="lpm01a-reader", daemon=True)
        self._thread.start()

    def _read_loop(self) -> None:
        try:
            while self._running or not self._stream.completed:
                line = self._io.read_line(0.1)
                if line is not None:
                    self._stream.feed_line(line)
                    if self._stream.completed:
                        return
                elif not self._running and time.monotonic() > self._stop_deadline:
                    return
        except KwsError as e:
            self._reader_error = e

    def stop(self) -> Trace:
        if self._thread is None:
            raise KwsError("LPM01A: stop() without start()")
        self._stop_deadline = time.monotonic() + self.stop_timeout_s
        self._io.write(b"stop\r\n")   # no ack: the stream ends with "Acquisition completed"
        self._running = False
        self._thread.join(self.stop_timeout_s + 1.0)
        thread, self._thread = self._thread, None
        s = self._stream
        if self._reader_error is not None:
            raise self._reader_error
        if thread.is_alive() or not s.completed:
            raise KwsError(f"LPM01A on {self.url}: no 'Acquisition completed' within {self.stop_timeout_s:g} s "
                           f"of stop ({len(s.values)} samples received)")
        if s.errors:
            raise KwsError(f"LPM01A reported an error during acquisition: {s.errors[0]}")
        values = np.asarray(s.values, dtype=np.float64)
        if self.output == "current":
            values = values * (self.voltage_v or 0.0) / s.rate
        warnings = []
        if s.garbled:
            warnings.append(f"{s.garbled} garbled line(s) in the LPM01A stream were skipped")
        if s.dropped:
            warnings.append(f"{s.dropped} sample(s) missing between LPM01A TimeStamp lines")
        return Trace(t_s=np.arange(len(values), dtype=np.float64) / s.rate, energy_j=values,
                     edges_s=np.asarray(s.edges, dtype=np.float64) / s.rate, sample_rate_hz=float(s.rate),
                     voltage_v=self.voltage_v, source="LPM01A", warnings=warnings)

    def close(self) -> None:
        try:
            if self._thread is not None:
                try:
                    self.stop()
                except KwsError:
                    pass
            if self._controlled:
                for cmd in ("pwr off", "hrc"):
                    try:
                        self.command(cmd)
                    except KwsError:
                        pass
                self._controlled = False
        finally:
            try:
                self._io.port.close()
            except Exception:
                pass


class Joulescope(EnergyMonitor):
    """A Joulescope (JS110/JS220) through the `joulescope` Python package (`pip install
    'kws-toolchain[energy]'`). The DUT's timestamp pin goes to the Joulescope's GPI0; with
    `current_lsb = gpi0` the current's least significant bit carries it, so edges and current are
    sampled together. Energy per sample = current * voltage / sample rate.

    device: an already opened joulescope device (tests pass a double); None scans for exactly one.
    Uses the documented v1 API: scan_require_one(), open(), parameter_set(), start(), stop(), close(),
    stream_buffer.sample_id_range and stream_buffer.samples_get(start, stop, fields=[...]).
    """

    name = "Joulescope"

    def __init__(self, device=None, *, poll_s: float = 0.05):
        if device is None:
            try:
                import joulescope  # noqa: F401
            except ImportError:
                raise KwsError("Joulescope support needs the joulescope package: "
                               "pip install 'kws-toolchain[energy]'") from None
            try:
                device = joulescope.scan_require_one(config="auto")
                device.open()
            except Exception as e:
                raise KwsError(f"Joulescope: {e}") from None
        self._dev = device
        self.poll_s = poll_s
        self._thread: threading.Thread | None = None
        self._running = False
        self._error: Exception | None = None
        self._chunks: list[dict] = []
        self._rate = 0

    def _set(self, name: str, value) -> None:
        try:
            self._dev.parameter_set(name, value)
        except Exception as e:
            raise KwsError(f"Joulescope: cannot set {name}={value!r}: {e}") from None

    def open(self, *, voltage_v: float = 3.3) -> None:
        # The Joulescope does not supply the DUT: voltage_v is the bench supply's, measured per sample.
        self._set("sensor_power", "on")
        self._set("i_range", "auto")
        self._set("current_lsb", "gpi0")
        self._set("source", "on")

    def start(self, sample_rate_hz: int) -> None:
        self._set("sampling_frequency", int(sample_rate_hz))
        self._rate = int(sample_rate_hz)
        self._chunks = []
        self._error = None
        try:
            self._dev.start()
        except Exception as e:
            raise KwsError(f"Joulescope: cannot start streaming: {e}") from None
        self._running = True
        self._thread = threading.Thread(target=self._read_loop, name="joulescope-reader", daemon=True)
        self._thread.start()

    def _read_loop(self) -> None:
        last = None
        try:
            while True:
                running = self._running
                rng = self._dev.stream_buffer.sample_id_range
                if rng is not None:
                    first, end = rng
                    if last is None:
                        last = first
                    if end > last:
                        data = self._dev.stream_buffer.samples_get(last, end,
                                                                   fields=["current", "voltage", "current_lsb"])
                        self._chunks.append({k: np.asarray(data["signals"][k]["value"])
                                             for k in ("current", "voltage", "current_lsb")})
                        last = end
                if not running:
                    return
                time.sleep(self.poll_s)
        except Exception as e:
            self._error = e

    def stop(self) -> Trace:
        if self._thread is None:
            raise KwsError("Joulescope: stop() without start()")
        self._running = False
        self._thread.join(10)
        self._thread = None
        try:
            self._dev.stop()
        except Exception:
            pass
        if self._error is not None:
            raise KwsError(f"Joulescope: reading samples failed: {self._error}")
        return trace_from_samples(
            np.concatenate([c["current"] for c in self._chunks]) if self._chunks else np.zeros(0),
            np.concatenate([c["voltage"] for c in self._chunks]) if self._chunks else np.zeros(0),
            np.concatenate([c["current_lsb"] for c in self._chunks]) if self._chunks else np.zeros(0),
            self._rate, source="Joulescope")

    def close(self) -> None:
        if self._thread is not None:
            try:
                self.stop()
            except KwsError:
                pass
        try:
            self._dev.close()
        except Exception:
            pass


def trace_from_samples(current_a: np.ndarray, voltage_v: np.ndarray, timestamp_level: np.ndarray,
                       sample_rate_hz: float, *, source: str = "") -> Trace:
    """A Trace from per-sample current (A), voltage (V) and the timestamp line's level (0/1), all [n].
    NaN samples (a monitor's range switching gaps) count as the mean of their neighbours' power."""
    i = np.asarray(current_a, dtype=np.float64)
    v = np.asarray(voltage_v, dtype=np.float64)
    if not (len(i) == len(v) == len(timestamp_level)):
        raise KwsError(f"{source}: current, voltage and timestamp arrays differ in length")
    p = i * v
    warnings = []
    bad = ~np.isfinite(p)
    if bad.any():
        warnings.append(f"{int(bad.sum())} NaN sample(s) interpolated")
        good = np.flatnonzero(~bad)
        if len(good) == 0:
            raise KwsError(f"{source}: every sample is NaN")
        p[bad] = np.interp(np.flatnonzero(bad), good, p[good])
    n = len(p)
    return Trace(t_s=np.arange(n, dtype=np.float64) / sample_rate_hz, energy_j=p / sample_rate_hz,
                 edges_s=falling_edges(np.nan_to_num(np.asarray(timestamp_level, dtype=np.float64)), sample_rate_hz),
                 sample_rate_hz=float(sample_rate_hz), source=source, warnings=warnings)
