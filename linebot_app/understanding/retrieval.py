"""Japanese retrieval over the FAQ and facilities: Janome tokens, readings so that kana and
kanji spellings meet, BM25 over weighted fields, and a confidence for each hit."""

from __future__ import annotations

import functools
import math
import re
import threading
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import jaconv

K1, B = 1.2, 0.75
READING_WEIGHT = 0.4  # a shared reading trigram counts less than a shared word
READING_TRUST = 0.8  # sounds alike is weaker evidence than the same words
NAME_WEIGHT = 3.0  # a keyword or facility name heard in the query, in any spelling
MIN_SOUNDS = 3  # names shorter than this are matched as words only
# Words that say how something is asked, not what about: they never decide a match.
STOP_POS = ("助詞", "助動詞", "記号", "接続詞", "感動詞", "フィラー")
STOP_WORDS = frozenset(
    "ある いる する なる できる 出来る くださる 下さる 教える 知る 思う 言う いう 行う ない いい "
    "よい 良い 欲しい ほしい たい です ます どこ いつ 何 なに なん どう どれ どの どちら 誰 だれ "
    "何時 いくら 方 かた こと もの の ん ? ! 方法 ところ 所 について 場合 とき 時 今 ここ そこ "
    "お願い 願う 確認 わかる 分かる 聞く 見る".split())


@functools.lru_cache(maxsize=1)
def _tokenizer() -> Any:
    """Janome's tokenizer, loaded on first use. Its dictionary ships in the wheel and is mapped
    from there (mmap): its pages are the file's, shared by every worker, not each one's heap."""
    from janome.tokenizer import Tokenizer

    return Tokenizer(mmap=True)


def kana_fold(text: str) -> str:
    """NFKC, lower case, katakana as hiragana."""
    return jaconv.kata2hira(unicodedata.normalize("NFKC", text).casefold())


@dataclass(frozen=True)
class Token:
    """What the analyser says of one token: its folded word, sounds and part of speech."""

    word: str
    sounds: str
    pos: str
    sub: str
    surface: str


@functools.lru_cache(maxsize=4096)
def tokens(text: str) -> tuple[Token, ...]:
    """The text's tokens (analysed once per distinct text)."""
    found = []
    for t in _tokenizer().tokenize(unicodedata.normalize("NFKC", text)):
        pos = t.part_of_speech.split(",")
        sounds = t.reading if t.reading != "*" else jaconv.hira2kata(kana_fold(t.surface))
        found.append(Token(kana_fold(t.base_form if t.base_form != "*" else t.surface), sounds,
                           pos[0], pos[1], t.surface))
    return tuple(found)


def _meaningful(t: Token) -> bool:
    return (t.pos not in STOP_POS and t.sub not in ("非自立", "代名詞")
            and t.word not in STOP_WORDS and bool(re.search(r"\w", t.word)))


def _content(text: str) -> list[tuple[str, str]]:
    """(word, reading) of each token that carries meaning."""
    return [(t.word, t.sounds) for t in tokens(text) if _meaningful(t)]


def nouns(text: str) -> list[str]:
    """The nouns of a text, folded (what a sentence is about)."""
    return [t.word for t in tokens(text) if t.pos == "名詞" and t.sub != "数" and _meaningful(t)]


def reading(text: str) -> str:
    """The whole text as katakana sounds (kanji by their dictionary reading)."""
    return "".join(t.sounds for t in tokens(text) if re.search(r"\w", t.surface))


@functools.lru_cache(maxsize=4096)
def terms(text: str) -> tuple[tuple[str, float], ...]:
    """Weighted index terms: each content word, and the trigrams of the words' readings (a
    reading of two sounds is one term), which make そだいごみ meet 粗大ごみ."""
    content = _content(text)
    reading = "".join(r for _, r in content)
    size = 3 if len(reading) >= 3 else len(reading)
    grams = [f"~{reading[i:i + size]}" for i in range(len(reading) - size + 1)] if size else []
    return tuple([(w, 1.0) for w, _ in content] + [(g, READING_WEIGHT) for g in grams])


