"""Energy mode without hardware: the LPM01A, Joulescope and IO manager drivers against fake devices
(socket:// servers speaking each protocol, including garbage, partial lines and silence), the trace
arithmetic, and the datasheet power model beside MLPerf Tiny's published NUCLEO-L4R5ZI figures."""

from __future__ import annotations

import sys
import time

import numpy as np
import pytest

from kws.bench import energy, iomanager, power
from fakeserial import FakeDevice
from kws.errors import KwsError


# --- fake devices over TCP (pyserial's socket:// transport) ----------------------------------------
RATE = 1000


def lpm_stream(n: int = 3000, events=(500, 2500), joules: float = 1.5e-5, extra: dict | None = None) -> bytes:
    """An ascii_dec energy stream: n samples of `joules` each (as 1500-08), events before the given
    sample indices, TimeStamp lines every 1000 samples; `extra` maps sample index -> raw bytes to insert."""
    mant, exp = f"{joules:.3e}".split("e")
    word = f"{int(round(float(mant) * 1000)):04d}-{-(int(exp) - 3):02d}"
    out = []
    for i in range(n):
        if i in events:
            out.append(f"event {events.index(i) + 1} fal\r\n".encode())
        if extra and i in extra:
            out.append(extra[i])
        if i and i % 1000 == 0:
            out.append(f"TimeStamp: {i // 1000:03d}s 000ms, buff 00%\r\n".encode())
        out.append(word.encode() + b"\r\n")
    return b"".join(out)


def lpm_handler(stream: bytes = b"", *, refuse: str | None = None, silent: str | None = None,
                complete: bool = True):
    def handle(cmd, send):
        head = cmd.split()[0] if cmd else ""
        if cmd == silent:
            return
        if cmd == "stop":
            if complete:
                send(b"PowerShield > Acquisition completed\r\n")
            return
        if cmd == refuse:
            send(f"PowerShield > error {cmd}\r\nError detail: invalid parameter\r\n".encode())
            return
        send(f"PowerShield > ack {cmd}\r\n".encode())
        if head == "start":
            send(stream)
    return handle


@pytest.fixture
def fake():
    made = []

    def make(handler, sep=b"\r\n"):
        d = FakeDevice(handler, sep)
        made.append(d)
        return d
    yield make
    for d in made:
        d.close()


def acquire(url: str, *, voltage_v: float = 3.3, **kw) -> energy.Trace:
    """One LPM01A acquisition from a fake device: open, start, let the stream arrive, stop."""
    with energy.Lpm01a(url, **kw) as mon:
        mon.open(voltage_v=voltage_v)
        mon.start(RATE)
        time.sleep(0.3)
        return mon.stop()


# --- LPM01A ----------------------------------------------------------------------------------------
def test_lpm01a_energy_between_last_edges(fake):
    dev = fake(lpm_handler(lpm_stream()))
    trace = acquire(dev.url, voltage_v=3.0, reply_timeout_s=2)
    assert len(trace.energy_j) == 3000 and trace.warnings == []
    assert list(trace.edges_s) == [0.5, 2.5]
    e, dur = trace.energy_between_last_edges()
    assert dur == pytest.approx(2.0)
    assert e == pytest.approx(2000 * 1.5e-5)
    # configuration the harness relies on, in order, and the device released on close
    assert dev.received[:2] == ["htc", "pwr off"]
    for cmd in ("volt 3000m", "output energy", "format ascii_dec", "acqtime 0", "trigsrc sw",
                "eventsrc d7 fal", "pwr on", "freq 1k", "start", "stop"):
        assert cmd in dev.received
    assert dev.received[-2:] == ["pwr off", "hrc"]


def test_lpm01a_garbage_and_partial_lines_are_skipped_and_reported(fake):
    extra = {100: b"\x00\xff#garbage#\r\n", 200: b"1500-0", 700: b"15\x00-05 12\r\n"}
    dev = fake(lpm_handler(lpm_stream(extra=extra)))
    trace = acquire(dev.url)
    assert any("garbled" in w for w in trace.warnings)
    e, dur = trace.energy_between_last_edges()
    assert dur == pytest.approx(2.0, abs=0.01)
    assert e == pytest.approx(2000 * 1.5e-5, rel=0.01)


