"""The one source of truth for constants shared by every stage.

Firmware headers that need these numbers are generated from this module, never kept in sync by hand.
"""

from __future__ import annotations

# Audio entering the pipeline: every stage after `kws data` assumes this format.
SAMPLE_RATE_HZ = 16000
CHANNELS = 1
SAMPLE_WIDTH_BYTES = 2  # clips are written as 16-bit PCM WAV

# Class names shared with Speech Commands / MLPerf Tiny.
UNKNOWN_LABEL = "_unknown_"
SILENCE_LABEL = "_silence_"
QUARANTINE_DIR = "_quarantine"
MANIFEST_NAME = "manifest.csv"

# One manifest format for every acquisition command (see kws.data.manifest).
MANIFEST_COLUMNS = (
    "path",
    "label",
    "speaker",
    "split",
    "source",
    "duration_s",
    "sample_rate_hz",
    "sha256",
    "status",
)
SPLITS = ("train", "validation", "test")

# Speaker-hash split, the rule Speech Commands itself uses (Warden 2018, arXiv:1804.03209):
# percentage = (int(sha1(speaker), 16) % (MAX + 1)) * 100 / MAX, MAX = 2**27 - 1.
SPLIT_HASH_MAX = 2**27 - 1
VALIDATION_PERCENT = 10.0
TESTING_PERCENT = 10.0

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".aiff", ".aif", ".aifc")

# Speech Commands v0.02, as published by its author.
SPEECH_COMMANDS_V2_URL = "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz"
SPEECH_COMMANDS_V2_SHA256 = "af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58"