@dataclass(frozen=True)
class Doc:
    """One searchable row: its kind (faq, facility), the row, weighted text fields, and the
    names people may spell in kana (keywords, a facility's name and category)."""

    kind: str
    row: Any
    fields: tuple[tuple[str, float], ...]  # (text, weight)
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Hit:
    """A document with its BM25 score and how much of the query it covers (0..1)."""

    doc: Doc
    score: float
    coverage: float
    named: bool = False  # the query says one of the row's own names (keywords, facility name)


@dataclass
class Index:
    """BM25 over weighted fields; built once per copy of the sheets."""

    docs: list[Doc]
    tf: list[Counter[str]] = field(default_factory=list)
    length: list[float] = field(default_factory=list)
    df: Counter[str] = field(default_factory=Counter)
    own: list[set[str]] = field(default_factory=list)  # each row's name terms
    postings: dict[str, list[int]] = field(default_factory=dict)  # term -> rows holding it
    strength: list[dict[str, float]] = field(default_factory=list)  # 1 in a question, less in
    # a category, little in an answer: how much a shared term says the row is the one asked

    def __post_init__(self) -> None:
        self.sounds: dict[str, set[str]] = {}  # names' sounds by their first two
        for doc in self.docs:
            counts: Counter[str] = Counter()
            strength: dict[str, float] = {}
            for text, weight in doc.fields:
                for term, w in terms(text):
                    counts[term] += weight * w
                    strength[term] = max(strength.get(term, 0.0), min(1.0, weight / 2))
            own = set()
            for name in doc.names:
                own.update(t for t, _ in terms(name) if not t.startswith("~"))
                sound = reading(name)
                if len(sound) >= MIN_SOUNDS:
                    counts[f"k:{sound}"] += NAME_WEIGHT
                    self.sounds.setdefault(sound[:2], set()).add(sound)
                    own.add(f"k:{sound}")
            self.own.append(own)
            self.strength.append(strength)
            for term in counts:
                self.postings.setdefault(term, []).append(len(self.own) - 1)
            self.tf.append(counts)
            self.length.append(sum(counts.values()))
            self.df.update(counts.keys())
        self.average = (sum(self.length) / len(self.length)) if self.length else 1.0

    def idf(self, term: str) -> float:
        """Rare terms weigh more; a term no row has weighs most."""
        n = self.df.get(term, 0)
        return math.log(1 + (len(self.docs) - n + 0.5) / (n + 0.5))

    def search(self, query: str, limit: int = 3) -> list[Hit]:
        """The best rows for a query, best first, with their coverage of the query."""
        asked = self._asked(query)
        if not any(asked.mass.values()):
            return []
        rows = sorted(self._candidates(asked))
        hits = [self._hit(n, asked) for n in rows]  # sheet order breaks ties
        return sorted(hits, key=lambda h: (-h.score, -h.coverage))[:limit]

    def _candidates(self, asked: _Asked) -> set[int]:
        """Rows sharing a word or a name with the query; failing those, rows sharing sounds
        (a sound found in a quarter of the rows finds nothing)."""
        named = {n for t, _, kind in asked.kinds if kind != "~" for n in self.postings.get(t, ())}
        if named:
            return named
        common = len(self.docs) // 4
        return {n for t, _, kind in asked.kinds if kind == "~"
                for n in self.postings.get(t, ()) if len(self.postings[t]) <= common}

    def _asked(self, query: str) -> _Asked:
        wanted: Counter[str] = Counter()
        for term, w in terms(query):
            wanted[term] += w
        said = reading(query)
        for at in range(len(said) - 1):  # a name heard in the query, however it was spelled
            for sound in self.sounds.get(said[at:at + 2], ()):
                if said.startswith(sound, at):
                    wanted[f"k:{sound}"] = 1.0
        mass = {t: self.idf(t) * w for t, w in wanted.items()}
        words = sum(v for t, v in mass.items() if not t.startswith(("~", "k:")))
        sounds = sum(v for t, v in mass.items() if t.startswith("~"))
        spoken = max(1, len("".join(r for _, r in _content(query))))
        kinds = [(t, v, t[0] if t[0] in "~k" and (t[0] == "~" or t.startswith("k:")) else "w")
                 for t, v in mass.items()]
        return _Asked(mass, words, sounds, spoken, kinds)

    def _hit(self, n: int, asked: _Asked) -> Hit:
        """BM25 of one row, and how much of the query it covers: by words, by sounds (trusted
        less), or by a name heard in it (its share of the query's sounds)."""
        tf, held = self.tf[n], self.strength[n]
        norm = K1 * (1 - B + B * self.length[n] / self.average)
        score = words = sounds = heard = 0.0
        for term, value, kind in asked.kinds:
            got = tf.get(term)
            if not got:
                continue
            score += value * got * (K1 + 1) / (got + norm)
            if kind == "k":
                heard = max(heard, min(1.0, (len(term) - 2) / asked.spoken))
            elif kind == "~":
                sounds += value * held.get(term, 0.0)
            else:
                words += value * held.get(term, 0.0)
        coverage = max(words / asked.words if asked.words else 0.0,
                       READING_TRUST * sounds / asked.sounds if asked.sounds else 0.0, heard)
        return Hit(self.docs[n], score, coverage, bool(self.own[n] & asked.mass.keys()))


