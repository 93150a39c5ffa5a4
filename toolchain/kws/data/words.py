"""Words for negative examples: a general vocabulary, and confusables ranked by phoneme similarity.

Confusable words share syllables or phonemes with the wake word; they are what a wake-word model most
needs to learn to reject. Phonemes come from espeak-ng (`-x`, ASCII phoneme mnemonics), so the
ranking works for any wake word, not only for words in a built-in dictionary.
"""

from __future__ import annotations

import re
import subprocess

from kws.errors import KwsError

# General English vocabulary: everyday words, commands, names, numbers. Written for this project.
VOCABULARY = """
about above across after again against air all almost alone along already also always among
animal another answer anything apple april area around arrive ask august autumn away baby back bad
bag ball banana bank basket bathroom beach bear beautiful because become bed bedroom before begin
behind believe below best better between bicycle big bird birthday black blanket blue boat body book
bottle bottom box boy bread break breakfast bridge bright bring brother brown build bus busy butter
button buy cabin cake call camera candle car card careful carry castle cat ceiling center chair
chance change cheap cheese chicken child chocolate circle city clean clear clock close cloud coffee
cold color come computer cookie corner count country cover cow cream cup curtain dance dark
daughter day dear december decide deep desk dinner dirty doctor dog dollar door double down dream
dress drink drive during early earth easy eat egg eight eleven empty end engine enough evening
every example eye face fall family far farm fast father february feel fifteen fifty find fine
finger finish fire first fish five floor flower fly follow food foot forest forget fork forty four
fourteen friday friend front fruit full funny garden gate get girl give glass go gold good
grandmother grass great green grow guitar hair half hand happy hard hat have head hear heart heavy
hello help here high hill hold holiday home horse hospital hot hotel hour house hundred hungry
idea inside island jacket january jump june just keep kettle key kitchen kind king kitten knife
know ladder lake lamp large last late laugh learn leave left lemon letter light like line lion
listen little live long look lose loud love low lunch machine magic make many map march market
matter maybe meet melon middle milk minute mirror monday money monkey month moon morning mother
mountain mouse mouth move music name near neck need never new news next nice night nine noise
north nothing november now number ocean october off office often old on one open orange other
outside over page paint paper park party pencil people pepper phone picture piece pillow pink
place plant plate play please pocket point potato pretty pull purple push queen question quick
quiet rabbit radio rain read ready red remember rest rice right river road rock roof room rose
round run sad salt same saturday say school sea second see seven shadow sheep shirt shoe shop
short shoulder show side silver simple sing sister sit six sky sleep slow small smile snow soft
some song soon sorry sound soup south speak spoon spring square stairs star start station stay
step stone stop story street strong sugar summer sun sunday sweet table take talk tall tea teacher
telephone television ten thank that there thing think thirteen thirty three thursday ticket tiger
time today together tomato tomorrow tonight tooth towel tower town toy train tree trouble true
tuesday turn twelve twenty two umbrella under up upstairs use valley very village visit voice wait
walk wall want warm wash watch water weather wednesday week welcome west wet what wheel when where
white window winter with without woman wonder wood word work world write yard year yellow yes
yesterday young zero
alexa alice amelia anna benjamin charlie daniel david emma ethan grace hannah henry jack james
jessica john julia kevin laura leo linda lucas lucy maria mark mary michael nina noah oliver olivia
oscar paul peter rachel robert sam sara sophia thomas victor william zoe
""".split()

# Words commonly put before a name in wake phrases; used to build near-miss phrases.
PREFIXES = ["hey", "hi", "okay", "oh", "say", "play", "hello", "pay", "hay", "a"]


def normalize(text: str) -> str:
    """Lower case, letters/digits/apostrophes and single spaces only."""
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split())


def phonemize(words: list[str], *, voice: str = "en-us") -> list[list[str]]:
    """Phoneme sequences (espeak-ng ASCII mnemonics, stress marks removed), one list per word.

    One espeak-ng process for all words; KwsError if espeak-ng is missing.
    """
    if not words:
        return []
    text = "".join(f"{w}.\n" for w in words)
    try:
        proc = subprocess.run(["espeak-ng", "-q", "-x", "--sep= ", "-v", voice], input=text,
                              capture_output=True, text=True, timeout=120, check=True)
    except FileNotFoundError:
        raise KwsError("espeak-ng: not found on PATH; install it (`make setup` does)") from None
    except subprocess.SubprocessError as exc:
        raise KwsError(f"espeak-ng: phonemization failed ({exc})") from None
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    if len(lines) != len(words):  # espeak joined or split a clause: fall back to one call per word
        if len(words) == 1:
            lines = [" ".join(proc.stdout.split())]
        else:
            return [phonemize([w], voice=voice)[0] for w in words]
    return [[p.strip("',%=_:") or p for p in ln.split() if p.strip("',%=_")] for ln in lines]


def edit_distance(a: list[str], b: list[str]) -> int:
    """Levenshtein distance between two token sequences."""
    prev = list(range(len(b) + 1))
    for i, ta in enumerate(a, start=1):
        cur = [i]
        for j, tb in enumerate(b, start=1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ta != tb)))
        prev = cur
    return prev[-1]


def similarity(a: list[str], b: list[str]) -> float:
    """1 - normalized edit distance, in [0, 1]; 1 means the same phonemes."""
    if not a and not b:
        return 1.0
    return 1.0 - edit_distance(a, b) / max(len(a), len(b))


def confusables(wake_word: str, *, vocabulary: list[str] | None = None, per_word: int = 12) -> list[str]:
    """Phrases that sound like the wake word but are not it.

    For each word of the wake phrase, the `per_word` vocabulary words closest in phonemes replace it
    (keeping the others); words sharing its first or last syllable-sized chunk come first. Also the wake
    phrase's words alone and with other prefixes. Never returns the wake phrase itself.
    Deterministic for a given espeak-ng version.
    """
    target = normalize(wake_word)
    parts = target.split()
    vocab = sorted(set(vocabulary or VOCABULARY) - set(parts))
    phon = phonemize(parts + vocab)
    part_ph, vocab_ph = phon[: len(parts)], phon[len(parts):]
    out: list[str] = []
    for i, p_ph in enumerate(part_ph):
        def score(j: int, p_ph=p_ph) -> tuple:
            v = vocab_ph[j]
            shared_edge = (v[:2] == p_ph[:2]) + (v[-2:] == p_ph[-2:])
            return (-(similarity(p_ph, v) + 0.25 * shared_edge), vocab[j])
        best = sorted(range(len(vocab)), key=score)[:per_word]
        for j in best:
            out.append(" ".join(parts[:i] + [vocab[j]] + parts[i + 1:]))
    if len(parts) > 1:
        out.extend(parts)  # each word alone
        out.extend(f"{pre} {' '.join(parts[1:])}" for pre in PREFIXES if pre != parts[0])
    seen, unique = {target}, []
    for phrase in out:
        n = normalize(phrase)
        if n and n not in seen:
            seen.add(n)
            unique.append(n)
    # Drop homophones of the wake phrase ("hay nova" for "hey nova"): same phonemes is a positive.
    target_ph = [p for w in part_ph for p in w]
    cand_ph = phonemize(unique)
    return [n for n, ph in zip(unique, cand_ph) if ph != target_ph]
