"""The integer wake-word detector that runs after the model on the device, defined exactly.

Every model invocation yields a wake-word score ``score = q + 128`` in 0..255 (``q`` is the int8
softmax output). The detector has three integer parameters: ``threshold`` (0..255), ``window`` W
(>= 1 invocations averaged) and ``refractory`` R (>= 0 invocations). Its state is a ring of the last
W scores, zero at stream start, and a countdown ``hold`` = 0. For each invocation i, in order::

    push score into the ring (overwriting the oldest)
    s = sum(ring)
    if hold > 0:             hold -= 1            (no detection)
    elif s >= threshold * W: detection at i; hold = R

The ring is not reset after a detection, so after a detection at i the next possible one is at
i + R + 1. All arithmetic is on integers: with W <= 65535 the sum fits in 24 bits, so a C twin can use
uint32 throughout.

``detect`` is the reference (a literal loop over the rule above); ``smoothed_sums`` + ``detect_fast``
give identical results and cost O(M) numpy work plus Python work proportional to the detections.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from kws.errors import KwsError

MAX_WINDOW = 65535
MAX_REFRACTORY = 2**31 - 1


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


@dataclass(frozen=True)
class DetectorParams:
    """Detector parameters: threshold 0..255, window 1..65535 and refractory >= 0 (both in invocations)."""

    threshold: int
    window: int
    refractory: int

    def __post_init__(self) -> None:
        self.check()
        for name in ("threshold", "window", "refractory"):
            object.__setattr__(self, name, int(getattr(self, name)))

    def check(self) -> None:
        """Raise KwsError naming the first parameter that is not an integer in its range."""
        limits = {"threshold": (0, 255), "window": (1, MAX_WINDOW), "refractory": (0, MAX_REFRACTORY)}
        for name, (lo, hi) in limits.items():
            value = getattr(self, name)
            if not _is_int(value):
                raise KwsError(f"detector {name}: {value!r} is not an integer")
            if not lo <= value <= hi:
                raise KwsError(f"detector {name}: {value} is outside {lo}..{hi}")


def refractory_from_ms(refractory_ms: float, *, hop_ms: float) -> int:
    """The refractory in invocations that covers at least `refractory_ms` when invocations are `hop_ms` apart."""
    if not (math.isfinite(refractory_ms) and refractory_ms >= 0):
        raise KwsError(f"refractory_ms: {refractory_ms!r} is not a finite number >= 0")
    if not (math.isfinite(hop_ms) and hop_ms > 0):
        raise KwsError(f"hop_ms: {hop_ms!r} is not a finite number > 0")
    return int(math.ceil(refractory_ms / hop_ms - 1e-9))


def as_scores(scores: object, *, what: str = "scores") -> np.ndarray:
    """`scores` as a 1-D uint8 array; integer arrays with values in 0..255 are accepted and converted."""
    arr = np.asarray(scores)
    if arr.ndim != 1:
        raise KwsError(f"{what}: expected a 1-D array of scores, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return arr
    if arr.size == 0:
        return arr.astype(np.uint8)
    if arr.dtype.kind not in "iu":
        raise KwsError(f"{what}: expected uint8 scores (q + 128), got dtype {arr.dtype}")
    if int(arr.min()) < 0 or int(arr.max()) > 255:
        raise KwsError(f"{what}: scores must lie in 0..255, got {int(arr.min())}..{int(arr.max())}")
    return arr.astype(np.uint8)


def smoothed_sums(scores: np.ndarray, window: int) -> np.ndarray:
    """The ring sum after each push: ``sums[i] = scores[max(0, i-W+1)] + ... + scores[i]``.

    scores: uint8 [M]. Returns int32 [M]. The ring starts at zero, so the first W-1 sums cover fewer
    scores (they are not rescaled), exactly as on the device.
    """
    x = as_scores(scores)
    DetectorParams(threshold=0, window=window, refractory=0)  # validates window
    csum = np.zeros(x.size + 1, dtype=np.int64)
    np.cumsum(x, dtype=np.int64, out=csum[1:])
    lower = np.maximum(np.arange(1, x.size + 1) - int(window), 0)
    return (csum[1:] - csum[lower]).astype(np.int32)


def detect(scores: np.ndarray, params: DetectorParams) -> np.ndarray:
    """Reference detector: a literal per-invocation loop. scores uint8 [M] -> int64 [D] detection indices."""
    x = as_scores(scores)
    params.check()
    width, need, refractory = params.window, params.threshold * params.window, params.refractory
    ring = [0] * width
    slot = 0
    hold = 0
    found: list[int] = []
    for i, score in enumerate(x.tolist()):
        ring[slot] = score
        slot = (slot + 1) % width
        total = sum(ring)
        if hold > 0:
            hold -= 1
        elif total >= need:
            found.append(i)
            hold = refractory
    return np.asarray(found, dtype=np.int64)


def follow_chain(next_pos: np.ndarray) -> np.ndarray:
    """Positions visited by 0 -> next_pos[0] -> ... until a position >= len(next_pos).

    next_pos: integer [N] with next_pos[j] > j. Returns int64 [K] (empty when N == 0).
    Costs O(K) Python steps, so it is cheap when the chain is short.
    """
    n = int(next_pos.size)
    nxt = next_pos.tolist()
    visited: list[int] = []
    j = 0
    while j < n:
        visited.append(j)
        j = nxt[j]
    return np.asarray(visited, dtype=np.int64)


def select_spaced(positions: np.ndarray, min_step: int) -> np.ndarray:
    """Greedy earliest-first selection: keep positions[0], then each next position >= last kept + min_step.

    positions: sorted integer [N]. Returns the kept values, int64 [K]. With min_step <= 1 every
    position is kept (they are distinct indices).
    """
    pos = np.asarray(positions, dtype=np.int64)
    step = int(min_step)
    if step <= 1 or pos.size <= 1:
        return pos
    run_starts = np.concatenate([[0], np.flatnonzero(np.diff(pos) != 1) + 1])
    if run_starts.size * 2 * step < pos.size:
        return _select_in_runs(pos, run_starts, step)  # long runs of consecutive positions
    next_pos = np.searchsorted(pos, pos + step, side="left")
    return pos[follow_chain(next_pos)]


def _select_in_runs(pos: np.ndarray, run_starts: np.ndarray, step: int) -> np.ndarray:
    """`select_spaced` walking maximal runs of consecutive positions (every index of a run is a position)."""
    firsts = pos[run_starts].tolist()
    lasts = pos[np.append(run_starts[1:] - 1, pos.size - 1)].tolist()
    begins: list[int] = []
    counts: list[int] = []
    allowed = firsts[0]
    for first, last in zip(firsts, lasts):
        begin = max(first, allowed)
        if begin > last:
            continue
        count = (last - begin) // step + 1
        begins.append(begin)
        counts.append(count)
        allowed = begin + count * step
    n = np.asarray(counts, dtype=np.int64)
    offsets = np.repeat(np.cumsum(n) - n, n)
    return np.repeat(np.asarray(begins, dtype=np.int64), n) + step * (np.arange(int(n.sum())) - offsets)


def detect_fast(sums: np.ndarray, threshold: int, window: int, refractory: int) -> np.ndarray:
    """Detections from precomputed ring sums; identical to `detect` on the scores the sums came from.

    sums: integer [M] from `smoothed_sums(scores, window)`. Returns int64 [D] detection indices.
    The candidates are the invocations with ``sums >= threshold * window``; the refractory only ever
    skips candidates, so a greedy pass over the candidates alone reproduces the device exactly.
    """
    params = DetectorParams(threshold=threshold, window=window, refractory=refractory)
    arr = np.asarray(sums)
    if arr.ndim != 1:
        raise KwsError(f"sums: expected a 1-D array, got shape {arr.shape}")
    candidates = np.flatnonzero(arr >= params.threshold * params.window)
    return select_spaced(candidates, params.refractory + 1)
