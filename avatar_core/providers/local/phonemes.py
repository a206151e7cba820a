"""When each speech sound is spoken, as the voices themselves know it.

Both offline voices write phonemes in IPA (hibari in misaki's variant, which spells
the diphthongs eɪ aɪ aʊ oʊ ɔɪ as the single letters A I W O Y; espeak-ng with its
IPA phoneme events). They are mapped here to ARPAbet, the input openfacefx maps to
mouth shapes. A symbol with no mouth of its own (a stress or length mark, an unknown
letter) lengthens the sound before it rather than closing the mouth mid-word.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

SILENCE = "sil"  # openfacefx's name for a pause

_STRESS_AND_LENGTH = str.maketrans("", "", "ˈˌːˑ")
_PAUSES = set(" .,;:!?—…\"()“”-_")

# IPA (and misaki's single letters) -> ARPAbet; longest match first (see to_arpabet)
_IPA_TO_ARPABET: dict[str, str] = {
    # diphthongs, misaki's letters and espeak's digraphs
    "A": "EY", "I": "AY", "W": "AW", "O": "OW", "Y": "OY", "Q": "OW",
    "eɪ": "EY", "aɪ": "AY", "aʊ": "AW", "oʊ": "OW", "əʊ": "OW", "ɔɪ": "OY",
    "ɪə": "IH", "eə": "EH", "ʊə": "UH", "aɪə": "AY", "aʊə": "AW",
    # vowels
    "æ": "AE", "ɑ": "AA", "a": "AA", "ɒ": "AA", "ɐ": "AH", "ə": "AH", "ʌ": "AH", "ᵊ": "AH",
    "ɚ": "ER", "ɜ": "ER", "ɝ": "ER", "ɛ": "EH", "e": "EH", "ɪ": "IH", "ᵻ": "IH", "ɨ": "IH",
    "i": "IY", "u": "UW", "ʉ": "UW", "ʊ": "UH", "ɔ": "AO", "o": "OW",
    "əl": "L", "ɫ": "L",
    # consonants
    "b": "B", "d": "D", "f": "F", "h": "HH", "j": "Y", "k": "K", "l": "L", "m": "M", "n": "N",
    "p": "P", "s": "S", "t": "T", "v": "V", "w": "W", "z": "Z", "ɡ": "G", "g": "G", "ŋ": "NG",
    "θ": "TH", "ð": "DH", "ʃ": "SH", "ʒ": "ZH", "ʧ": "CH", "ʤ": "JH", "tʃ": "CH", "dʒ": "JH",
    "ɹ": "R", "r": "R", "ɾ": "D", "T": "D", "ʔ": "T", "x": "K", "ç": "HH", "ʍ": "W",
}
_LONGEST = max(len(k) for k in _IPA_TO_ARPABET)


def to_arpabet(symbol: str) -> list[str]:
    """ARPAbet phonemes in an IPA symbol (espeak names one sound per event, hibari one
    letter; "" for a pause is [SILENCE]; a mark or unknown letter is [])."""
    if all(c in _PAUSES for c in symbol):  # "" too: espeak's pauses and hibari's pads
        return [SILENCE]
    bare = symbol.translate(_STRESS_AND_LENGTH)
    out: list[str] = []
    i = 0
    while i < len(bare):
        for size in range(min(_LONGEST, len(bare) - i), 0, -1):
            if (arpabet := _IPA_TO_ARPABET.get(bare[i : i + size])) is not None:
                out.append(arpabet)
                i += size
                break
        else:
            i += 1  # a letter with no mouth shape of its own (e.g. a nasal mark)
    return out


@dataclass(frozen=True)
class Phone:
    phoneme: str  # ARPAbet without stress, or SILENCE
    start_s: float
    end_s: float


def timed_phones(symbols: Sequence[str], starts_s: Sequence[float], end_s: float) -> list[Phone]:
    """Phones from symbols that start at `starts_s` (ascending; each lasts until the next
    starts, the last until `end_s`). A symbol holding two sounds ("aɪə") splits its
    time evenly; a mark's time goes to the sound before it; neighbours with the same
    phoneme merge."""
    phones: list[Phone] = []
    bounds = [*starts_s, end_s]
    for k, symbol in enumerate(symbols):
        start, end = bounds[k], max(bounds[k], bounds[k + 1])
        sounds = to_arpabet(symbol)
        if not sounds:
            if phones:
                last = phones[-1]
                phones[-1] = Phone(last.phoneme, last.start_s, end)
            continue
        step = (end - start) / len(sounds)
        for n, phoneme in enumerate(sounds):
            a, b = start + n * step, start + (n + 1) * step
            if phones and phones[-1].phoneme == phoneme:
                phones[-1] = Phone(phoneme, phones[-1].start_s, b)
            else:
                phones.append(Phone(phoneme, a, b))
    return [p for p in phones if p.end_s > p.start_s]


def grouped_marks(symbols: Sequence[str], durations: Sequence[float]) -> tuple[list[str], list[float]]:
    """Stress marks joined to the sound after them and length marks to the sound before,
    as espeak names its phonemes ("ˈʌ", "uː"), with their durations added."""
    out_symbols: list[str] = []
    out_durations: list[float] = []
    carry_symbol, carry_duration = "", 0.0
    for symbol, duration in zip(symbols, durations, strict=True):
        if symbol in ("ˈ", "ˌ"):
            carry_symbol, carry_duration = carry_symbol + symbol, carry_duration + duration
        elif symbol in ("ː", "ˑ") and out_symbols and not carry_symbol:
            out_symbols[-1] += symbol
            out_durations[-1] += duration
        else:
            out_symbols.append(carry_symbol + symbol)
            out_durations.append(carry_duration + duration)
            carry_symbol, carry_duration = "", 0.0
    if carry_symbol:
        out_symbols.append(carry_symbol)
        out_durations.append(carry_duration)
    return out_symbols, out_durations


def shifted(phones: Sequence[Phone], by_s: float, end_s: float) -> list[Phone]:
    """Phones moved by `by_s` (a trimmed lead-in is negative) and clipped to [0, end_s]."""
    out = []
    for p in phones:
        start, end = max(0.0, p.start_s + by_s), min(end_s, p.end_s + by_s)
        if end > start:
            out.append(Phone(p.phoneme, start, end))
    return out
