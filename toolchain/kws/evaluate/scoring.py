"""Score the device detector on labelled streams: miss rate (FRR), false accepts per hour (FAPH).

Rules (times are the invocation times in `ScoredStream.times_ms`):

* A positive stream is a hit when some detection time t satisfies
  ``start_ms <= t <= end_ms + HIT_TAIL_MS`` (both ends inclusive); otherwise it is a miss.
  Detections on a positive stream outside that window are ignored: they are neither hits nor false
  accepts, and positive audio does not count towards the negative hours.
* On a negative stream every detection is a false accept, except that a detection at most
  DEBOUNCE_MS after the last *counted* false accept of the same stream (``t <= last + DEBOUNCE_MS``)
  is merged into it. The count is therefore the greedy earliest-first set of detections spaced more
  than DEBOUNCE_MS apart.
* FAPH = false accepts / negative hours, negative hours = sum of negative `duration_s` / 3600.

`evaluate` applies these rules at one threshold; `sweep` gives the same numbers for every threshold
0..255 at once (it is tested to agree with `evaluate`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Literal, Sequence

import numpy as np

from kws.errors import KwsError
from kws.evaluate.detector import DetectorParams, as_scores, detect_fast, follow_chain, select_spaced, smoothed_sums
from kws.evaluate.stats import binomial_ci, poisson_rate_ci

HIT_TAIL_MS = 1000.0
DEBOUNCE_MS = 1000.0
THRESHOLDS = np.arange(256, dtype=np.int64)
REPORT_TARGETS_FAPH = (0.5, 1.0)


@dataclass
class ScoredStream:
    """One stream of detector scores with its label.

    scores: uint8 [M], the wake-word score (q + 128) of each model invocation.
    times_ms: float64 [M], the time of each invocation from stream start, non-decreasing.
    duration_s: audio length (> 0); negative durations add up to the negative hours.
    kind: "positive" (contains one spoken wake word) or "negative" (must not trigger).
    utterance_ms: (start, end) of the spoken wake word for positives; None for negatives.
    """

    scores: np.ndarray
    times_ms: np.ndarray
    duration_s: float
    kind: Literal["positive", "negative"]
    utterance_ms: tuple[float, float] | None = None
    name: str = ""

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Validate and normalise the fields (uint8 scores, float64 times); raise KwsError on bad input."""
        if not isinstance(self.name, str):
            raise KwsError(f"stream name: {self.name!r} is not a string")
        label = f"stream {self.name or '<unnamed>'}"
        if self.kind not in ("positive", "negative"):
            raise KwsError(f"{label}: kind {self.kind!r} is not 'positive' or 'negative'")
        self.scores = as_scores(self.scores, what=f"{label} scores")
        try:
            times = np.asarray(self.times_ms, dtype=np.float64)
        except (TypeError, ValueError):
            raise KwsError(f"{label}: times_ms is not an array of numbers") from None
        if times.shape != self.scores.shape:
            raise KwsError(f"{label}: times_ms has shape {times.shape} but scores have {self.scores.shape}")
        if not np.all(np.isfinite(times)):
            raise KwsError(f"{label}: times_ms contains NaN or infinite values")
        if times.size > 1 and np.any(np.diff(times) < 0):
            raise KwsError(f"{label}: times_ms is not non-decreasing")
        self.times_ms = times
        if not (isinstance(self.duration_s, (int, float, np.integer, np.floating))
                and math.isfinite(float(self.duration_s)) and float(self.duration_s) > 0):
            raise KwsError(f"{label}: duration_s {self.duration_s!r} is not a finite number > 0")
        self.duration_s = float(self.duration_s)
        if self.kind == "negative":
            if self.utterance_ms is not None:
                raise KwsError(f"{label}: a negative stream must have utterance_ms None")
            return
        try:
            start, end = (float(v) for v in self.utterance_ms)  # type: ignore[union-attr]
        except (TypeError, ValueError):
            raise KwsError(f"{label}: a positive stream needs utterance_ms = (start_ms, end_ms)") from None
        if not (math.isfinite(start) and math.isfinite(end) and start <= end):
            raise KwsError(f"{label}: utterance_ms ({start}, {end}) is not a finite range with start <= end")
        self.utterance_ms = (start, end)


