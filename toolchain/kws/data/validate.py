"""`kws data validate`: check every clip of a dataset, quarantine the unfit ones, report.

Clips come from DIR/manifest.csv when it exists, otherwise from DIR/<label>/**/<audio file>. Each clip
is read once and checked (kws.data.checks); then duplicates, label balance and speaker leakage are
checked across clips. With quarantine on, every clip with an error is moved (never deleted, never
overwritten) to DIR/_quarantine/<reason>/<label>/ and the manifest (created from the scan when DIR
had none) records the new path and why. With quarantine off nothing under DIR is touched.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import os
import sys
import time
from pathlib import Path

from kws import config
from kws.data import checks, manifest
from kws.data.report import REPORT_FILES, Report, is_our_report, write_outputs
from kws.errors import KwsError
from kws.fileio import os_error

__all__ = ["Report", "validate"]

PARALLEL_MIN_CLIPS = 64
SCAN_SOURCE = "scan"


def validate(root: Path, *, json_out: str | None = None, report_dir: str | None = None, quarantine: bool = True,
             sample_rate_hz: int = config.SAMPLE_RATE_HZ, min_duration_s: float = 0.2,
             max_duration_s: float = 30.0) -> Report:
    """Validate the dataset in `root`; returns the Report (its files are written as described above).

    report_dir defaults to root/_report with quarantine on; with quarantine off and no report_dir only
    `json_out` (if given) is written. Raises KwsError (one line) for a missing root, a root that is not
    writable while quarantine is on, bad settings, a malformed manifest, or report files that would
    overwrite something this command did not write.
    """
    started = time.monotonic()
    root = Path(root)
    if not root.is_dir():
        raise KwsError(f"{root}: no such dataset folder")
    if sample_rate_hz <= 0:
        raise KwsError(f"--sample-rate-hz must be positive, got {sample_rate_hz}")
    if not 0 <= min_duration_s <= max_duration_s:
        raise KwsError(f"duration range [{min_duration_s}, {max_duration_s}] s is empty or negative")
    if quarantine and not os.access(root, os.W_OK | os.X_OK):
        raise KwsError(f"{root}: not writable, so clips cannot be quarantined; "
                       "pass --no-quarantine and --report-dir <folder> to check it without changing it")
    if report_dir is None and quarantine:
        report_dir = str(root / "_report")
    report_path = Path(report_dir) if report_dir is not None else None
    _refuse_foreign_outputs(report_path, json_out)

    rep = Report(root=root, settings={
        "sample_rate_hz": sample_rate_hz, "min_duration_s": min_duration_s, "max_duration_s": max_duration_s,
        "quarantine": quarantine, "report_dir": str(report_path) if report_path else None,
        "clip_level": checks.CLIP_LEVEL, "clip_error_fraction": checks.CLIP_ERROR_FRACTION,
        "clip_warn_fraction": checks.CLIP_WARN_FRACTION, "low_rms_error_dbfs": checks.LOW_RMS_ERROR_DBFS,
        "low_rms_warn_dbfs": checks.LOW_RMS_WARN_DBFS, "dc_warn": checks.DC_WARN,
        "near_duplicate_max_ber": checks.NEAR_DUP_MAX_BER})

    manifest_path = root / config.MANIFEST_NAME
    rows: list[manifest.Row] | None = manifest.read(manifest_path) if manifest_path.is_file() else None
    if rows is not None:
        items = _items_from_manifest(root, rows, rep)
        _empty_folders_in_manifest_mode(root, report_path, rows, rep)
    else:
        items = _items_from_scan(root, report_path, rep)

    rep.clips = _analyze_all(items, sample_rate_hz=sample_rate_hz, min_duration_s=min_duration_s,
                             max_duration_s=max_duration_s)
    _cross_clip_checks(rep)
    speakers = _speakers(rows, rep)
    _dataset_checks(rep, speakers, rows)

    for clip in rep.clips:
        warns = sorted({f.reason for f in clip.warnings}, key=list(checks.REASONS).index)
        rep.statuses[clip.path] = ("error:" + clip.errors[0].reason if clip.errors
                                   else "warn:" + "+".join(warns) if warns else "ok")
    if quarantine:
        _quarantine_and_record(root, rows, rep, speakers)
    rep.elapsed_s = time.monotonic() - started
    write_outputs(rep, report_dir=report_path, json_out=Path(json_out) if json_out else None)
    return rep


# --- which clips ---------------------------------------------------------------------------------------

def _inside(root: Path, path: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def _items_from_manifest(root: Path, rows: list[manifest.Row], rep: Report) -> list[tuple[Path, str, str]]:
    """(absolute path, manifest path, label) of each row to check; missing files are dataset errors."""
    items, seen = [], collections.Counter(r.path for r in rows)
    rep.notes.append(f"clips listed by {config.MANIFEST_NAME} ({len(rows)} rows)")
    done: set[str] = set()
    for row in rows:
        if row.status.startswith("quarantined"):
            rep.previously_quarantined += 1
            continue
        if row.path in done:
            continue
        done.add(row.path)
        if seen[row.path] > 1:
            rep.dataset_issue("manifest_duplicate_row", checks.ERROR,
                              f"manifest lists {row.path} {seen[row.path]} times")
        path = root / row.path
        if Path(row.path).is_absolute() or not _inside(root, path):
            rep.dataset_issue("manifest_outside_root", checks.ERROR,
                              f"manifest names a file outside the dataset folder {row.path}")
        elif not path.is_file():
            rep.dataset_issue("manifest_missing_file", checks.ERROR, f"manifest names a missing file {row.path}")
        else:
            items.append((path, row.path, row.label))
    return items


def _label_folders(root: Path, report_path: Path | None) -> tuple[list[tuple[Path, list[Path]]], list[str]]:
    """([(folder, its audio files sorted)], [audio files directly in root]) for root's top-level
    folders, skipping hidden ones, _quarantine and the report folder."""
    skip = {(root / config.QUARANTINE_DIR).resolve()}
    if report_path is not None:
        skip.add(report_path.resolve())
    try:
        entries = sorted(root.iterdir())
    except OSError as exc:
        raise os_error(root, exc) from None
    stray = [p.name for p in entries if p.is_file() and _is_audio(p)]
    folders = []
    for folder in entries:
        if not folder.is_dir() or folder.name.startswith(".") or folder.resolve() in skip:
            continue
        found = sorted(p for p in folder.rglob("*") if p.is_file() and _is_audio(p)
                       and not any(part.startswith(".") for part in p.relative_to(folder).parts[:-1]))
        folders.append((folder, found))
    return folders, stray


def _items_from_scan(root: Path, report_path: Path | None, rep: Report) -> list[tuple[Path, str, str]]:
    """Audio files under root/<label>/ (recursively); a label folder without audio is a dataset error."""
    rep.notes.append(f"no {config.MANIFEST_NAME}: clips found by scanning <label>/ folders")
    folders, stray = _label_folders(root, report_path)
    if stray:
        rep.dataset_issue("audio_outside_label_folder", checks.WARNING,
                          f"{len(stray)} audio files directly in the dataset folder have no label folder and "
                          f"were not checked (e.g. {stray[0]})")
    items = []
    for folder, found in folders:
        if not found:
            rep.dataset_issue("empty_label_folder", checks.ERROR, f"label folder {folder.name}/ holds no audio files")
        items += [(p, p.relative_to(root).as_posix(), folder.name) for p in found]
    return items


def _empty_folders_in_manifest_mode(root: Path, report_path: Path | None, rows: list[manifest.Row],
                                    rep: Report) -> None:
    """A top-level folder with no audio that no manifest row names (by path or label) is an empty
    label folder. (A folder emptied by quarantine keeps its label in the manifest: not reported again;
    label balance reports the label's lack of usable clips.)"""
    tops = {Path(r.path).parts[0] for r in rows if Path(r.path).parts} | {r.label for r in rows}
    for folder, found in _label_folders(root, report_path)[0]:
        if not found and folder.name not in tops:
            rep.dataset_issue("empty_label_folder", checks.ERROR, f"label folder {folder.name}/ holds no audio files")


def _is_audio(path: Path) -> bool:
    return path.suffix.lower() in config.AUDIO_EXTENSIONS


# --- per-clip work ---------------------------------------------------------------------------------

def _analyze_one(item: tuple[Path, str, str], **kwargs) -> checks.ClipResult:
    path, rel, label = item
    return checks.analyze(path, rel_path=rel, label=label, **kwargs)


def _workers() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 8))


