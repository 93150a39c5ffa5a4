"""Integer detector, scoring rules (FRR / false accepts per hour), sweeps, calibration, CIs and the DET plot."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from scipy.optimize import brentq

from kws.errors import KwsError
from kws.evaluate.detector import (DetectorParams, detect, detect_fast, refractory_from_ms, select_spaced,
                                   smoothed_sums)
from kws.evaluate.plots import det_curve_png
from kws.evaluate.scoring import (ScoredStream, calibrate, evaluate, faph_key, operating_point, report_json,
                                  sweep)
from kws.evaluate.stats import binomial_ci, poisson_rate_ci


# Scores as runs of constant values (long bursts, like real model output) mixed with free noise.
_runs = st.lists(st.tuples(st.sampled_from([0, 1, 60, 127, 128, 200, 254, 255]), st.integers(1, 25)),
                 max_size=10).map(lambda runs: [v for v, n in runs for _ in range(n)])
_noise = st.lists(st.integers(0, 255), max_size=80)
score_lists = st.one_of(_runs, _noise, st.tuples(_runs, _noise, _runs).map(lambda t: t[0] + t[1] + t[2]))
params_st = st.builds(DetectorParams, threshold=st.integers(0, 255), window=st.integers(1, 6),
                      refractory=st.integers(0, 12))


def _u8(values) -> np.ndarray:
    return np.asarray(values, dtype=np.uint8)


@settings(max_examples=400, deadline=None)
@given(score_lists, params_st)
def test_detect_fast_equals_reference(scores, params):
    x = _u8(scores)
    ref = detect(x, params)
    fast = detect_fast(smoothed_sums(x, params.window), params.threshold, params.window, params.refractory)
    assert ref.dtype == np.int64 and fast.dtype == np.int64
    np.testing.assert_array_equal(ref, fast)


@settings(max_examples=200, deadline=None)
@given(score_lists, st.integers(1, 7))
def test_smoothed_sums_is_the_zero_initialised_ring_sum(scores, window):
    x = _u8(scores)
    sums = smoothed_sums(x, window)
    assert sums.dtype == np.int32 and sums.shape == x.shape
    expect = [sum(int(v) for v in x[max(0, i - window + 1): i + 1]) for i in range(x.size)]
    assert sums.tolist() == expect


@settings(max_examples=300, deadline=None)
@given(score_lists, params_st)
def test_refractory_spacing_and_maximality(scores, params):
    x = _u8(scores)
    det = detect(x, params)
    assert np.all(np.diff(det) >= params.refractory + 1)
    # Every candidate that is not a detection lies inside the hold of an earlier detection.
    candidates = np.flatnonzero(smoothed_sums(x, params.window) >= params.threshold * params.window)
    for c in np.setdiff1d(candidates, det):
        before = det[det < c]
        assert before.size and c - before[-1] <= params.refractory


@settings(max_examples=200, deadline=None)
@given(score_lists, st.integers(0, 255), st.integers(0, 255), st.integers(1, 5), st.integers(0, 8))
def test_detections_shrink_as_threshold_rises(scores, t1, t2, window, refractory):
    lo, hi = sorted((t1, t2))
    x = _u8(scores)
    d_lo = detect(x, DetectorParams(lo, window, refractory))
    d_hi = detect(x, DetectorParams(hi, window, refractory))
    assert d_hi.size <= d_lo.size  # greedy spacing picks a maximum set, so this holds for any refractory
    if refractory == 0:
        assert set(d_hi.tolist()) <= set(d_lo.tolist())


@settings(max_examples=200, deadline=None)
@given(score_lists, st.integers(0, 255))
def test_window_1_refractory_0_is_plain_thresholding(scores, threshold):
    x = _u8(scores)
    np.testing.assert_array_equal(detect(x, DetectorParams(threshold, 1, 0)), np.flatnonzero(x >= threshold))


def test_detector_hand_example_and_threshold_dependence():
    x = _u8([0, 200, 200, 200, 0, 0, 90, 90, 90, 0, 255, 0])
    # window 2: sums = 0,200,400,400,200,0,90,180,180,90,255,255
    assert smoothed_sums(x, 2).tolist() == [0, 200, 400, 400, 200, 0, 90, 180, 180, 90, 255, 255]
    assert detect(x, DetectorParams(100, 2, 0)).tolist() == [1, 2, 3, 4, 10, 11]
    assert detect(x, DetectorParams(90, 2, 0)).tolist() == [1, 2, 3, 4, 7, 8, 10, 11]
    assert detect(x, DetectorParams(90, 2, 2)).tolist() == [1, 4, 7, 10]
    assert detect(x, DetectorParams(150, 2, 0)).tolist() == [2, 3]
    assert detect(x, DetectorParams(201, 2, 0)).tolist() == []
    rng = np.random.default_rng(1)
    y = rng.integers(0, 256, 500).astype(np.uint8)
    counts = [detect(y, DetectorParams(t, 3, 1)).size for t in (0, 64, 128, 192, 250)]
    assert counts == sorted(counts, reverse=True) and len(set(counts)) == 5


def test_select_spaced_both_paths():
    runs = np.concatenate([np.arange(0, 100), np.arange(103, 200), np.arange(400, 401)])
    assert np.array_equal(select_spaced(runs, 4), np.concatenate([np.arange(0, 100, 4), np.arange(103, 200, 4), [400]]))
    sparse = np.array([0, 2, 5, 6, 9, 15])
    assert select_spaced(sparse, 3).tolist() == [0, 5, 9, 15]
    assert select_spaced(np.array([], dtype=np.int64), 3).size == 0


def test_detector_rejects_bad_input():
    for kwargs, word in [({"threshold": 256, "window": 1, "refractory": 0}, "threshold"),
                         ({"threshold": -1, "window": 1, "refractory": 0}, "threshold"),
                         ({"threshold": 10, "window": 0, "refractory": 0}, "window"),
                         ({"threshold": 10, "window": 2.0, "refractory": 0}, "window"),
                         ({"threshold": True, "window": 1, "refractory": 0}, "threshold"),
                         ({"threshold": 10, "window": 1, "refractory": -3}, "refractory")]:
        with pytest.raises(KwsError, match=word):
            DetectorParams(**kwargs)
    p = DetectorParams(np.int64(7), np.int32(2), np.uint8(1))
    assert (p.threshold, p.window, p.refractory) == (7, 2, 1) and type(p.threshold) is int
    with pytest.raises(KwsError, match="dtype float"):
        smoothed_sums(np.array([0.5, 1.0]), 2)
    with pytest.raises(KwsError, match="1-D"):
        smoothed_sums(np.zeros((2, 2), np.uint8), 2)
    with pytest.raises(KwsError, match="0..255"):
        smoothed_sums(np.array([0, 300]), 2)
    assert smoothed_sums(np.array([1, 2, 255], dtype=np.int64), 2).tolist() == [1, 3, 257]
    assert refractory_from_ms(1000, hop_ms=20) == 50 and refractory_from_ms(1001, hop_ms=20) == 51
    with pytest.raises(KwsError, match="hop_ms"):
        refractory_from_ms(100, hop_ms=0)



HOP_MS = 50.0


def _stream(hot: dict[int, int], n: int, kind: str, *, utterance=None, name="s", times=None) -> ScoredStream:
    scores = np.zeros(n, np.uint8)
    for i, v in hot.items():
        scores[i] = v
    t = np.arange(n) * HOP_MS if times is None else np.asarray(times, np.float64)
    return ScoredStream(scores, t, n * HOP_MS / 1000.0, kind, utterance, name)


def _quiet_negative(seconds: float = 3600.0) -> ScoredStream:
    return ScoredStream(np.zeros(4, np.uint8), np.arange(4) * HOP_MS, seconds, "negative", None, "quiet")


def test_debounce_merges_within_1000_ms_of_last_counted():
    times = [0.0, 500.0, 1000.0, 1001.0, 2500.0, 3400.0, 3600.0, 9000.0]
    hot = {i: 255 for i in range(len(times))}
    neg = _stream(hot, len(times), "negative", times=times, name="n1")
    neg.duration_s = 1800.0
    # A second stream: its first detection counts even right after the first stream's last one.
    other = _stream({0: 255}, 3, "negative", times=[9100.0, 10200.0, 11300.0], name="n2")
    other.duration_s = 1800.0
    pos = _stream({}, 10, "positive", utterance=(100.0, 200.0), name="p")
    params = DetectorParams(128, 1, 0)
    result = evaluate([pos, neg, other], params)
    # counted: 0, 1001 (1000 is merged: <= 1000 ms), 2500, 3600 (200 ms after a *merged* 3400), 9000; n2: 9100
    assert result["false_accepts"] == 6
    assert result["false_accepts_by_stream"] == {"n1": 5, "n2": 1}
    assert result["negative_hours"] == pytest.approx(1.0) and result["faph"] == pytest.approx(6.0)
    assert result["misses"] == 1 and result["missed_names"] == ["p"]
    sw = sweep([pos, neg, other], window=1, refractory=0)
    assert sw["false_accepts"][128] == 6 and sw["false_accepts"][0] == 6 + 2  # threshold 0: n2 fires on all
    assert sw["false_accepts"][255] == 6
    # Dropping the detection at 0 ms changes what is merged: 500 counts, 1000/1001 merge, 2500 ...
    neg.scores[0] = 0
    assert evaluate([pos, neg, other], params)["false_accepts"] == 5  # 500, 2500, 3600, 9000; 9100


@pytest.mark.parametrize("t_ms, hit", [(2499.0, True), (2500.0, True), (2501.0, False), (999.0, False),
                                        (1000.0, True), (1200.0, True)])
def test_hit_window_is_start_to_end_plus_1000_ms(t_ms, hit):
    times = [0.0, t_ms - 1.0, t_ms, t_ms + 10_000.0]
    pos = _stream({2: 255}, 4, "positive", utterance=(1000.0, 1500.0), times=times, name="p")
    result = evaluate([pos, _quiet_negative()], DetectorParams(200, 1, 0))
    assert result["misses"] == (0 if hit else 1) and result["frr"] == (0.0 if hit else 1.0)
    assert result["false_accepts"] == 0 and result["negative_hours"] == 1.0  # outside-window detections ignored
    sw = sweep([pos, _quiet_negative()], window=1, refractory=0)
    assert sw["misses"][200] == result["misses"] and sw["misses"][255] == result["misses"]


def test_early_detection_with_refractory_can_cause_a_miss():
    # idx 0 fires at threshold <= 150 and holds 10 invocations, covering the wake word at idx 5.
    pos = _stream({0: 150, 5: 250}, 20, "positive", utterance=(5 * HOP_MS, 8 * HOP_MS), name="p")
    neg = _quiet_negative()
    assert evaluate([pos, neg], DetectorParams(100, 1, 10))["misses"] == 1
    assert evaluate([pos, neg], DetectorParams(200, 1, 10))["misses"] == 0
    assert evaluate([pos, neg], DetectorParams(100, 1, 0))["misses"] == 0
    sw = sweep([pos, neg], window=1, refractory=10)
    assert sw["misses"][100] == 1 and sw["misses"][200] == 0  # FRR is not monotone once R > 0


def test_false_accepts_not_monotone_with_refractory():
    # R = 10 invocations (500 ms), debounce 1000 ms = 20 invocations.
    neg = _stream({0: 200, 15: 100, 21: 200, 22: 200}, 40, "negative", name="n")
    pos = _stream({}, 4, "positive", utterance=(0.0, 10.0))
    sw = sweep([pos, neg], window=1, refractory=10)
    assert sw["false_accepts"][100] == 1  # detections 0 and 15 (merged); 21 is in the hold of 15
    assert sw["false_accepts"][150] == 2  # detections 0 and 21 (1050 ms apart)


def _random_streams(seed: int, n_pos: int = 12, n_neg: int = 6) -> list[ScoredStream]:
    rng = np.random.default_rng(seed)
    streams = []
    for i in range(n_pos):
        m = int(rng.integers(20, 60))
        scores = (rng.beta(0.6, 5, m) * 255).astype(np.uint8)
        at = int(rng.integers(0, m - 5))
        scores[at: at + int(rng.integers(1, 5))] = rng.integers(80, 256)
        times = np.cumsum(rng.uniform(10.0, 90.0, m))
        utt = (float(times[at]) - rng.uniform(0, 300), float(times[at]) + rng.uniform(0, 300))
        streams.append(ScoredStream(scores, times, float(times[-1]) / 1000 + 0.1, "positive", utt, f"p{i}"))
    for i in range(n_neg):
        m = int(rng.integers(50, 300))
        scores = (rng.beta(0.5, 3, m) * 255).astype(np.uint8)
        times = np.cumsum(rng.uniform(10.0, 200.0, m))
        streams.append(ScoredStream(scores, times, float(times[-1]) / 1000 + 1, "negative", None, f"n{i}"))
    return streams


def _reference_counts(streams, params):
    """Misses and false accepts from the reference `detect` and the written rules, independently."""
    misses = fas = 0
    for s in streams:
        det_t = s.times_ms[detect(s.scores, params)]
        if s.kind == "positive":
            start, end = s.utterance_ms
            misses += not any(start <= t <= end + 1000.0 for t in det_t)
        else:
            last = None
            for t in det_t:
                if last is None or t - last > 1000.0:
                    fas, last = fas + 1, t
    return misses, fas


@pytest.mark.parametrize("window, refractory", [(1, 0), (3, 0), (2, 3), (4, 12)])
def test_sweep_matches_evaluate_and_reference(window, refractory):
    streams = _random_streams(window * 31 + refractory)
    sw = sweep(streams, window=window, refractory=refractory)
    assert sw["thresholds"].tolist() == list(range(256)) and sw["positives"] == 12 and sw["negatives"] == 6
    for t in range(256):
        ev = evaluate(streams, DetectorParams(t, window, refractory))
        assert (ev["misses"], ev["false_accepts"]) == (sw["misses"][t], sw["false_accepts"][t]), t
        assert ev["faph"] == pytest.approx(sw["faph"][t]) and ev["frr"] == pytest.approx(sw["frr"][t])
    for t in range(0, 256, 9):
        assert _reference_counts(streams, DetectorParams(t, window, refractory)) == \
            (sw["misses"][t], sw["false_accepts"][t]), t
    assert len(set(sw["false_accepts"].tolist())) > 3 and len(set(sw["misses"].tolist())) > 2


@pytest.mark.parametrize("seed", range(6))
def test_sweep_monotone_when_refractory_is_zero(seed):
    sw = sweep(_random_streams(100 + seed), window=1 + seed % 3, refractory=0)
    assert np.all(np.diff(sw["frr"]) >= 0) and np.all(np.diff(sw["false_accepts"]) <= 0)
    assert sw["false_accepts"][0] > sw["false_accepts"][-1] and sw["frr"][0] < sw["frr"][-1]


def test_sweep_is_fast_on_300k_invocations():
    rng = np.random.default_rng(5)
    streams = []
    for i in range(1000):  # 100k positive invocations
        s = (rng.beta(0.5, 8, 100) * 255).astype(np.uint8)
        s[40:55] = np.clip(rng.normal(190, 50, 15), 0, 255).astype(np.uint8)
        streams.append(ScoredStream(s, np.arange(100) * 20.0, 2.0, "positive", (800.0, 1100.0), f"p{i}"))
    for i in range(10):  # 200k negative invocations, noisy
        s = (rng.beta(0.6, 6, 20_000) * 255).astype(np.uint8)
        streams.append(ScoredStream(s, np.arange(20_000) * 20.0, 400.0, "negative", None, f"n{i}"))
    for window, refractory in ((3, 0), (3, 2)):
        t0 = time.perf_counter()
        sw = sweep(streams, window=window, refractory=refractory)
        seconds = time.perf_counter() - t0
        print(f"sweep over 300k invocations, window {window}, refractory {refractory}: {seconds:.2f} s")
        assert seconds < 30.0 and sw["positives"] == 1000


def test_stream_validation():
    t = np.arange(3) * 10.0
    bad = [(dict(scores=[0, 1, 2], times_ms=t, duration_s=1, kind="positive"), "utterance_ms"),
           (dict(scores=[0, 1, 2], times_ms=t, duration_s=1, kind="negative", utterance_ms=(0, 1)), "None"),
           (dict(scores=[0, 1], times_ms=t, duration_s=1, kind="negative"), "shape"),
           (dict(scores=[0, 1, 2], times_ms=[0, 5, 4], duration_s=1, kind="negative"), "non-decreasing"),
           (dict(scores=[0.0, 1.0, 2.0], times_ms=t, duration_s=1, kind="negative"), "uint8"),
           (dict(scores=[0, 1, 2], times_ms=t, duration_s=0, kind="negative"), "duration_s"),
           (dict(scores=[0, 1, 2], times_ms=t, duration_s=1, kind="maybe"), "kind"),
           (dict(scores=[0, 1, 2], times_ms=t, duration_s=1, kind="positive", utterance_ms=(5, 1)), "start <= end")]
    for kwargs, word in bad:
        with pytest.raises(KwsError, match=word):
            ScoredStream(name="x", **kwargs)
    pos = ScoredStream([0, 1, 2], t, 1, "positive", (0, 10), "p")
    with pytest.raises(KwsError, match="no negative streams"):
        evaluate([pos], DetectorParams(1, 1, 0))
    with pytest.raises(KwsError, match="no positive streams"):
        sweep([_quiet_negative()], window=1, refractory=0)



def _fake_sweep(faph, frr, positives=10, hours=2.0) -> dict:
    faph = np.asarray(faph, np.float64)
    return {"thresholds": np.arange(faph.size), "faph": faph, "frr": np.asarray(frr, np.float64),
            "false_accepts": np.rint(faph * hours).astype(np.int64),
            "misses": np.rint(np.asarray(frr) * positives).astype(np.int64),
            "positives": positives, "negatives": 3, "negative_hours": hours, "window": 2, "refractory": 0}


def test_operating_point_choice():
    # thresholds 0..5; faph falls, frr mostly rises, with a dip at 4 (possible when R > 0) and a tie.
    sw = _fake_sweep(faph=[5.0, 2.0, 1.0, 0.5, 0.5, 0.0], frr=[0.0, 0.1, 0.3, 0.5, 0.4, 0.4])
    op = operating_point(sw, 1.0)
    assert op["threshold"] == 2 and op["frr"] == 0.3 and op["false_accepts"] == 2
    assert op["ci95"] == pytest.approx(list(binomial_ci(3, 10))) and op["faph_ci95"] == pytest.approx(
        list(poisson_rate_ci(2, 2.0)))
    assert operating_point(sw, 0.5)["threshold"] == 5  # lowest FRR among faph <= 0.5; ties -> higher threshold (fewer FAs)
    assert operating_point(sw, 0.0)["threshold"] == 5
    assert operating_point(sw, 10.0)["threshold"] == 0
    assert operating_point(_fake_sweep([3.0, 2.0], [0.0, 0.1]), 1.0) is None


def _calibration_streams() -> list[ScoredStream]:
    streams = [_stream({10: 200, 11: 200, 12: 200}, 30, "positive", utterance=(500.0, 650.0), name=f"p{i}")
               for i in range(5)]
    # Negatives: isolated single-invocation spikes of 255, 2 s apart.
    spikes = {i: 255 for i in range(0, 2000, 40)}
    neg = _stream(spikes, 2000, "negative", name="n")
    neg.duration_s = 3600.0
    return streams + [neg]


def test_calibrate_picks_window_and_breaks_ties():
    streams = _calibration_streams()
    # window 1 cannot reject a 255 spike; windows 2 and 3 both reach FRR 0 with no false accepts.
    assert sweep(streams, window=1, refractory=0)["false_accepts"][255] == 50
    best = calibrate(streams, target_faph=0.5, windows=(1, 2, 3), refractories=(0, 5))
    assert (best["window"], best["refractory"], best["threshold"]) == (2, 5, 200)  # t in 128..200 all give FRR 0 and no FA: the highest wins
    assert best["frr"] == 0.0 and best["false_accepts"] == 0 and best["target_faph"] == 0.5
    assert len(best["grid"]) == 6 and all(g["threshold"] is None for g in best["grid"] if g["window"] == 1)
    assert calibrate(streams, target_faph=0.5, windows=(1,)) is None
    # At 60/h threshold 1 passes for W=1 (50 spikes) but threshold 0 does not (96 debounced detections on
    # silence); W=2 ties on misses and false accepts, so the smaller window wins.
    assert sweep(streams, window=1, refractory=0)["false_accepts"][0] == 96
    loose = calibrate(streams, target_faph=60.0, windows=(2, 1), refractories=(0,))
    # With ties going to the highest threshold, W=1 meets 60/h at 200 with its 50 spikes, W=2 at 200 with
    # none: equal misses, fewer false accepts, so W=2 wins.
    assert (loose["window"], loose["threshold"], loose["false_accepts"]) == (2, 200, 0)
    with pytest.raises(KwsError, match="windows"):
        calibrate(streams, target_faph=0.5, windows=())


def test_report_json_shape_and_no_threshold_case():
    streams = _calibration_streams()
    report = report_json(sweep(streams, window=2, refractory=0),
                         evaluation=evaluate(streams, DetectorParams(128, 2, 0)))
    text = json.dumps(report, allow_nan=False)
    assert json.loads(text) == report
    assert report["positives"] == 5 and report["negative_hours"] == 1.0
    assert set(report["frr_at_faph"]) == {"0.5", "1.0"}
    entry = report["frr_at_faph"]["0.5"]
    assert entry["threshold"] == 200 and entry["frr"] == 0.0 and entry["ci95"][0] == 0.0
    assert entry["ci95"][1] == pytest.approx(1 - 0.025 ** (1 / 5))
    assert report["detector"] == {"window": 2, "refractory": 0}
    assert len(report["sweep"]["frr"]) == 256 and report["evaluation"]["false_accepts"] == 0
    bad = report_json(sweep(streams, window=1, refractory=0), targets_faph=(0.5, 1))
    assert set(bad["frr_at_faph"]) == {"0.5", "1.0"}
    none = bad["frr_at_faph"]["1.0"]
    assert none["threshold"] is None and none["frr"] == 1.0 and none["ci95"][1] == 1.0 and "note" in none
    assert faph_key(2) == "2.0" and faph_key(0.25) == "0.25"



def test_binomial_ci_textbook_values():
    assert binomial_ci(0, 10) == (0.0, pytest.approx(1 - 0.025 ** (1 / 10)))
    assert binomial_ci(10, 10) == (pytest.approx(0.025 ** (1 / 10)), 1.0)
    assert binomial_ci(0, 0) == (0.0, 1.0)
    lo, hi = binomial_ci(1, 10)
    assert lo == pytest.approx(0.00253, abs=1e-5) and hi == pytest.approx(0.44502, abs=1e-5)
    for k, n in [(3, 17), (50, 100), (1, 400)]:
        lo, hi = binomial_ci(k, n)  # the defining equations: each tail holds 2.5%
        assert sps.binom.sf(k - 1, n, lo) == pytest.approx(0.025, rel=1e-6)
        assert sps.binom.cdf(k, n, hi) == pytest.approx(0.025, rel=1e-6)
    assert binomial_ci(5, 20, confidence=0.99)[1] > binomial_ci(5, 20)[1]
    with pytest.raises(KwsError, match="exceed"):
        binomial_ci(3, 2)
    with pytest.raises(KwsError, match="confidence"):
        binomial_ci(1, 2, confidence=1.0)


def test_binomial_ci_covers_at_least_95_percent():
    n = 25
    ks = np.arange(n + 1)
    bounds = np.array([binomial_ci(int(k), n) for k in ks])
    for p in np.linspace(0.01, 0.99, 41):
        covered = (bounds[:, 0] <= p) & (p <= bounds[:, 1])
        assert sps.binom.pmf(ks, n, p)[covered].sum() >= 0.95 - 1e-9


def test_poisson_rate_ci_textbook_values():
    lo, hi = poisson_rate_ci(0, 1.0)
    assert lo == 0.0 and hi == pytest.approx(math.log(40), rel=1e-9) and round(hi, 3) == 3.689
    assert poisson_rate_ci(0, 2.0)[1] == pytest.approx(math.log(40) / 2)
    assert poisson_rate_ci(1, 1.0)[0] == pytest.approx(-math.log(0.975), rel=1e-9)  # 0.0253
    for k, (lo_t, hi_t) in {1: (0.0253, 5.5716), 2: (0.2422, 7.2247), 5: (1.6235, 11.6683),
                            10: (4.7954, 18.3904)}.items():
        lo, hi = poisson_rate_ci(k, 1.0)
        assert lo == pytest.approx(lo_t, abs=1e-4) and hi == pytest.approx(hi_t, abs=1e-4)
        # independent root-finding on the Poisson tails
        assert lo == pytest.approx(brentq(lambda m: sps.poisson.sf(k - 1, m) - 0.025, 1e-9, 100), rel=1e-6)
        assert hi == pytest.approx(brentq(lambda m: sps.poisson.cdf(k, m) - 0.025, 1e-9, 100), rel=1e-6)
    assert poisson_rate_ci(4, 8.0) == pytest.approx(tuple(v / 8 for v in poisson_rate_ci(4, 1.0)))
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(KwsError, match="exposure_hours"):
            poisson_rate_ci(1, bad)


def test_poisson_ci_covers_at_least_95_percent():
    ks = np.arange(200)
    bounds = np.array([poisson_rate_ci(int(k), 1.0) for k in ks])
    for mu in np.linspace(0.05, 40, 60):
        covered = (bounds[:, 0] <= mu) & (mu <= bounds[:, 1])
        assert sps.poisson.pmf(ks, mu)[covered].sum() >= 0.95 - 1e-9



def test_det_curve_png_written_atomically(tmp_path):
    streams = _random_streams(7)
    sweeps = {"W=1": sweep(streams, window=1, refractory=0), "W=3 R=4": sweep(streams, window=3, refractory=4)}
    out = det_curve_png(sweeps, tmp_path / "det.png", title="nova")
    data = out.read_bytes()
    assert out == tmp_path / "det.png" and data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5000
    assert [p.name for p in tmp_path.iterdir()] == ["det.png"]  # no temporary file left behind
    with pytest.raises(KwsError, match="already exists"):
        det_curve_png(sweeps, out, title="nova")
    det_curve_png({"W=1": sweeps["W=1"]}, out, title="other", overwrite=True)
    assert out.read_bytes() != data and sorted(p.name for p in tmp_path.iterdir()) == ["det.png"]
    with pytest.raises(KwsError, match="sweeps"):
        det_curve_png({}, tmp_path / "x.png", title="t")