def _checked(streams: Iterable[ScoredStream]) -> list[ScoredStream]:
    items = list(streams)
    for s in items:
        if not isinstance(s, ScoredStream):
            raise KwsError(f"streams: expected ScoredStream items, got {type(s).__name__}")
        s.check()
    if not any(s.kind == "positive" for s in items):
        raise KwsError("streams: no positive streams; the miss rate needs wake-word audio")
    if not any(s.kind == "negative" for s in items):
        raise KwsError("streams: no negative streams; false accepts per hour need negative audio")
    return items


def _hit_mask(stream: ScoredStream) -> np.ndarray:
    """bool [M]: invocations whose time lies in the hit window of a positive stream."""
    start, end = stream.utterance_ms  # type: ignore[misc]
    t = stream.times_ms
    return (t >= start) & (t <= end + HIT_TAIL_MS)


def _debounced_count(times_ms: Sequence[float]) -> int:
    """Number of false accepts among detections at `times_ms` (sorted) after the debounce rule."""
    count = 0
    last = None
    for t in times_ms:
        if last is None or t > last + DEBOUNCE_MS:
            count += 1
            last = t
    return count


def _target(target_faph: float) -> float:
    if not (isinstance(target_faph, (int, float, np.integer, np.floating)) and not isinstance(target_faph, bool)
            and math.isfinite(float(target_faph)) and float(target_faph) >= 0):
        raise KwsError(f"target_faph: {target_faph!r} is not a finite number >= 0")
    return float(target_faph)


def evaluate(streams: Iterable[ScoredStream], params: DetectorParams) -> dict:
    """Score the detector with `params` on labelled streams (see the module rules).

    Returns {"threshold", "window", "refractory", "positives", "hits", "misses", "frr", "frr_ci95",
    "missed_names", "negatives", "negative_hours", "false_accepts", "faph", "faph_ci95",
    "false_accepts_by_stream" (name -> count, nonzero only)}; plain Python types.
    """
    items = _checked(streams)
    params.check()
    positives = 0
    missed: list[str] = []
    negatives = 0
    negative_s = 0.0
    false_accepts = 0
    by_stream: dict[str, int] = {}
    for s in items:
        sums = smoothed_sums(s.scores, params.window)
        det = detect_fast(sums, params.threshold, params.window, params.refractory)
        if s.kind == "positive":
            positives += 1
            if not np.any(_hit_mask(s)[det]):
                missed.append(s.name)
        else:
            negatives += 1
            negative_s += s.duration_s
            count = _debounced_count(s.times_ms[det].tolist())
            false_accepts += count
            if count:
                by_stream[s.name] = by_stream.get(s.name, 0) + count
    hours = negative_s / 3600.0
    return {
        "threshold": params.threshold, "window": params.window, "refractory": params.refractory,
        "positives": positives, "hits": positives - len(missed), "misses": len(missed),
        "frr": len(missed) / positives, "frr_ci95": list(binomial_ci(len(missed), positives)),
        "missed_names": missed,
        "negatives": negatives, "negative_hours": hours, "false_accepts": false_accepts,
        "faph": false_accepts / hours, "faph_ci95": list(poisson_rate_ci(false_accepts, hours)),
        "false_accepts_by_stream": by_stream,
    }


