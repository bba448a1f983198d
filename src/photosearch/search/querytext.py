"""The operators of the one search box, as web search engines have them: `"quoted phrases"` must appear as text,
`-word` / `NOT word` (or `-"a phrase"`) rules a concept out, and `a OR b` finds either. Everything else is plain
words. `OR` and `NOT` count only in capitals ("black or white" stays words); a `-` counts only at the start of a
word ("t-shirt" stays a word)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_TOKEN = re.compile(r'(-?)"([^"]*)"|(\S+)')
# Words too common to say anything as text in a photo or a file name (the CLIP text keeps them).
STOPWORDS = frozenset(
    "a an and the of in on at to for from with by my our your his her their its is are was were be this that these"
    " those photo photos picture pictures image images pic pics shot taken some".split()
)


@dataclass
class Branch:
    """One alternative of an OR: its words as typed (quotes dropped: CLIP reads them), and its quoted phrases."""

    text: str
    phrases: list[str] = field(default_factory=list)

    def words(self) -> list[str]:
        """Its single words worth looking up as text (not stop words, not one letter), in order, once each."""
        found = [w.strip(".,;:!?()[]'") for w in re.split(r"\s+", self.text)]
        keep = [w for w in found if len(w) > 1 and w.casefold() not in STOPWORDS]
        return list(dict.fromkeys(keep))


@dataclass
class Parsed:
    branches: list[Branch]
    excluded: list[str]  # words and phrases after - or NOT

    @property
    def plain(self) -> bool:
        """No operator at all: one branch, no phrase, nothing excluded."""
        return len(self.branches) == 1 and not self.branches[0].phrases and not self.excluded


def parse(text: str) -> Parsed:
    branches: list[Branch] = []
    current: list[str] = []
    phrases: list[str] = []
    excluded: list[str] = []
    negate_next = False

    def close() -> None:
        if current or phrases:
            branches.append(Branch(" ".join(current), list(phrases)))
        current.clear()
        phrases.clear()

    for m in _TOKEN.finditer(text):
        minus, quoted, word = m.group(1), m.group(2), m.group(3)
        if word == "OR":
            close()
            negate_next = False
            continue
        if word == "NOT":
            negate_next = True
            continue
        if quoted is not None:
            phrase = quoted.strip()
            if phrase:
                if minus or negate_next:
                    excluded.append(phrase)
                else:
                    phrases.append(phrase)
                    current.append(phrase)
        elif word.startswith("-") and len(word) > 1:
            excluded.append(word[1:])
        elif negate_next:
            excluded.append(word)
        else:
            current.append(word)
        negate_next = False
    close()
    return Parsed(branches=branches, excluded=list(dict.fromkeys(excluded)))
