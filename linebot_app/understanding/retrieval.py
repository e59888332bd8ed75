"""Japanese retrieval over the FAQ and facilities: Janome tokens, synonyms from Sudachi's
dictionary, the sounds of the whole text so that kana and kanji spellings meet, BM25 over
weighted fields, and a confidence for each hit."""

from __future__ import annotations

import functools
import gc
import gzip
import math
import re
import threading
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jaconv

K1, B = 1.2, 0.75
READING_WEIGHT = 0.4  # a shared reading trigram counts less than a shared word
READING_TRUST = 0.8  # sounds alike is weaker evidence than the same words
SYNONYM_WEIGHT = 0.5  # a shared synonym group counts less than the same word
SYNONYM_TRUST = 0.8  # and covers a word of the query a little less surely
ANSWER_WEIGHT = 0.5  # a word of the answer says a little that the row is the one asked
NAME_WEIGHT = 3.0  # a keyword or facility name heard in the query, in any spelling
MIN_SOUNDS = 4  # names shorter than this are matched as words only
SYNONYMS = Path(__file__).resolve().parent / "data" / "synonyms.txt.gz"
# Words that say how something is asked, not what about: they never decide a match.
STOP_POS = ("助詞", "助動詞", "記号", "接続詞", "感動詞", "フィラー")
STOP_WORDS = frozenset(
    "ある いる する なる できる 出来る くださる 下さる 教える 知る 思う 言う いう 行う ない いい "
    "よい 良い 欲しい ほしい たい です ます どこ いつ 何 なに なん どう どれ どの どちら 誰 だれ "
    "何時 いくら 方 かた こと もの の ん ? ! 方法 ところ 所 について 場合 とき 時 今 ここ そこ "
    "お願い 願う 確認 わかる 分かる 聞く 見る".split())
KANA = re.compile("[ぁ-ゖー]+")
SMALL_KANA = str.maketrans("ァィゥェォッャュョヮヵヶ", "アイウエオツヤユヨワカケ")


@functools.lru_cache(maxsize=1)
def _tokenizer() -> Any:
    """Janome's tokenizer, loaded on first use. Its dictionary ships in the wheel and is mapped
    from there (mmap): its pages are the file's, shared by every worker, not each one's heap."""
    from janome.tokenizer import Tokenizer

    return Tokenizer(mmap=True)


@functools.lru_cache(maxsize=1)
def _synonyms() -> dict[str, tuple[int, ...]]:
    """Folded written form -> the synonym groups it may be expanded from (see data/README.md).
    Loaded on first use; about 65,000 forms."""
    groups: dict[str, list[int]] = {}
    with gzip.open(SYNONYMS, "rt", encoding="utf-8") as f:
        for number, line in enumerate(f):
            for form in line.rstrip("\n").split(","):
                if form and not form.startswith("!"):  # ! only ever reached, never expanded
                    groups.setdefault(kana_fold(form), []).append(number)
    return {form: tuple(dict.fromkeys(found)) for form, found in groups.items() if len(form) > 1}


def kana_fold(text: str) -> str:
    """NFKC, lower case, katakana as hiragana."""
    return jaconv.kata2hira(unicodedata.normalize("NFKC", text).casefold())


def sounds_key(sounds: str) -> str:
    """Katakana sounds with voicing dropped, small kana as large and no long marks, so that
    ほけんじょ and ホケンショ, or コンピューター and コンピュータ, are the same letters."""
    plain = "".join(c for c in unicodedata.normalize("NFD", sounds) if c not in "\u3099\u309a")
    return unicodedata.normalize("NFC", plain).translate(SMALL_KANA).replace("ー", "")


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
            and t.word not in STOP_WORDS and bool(re.search(r"\w", t.word))
            and not (KANA.fullmatch(t.word)
                     and sounds_key(jaconv.hira2kata(t.word)) in _stop_sounds()))


@functools.lru_cache(maxsize=1)
def _stop_sounds() -> frozenset[str]:
    """The stop words as they sound, so that a kana spelling (おしえる) is one too."""
    return frozenset(sounds_key("".join(t.sounds for t in tokens(w))) for w in STOP_WORDS
                     if len(w) > 1)