def sweep(streams: Iterable[ScoredStream], *, window: int, refractory: int) -> dict:
    """`evaluate` at every threshold 0..255 for one (window, refractory).

    All streams are laid end to end with `refractory` dead invocations between them (so a hold never
    crosses a stream boundary); ring sums, hit windows and debounce links are computed once, and each
    threshold then costs O(M) numpy work plus Python steps proportional to its detections.

    Returns {"thresholds": int64 [256], "misses": int64 [256], "frr": float64 [256],
    "false_accepts": int64 [256], "faph": float64 [256], "positives": int, "negatives": int,
    "negative_hours": float, "window": int, "refractory": int}.
    """
    items = _checked(streams)
    params = DetectorParams(threshold=0, window=window, refractory=refractory)
    window, refractory = params.window, params.refractory
    lengths = [s.scores.size for s in items]
    starts = np.concatenate([[0], np.cumsum(np.asarray(lengths, dtype=np.int64) + refractory)])
    total = int(starts[-1])
    sums_all = np.full(total, -1, dtype=np.int32)  # -1: dead slot, never a candidate
    in_hit = np.zeros(total, dtype=bool)
    is_negative = np.zeros(total, dtype=bool)
    positive_id = np.zeros(total, dtype=np.int64)
    debounce_next = np.zeros(total, dtype=np.int64)  # global index of the first invocation past the debounce
    positives = negatives = 0
    negative_s = 0.0
    for s, start, m in zip(items, starts[:-1].tolist(), lengths):
        span = slice(start, start + m)
        sums_all[span] = smoothed_sums(s.scores, window)
        if s.kind == "positive":
            in_hit[span] = _hit_mask(s)
            positive_id[span] = positives
            positives += 1
        else:
            is_negative[span] = True
            t = s.times_ms
            debounce_next[span] = start + np.searchsorted(t, t + DEBOUNCE_MS, side="right")
            negatives += 1
            negative_s += s.duration_s
    hours = negative_s / 3600.0
    misses = np.full(THRESHOLDS.size, positives, dtype=np.int64)
    false_accepts = np.zeros(THRESHOLDS.size, dtype=np.int64)
    for k, threshold in enumerate(THRESHOLDS.tolist()):
        candidates = np.flatnonzero(sums_all >= threshold * window)
        if candidates.size == 0:
            break  # higher thresholds have no candidates either
        det = select_spaced(candidates, refractory + 1)
        hit_ids = positive_id[det[in_hit[det]]]
        misses[k] = positives - np.unique(hit_ids).size
        neg = det[is_negative[det]]
        if neg.size:
            links = np.searchsorted(neg, debounce_next[neg], side="left")
            false_accepts[k] = follow_chain(links).size
    return {
        "thresholds": THRESHOLDS.copy(), "misses": misses, "frr": misses / positives,
        "false_accepts": false_accepts, "faph": false_accepts / hours,
        "positives": positives, "negatives": negatives, "negative_hours": hours,
        "window": window, "refractory": refractory,
    }


_SWEEP_KEYS = ("thresholds", "misses", "frr", "false_accepts", "faph", "positives", "negative_hours")


def _check_sweep(sweep_result: dict) -> None:
    missing = [k for k in _SWEEP_KEYS if k not in sweep_result]
    if missing:
        raise KwsError(f"sweep_result: missing {', '.join(missing)}; pass the dict returned by sweep()")


def operating_point(sweep_result: dict, target_faph: float) -> dict | None:
    """The threshold with the lowest FRR among those with FAPH <= target_faph (ties: highest threshold).

    With refractory 0 the FRR never falls as the threshold rises, so this is the largest threshold
    meeting the target. Returns {"threshold", "frr", "ci95", "misses", "positives", "faph",
    "faph_ci95", "false_accepts", "target_faph"}, or None when no threshold meets the target.
    """
    _check_sweep(sweep_result)
    target = _target(target_faph)
    faph = np.asarray(sweep_result["faph"], dtype=np.float64)
    frr = np.asarray(sweep_result["frr"], dtype=np.float64)
    ok = np.flatnonzero(faph <= target * (1 + 1e-12))
    if ok.size == 0:
        return None
    # Among equally good FRRs take the highest threshold: the same misses with the fewest false accepts.
    best_frr = frr[ok].min()
    best = int(ok[frr[ok] == best_frr][-1])
    misses = int(sweep_result["misses"][best])
    fa = int(sweep_result["false_accepts"][best])
    positives, hours = int(sweep_result["positives"]), float(sweep_result["negative_hours"])
    return {
        "threshold": int(sweep_result["thresholds"][best]), "frr": float(frr[best]),
        "ci95": list(binomial_ci(misses, positives)), "misses": misses, "positives": positives,
        "faph": float(faph[best]), "faph_ci95": list(poisson_rate_ci(fa, hours)),
        "false_accepts": fa, "target_faph": target,
    }


