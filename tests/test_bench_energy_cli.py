"""`kws bench --mode energy --monitor ...` end to end against a fake energy rig: a fake LPM01A and a fake
IO manager relaying a fake energy-mode DUT, sharing one simulated clock. When the DUT runs `infer N W`,
the LPM01A streams the samples of that run: idle, warm-up, a timestamp edge, N inferences at a power
that depends on the loaded input, a second edge, idle. So the expected µJ per inference is known
exactly and differs between inputs, and the harness's calibration, its choice of N (windows >= 10 s),
the median of 5 windows and its failure handling are all checked through the real CLI."""

from __future__ import annotations

import json
import statistics

import numpy as np
import pytest

from fakeserial import FakeDevice
from kws.cli import main

RATE = 1000                  # monitor samples per second
SPI_SAMPLES = 20             # one inference lasts 20 samples = 20 ms on the fake DUT
IDLE_W = 0.5e-3


def _word(joules: float) -> str:
    """ascii_dec: dddd-ee = dddd * 10^-ee."""
    exp = 0
    while joules * 10 ** exp < 1000:
        exp += 1
    return f"{int(round(joules * 10 ** exp)):04d}-{exp:02d}"


def active_power_w(data: bytes) -> float:
    """The fake DUT's power while it runs an inference on `data` (differs per input)."""
    return 0.030 + 0.010 * (data[0] / 255.0)


class Rig:
    """The fake LPM01A and IO manager; `faults` switch on misbehaviour."""

    def __init__(self, *, model: str = "kws01", no_edges: bool = False, dut_error_at_window: int | None = None,
                 faster_after_calibration: bool = False):
        self.model, self.no_edges, self.dut_error_at_window = model, no_edges, dut_error_at_window
        self.faster = faster_after_calibration    # timed runs take 10 samples instead of 20
        self.lpm_send = None
        self.data = bytearray()
        self.want = 0
        self.infers: list[tuple[int, int, float]] = []      # (n, warmups, power W)
        self.lpm = FakeDevice(self._lpm, b"\r\n")
        self.io = FakeDevice(self._io, b"%")

    def close(self):
        self.lpm.close()
        self.io.close()

    def _lpm(self, cmd, send):
        if cmd == "stop":
            send(b"PowerShield > Acquisition completed\r\n")
            return
        send(f"PowerShield > ack {cmd}\r\n".encode())
        if cmd == "start":
            self.lpm_send = send

    def _samples(self, n: int, warmups: int, power_w: float) -> bytes:
        idle, act = _word(IDLE_W / RATE), _word(power_w / RATE)
        spi = SPI_SAMPLES // 2 if self.faster and warmups else SPI_SAMPLES
        out = [idle] * 50 + [act] * (warmups * spi)
        out += ([] if self.no_edges else ["event 1 fal"]) + [act] * (n * spi)
        out += ([] if self.no_edges else ["event 2 fal"]) + [idle] * 50
        return "".join(s + "\r\n" for s in out).encode()

    def _io(self, cmd, send):
        if cmd == "name":
            send(b"m-[io-manager fake]\r\nm-ready\r\n")
            return
        send(b"m-ready\r\n")
        dut = cmd[4:]
        out = []
        if dut == "name":
            out = ["m-name-dut-[fake-energy]"]
        elif dut == "profile":
            out = ["m-profile-[ULPMark for tinyML Firmware V0.0.1]", f"m-model-[{self.model}]"]
        elif dut.startswith("db load "):
            self.want, self.data = int(dut[8:]), bytearray()
            out = [f"m-[Expecting {self.want} bytes]"]
        elif dut.startswith("db "):
            self.data += bytes.fromhex(dut[3:])
            if len(self.data) == self.want:
                out = ["m-load-done"]
        elif dut.startswith("infer "):
            n, w = map(int, dut.split()[1:3])
            timed = [x for x in self.infers if x[1] > 0]
            if self.dut_error_at_window is not None and w > 0 and len(timed) == self.dut_error_at_window:
                out = ["e-[infer failed: input not loaded]"]
            else:
                p = active_power_w(bytes(self.data))
                self.infers.append((n, w, p))
                self.lpm_send(self._samples(n, w, p))
                out = [f"m-warmup-start-{w}", "m-warmup-done", f"m-infer-start-{n}", "m-infer-done"]
        send(b"".join(b"[dut]: " + ln.encode() + b"\r\n" for ln in out + ["m-ready"]))


@pytest.fixture
def rig():
    made = []

    def make(**kw):
        r = Rig(**kw)
        made.append(r)
        return r
    yield make
    for r in made:
        r.close()


