"""The frontend built for Cortex-M4 (qemu mps2-an386) gives the host library's bytes, streaming and
whole-clip alike, within the instruction budget per hop (DESIGN.md decisions 1, 4 and 5)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from conftest import speechlike
from kws import features

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.skipif(shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
                       reason="qemu-system-arm / arm-none-eabi-gcc not installed (`make setup` installs them)"),
]

# Instructions per 20 ms hop (median): issue 3's goal was 40,000 for mlperf_kws01; these bounds sit ~5 %
# above what the current code measures (25.5 K and 28.6 K), so a slower frontend fails here.
HOP_BUDGET_INSTRUCTIONS = {"mlperf_kws01": 26_800, "ww_logmel40": 30_000}


def _clips(shared_dir) -> np.ndarray:
    rng = np.random.default_rng(5)
    clips = [np.clip(np.round(speechlike(1.0, seed=s, amp=a) * 32767), -32768, 32767).astype(np.int16)
             for s, a in zip(range(6), (0.9, 0.2, 0.02, 0.5, 0.001, 0.7))]
    clips.append(np.zeros(16000, np.int16))                                   # silence
    square = np.where((np.arange(16000) // 40) % 2 == 0, 32767, -32768).astype(np.int16)
    clips.append(square)                                                     # full-scale square wave
    impulse = np.zeros(16000, np.int16)
    impulse[8100] = -32768
    clips.append(impulse)                                                    # one non-zero sample
    clips.append((rng.standard_normal(16000) * 3000).clip(-32768, 32767).astype(np.int16))
    if shared_dir is not None:
        import soundfile as sf

        files = sorted((shared_dir / "speech_commands_v2_test").rglob("*.flac"))[::150]
        for f in files:
            pcm = sf.read(f, dtype="int16")[0][:16000]
            clips.append(np.pad(pcm, (0, 16000 - len(pcm))))
    return np.stack(clips)


@pytest.fixture(scope="module")
def clip_set(request):
    from conftest import SHARED_REAL

    return _clips(SHARED_REAL if SHARED_REAL.is_dir() else None)


@pytest.mark.parametrize("preset", ["mlperf_kws01", "ww_logmel40"])
def test_cortex_m4_bytes_equal_host_bytes(preset, clip_set, tmp_path):
    from kws.features import device

    elf = device.build_check(preset, build_dir=tmp_path / "build")
    run = device.run_check(clip_set, preset=preset, elf=elf)
    host = np.stack([features.compute(c, preset=preset) for c in clip_set])
    np.testing.assert_array_equal(run.features, host)
    # the outputs vary: different clips, different rows
    assert len({f.tobytes() for f in run.features}) == len(clip_set) and run.features.std() > 3
    per_hop = run.instructions_per_row
    assert np.median(per_hop) <= HOP_BUDGET_INSTRUCTIONS[preset], np.median(per_hop)
    if preset == "mlperf_kws01":
        again = device.run_check(clip_set[:3], preset=preset, elf=elf)
        np.testing.assert_array_equal(again.ticks_per_row, run.ticks_per_row[:3])  # -icount: repeatable
        mem = device.memory_report(elf)
        assert 0 < mem["state_ram_bytes"] <= 2048 and 0 < mem["table_flash_bytes"] <= 8192