def _analyze_all(items: list[tuple[Path, str, str]], **kwargs) -> list[checks.ClipResult]:
    """Run checks.analyze over every item (a process pool when there are many), with a progress bar
    on a terminal. Results are in item order."""
    from tqdm import tqdm

    work = functools.partial(_analyze_one, **kwargs)
    workers = _workers()
    bar = dict(total=len(items), desc="validate", unit="clip", disable=None, file=sys.stderr, leave=False)
    if len(items) < PARALLEL_MIN_CLIPS or workers == 1:
        return [work(item) for item in tqdm(items, **bar)]
    from concurrent.futures import ProcessPoolExecutor

    chunk = max(1, min(32, len(items) // (workers * 8)))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(tqdm(pool.map(work, items, chunksize=chunk), **bar))


def _cross_clip_checks(rep: Report) -> None:
    """Exact duplicates (error on every copy after the first, in path order) and near duplicates
    (warning on the later clip of each pair) among clips without errors."""
    first: dict[str, checks.ClipResult] = {}
    for clip in sorted(rep.clips, key=lambda c: c.path):
        if not clip.content_hash:
            continue
        if clip.content_hash in first:
            orig = first[clip.content_hash]
            clip.add("exact_duplicate", checks.ERROR, f"same samples as {orig.path}")
            rep.exact_duplicates.append({"path": clip.path, "first": orig.path})
        else:
            first[clip.content_hash] = clip
    pool = sorted((c for c in rep.clips if c.fp is not None and not c.errors), key=lambda c: c.path)
    for i, j, ber in checks.near_duplicates([c.fp for c in pool]):
        a, b = pool[i], pool[j]
        b.add("near_duplicate", checks.WARNING, f"probably the same recording as {a.path} (bit error rate {ber:.3f})")
        rep.near_duplicates.append({"a": a.path, "b": b.path, "bit_error_rate": round(ber, 4)})


# --- dataset-level checks --------------------------------------------------------------------------

def _speakers(rows: list[manifest.Row] | None, rep: Report) -> dict[str, tuple[str, str]]:
    """clip path -> (speaker, split): from the manifest, or from Speech Commands file names when
    scanning (split by the speaker-hash rule; by the path's hash when the speaker is unknown)."""
    out = {}
    if rows is not None:
        for row in rows:
            out.setdefault(row.path, (row.speaker, row.split))
        return out
    for clip in rep.clips:
        spk = manifest.speech_commands_speaker(Path(clip.path).name) or ""
        out[clip.path] = (spk, manifest.split_for_speaker(spk or clip.path))
    return out


def _dataset_checks(rep: Report, speakers: dict[str, tuple[str, str]], rows: list[manifest.Row] | None) -> None:
    usable = [c for c in rep.clips if not c.errors]
    labels = {c.label for c in rep.clips} | {r.label for r in rows or []}
    labels.discard(checks.LONG_NOISE_LABEL)
    good = collections.Counter(c.label for c in usable)
    if labels:
        sizes = {label: good.get(label, 0) for label in sorted(labels)}
        small = sorted(label for label, n in sizes.items() if n < 10)
        if small:
            rep.dataset_issue("label_balance", checks.WARNING,
                              "labels with fewer than 10 usable clips: "
                              + ", ".join(f"{label} ({sizes[label]})" for label in small))
        largest, smallest = max(sizes.values()), min(sizes.values())
        if len(sizes) > 1 and largest > 10 * smallest:
            big = max(sizes, key=sizes.get)
            tiny = min(sizes, key=sizes.get)
            rep.dataset_issue("label_balance", checks.WARNING,
                              f"largest label {big} has {largest} usable clips, more than 10x the smallest "
                              f"{tiny} ({smallest})")

    unknown = sum(1 for c in usable if not speakers.get(c.path, ("", ""))[0])
    if rows is None:
        rep.notes.append("without a manifest, the splits written are assigned from the speaker hash (Speech Commands' "
                         "rule; the path's hash when the speaker is unknown), so no known speaker leaks across them")
    if unknown:
        rep.notes.append(f"speaker leakage check skipped for {unknown} clips with no speaker id"
                         + (" (file names do not follow Speech Commands' <speaker>_nohash_<n> pattern)"
                            if rows is None else ""))
    splits: dict[str, set[str]] = collections.defaultdict(set)
    for c in usable:
        spk, split = speakers.get(c.path, ("", ""))
        if spk:
            splits[spk].add(split)
    leaked = sorted(s for s, sp in splits.items() if len(sp) > 1)
    if leaked:
        listed = ", ".join(f"{s} ({'/'.join(sorted(splits[s]))})" for s in leaked[:20])
        more = f" and {len(leaked) - 20} more" if len(leaked) > 20 else ""
        rep.dataset_issue("speaker_leakage", checks.ERROR,
                          f"{len(leaked)} speakers appear in more than one split: {listed}{more}",
                          speakers=leaked)
    rep.notes.append("no-speech check skipped for labels " + ", ".join(checks.NON_SPEECH_LABELS)
                     + f"; low-RMS check skipped for {config.SILENCE_LABEL}; {checks.LONG_NOISE_LABEL} is exempt "
                     "from the maximum duration and from label balance")


# --- quarantine and manifest -------------------------------------------------------------------------

def _safe_part(name: str) -> str:
    name = name.replace("/", "_").replace("\\", "_").strip()
    return "_nolabel_" if name in ("", ".", "..") else name


def _move(root: Path, rel: str, reason: str, label: str) -> str:
    """Move root/rel to root/_quarantine/<reason>/<label>/<name>, adding -1, -2, ... on a name clash.
    Returns the new path relative to root."""
    src = root / rel
    dest_dir = root / config.QUARANTINE_DIR / reason / _safe_part(label)
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest, n = dest_dir / src.name, 1
    while dest.exists() or dest.is_symlink():
        dest, n = dest_dir / f"{src.stem}-{n}{src.suffix}", n + 1
    os.rename(src, dest)
    return dest.relative_to(root).as_posix()


def _quarantine_and_record(root: Path, rows: list[manifest.Row] | None, rep: Report,
                           speakers: dict[str, tuple[str, str]]) -> None:
    """Move every clip with an error, then write the manifest (atomically). If anything fails or is
    interrupted before the manifest is written, the moves are undone, so files and manifest agree."""
    moved: dict[str, str] = {}
    try:
        for clip in rep.clips:
            if not clip.errors:
                continue
            reason = clip.errors[0].reason
            try:
                new = _move(root, clip.path, reason, clip.label)
            except OSError as exc:
                rep.dataset_issue("quarantine_failed", checks.WARNING,
                                  f"could not quarantine {clip.path}: {exc.strerror or exc}")
                continue
            moved[clip.path] = new
            rep.statuses[clip.path] = f"quarantined:{reason}"
            rep.quarantined.append({"from": clip.path, "to": new, "reason": reason})
        out = _new_manifest_rows(rows, rep, speakers, moved)
        if out is not None:
            manifest.write(root / config.MANIFEST_NAME, out, overwrite=rows is not None)
            rep.manifest_written = str(root / config.MANIFEST_NAME)
    except BaseException:
        for old, new in moved.items():
            try:
                os.rename(root / new, root / old)
            except OSError:
                pass
        rep.quarantined.clear()
        raise


def _new_manifest_rows(rows: list[manifest.Row] | None, rep: Report, speakers: dict[str, tuple[str, str]],
                       moved: dict[str, str]) -> list[manifest.Row] | None:
    """The manifest to write: from the scan, or the old rows with new paths and statuses; None when
    the old manifest needs no change (a second run leaves the file alone)."""
    if rows is None:
        out = []
        for clip in rep.clips:
            spk, split = speakers[clip.path]
            out.append(manifest.Row(moved.get(clip.path, clip.path), clip.label, spk, split, SCAN_SOURCE,
                                    clip.duration_s, clip.sample_rate_hz, clip.file_sha256, rep.statuses[clip.path]))
        return out
    by_path = {c.path: c for c in rep.clips}
    out = []
    for r in rows:
        clip = by_path.get(r.path)
        if clip is not None and not rep.statuses[clip.path].startswith("error:"):
            r = dataclasses.replace(r, path=moved.get(r.path, r.path), status=rep.statuses[clip.path])
        out.append(r)
    return None if [r.as_csv() for r in out] == [r.as_csv() for r in rows] else out


def _refuse_foreign_outputs(report_dir: Path | None, json_out: str | None) -> None:
    """KwsError before any work if a report file would replace something this command did not write."""
    if json_out and Path(json_out).exists() and not is_our_report(Path(json_out)):
        raise KwsError(f"{json_out}: already exists and is not a kws validate report; refusing to overwrite it")
    if report_dir is not None and report_dir.exists():
        if not report_dir.is_dir():
            raise KwsError(f"{report_dir}: exists and is not a folder")
        taken = [n for n in REPORT_FILES if (report_dir / n).exists()]
        if taken and not is_our_report(report_dir / "report.json"):
            raise KwsError(f"{report_dir / taken[0]}: already exists and was not written by kws data validate; "
                           "refusing to overwrite it (choose another --report-dir)")