def _bench(argv, capsys):
    rc = main(["bench", "--no-progress"] + argv)
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("kws: error")]
    return rc, err


def test_energy_mode_measures_the_median_of_five_windows_of_at_least_10_s(rig, tmp_path, capsys):
    r = rig()
    out = tmp_path / "energy.json"
    rc, err = _bench(["--mode", "energy", "--monitor", f"lpm01a:{r.lpm.url}", "--io-manager", r.io.url,
                      "--voltage-v", "3.0", "--power-model", "nucleo_l4r5zi", "--json", str(out)], capsys)
    assert rc == 0 and not err
    rep = json.loads(out.read_text())
    e = rep["energy"]
    assert rep["complete"] is True and e["complete"] is True and e["estimated"] is False
    assert rep["device"] == {"name": "fake-energy", "profile": "ULPMark for tinyML Firmware V0.0.1", "model": "kws01"}
    assert rep["io_manager"] == "m-[io-manager fake]"
    # the LPM01A was configured for the run and released afterwards
    got = r.lpm.received
    assert "volt 3000m" in got and "eventsrc d7 fal" in got and "freq 1k" in got and got[-2:] == ["pwr off", "hrc"]
    # calibration found 20 ms per inference; N makes each window >= 10 s (with the 10 % margin)
    assert e["calibration"]["seconds_per_inference"] == pytest.approx(SPI_SAMPLES / RATE)
    assert e["n_per_window"] == 550
    timed = [x for x in r.infers if x[1] > 0]
    assert len(timed) == 5 and all(n == 550 for n, _, _ in timed)
    assert all(w == 0 for _, w, _ in r.infers[:len(r.infers) - 5])      # calibration runs have no warm-up
    # each window: the energy between its two edges / N = power * 20 ms, not counting idle or warm-up
    expect = [p * SPI_SAMPLES / RATE * 1e6 for _, _, p in timed]
    assert len(set(round(x, 3) for x in expect)) > 1                    # the five inputs differ
    assert [w["uj_per_inference"] for w in e["windows"]] == pytest.approx(expect, rel=1e-3)
    assert all(w["duration_s"] >= 10.0 for w in e["windows"])
    assert e["uj_per_inference"] == pytest.approx(statistics.median(expect), rel=1e-3)
    assert e["latency_ms"] == pytest.approx(20.0)
    assert e["power_model_estimate"]["uj_per_inference"] == pytest.approx(43.56 * 20.0)
    md = out.with_suffix(".md").read_text()
    assert "Energy (measured: LPM01A" in md and f"{e['uj_per_inference']:,.1f} µJ per inference" in md


def test_a_window_shorter_than_the_minimum_is_measured_again_longer(rig, tmp_path, capsys):
    """The DUT runs twice as fast after calibration: the first window (550 x 10 ms = 5.5 s) is too short;
    the harness measures it again with N from that window instead of accepting it."""
    r = rig(faster_after_calibration=True)
    out = tmp_path / "e.json"
    rc, err = _bench(["--mode", "energy", "--monitor", f"lpm01a:{r.lpm.url}", "--io-manager", r.io.url,
                      "--json", str(out)], capsys)
    assert rc == 0 and not err, err
    e = json.loads(out.read_text())["energy"]
    timed = [x for x in r.infers if x[1] > 0]
    assert [n for n, _, _ in timed] == [550, 1100, 1100, 1100, 1100, 1100]
    assert [w["n"] for w in e["windows"]] == [1100] * 5 and all(w["duration_s"] >= 10 for w in e["windows"])
    assert e["latency_ms"] == pytest.approx(10.0)


def test_energy_inputs_come_from_the_dataset(rig, tmp_path, capsys):
    """--dataset: the five inputs are real features (the loaded bytes are the dataset's)."""
    bins = tmp_path / "bins"
    bins.mkdir()
    rng = np.random.default_rng(1)
    rows = []
    for i in range(6):
        x = rng.integers(-128, 128, 490, dtype=np.int8)
        (bins / f"c{i}.bin").write_bytes(x.tobytes())
        rows.append(f"c{i}.bin, 12, {i % 12}")
    (bins / "y_labels.csv").write_text("\n".join(rows) + "\n")
    r = rig()
    rc, err = _bench(["--mode", "energy", "--monitor", f"lpm01a:{r.lpm.url}", "--io-manager", r.io.url,
                      "--dataset", str(bins), "--min-window-s", "2", "--json", str(tmp_path / "e.json")], capsys)
    assert rc == 0 and not err
    files = {(bins / f"c{i}.bin").read_bytes() for i in range(6)}
    assert bytes(r.data) in files