def test_lpm01a_dropped_samples_are_reported(fake):
    stream = lpm_stream().split(b"\r\n")
    del stream[1500:1600]            # 100 samples lost between the 1 s and 2 s TimeStamp lines
    dev = fake(lpm_handler(b"\r\n".join(stream)))
    trace = acquire(dev.url)
    assert any("100 sample(s) missing" in w for w in trace.warnings)


def test_lpm01a_refused_command_is_one_line_error(fake):
    dev = fake(lpm_handler(refuse="volt 3300m"))
    with energy.Lpm01a(dev.url) as mon:
        with pytest.raises(KwsError, match=r"^LPM01A refused 'volt 3300m': invalid parameter$"):
            mon.open(voltage_v=3.3)


def test_lpm01a_silent_device_times_out(fake):
    dev = fake(lpm_handler(silent="htc"))
    with energy.Lpm01a(dev.url, reply_timeout_s=0.3) as mon:
        with pytest.raises(KwsError, match=r"no reply to 'htc' within 0.3 s"):
            mon.open()


def test_lpm01a_missing_end_marker_times_out(fake):
    dev = fake(lpm_handler(lpm_stream(n=100), complete=False))
    with energy.Lpm01a(dev.url, stop_timeout_s=0.5) as mon:
        mon.open()
        mon.start(RATE)
        with pytest.raises(KwsError, match=r"no 'Acquisition completed' within 0.5 s of stop \(100 samples"):
            mon.stop()


def test_lpm01a_no_edges_says_what_to_check(fake):
    dev = fake(lpm_handler(lpm_stream(n=200, events=())))
    with energy.Lpm01a(dev.url) as mon:
        mon.open()
        mon.start(RATE)
        trace = mon.stop()
    with pytest.raises(KwsError, match="0 timestamp edge"):
        trace.energy_between_last_edges()


def test_lpm01a_rejects_rates_it_cannot_stream(fake):
    dev = fake(lpm_handler())
    with energy.Lpm01a(dev.url) as mon:
        with pytest.raises(KwsError, match="sampling rates"):
            mon.start(3000)
        with pytest.raises(KwsError, match="up to 5000 Hz"):
            mon.start(10_000)


def test_lpm01a_unopenable_port():
    with pytest.raises(KwsError, match=r"^LPM01A: cannot open /nonexistent/tty"):
        energy.Lpm01a("/nonexistent/tty")


def test_lpm01a_stream_parser_units():
    s = energy.Lpm01aStream(1000)
    for line in ["PowerShield > 6409-071234+01", "event 1 fal", "0001-00", "Acquisition completed"]:
        s.feed_line(line)
    assert s.values == pytest.approx([640.9e-6, 12340.0, 1.0])
    assert s.edges == [2] and s.completed
    assert energy.decode_bin_hexa(0x52A0) == pytest.approx(640.9e-6, rel=1e-3)


# --- trace arithmetic, windows, median -------------------------------------------------------------
def test_energy_between_prorates_partial_samples():
    tr = energy.Trace(t_s=np.arange(10) / 10, energy_j=np.arange(1, 11, dtype=float), edges_s=np.array([0.15, 0.45]),
                      sample_rate_hz=10)
    e, dur = tr.energy_between_last_edges()
    # half of sample 1 (2 J), samples 2, 3 (3 + 4 J), half of sample 4 (5 J)
    assert e == pytest.approx(1 + 3 + 4 + 2.5) and dur == pytest.approx(0.3)


def test_falling_edges_and_runs_for_window():
    lvl = np.array([1, 1, 0, 0, 1, 0, 1, 1])
    assert list(energy.falling_edges(lvl, 2.0)) == [1.0, 2.5]
    assert energy.runs_for_window(0.1819) == 61          # 61 * 181.9 ms = 11.1 s >= 10 s * 1.1
    assert energy.runs_for_window(0.0432) * 0.0432 >= 10