def nouns(text: str) -> list[str]:
    """The nouns of a text, folded (what a sentence is about)."""
    return [t.word for t in tokens(text) if t.pos == "名詞" and t.sub != "数" and _meaningful(t)]


def reading(text: str) -> str:
    """The whole text's sounds (kanji by their dictionary reading), folded by sounds_key."""
    return sounds_key("".join(t.sounds for t in tokens(text) if re.search(r"\w", t.surface)))


@dataclass(frozen=True)
class Terms:
    """A text's index terms: each content word with the synonym groups it belongs to, and the
    trigrams of the whole text's sounds (a reading of two sounds is one term)."""

    words: tuple[tuple[str, tuple[str, ...]], ...]  # (word, its groups as s:<n> terms)
    grams: tuple[str, ...]  # ~<sounds>

    def weighted(self) -> list[tuple[str, float]]:
        """Every term with its weight, as a document counts them."""
        return ([(w, 1.0) for w, _ in self.words]
                + [(g, SYNONYM_WEIGHT) for _, groups in self.words for g in groups]
                + [(g, READING_WEIGHT) for g in self.grams])


@functools.lru_cache(maxsize=4096)
def terms(text: str) -> Terms:
    """Content words, their synonym groups (a run of up to three tokens may be one entry, as
    マイナ + カード), and the sounds of the whole text, so that こう/みん/かん meets 公民館."""
    found = tokens(text)
    groups: dict[int, set[str]] = {}
    known = _synonyms()
    for at in range(len(found)):
        for size in (1, 2, 3):
            span = found[at:at + size]
            if len(span) < size:
                break
            head = "".join(kana_fold(t.surface) for t in span[:-1])
            for form in {head + kana_fold(span[-1].surface), head + span[-1].word}:
                for n in known.get(form, ()):
                    for i in range(at, at + size):
                        groups.setdefault(i, set()).add(f"s:{n}")
    words = tuple((t.word, tuple(sorted(groups.get(i, ()))))
                  for i, t in enumerate(found) if _meaningful(t))
    said = reading(text)
    size = 3 if len(said) >= 3 else len(said)
    grams = tuple(f"~{said[i:i + size]}" for i in range(len(said) - size + 1)) if size else ()
    return Terms(words, grams)


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
                for term, w in terms(text).weighted():
                    counts[term] += weight * w
                    strength[term] = max(strength.get(term, 0.0), min(1.0, weight))
            own = set()
            for name in doc.names:  # its words, unless one is a suffix (駐車 of 駐車場)
                if not any(t.sub == "接尾" for t in tokens(name)):
                    own.update(x for w, groups in terms(name).words for x in (w, *groups))
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
        self.norm = [K1 * (1 - B + B * length / self.average) for length in self.length]

    def idf(self, term: str) -> float:
        """Rare terms weigh more; a term no row has weighs most."""
        n = self.df.get(term, 0)
        return math.log(1 + (len(self.docs) - n + 0.5) / (n + 0.5))

    def search(self, query: str, limit: int = 3) -> list[Hit]:
        """The best rows for a query, best first, with their coverage of the query."""
        asked = self._asked(query)
        if not asked.mass:
            return []
        rows = sorted(self._candidates(asked))
        hits = self._hits(rows, asked)  # sheet order breaks ties
        return sorted(hits, key=lambda h: (-h.score, -h.coverage))[:limit]

    def _candidates(self, asked: _Asked) -> set[int]:
        """Rows sharing a word, a synonym or a name with the query, and rows sharing a rare
        sound: one found in at most a quarter of the rows when nothing else is shared, else
        in at most a twentieth (a common sound finds nothing)."""
        found = {n for t in asked.mass if not t.startswith("~") for n in self.postings.get(t, ())}
        rare = len(self.docs) // (20 if found else 4)
        return found | {n for t in asked.mass if t.startswith("~")
                        for n in self.postings.get(t, ()) if len(self.postings[t]) <= max(3, rare)}

    def _asked(self, query: str) -> _Asked:
        said = terms(query)
        mass: dict[str, float] = {}
        for term, w in said.weighted():
            mass[term] = mass.get(term, 0.0) + self.idf(term) * w
        heard = reading(query)
        for at in range(len(heard) - 1):  # a name heard in the query, however it was spelled
            for sound in self.sounds.get(heard[at:at + 2], ()):
                if heard.startswith(sound, at):
                    mass[f"k:{sound}"] = self.idf(f"k:{sound}")
        words = {w: (self.idf(w), groups) for w, groups in said.words}
        content = sounds_key("".join(t.sounds for t in tokens(query) if _meaningful(t)))
        said = frozenset(f"~{content[i:i + 3]}" for i in range(len(content) - 2))
        every = sum(v for t, v in mass.items() if t.startswith("~"))
        sounds = sum(v for t, v in mass.items() if t in said)
        return _Asked(mass, words, every, sounds, max(1, len(content)), said)

    def _hits(self, rows: list[int], asked: _Asked) -> list[Hit]:
        """BM25 of each row, and how much of the query it covers: by its words (or their
        synonyms, trusted less), by sounds (trusted less), or by a name heard in it (its share
        of the query's sounds). Summed a term at a time over the rows holding it."""
        score = dict.fromkeys(rows, 0.0)
        every, sounds, heard, words, alike = (dict(score) for _ in range(5))
        for term, value in asked.mass.items():
            for n in self.postings.get(term, ()):
                if n not in score:
                    continue
                got = self.tf[n][term]
                score[n] += value * got * (K1 + 1) / (got + self.norm[n])
                if term.startswith("k:"):
                    heard[n] = max(heard[n], min(1.0, (len(term) - 2) / asked.spoken))
                elif term.startswith("~"):
                    held = value * self.strength[n].get(term, 0.0)
                    every[n] += held
                    if term in asked.said:  # a sound of what is asked, not of how
                        sounds[n] += held
                        alike[n] += 1
        for word, (value, groups) in asked.words.items():
            for n, held in self._held(word, groups, score).items():
                words[n] += value * held
        total = sum(v for v, _ in asked.words.values())
        return [Hit(self.docs[n], score[n],
                    max(words[n] / total if total else 0.0,
                        READING_TRUST * every[n] / asked.every if asked.every else 0.0,
                        READING_TRUST * sounds[n] / asked.sounds if alike[n] >= 2 else 0.0,
                        heard[n]),
                    bool(self.own[n] & asked.mass.keys())) for n in rows]

    def _held(self, word: str, groups: tuple[str, ...], rows: dict[int, float]
              ) -> dict[int, float]:
        """How surely each of these rows holds a word of the query: by the word itself, or by
        one of its synonym groups (trusted less)."""
        best: dict[int, float] = {}
        for term, trust in ((word, 1.0), *((g, SYNONYM_TRUST) for g in groups)):
            for n in self.postings.get(term, ()):
                if n in rows:
                    best[n] = max(best.get(n, 0.0), trust * self.strength[n].get(term, 0.0))
        return best


@dataclass(frozen=True)
class _Asked:
    """A query's terms with their weights (idf × weight), its words with their synonym groups,
    and the totals coverage divides by."""

    mass: dict[str, float]
    words: dict[str, tuple[float, tuple[str, ...]]]  # word -> (idf, its synonym groups)
    every: float  # the weight of all the query's sound trigrams
    sounds: float  # and of those of its content words only (said)
    spoken: int
    said: frozenset[str]


def faq_doc(faq: Any) -> Doc:
    """An FAQ row: organizer keywords weigh most, then the question, category and answer."""
    return Doc("faq", faq, ((" ".join(faq.keywords), 3.0), (faq.question, 2.0),
                            (faq.category, 1.0), (faq.answer, ANSWER_WEIGHT)), tuple(faq.keywords))


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
            gc.freeze()  # the index, the tokenizer and the synonyms live as long as the worker:
        return index     # the collector need not walk them again (a pause in every full pass)