def test_wrong_model_stops_before_measuring(rig, tmp_path, capsys):
    r = rig(model="vww01")
    out = tmp_path / "e.json"
    rc, err = _bench(["--mode", "energy", "--monitor", f"lpm01a:{r.lpm.url}", "--io-manager", r.io.url,
                      "--json", str(out)], capsys)
    assert rc != 0 and len(err) == 1 and "runs model 'vww01'" in err[0] and "partial results" in err[0]
    rep = json.loads(out.read_text())
    assert rep["complete"] is False and rep["energy"]["uj_per_inference"] is None
    assert r.infers == [] and r.lpm.received[-2:] == ["pwr off", "hrc"]   # DUT powered off again


def test_missing_timestamp_edges_say_what_to_check(rig, tmp_path, capsys):
    r = rig(no_edges=True)
    rc, err = _bench(["--mode", "energy", "--monitor", f"lpm01a:{r.lpm.url}", "--io-manager", r.io.url,
                      "--json", str(tmp_path / "e.json")], capsys)
    assert rc != 0 and len(err) == 1 and "edge" in err[0] and "timestamp" in err[0]


def test_dut_error_mid_run_keeps_the_windows_measured_so_far(rig, tmp_path, capsys):
    r = rig(dut_error_at_window=3)
    out = tmp_path / "e.json"
    rc, err = _bench(["--mode", "energy", "--monitor", f"lpm01a:{r.lpm.url}", "--io-manager", r.io.url,
                      "--min-window-s", "2", "--json", str(out)], capsys)
    assert rc != 0 and "e-[infer failed: input not loaded]" in err[0]
    rep = json.loads(out.read_text())
    e = rep["energy"]
    assert rep["complete"] is False and e["complete"] is False
    assert len(e["windows"]) == 3 and e["uj_per_inference"] > 0
    assert "INCOMPLETE" in out.with_suffix(".md").read_text()


@pytest.mark.parametrize("argv, msg", [
    (["--monitor", "lpm01a:socket://127.0.0.1:9", "--board", "qemu_mps2_an386", "--firmware", "x.elf"],
     "has no supply to measure"),
    (["--monitor", "lpm01a:socket://127.0.0.1:9"], "needs the DUT's UART"),
    (["--monitor", "lpm01a:socket://127.0.0.1:9", "--io-manager", "a", "--port", "b"], "one of them"),
    (["--monitor", "fluke", "--io-manager", "loop://"], "unknown monitor"),
    (["--monitor", "lpm01a", "--io-manager", "loop://"], "needs the PowerShield's port"),
])
def test_energy_cli_errors_are_one_line(argv, msg, capsys):
    rc, err = _bench(["--mode", "energy"] + argv, capsys)
    assert rc != 0 and len(err) == 1 and msg in err[0]


def test_monitor_options_belong_to_energy_mode(capsys):
    rc, err = _bench(["--mode", "perf", "--monitor", "joulescope", "--port", "loop://"], capsys)
    assert rc != 0 and "belong to --mode energy" in err[0]


