"""Reading a text query for the names of the user's own photos: places and cameras become filters ("dog in Kyoto"
= --city Kyoto; "sunset iPhone 13" = --model "iPhone 13"), folder names become text to look for. The query's words
and runs of words are looked up among the names of the photos in scope (db/lexical.py: names_named, index probes),
so a name is known as soon as a photo has it.
The CLIP text stays whole (the place's look still helps the ranking); a filter the caller set wins. A derived
filter is an ordinary filter, so the search stays complete (min(k, matches))."""

from __future__ import annotations

import re
from uuid import UUID

import psycopg

from photosearch.db import lexical

PLACE_KINDS = ("city", "state", "country")
CAMERA_KINDS = ("model", "make")
# A camera maker's name is also a word ("apple tree"): alone it filters only next to words like these.
_MAKE_CONTEXT = (
    r"(?:(?:shot|taken)\s+(?:on|with)|on|with|by|from)\s+(?:an?\s+|my\s+)?{m}"
    r"|{m}\s+(?:cameras?|phones?|photos?|pictures?|shots?)"
)
MAX_WORDS = 32  # of a query, looked up as names (runs of up to NAME_WORDS words: "New South Wales", "iPhone 15 Pro")
NAME_WORDS = 4


def _words(text: str) -> list[str]:
    """The text's words lower-cased (lower(), as SQL compares), punctuation at their edges and a leading - dropped
    (a word that was only punctuation becomes "")."""
    return [w.strip(".,;:!?()[]\"'").lstrip("-") for w in text.lower().split()]


def candidates(text: str) -> list[str]:
    """Every run of 1..NAME_WORDS words of the text, lower-cased, punctuation at their edges dropped."""
    words = [w for w in _words(text)[:MAX_WORDS] if w]
    runs = {" ".join(words[i : i + n]) for n in range(1, NAME_WORDS + 1) for i in range(len(words) - n + 1)}
    return sorted(runs)


def names_in_scope(conn: psycopg.Connection, scope: list[UUID] | None, text: str) -> dict[str, list[str]]:
    """The place, camera and folder names of the photos in scope that the text may name, longest first."""
    folded = text.lower()
    makes = sorted(w for w in set(_words(text)) if len(w) >= 4 and _in_context(w, folded))
    found = lexical.names_named(conn, scope, candidates(text), makes)
    return {kind: sorted(values, key=lambda n: (-len(n), n)) for kind, values in found.items()}


def _in_context(word: str, folded: str) -> bool:
    """The (lower-cased) word is said as a camera maker: the whole text, or beside "shot on", "camera"..."""
    return folded.strip() == word or re.search(_MAKE_CONTEXT.format(m=re.escape(word)), folded) is not None


def _named(name: str, folded: str) -> bool:
    return re.search(r"(?<!\w)" + re.escape(name.casefold()) + r"(?!\w)", folded) is not None


def derive_places(text: str, names: dict[str, list[str]]) -> dict[str, str]:
    """Place filters the text names: whole words, any case; the longest name of each kind wins."""
    folded = text.casefold()
    found: dict[str, str] = {}
    for kind in PLACE_KINDS:
        for name in names.get(kind, []):
            if _named(name, folded):
                found[kind] = name
                break
    return found


def derive_camera(text: str, names: dict[str, list[str]]) -> dict[str, str]:
    """Camera filters the text names: a model anywhere ("iPhone 13", "X-T4"); a maker ("Canon", or the first word
    of "NIKON CORPORATION") when the text is only that, or it comes with "shot on", "camera", "photos"..."""
    folded = text.casefold().strip()
    for model in names.get("model", []):
        if _named(model, folded):
            return {"model": model}
    for make in names.get("make", []):
        for said in dict.fromkeys((make, make.split()[0] if len(make.split()[0]) >= 4 else make)):
            if _in_context(said.casefold(), folded):
                return {"make": make}
    return {}


def folder_named(word: str, names: dict[str, list[str]]) -> str | None:
    """The folder of the user's photos this word names (any case), if any."""
    folded = word.casefold()
    return next((f for f in names.get("folder", []) if f.casefold() == folded), None)