def calibrate(streams: Iterable[ScoredStream], *, target_faph: float, windows: Sequence[int] = (1, 2, 3, 4, 5),
              refractories: Sequence[int] = (0,)) -> dict | None:
    """Choose (threshold, window, refractory) with the lowest FRR at FAPH <= target_faph.

    `refractories` are in invocations (see `detector.refractory_from_ms`); pass the values worth trying.
    Ties: fewer false accepts, then smaller window, then larger refractory. Returns the winning
    operating point plus {"window", "refractory", "negative_hours", "grid"} (grid: one entry per
    combination, threshold None where nothing met the target), or None when no combination meets it.
    """
    items = _checked(streams)
    target = _target(target_faph)
    windows, refractories = list(windows), list(refractories)
    if not windows or not refractories:
        raise KwsError("calibrate: windows and refractories must each list at least one value")
    grid: list[dict] = []
    best: dict | None = None
    best_key: tuple | None = None
    for window in windows:
        for refractory in refractories:
            result = sweep(items, window=window, refractory=refractory)
            op = operating_point(result, target)
            grid.append({"window": int(window), "refractory": int(refractory),
                         **(op if op is not None else {"threshold": None})})
            if op is None:
                continue
            key = (op["misses"], op["false_accepts"], int(window), -int(refractory))
            if best_key is None or key < best_key:
                best_key = key
                best = {**op, "window": int(window), "refractory": int(refractory),
                        "negative_hours": result["negative_hours"]}
    if best is None:
        return None
    best["grid"] = grid
    return best


def faph_key(target_faph: float) -> str:
    """The JSON key for a FAPH target: 0.5 -> "0.5", 1 -> "1.0"."""
    return repr(_target(target_faph))


def _plain(value: object) -> object:
    """`value` with numpy scalars/arrays turned into Python numbers/lists (JSON-ready)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def report_json(sweep_result: dict, *, targets_faph: Sequence[float] = REPORT_TARGETS_FAPH,
                evaluation: dict | None = None) -> dict:
    """The dict `kws eval --json` writes, from a `sweep` result (and optionally an `evaluate` result).

    Contains "positives", "negatives", "negative_hours", "detector" {"window", "refractory"}, "rules",
    "frr_at_faph" {"0.5": {"frr", "ci95", "threshold", "faph", "faph_ci95", "false_accepts", "misses"},
    ...} (threshold None, frr 1.0 and a "note" where no threshold meets the target), "sweep" (lists
    over thresholds 0..255) and, when given, "evaluation" (the detector as deployed).
    """
    _check_sweep(sweep_result)
    positives, hours = int(sweep_result["positives"]), float(sweep_result["negative_hours"])
    at_faph: dict[str, dict] = {}
    for target in targets_faph:
        key = faph_key(target)
        op = operating_point(sweep_result, target)
        if op is None:
            at_faph[key] = {"frr": 1.0, "ci95": list(binomial_ci(positives, positives)), "threshold": None,
                            "note": f"no threshold gives <= {key} false accepts per hour on "
                                    f"{hours:.3g} negative hours"}
        else:
            at_faph[key] = {k: op[k] for k in ("frr", "ci95", "threshold", "faph", "faph_ci95",
                                               "false_accepts", "misses")}
    report = {
        "positives": positives,
        "negatives": int(sweep_result.get("negatives", 0)),
        "negative_hours": hours,
        "detector": {"window": sweep_result.get("window"), "refractory": sweep_result.get("refractory")},
        "rules": {"hit_window_ms": f"[utterance start, utterance end + {HIT_TAIL_MS:g}]",
                  "debounce_ms": DEBOUNCE_MS,
                  "positive_stream_detections_outside_hit_window": "ignored (not false accepts)"},
        "frr_at_faph": at_faph,
        "sweep": {k: sweep_result[k] for k in ("thresholds", "frr", "misses", "false_accepts", "faph")},
    }
    if evaluation is not None:
        report["evaluation"] = evaluation
    return _plain(report)