# --- the real energy build of the bench app behind a relay -------------------------------------------
class HostEnergyDut:
    """The bench app's energy build for the host board, as a process. Its timestamp pulses arrive on
    stderr as "board: timestamp <us>", standing in for the wire from the DUT's pin to the monitor."""

    def __init__(self, elf):
        import subprocess
        import threading

        self.proc = subprocess.Popen([str(elf)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.pulses_us: list[int] = []
        self.lines: list[str] = []
        self.cv = threading.Condition()
        threading.Thread(target=self._read, args=(self.proc.stdout, False), daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stderr, True), daemon=True).start()
        self.until_ready(30)   # the reset banner

    def _read(self, stream, is_err):
        for raw in stream:
            line = raw.decode("ascii", "replace").strip()
            with self.cv:
                if is_err and line.startswith("board: timestamp "):
                    self.pulses_us.append(int(line.split()[-1]))
                elif not is_err and line:
                    self.lines.append(line)
                self.cv.notify_all()

    def until_ready(self, timeout_s):
        out = []
        with self.cv:
            while True:
                while self.lines:
                    ln = self.lines.pop(0)
                    out.append(ln)
                    if ln == "m-ready":
                        return out
                if not self.cv.wait(timeout_s):
                    raise TimeoutError(f"no m-ready from the DUT: {out}")

    def command(self, cmd):
        self.proc.stdin.write(cmd.encode() + b"%")
        self.proc.stdin.flush()
        return self.until_ready(120)

    def close(self):
        self.proc.kill()
        self.proc.wait(10)


def test_real_energy_build_through_a_relay(tmp_path, capsys):
    """The bench app built with KWS_BENCH_ENERGY=1 (host board, MLPerf reference model) behind a fake IO
    manager; a fake LPM01A turns the DUT's own timestamp pulses into events on a constant-power trace.
    The harness must get µJ/inference = P x (time between the pulses of each window) / N."""
    import shutil

    from conftest import REPO, SHARED
    from kws.bench import qemu

    model = SHARED / "models" / "reference" / "mlperf_tiny_kws_ref_model.tflite"
    if not model.is_file():
        pytest.skip(f"{model} is absent")
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no host C compiler")
    elf = qemu.build("host", "bench", build_dir=REPO / "build" / "firmware" / "bench-energy-host",
                     extra_cflags=["-DKWS_BENCH_ENERGY=1"], make_vars={"MODEL": str(model)})
    dut = HostEnergyDut(elf)
    power_w = 0.040
    state = {"first_pulse": 0}

    def lpm(cmd, send):
        if cmd == "start":
            with dut.cv:
                state["first_pulse"] = len(dut.pulses_us)
        if cmd != "stop":
            send(f"PowerShield > ack {cmd}\r\n".encode())
            return
        with dut.cv:
            pulses = dut.pulses_us[state["first_pulse"]:]
        state.setdefault("deltas_us", []).append(pulses[-1] - pulses[-2] if len(pulses) >= 2 else None)
        if pulses:
            t0 = pulses[0] - 50_000
            at = {round((p - t0) * RATE / 1e6) for p in pulses}
            n = round((pulses[-1] + 50_000 - t0) * RATE / 1e6)
            w = _word(power_w / RATE)
            send("".join(("event 1 fal\r\n" if i in at else "") + w + "\r\n" for i in range(n)).encode())
        send(b"PowerShield > Acquisition completed\r\n")

    def io(cmd, send):
        if cmd == "name":
            send(b"m-[io-manager relay]\r\nm-ready\r\n")
            return
        send(b"m-ready\r\n")
        send(b"".join(b"[dut]: " + ln.encode() + b"\r\n" for ln in dut.command(cmd[4:])))

    mon, relay = FakeDevice(lpm, b"\r\n"), FakeDevice(io, b"%")
    out = tmp_path / "e.json"
    try:
        rc, err = _bench(["--mode", "energy", "--monitor", f"lpm01a:{mon.url}", "--io-manager", relay.url,
                          "--min-window-s", "1", "--warmups", "3", "--json", str(out)], capsys)
    finally:
        mon.close()
        relay.close()
        dut.close()
    assert rc == 0 and not err, err
    rep = json.loads(out.read_text())
    e = rep["energy"]
    assert rep["complete"] and rep["device"]["model"] == "kws01" and e["estimated"] is False
    # the accepted windows: the last 5 whose pulses (two per infer, around the timed runs) are >= 1 s apart
    # (a window that came out short is measured again with a larger N, and calibration comes first)
    deltas = [d for d in state["deltas_us"] if d is not None and d >= 1e6][-5:]
    assert len(e["windows"]) == 5 and len(deltas) == 5
    assert [w["duration_s"] for w in e["windows"]] == pytest.approx([d / 1e6 for d in deltas], abs=2.0 / RATE)
    expect_uj = [power_w * d / 1e6 / w["n"] * 1e6 for d, w in zip(deltas, e["windows"])]
    got = [w["uj_per_inference"] for w in e["windows"]]
    assert got == pytest.approx(expect_uj, rel=0.01)           # 1 ms of sampling over >= 1 s windows
    assert len(set(round(x, 6) for x in got)) > 1               # real timing varies between windows
    assert e["latency_ms"] == pytest.approx(
        statistics.median(d / w["n"] / 1e3 for d, w in zip(deltas, e["windows"])), rel=0.01)


def test_joulescope_without_its_package_is_one_line_and_touches_no_device(capsys):
    import importlib.util

    if importlib.util.find_spec("joulescope") is not None:
        pytest.skip("the joulescope package is installed here")
    rc, err = _bench(["--mode", "energy", "--monitor", "joulescope", "--io-manager", "loop://"], capsys)
    assert rc != 0 and len(err) == 1 and "pip install 'kws-toolchain[energy]'" in err[0]
