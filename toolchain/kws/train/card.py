"""MODEL_CARD.md: what the model is, what it was trained and measured on, how sure the numbers are,
and what they do not say."""

from __future__ import annotations


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.2f} %"


def _pp(t) -> str:
    if t["int8"]["top1"] is None or t["float"]["top1"] is None:
        return "n/a"
    return f"{100 * (t['int8']['top1'] - t['float']['top1']):+.2f} percentage points"


def _ci(ci) -> str:
    return f"{100 * ci[0]:.1f}–{100 * ci[1]:.1f} %"


def render(cfg, m: dict) -> str:
    name = cfg.word or "commands"
    mod = m["model"]
    lines = [f"# Model card: {name}", "",
             f"Made by `kws train` (fingerprint `{m['fingerprint'][:16]}`). Every number below was measured by "
             "that run through the deployed path: the C frontend's int8 features and the int8 model in the "
             "tflite-micro interpreter.", "",
             "## Model", "",
             "| | |", "|---|---|",
             f"| classes | {', '.join(m['classes'])} |",
             f"| frontend | `{m['frontend']}` |",
             f"| architecture | `{mod['arch']}` ({cfg.model.filters} filters, {cfg.model.blocks} blocks) |",
             f"| input | int8 {' x '.join(map(str, mod['input_shape']))} |",
             f"| parameters (deployed) | {mod['parameters']:,} |",
             f"| MACs per inference | {mod['macs']:,} |",
             f"| int8 .tflite | {mod['tflite_bytes']:,} bytes |",
             f"| activation RAM (largest layer in + out) | {mod['activation_peak_bytes']:,} bytes |",
             f"| operators | {', '.join(mod['ops'])} |", ""]
    if cfg.is_wake_word:
        th = m["thresholds"]
        lines += [f"The device runs the model every {th['stride_hops']} hops ({th['stride_hops'] * 20} ms) on the last "
                  f"{th['window_frames']} frames.", ""]
    lines += ["## Data", "",
              "| split | " + " | ".join(m["classes"]) + " |", "|---|" + "---|" * len(m["classes"])]
    for split, counts in m["data"].items():
        lines.append(f"| {split} | " + " | ".join(str(counts.get(c, 0)) for c in m["classes"]) + " |")
    v = m["voices"]
    lines += ["", f"Sources: {', '.join(f'`{d}`' for d in m['data_dirs'])}. Wake-word clips come from "
              f"{v['distinct']} distinct voices/sources ({', '.join(f'{k}: {n}' for k, n in v['clips_by_source_kind'].items())}).",
              ""]
    if cfg.is_wake_word and cfg.data.synth_count and not cfg.data.dirs:
        lines += ["All training audio is synthetic (text-to-speech and generated noise).", ""]
    t = m["test_clips"]
    lines += ["## Quality", "",
              f"Test split, one window per clip ({t['int8']['n']} clips), top-1 with exact binomial 95 % intervals:", "",
              "| model | top-1 | 95 % CI |", "|---|---|---|",
              f"| float (Keras) | {_pct(t['float']['top1'])} | {_ci(t['float']['ci95'])} |",
              f"| int8 (tflite-micro) | {_pct(t['int8']['top1'])} | {_ci(t['int8']['ci95'])} |", "",
              f"int8 and float agree on {_pct(t['int8_agrees_with_float'])} of these clips; post-training "
              f"quantization moves top-1 by {_pp(t)} (quantization-aware training is not used: "
              "it could only win back a difference this size).", ""]
    if cfg.is_wake_word:
        th, st = m["thresholds"], m["streaming_test"]
        ev = st.get("evaluation", {})
        lines += ["### Streaming (the device's detector)", "",
                  f"Shipped detector (`thresholds.json`): threshold {th['threshold']}/255 on the smoothed score, "
                  f"smoothing over {th['window']} invocations, refractory {th['refractory']} invocations "
                  f"({th['refractory_ms']:.0f} ms); calibrated for {th['target_faph']} false accepts per hour on the "
                  f"validation split.", ""]
        if ev:
            lines += [f"On the synthetic test split ({st['positives']} wake words, {st['negative_hours']:.2f} h of negative "
                      f"audio): FRR {_pct(ev.get('frr'))} (95 % CI {_ci(ev['frr_ci95'])}), "
                      f"{ev.get('false_accepts')} false accepts = {ev.get('faph', 0):.2f} per hour "
                      f"(95 % CI {ev['faph_ci95'][0]:.2f}–{ev['faph_ci95'][1]:.2f}).", ""]
        lines += ["| target FAPH | FRR | 95 % CI | threshold |", "|---|---|---|---|"]
        for k, p in st["frr_at_faph"].items():
            lines.append(f"| {k} | {_pct(p['frr'])} | {_ci(p['ci95'])} | {p['threshold']} |")
        lines += ["", "Plots: `plots/training_curves.png`, `plots/confusion_matrix.png`, `plots/det_curve.png`.", ""]
    lines += ["## Limits", ""]
    if cfg.is_wake_word:
        lines += ["- The negative audio behind the false-accept figures is the test split's negatives replayed with "
                  "new augmentation until it lasts the calibration length: far less varied than a day of real "
                  "rooms. A false-accept rate measured on it says little about real homes; measure with "
                  "`kws eval MODEL_DIR --positives ... --negatives ...` on real audio.",
                  "- Synthetic voices are not people: expect a higher FRR on real speakers, accents, children "
                  "and far-field microphones than on the synthetic test split.",
                  "- Intervals cover sampling error only, not the gap between this data and yours."]
    else:
        lines += ["- Accuracy is on one fixed window per test clip, as MLPerf Tiny measures it; streaming "
                  "behaviour is not measured here."]
    lines += ["", f"Training: {m['train']['epochs']} epochs in {m['train']['seconds']:.0f} s"
              + (f", fine-tuned from `{m['train']['finetune_from']}`" if m['train']['finetune_from'] else "") + ".", ""]
    return "\n".join(lines)