class ScriptedMonitor(energy.EnergyMonitor):
    """A monitor whose traces are given: 2 mW, edges 1 s apart by default."""

    def __init__(self, duration_s=12.0, power_w=2e-3):
        self.duration_s, self.power_w, self.started = duration_s, power_w, 0

    def start(self, sample_rate_hz):
        self.started += 1
        self.rate = sample_rate_hz

    def stop(self):
        n = int((self.duration_s + 2) * self.rate)
        lvl = np.ones(n)
        lvl[self.rate // 2] = 0
        lvl[self.rate // 2 + int(self.duration_s * self.rate)] = 0
        return energy.trace_from_samples(np.full(n, self.power_w / 2), np.full(n, 2.0), lvl, self.rate, source="scripted")


def test_measure_window_and_median_summary():
    mon = ScriptedMonitor()
    ran = []
    windows = [energy.measure_window(mon, lambda: ran.append(1), n_inferences=100, sample_rate_hz=1000)
               for _ in range(5)]
    assert mon.started == 5 and len(ran) == 5
    s = energy.summarize(windows)
    # 2 mW * 12 s / 100 inferences = 240 µJ
    assert s["uj_per_inference"] == pytest.approx(240.0, rel=1e-3)
    assert s["estimated"] is False and s["complete"] is True
    assert s["windows"][0]["average_power_mw"] == pytest.approx(2.0, rel=1e-3)


def test_short_window_is_refused_and_monitor_stopped_on_failure():
    mon = ScriptedMonitor(duration_s=3.0)
    with pytest.raises(KwsError, match=r"lasted 3.00 s < 10 s: raise N"):
        energy.measure_window(mon, lambda: None, n_inferences=10)

    class Boom(ScriptedMonitor):
        stopped = False

        def stop(self):
            self.stopped = True
            return super().stop()
    b = Boom()
    with pytest.raises(RuntimeError):
        energy.measure_window(b, lambda: (_ for _ in ()).throw(RuntimeError("dut gone")), n_inferences=1)
    assert b.stopped


# --- Joulescope ------------------------------------------------------------------------------------
class FakeStreamBuffer:
    def __init__(self, n, rate):
        self.i = np.full(n, 5e-3)
        self.v = np.full(n, 3.3)
        self.lsb = np.ones(n)
        self.lsb[[rate // 4, rate // 4 + rate]] = 0      # edges at 0.25 s and 1.25 s
        self.i[10] = np.nan                                # a range-switch gap
        self.avail = 0

    @property
    def sample_id_range(self):
        self.avail = min(self.avail + 300, len(self.i))   # data arrives in chunks
        return (0, self.avail)

    def samples_get(self, start, stop, fields):
        src = {"current": self.i, "voltage": self.v, "current_lsb": self.lsb}
        return {"signals": {f: {"value": src[f][start:stop]} for f in fields}}


class FakeJoulescope:
    def __init__(self, n=2000, rate=1000):
        self.params, self.stream_buffer, self.closed = {}, FakeStreamBuffer(n, rate), False

    def parameter_set(self, k, v):
        if k == "bogus":
            raise ValueError("no such parameter")
        self.params[k] = v

    def start(self):
        pass

    def stop(self):
        pass

    def close(self):
        self.closed = True


def test_joulescope_with_a_fake_device():
    dev = FakeJoulescope()
    with energy.Joulescope(dev, poll_s=0.001) as mon:
        mon.open()
        mon.start(1000)
        time.sleep(0.1)
        trace = mon.stop()
    assert dev.closed and dev.params["current_lsb"] == "gpi0" and dev.params["sampling_frequency"] == 1000
    assert len(trace.energy_j) == 2000
    e, dur = trace.energy_between_last_edges()
    assert dur == pytest.approx(1.0)
    assert e == pytest.approx(5e-3 * 3.3 * 1.0)
    assert any("NaN" in w for w in trace.warnings)


def test_joulescope_missing_package_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "joulescope", None)   # import joulescope -> ImportError
    with pytest.raises(KwsError, match=r"^Joulescope support needs the joulescope package: pip install 'kws-toolchain\[energy\]'$"):
        energy.Joulescope()


# --- IO manager --------------------------------------------------------------------------------------
def io_handler(*, dut_silent=False):
    state = {"loaded": 0, "want": 0}

    def handle(cmd, send):
        if cmd == "name":
            send(b"m-[io-manager fake]\r\nm-ready\r\n")
            return
        if not cmd.startswith("dut "):
            send(b"e-[unknown command]\r\nm-ready\r\n")
            return
        send(b"m-ready\r\n")                              # the IO manager's own acknowledgement
        if dut_silent:
            return
        dut = cmd[4:]
        out = []
        if dut.startswith("db load "):
            state["want"], state["loaded"] = int(dut[8:]), 0
            out = [f"m-[Expecting {state['want']} bytes]"]
        elif dut.startswith("db "):
            state["loaded"] += len(dut[3:]) // 2
            if state["loaded"] == state["want"]:
                out = ["m-load-done"]
        elif dut.startswith("infer"):
            out = ["m-warmup-start-10", "m-warmup-done", "m-infer-start-5", "m-infer-done", "m-results-[0.000,0.992]"]
        elif dut == "bad":
            out = ["e-[Unknown command: bad]"]
        send(b"".join(b"[dut]: " + ln.encode() + b"\r\n" for ln in out + ["m-ready"]))
    return handle


def test_io_manager_relays_the_dut(fake):
    dev = fake(io_handler(), sep=b"%")
    with iomanager.IoManager(dev.url, timeout_s=2) as io:
        assert io.name() == "m-[io-manager fake]"
        io.dut_load(bytes(range(60)))
        lines = io.dut_infer(5, 10)
        assert lines[-1] == "m-ready" and "m-results-[0.000,0.992]" in lines
        with pytest.raises(KwsError, match=r"^DUT \(through the IO manager\) answered 'bad' with e-\[Unknown command: bad\]$"):
            io.dut_command("bad")
    db = [c for c in dev.received if c.startswith("dut db ") and "load" not in c]
    assert [len(c) - len("dut db ") for c in db] == [52, 52, 16]   # 26-byte chunks, as the runner sends


def test_io_manager_silent_dut_times_out(fake):
    dev = fake(io_handler(dut_silent=True), sep=b"%")
    with iomanager.IoManager(dev.url, timeout_s=0.3) as io:
        with pytest.raises(KwsError, match=r"no m-ready after 'dut name' within 0.3 s"):
            io.dut_command("name")


# --- the datasheet power model -----------------------------------------------------------------------
def test_power_model_estimate_is_labelled_and_cited():
    r = power.estimate("nucleo_l4r5zi", 0.1819)
    assert r["estimated"] is True
    m = r["model"]
    assert "DS12023" in m["source"] and m["run_ua_per_mhz"] == 110.0 and m["clock_mhz"] == 120.0
    # 3.3 V * 110 µA/MHz * 120 MHz = 43.56 mW; * 181.9 ms = 7923.6 µJ
    assert m["run_power_mw"] == pytest.approx(43.56)
    assert r["uj_per_inference"] == pytest.approx(43.56 * 181.9)


def test_power_model_within_10_percent_of_mlperf_published_l4r5zi():
    rows = power.sanity_check("nucleo_l4r5zi")
    assert [round(r["published_mw"], 1) for r in rows] == [40.5, 42.1]
    for r in rows:
        assert 0.9 < r["ratio"] < 1.1, r


def test_always_on_power_and_errors():
    run_mw = power.run_power_w("nucleo_l4r5zi") * 1e3
    idle_mw = power.idle_power_w("nucleo_l4r5zi") * 1e3
    assert power.always_on_power("nucleo_l4r5zi", 1.0) == pytest.approx(run_mw)
    assert power.always_on_power("nucleo_l4r5zi", 0.0) == pytest.approx(idle_mw)
    assert power.always_on_power("nucleo_l4r5zi", 0.25) == pytest.approx(0.25 * run_mw + 0.75 * idle_mw)
    assert idle_mw < run_mw
    with pytest.raises(KwsError, match="duty cycle must be within 0..1"):
        power.always_on_power("nucleo_l4r5zi", 1.5)
    with pytest.raises(KwsError, match=r"no power model for board 'qemu_mps2_an386'; boards with one: nucleo_l4r5zi"):
        power.estimate("qemu_mps2_an386", 0.1)
    with pytest.raises(KwsError, match="positive number"):
        power.estimate("nucleo_l4r5zi", 0)


def test_estimate_from_instructions_assumes_one_instruction_per_cycle():
    r = power.estimate_from_instructions("nucleo_l4r5zi", 2_813_000)
    assert r["latency_ms"] == pytest.approx(2_813_000 / 120e6 * 1e3)
    assert r["uj_per_inference"] == pytest.approx(43.56 * r["latency_ms"])
    assert r["estimated"] is True and "one instruction per cycle" in r["model"]["assumption"]
    with pytest.raises(KwsError, match="instructions per inference must be a positive number"):
        power.estimate_from_instructions("nucleo_l4r5zi", -1)


def test_every_power_model_is_a_registered_board():
    from kws import boards
    for name in power.boards():
        assert boards.get(name).clock_hz == power.model(name)["clock_hz"]
