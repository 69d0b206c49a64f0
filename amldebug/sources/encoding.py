"""Text files as users save them, decoded as pip decodes a requirements file: a byte order
mark, else a PEP 263 coding line in the first two lines, else UTF-8, else the locale's
preferred encoding; where that is UTF-8 too, the Windows code pages people save in
(cp1252, Shift-JIS) are tried and the one that reads as text is taken. Newlines are read
as universal newlines (CRLF and CR become LF), as ``open()`` reads text. Pure: no files.

pip's ``auto_decode`` stops at the locale's encoding, which on Linux is UTF-8: a file
saved in Notepad on a Western or Japanese Windows is then refused by amldebug although
Azure ML's build on Windows-made images read it. Whatever is not UTF-8 is named in a
note, so a guess is never silent.
"""

from __future__ import annotations

import codecs
import dataclasses
import locale
import re
import sys
from typing import Optional

# Longest first: the UTF-32 LE mark begins with the UTF-16 LE one (pip checks UTF-16 first
# and misreads such files).
_BOMS = (
    (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_BE, "utf-16"), (codecs.BOM_UTF16_LE, "utf-16"),
)
_CODING = re.compile(rb"coding[:=]\s*([-\w.]+)")  # pip's ENCODING_RE (PEP 263's, unanchored)
# What Windows' Notepad and Excel write on a Western and on a Japanese system, in the order
# a tie is broken.
DETECTED = ("cp1252", "cp932")
_SHORT = {"utf-8-sig": "utf-8", "utf_8": "utf-8", "utf8": "utf-8"}
_SHOWN = {"cp932": "cp932 (Shift-JIS)"}


@dataclasses.dataclass(frozen=True)
class Decoded:
    """A file's text and how it was decoded."""

    text: str
    encoding: str  # Python's codec name: 'utf-8', 'utf-16', 'cp1252', 'cp932', ...
    how: str  # 'default', 'BOM', 'coding line', 'locale', 'detected'

    @property
    def is_utf8(self) -> bool:
        return self.encoding == "utf-8"

    def note(self, name: str) -> Optional[str]:
        """The note for the build log when the file ``name`` was not read as UTF-8, else None."""
        if self.is_utf8:
            return None
        why = {"BOM": "by its byte order mark", "coding line": "as its coding line says",
               "locale": "the locale's encoding",
               "detected": f"guessed; a first line '# -*- coding: {self.encoding} -*-' makes it certain"}[self.how]
        return f"'{name}' read as {_SHOWN.get(self.encoding, self.encoding)} (not UTF-8; {why})"


class DecodeError(ValueError):
    """No encoding reads the bytes: the message says why and the fix, ``line`` where."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


def decode(data: bytes, *, preferred: Optional[str] = None) -> Decoded:
    """``data`` as text (see the module). ``preferred``: the locale's encoding (for tests);
    DecodeError when nothing reads it, or when the bytes name an encoding Python lacks."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return _decoded(_strict(data, encoding, "its byte order mark"), encoding, "BOM")
    for line in data.split(b"\n")[:2]:
        found = _CODING.search(line) if line[:1] == b"#" else None
        if found:
            encoding = found.group(1).decode("ascii")
            try:
                codecs.lookup(encoding)
            except LookupError:
                raise DecodeError(f"the coding line names '{encoding}', which is not an encoding Python knows; "
                                  "write a known one (e.g. cp1252, shift_jis) or remove the line",
                                  data.count(b"\n", 0, data.index(line)) + 1) from None
            return _decoded(_strict(data, encoding, "its coding line"), encoding, "coding line")
    try:
        return _decoded(data.decode("utf-8"), "utf-8", "default")
    except UnicodeDecodeError as exc:
        not_utf8 = exc
    preferred = preferred or locale.getpreferredencoding(False) or sys.getdefaultencoding()
    if _name(preferred) not in ("utf-8", "ascii"):  # a locale of one code page reads every byte: as pip does
        try:
            return _decoded(data.decode(preferred), preferred, "locale")
        except (UnicodeDecodeError, LookupError):
            pass
    best = detect(data)
    if best is None:
        line = data.count(b"\n", 0, not_utf8.start) + 1
        raise DecodeError(f"byte 0x{data[not_utf8.start]:02x} is not UTF-8, and the text reads as neither "
                          f"{' nor '.join(_name(e) for e in DETECTED)}; save the file as UTF-8, or name its encoding "
                          "in a first line '# -*- coding: NAME -*-'", line)
    return best


def detect(data: bytes) -> Optional[Decoded]:
    """The code page of DETECTED that reads ``data`` as the most plausible text, or None
    when none reads at least half of its non-ASCII characters as letters of its script."""
    scored = []
    for encoding in DETECTED:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        scored.append((_plausibility(text), -len(scored), text, encoding))
    if not scored:
        return None
    score, _, text, encoding = max(scored)
    return _decoded(text, encoding, "detected") if score >= 0.5 else None


def _plausibility(text: str) -> float:
    """The share of non-ASCII characters that are letters of a script or common typographic
    marks. Shift-JIS read as cp1252 turns its lead bytes into marks such as '‚', 'ƒ' and
    '¼'; cp1252 read as Shift-JIS mostly fails, or yields private-use characters. Where both
    read as letters (capitals such as 'Ü' are half-width katakana in Shift-JIS), the tie
    goes to cp1252."""
    others = [c for c in text if ord(c) > 127]
    if not others:
        return 1.0
    return sum(1 for c in others if _textual(c)) / len(others)


_TYPOGRAPHY = frozenset("‘’“”„–—…€•°«»·©®™§£¥")


def _textual(char: str) -> bool:
    code = ord(char)
    return (0xC0 <= code <= 0x17F and char not in "×÷"  # Latin-1 letters and Latin Extended-A
            or char in _TYPOGRAPHY
            or 0x3000 <= code <= 0x30FF  # CJK punctuation, hiragana, katakana
            or 0x4E00 <= code <= 0x9FFF  # CJK ideographs
            or 0xFF01 <= code <= 0xFF9F)  # full-width forms, half-width katakana


def _strict(data: bytes, encoding: str, said: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DecodeError(f"not {_name(encoding)} text, although {said} says so ({exc.reason}); save the file "
                          f"as {_name(encoding)}, or correct {said}", line) from None


def _decoded(text: str, encoding: str, how: str) -> Decoded:
    if text.startswith("\ufeff"):  # a BOM left by a utf-16/utf-32 codec given an explicit byte order
        text = text[1:]
    return Decoded(text.replace("\r\n", "\n").replace("\r", "\n"), _name(encoding), how)


def _name(encoding: str) -> str:
    """The codec's usual name ('UTF8' -> 'utf-8', 'utf-8-sig' -> 'utf-8', 'sjis' -> 'shift_jis')."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        return encoding
    return _SHORT.get(name, name)