@dataclass(frozen=True)
class _Asked:
    """A query's terms with their weights (idf × weight), and the totals coverage divides by."""

    mass: dict[str, float]
    words: float
    sounds: float
    spoken: int
    kinds: list[tuple[str, float, str]]  # (term, mass, "w" word / "~" sound / "k" name)


def faq_doc(faq: Any) -> Doc:
    """An FAQ row: organizer keywords weigh most, then the question, category and answer."""
    return Doc("faq", faq, ((" ".join(faq.keywords), 3.0), (faq.question, 2.0),
                            (faq.category, 1.0), (faq.answer, 0.3)), tuple(faq.keywords))


FACILITY_WORDS = "住所 場所 電話 番号 代表 営業 時間 開庁 開館 アクセス 地図 行き方 土曜 日曜"  # what one asks


def facility_doc(facility: Any) -> Doc:
    """A facility row: its name and category, a little of its address, and what people ask
    of any facility (its address, phone, hours)."""
    return Doc("facility", facility, ((facility.name, 3.0), (facility.category, 2.0),
                                      (facility.address, 0.3), (FACILITY_WORDS, 0.5)),
               (facility.name, facility.category))


_built: dict[int, Index] = {}  # one index, under the hash of the rows it was built from
_building = threading.Lock()


_keys: dict[int, tuple[Any, int]] = {}  # a copy of the sheets -> the hash of its rows


def _rows_key(org: Any) -> int:
    """The hash of a copy's FAQ and facility rows, worked out once per copy."""
    known = _keys.get(id(org))
    if known is not None and known[0] is org:
        return known[1]
    key = hash((tuple(org.faq), tuple(org.facilities)))
    _keys.clear()
    _keys[id(org)] = (org, key)
    return key


def ready(org: Any) -> bool:
    """Whether the index for this copy of the sheets' FAQ and facilities is built already."""
    return _rows_key(org) in _built


def index_for(org: Any) -> Index:
    """The index of these FAQ and facility rows (built once; rebuild() builds it ahead)."""
    return _built.get(_rows_key(org)) or rebuild(org)


def follow(org: Any) -> None:
    """On a new copy of the sheets: rebuild ahead, off the request path, once the index is in
    use. Until someone asks in their own words, a worker holds neither the index nor Janome's
    dictionary (about 100 MB)."""
    if _built:
        rebuild(org)


def rebuild(org: Any) -> Index:
    """Build the index for a new copy of the sheets, unless its rows are those indexed already
    (a Google copy is re-read every minute; rebuilding then would only burn CPU)."""
    key = _rows_key(org)
    with _building:
        index = _built.get(key)
        if index is None:
            index = Index([faq_doc(f) for f in org.faq] + [facility_doc(f) for f in org.facilities])
            _built.clear()
            _built[key] = index
        return index
