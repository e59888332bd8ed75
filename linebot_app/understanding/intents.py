"""Understanding plain sentences: the intent table beside the command table, questions the
event itself answers, greetings, and the FAQ and facilities by retrieval."""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from domain.schema import Event, Workbook
from linebot_app.understanding import retrieval

ANSWER_AT, MAYBE_AT = 0.55, 0.25  # coverage of the query needed to answer, or to suggest
NAMED_AT = 0.4  # coverage enough to answer a row the query names when it clearly leads
LEAD = 2.0  # a named row leads when it scores this many times any other close row
CLOSE = 0.5  # もしかして offers rows scoring at least this share of the best


@dataclass(frozen=True)
class Intent:
    """Folded phrases that mean a command (kind intent) or ask an event's field (kind event).
    A strict one counts only when every other word of the sentence is about the seminar, so
    「印鑑登録したい」 is not a registration and 「郵便局はどこ」 is not the venue."""

    kind: str
    target: str
    phrases: tuple[str, ...]
    strict: bool = False


# Checked in order: 登録確認 before 参加登録 (both say 登録), キャンセル before 参加登録
# (参加できなくなった), the event's own facts before イベント and 予定.
INTENTS: tuple[Intent, ...] = (
    Intent("intent", "登録確認", (
        "登録できて", "登録されて", "申し込めて", "申込めて", "申し込みできて", "登録状況",
        "申込状況", "登録内容", "ちゃんと登録", "登録済み", "登録したか", "申し込んだか",
        "申し込んでいるか", "申し込めてる", "登録できてる", "何に申し込ん", "受け付けられて",
        "受付されて", "申し込んだはず", "申込んだはず", "申し込み済みになって", "申込済みになって",
        "登録ができて", "申し込みができて"), strict=True),
    Intent("intent", "キャンセル", (
        "キャンセル", "取り消", "取消", "欠席", "行けなく", "いけなく", "参加できなく",
        "出られなく", "出席できな", "不参加", "参加やめ", "参加をやめ", "取りやめ", "取り下げ",
        "辞退", "きゃんせる", "やっぱりやめ"), strict=True),
    Intent("intent", "参加登録", (
        "参加したい", "参加します", "参加希望", "申し込みたい", "申込みたい", "申込したい",
        "申し込みします", "申し込む", "登録したい", "エントリー", "応募", "参加を申し込",
        "参加申し込み", "参加申込", "参加登録", "もうしこみたい", "もうしこみしたい",
        "さんかしたい", "申し込みしたい", "参加させて", "申し込みます", "申込みます",
        "申込します", "申し込みお願い", "申込お願い", "登録お願い", "出たい", "出ます",
        "受けたい", "見学したい", "見学希望", "見学させて", "見学者として", "入れてもら",
        "参加者として", "参加者で", "見学のみで", "登録よろしく", "登録をお願い",
        "登録して", "申し込んで", "さんかします", "もうしこみます", "参加しま", "申し込みでき",
        "申込でき", "さんかとうろく", "とうろくおねがい"), strict=True),
    Intent("event", "online", ("url", "リンク", "招待", "参加用", "zoomの", "ズームの",
                               "ミーティングid", "入室"), strict=True),
    Intent("event", "recording", ("録画", "ろくが", "アーカイブ", "見逃し", "録音"),
           strict=True),
    Intent("event", "preparation", ("持ち物", "もちもの", "持っていく", "持って行く",
                                    "持っていけば", "持参するもの", "必要なもの", "必要な物",
                                    "準備", "用意するもの"), strict=True),
    Intent("event", "venue", ("会場", "かいじょう", "場所", "どこで", "どこでやる", "どこである",
                              "開催地", "何階", "どこに行け", "どこへ行け"), strict=True),
    Intent("event", "time", ("何時から", "何時に", "なんじから", "開始時間", "開始時刻", "始まる",
                             "はじまる", "何時まで", "何時に終わ", "終わる", "終了時間",
                             "いつから始", "開始は", "終了は"), strict=True),
    Intent("event", "lottery", ("抽選", "ちゅうせん", "当選", "落選", "抽選の結果", "結果はいつ",
                                "結果がいつ", "当たった", "外れた"), strict=True),
    Intent("intent", "イベント", (
        "次のイベント", "次のセミナー", "今度のセミナー", "今度のイベント", "次回", "開催予定",
        "どんなセミナー", "どんなイベント", "セミナーはいつ", "イベントはいつ", "セミナーある",
        "イベントある", "セミナーの一覧", "イベントの一覧", "研修はいつ", "研修ある",
        "セミナー一覧", "イベント一覧", "どんな研修", "どんな講座", "どんな勉強会",
        "申し込めるセミナー", "申し込めるイベント", "募集中の", "開催日を", "勉強会ある",
        "勉強会はある", "講座はある", "研修はある", "今後のイベント", "今後のセミナー", "今後の研修",
        "今後の講座", "次の研修", "次の講座", "次のict")),
    Intent("intent", "予定", ("予定", "流れ", "タイムテーブル", "スケジュール", "プログラム",
                            "進行表", "進行", "次第"), strict=True),
    Intent("intent", "詳細", ("詳細", "詳しく", "くわしく", "について教えて", "の内容",
                            "どんな内容", "何をする", "何をやる"), strict=True),
    Intent("intent", "ヘルプ", ("使い方", "つかいかた", "何ができる", "なにができる", "ヘルプ",
                             "どうやって使う", "操作方法", "コマンド")),
)
# Words that keep a strict phrase about the seminar (besides the phrase's own words, dates,
# numbers and words of an event's title).
SEMINAR_WORDS = frozenset(
    "せみなー いべんと 研修 はんずおん 講座 勉強 会 当日 次 今度 今回 次回 やる 行く 開催 参加 "
    "開く 明日 今日 本日 日 月 時 何 知る 教える 確認 ほしい 欲しい 登録 申し込み 申し込む 申込 "
    "予定 階 室 部屋 始まる 終わる 開始 終了 時間 持ち物 持つ 持っていく 必要 もの 物 準備 用意 "
    "録画 見る 見れる 見られる 見逃す 見逃し 配信 公開 url りんく 招待 zoom ずーむ 場所 会場 "
    "詳細 内容 流れ 進行 たいむてーぶる すけじゅーる ぷろぐらむ 次第 じゃ 自分 僕 私 わたし ぼく "
    "すみません すいません ちょっと もう 一度 その 方 人 ん お願い おねがい 事前 前 後 あと "
    "今 ぱそこん pc 用 年 おんらいん うぇぶ web やつ 事前 都合 急用 用事 業務 仕事 体調 出張 "
    "申込 受付 枠 みんな 来月 今月 来年 月末 年末 全部 全て すべて".split())
GREETINGS = ("こんにちは", "こんばんは", "おはよう", "ありがとう", "よろしく", "はじめまして",
             "初めまして", "hello", "hi", "thanks", "thankyou", "了解", "りょうかい", "りょ",
             "わかりました", "分かりました", "おつかれ", "お疲れ", "さようなら", "またね", "どうも",
             "助かりました", "たすかりました", "承知", "さんくす", "thx", "おはよー", "こんちは",
             "ありがと", "りょーかい")
ALONE = ("りょ", "hi")  # greetings only when they are the whole message
DATE = re.compile(r"\d{4}年\d{1,2}月\d{1,2}日|\d{1,2}[/月]\d{1,2}日?|今日|本日|明日|きょう|あした")
NOT_SEMINAR = "セミナー"  # FAQ rows of this category never outrank the seminar's own answers


@dataclass(frozen=True)
class Understood:
    """What a sentence asks for: kind (intent, event, greeting, faq, facility, maybe, none),
    its target (a command, an event field, a row), arguments and the retrieval hits."""

    kind: str
    target: str = ""
    args: tuple[str, ...] = ()
    hits: tuple[retrieval.Hit, ...] = field(default=(), repr=False)

    @property
    def label(self) -> str:
        """intent:予定, event:venue, faq:<question>, facility:<name>, greeting, maybe, none."""
        return f"{self.kind}:{self.target}" if self.target else self.kind


@functools.lru_cache(maxsize=2048)
def folded(text: str) -> str:
    """NFKC, lower case, katakana as hiragana, no spaces or punctuation."""
    return re.sub(r"[\s、。,.!?！？・「」『』()（）]+", "", retrieval.kana_fold(text))


def understand(org: Workbook, text: str, now: dt.datetime,
               about: Callable[[tuple[str, ...]], Event | None] | None = None) -> Understood:
    """Decide what a sentence that is not a command word asks for. `about` picks the event a
    question about an event's facts means (by default the one named, else the next one)."""
    said = folded(text)
    if not said:
        return Understood("none")
    hits = tuple(retrieval.index_for(org).search(text))
    if not _named_row(hits):  # a resident's own topic outranks the seminar's phrases
        asked = _requested(org, text, said, now, hits, about)
        if asked is not None:
            return asked
    if _greets(said, hits):
        return Understood("greeting", hits=hits)
    found = retrieved(hits, said)
    return found if found.kind not in ("maybe", "none") else _asked_last(org, text, hits, found)


def _requested(org: Workbook, text: str, said: str, now: dt.datetime,
               hits: tuple[retrieval.Hit, ...],
               about: Callable[[tuple[str, ...]], Event | None] | None) -> Understood | None:
    """The command or the event's fact a sentence asks for, with its details, or None."""
    details = functools.cache(lambda: _args(org, text, said, now))  # once, when needed
    seminar = functools.cache(lambda: _about_seminar(org, said, details()))
    for intent in INTENTS:
        if _says(intent, org, text, said, seminar):
            args = details()
            if intent.kind == "event" and not _holds(org, intent.target, args, now, about):
                fallback = _blank_column(hits)  # the organizer's FAQ answers instead
                if fallback is not None:
                    return fallback
            if intent.target == "イベント":  # the list of every event takes none
                args = ()
            if intent.target != "参加登録":  # only a registration takes a role or level
                args = tuple(a for a in args if a not in DETAIL_WORDS)
            return Understood(intent.kind, intent.target, args, hits)
    if _bare_request(org, text, said, details()):
        return Understood("intent", "参加登録", details(), hits)
    return None


def _greets(said: str, hits: tuple[retrieval.Hit, ...]) -> bool:
    """A short message that holds a greeting or thanks (ご丁寧にありがとうございました) and asks
    nothing a row answers (ありがとう、駐車場は? is a question)."""
    answers = bool(hits) and hits[0].coverage >= ANSWER_AT
    if len(said) <= 20 and any(said.startswith(folded(g)) and (g not in ALONE or said == g)
                               for g in GREETINGS):
        return not (answers and hits[0].named)  # りょ and hi only alone, not りょうきん
    inside = any(len(folded(g)) >= 4 and folded(g) in said for g in GREETINGS)  # not りょ, hi
    return len(said) <= 30 and inside and not answers


CLAUSES = re.compile(r"[。！？!?\n]|(?:のですが|んですが|ですが|けれど|けど|ので|ため)[、,]?")
CLAUSE_WORDS = 3  # a clause of fewer content words is a follow-up (申込みはどちらに?)


def _asked_last(org: Workbook, text: str, hits: tuple[retrieval.Hit, ...],
                found: Understood) -> Understood:
    """A long message that tells a situation before it asks (台風で家が心配です。近所で避難
    できる場所は?): its last clause of some words, on its own, answered by the row that leads
    for the whole message."""
    clauses = [c for c in CLAUSES.split(text) if c and len(retrieval.terms(c).words) >= CLAUSE_WORDS]
    if len(clauses) < 2 or not hits:
        return found
    last = retrieved(tuple(retrieval.index_for(org).search(clauses[-1])), folded(clauses[-1]))
    answered = last.kind in ("faq", "facility") and last.hits[0].doc is hits[0].doc
    return last if answered else found


def _blank_column(hits: tuple[retrieval.Hit, ...]) -> Understood | None:
    """For a question the event's blank column cannot answer: the FAQ row retrieval finds, or
    the row whose keyword the question says (the phrase already said what it is about)."""
    found = retrieved(hits)
    if found.kind != "none":
        return found
    if hits and hits[0].named and hits[0].doc.kind == "faq":
        return Understood("faq", hits[0].doc.row.question, hits=hits)
    return None


def _about_seminar(org: Workbook, said: str, args: tuple[str, ...]) -> bool:
    """Whether the sentence names an event by its id or title, by what every seminar is
    (ハンズオン, 研修, 講座), or a role or a level (a date alone does not: 12月29日のごみ収集
    is not about the seminar held that day)."""
    return _stated(said, args) or bool(SEMINAR_KIND.search(said)) or (
        titled(org.events, said) is not None)


FACT_COLUMNS = {"online": "online_url", "recording": "recording_url",
                "preparation": "preparation", "venue": "venue", "time": "start"}


def _holds(org: Workbook, fact: str, args: tuple[str, ...], now: dt.datetime,
           about: Callable[[tuple[str, ...]], Event | None] | None) -> bool:
    """Whether the event asked about has a value in the column that answers the question."""
    column = FACT_COLUMNS.get(fact)
    if column is None:
        return True
    if about is not None:
        event = about(args)
    else:
        named = [e for a in args if (e := org.event(a))]
        later = sorted((e for e in org.events if e.starts_at >= now), key=lambda e: e.starts_at)
        event = (named or later or [None])[0]
    return event is not None and bool(getattr(event, column))


def _says(intent: Intent, org: Workbook, text: str, said: str,
          named: Callable[[], bool]) -> bool:
    """Whether the sentence holds one of the intent's phrases (and, when strict, nothing off
    the seminar's topic, unless it names an event, a role or a level)."""
    phrases = [folded(p) for p in intent.phrases]
    if not any(p in said for p in phrases):
        return False
    if not intent.strict or named():
        return True
    titles = _titles(org)
    said_ones = [p for p in phrases if p in said]
    for word in retrieval.nouns(text):
        if _on_topic(word, titles):
            continue
        if not any(word in p or p in word for p in phrases) and not any(
                _shares_two(word, p) for p in said_ones):
            return False
    return True


def _bare_request(org: Workbook, text: str, said: str, args: tuple[str, ...]) -> bool:
    """A registration said without a verb (生成AI講座 参加 初心者, 12/29 見学で): an event named,
    a role or a level, nothing else off the seminar's topic, and not a question."""
    named = any(org.event(a) for a in args)
    if not (named and _stated(said, args)) or QUESTION.search(said):
        return False
    titles = _titles(org)
    return all(_on_topic(word, titles) or word in DETAIL_NOUNS for word in retrieval.nouns(text))


def _stated(said: str, args: tuple[str, ...]) -> bool:
    """Whether the sentence says a level, or a role outright (not only by 参加したい)."""
    return any(a in LEVELS for a in args) or any(p.search(said) for _, p in ROLES[:2])


def _titles(org: Workbook) -> str:
    return "".join(folded(e.title) + folded(e.id) for e in org.events)


def _on_topic(word: str, titles: str) -> bool:
    """Whether a noun keeps a sentence on the seminar: a seminar word, a title's, a number."""
    return word in SEMINAR_WORDS or word in titles or word.isdigit()


def _shares_two(word: str, phrase: str) -> bool:
    """Whether a word holds two letters of a phrase in a row: the tokenizer cut the phrase
    (きゃんせるしたい -> き + ゃんせるしたい)."""
    return any(phrase[i:i + 2] in word for i in range(len(phrase) - 1))


def _named_row(hits: tuple[retrieval.Hit, ...]) -> bool:
    """Whether the best row is named in the query by one of its own words (keywords, a
    facility's name) and is not one of the seminar's FAQ rows."""
    if not hits or hits[0].coverage < ANSWER_AT or not hits[0].named:
        return False
    return getattr(hits[0].doc.row, "category", "") != NOT_SEMINAR or hits[0].doc.kind != "faq"


WHERE = re.compile("どこ|場所|ばしょ|住所|行き方|いきかた|アクセス|地図|電話|でんわ")  # a place's own facts
# What a question asks for, and what an answer must say to give it: a row whose answer names no
# price does not answer 「いくら」, one that says nothing of losing does not answer 「なくした」.
# Such a row is offered (もしかして), not answered.
ASKS = ((re.compile("いくら|なんぼ|何円|なんえん|料金|値段|ねだん|手数料|費用|金額"),
         re.compile("円|無料|有料|料金|手数料|費用")),
        (re.compile("なくし|無くし|失くし|落とし|おとし|紛失|盗ま|わすれ|忘れ"),
         re.compile("紛失|再発行|再交付|なくし|無くし|失くし|落とし|盗難|忘れ")))


def _lacks(row: object, said: str) -> bool:
    """Whether the question asks for something (a price, what to do after a loss) the row's
    answer does not say, nor its question or keywords (an organizer who adds 料金 to a row
    says it answers the price)."""
    answer = folded(" ".join((getattr(row, "answer", ""), getattr(row, "question", ""),
                              *getattr(row, "keywords", ()))))  # or the organizer's keywords
    return any(asked.search(said) and not stated.search(answer) for asked, stated in ASKS)


def retrieved(hits: tuple[retrieval.Hit, ...], said: str = "") -> Understood:
    """The row to answer, close rows to offer (もしかして), or nothing. A row is answered when
    it covers most of the query, or when the query names it (one of its keywords, or a word of
    the same synonym group) and it clearly leads every other row, and its answer says what the
    question asks for (`said`, folded: a price, a loss)."""
    if not hits or hits[0].coverage < MAYBE_AT:
        return Understood("none", hits=hits)
    best = hits[0]
    faq = next((h for h in hits if h.doc.kind == "faq" and h.named), None)
    if best.doc.kind == "facility" and faq and faq.coverage >= best.coverage and not (
            WHERE.search(said)):  # 図書館ってどこ: the facility's address, not its hours row
        best = faq  # 図書館は何時まで: the FAQ row written for it beats the bare facility
    others = [h for h in hits if h is not best]
    leads = best.named and best.coverage >= NAMED_AT and all(h.coverage < MAYBE_AT or best.score >= LEAD * h.score
                               for h in others)
    if (best.coverage < ANSWER_AT and not leads) or _lacks(best.doc.row, said):
        close = [h for h in hits if h.coverage >= MAYBE_AT and h.score >= CLOSE * best.score]
        return Understood("maybe", hits=tuple(close))
    row = best.doc.row  # the answered row first: the reply answers the first hit
    return Understood(best.doc.kind, row.question if best.doc.kind == "faq" else row.name,
                      hits=(best, *others))


# The role a sentence gives. The first two say it outright, and make a sentence the seminar's;
# the last reads it from the verb (参加したい), which 在宅から参加したい says of anything.
ROLES = (("参加", re.compile("見学(では|じゃ)なく|見学しない|参加者として|参加者で|参加で(?!き)|参加枠")),
         ("見学", re.compile("見学|見るだけ|みるだけ")),
         ("参加", re.compile("参加(したい|します|しま|希望|させて)")))
LEVELS = ("初心者", "経験者")
DETAIL_NOUNS = frozenset("参加 見学 初心者 経験者 初心 経験 者".split())  # as the tokenizer cuts them
QUESTION = re.compile(r"[?？]|か$|かな$|の$|ますか|ですか|何|なに|いつ|どこ")
DETAIL_WORDS = ("参加", "見学", *LEVELS)
LEVEL_PHRASES = (
    ("初心者", ("初心者", "しょしんしゃ", "初めて", "はじめて", "未経験", "経験がない", "経験はない",
               "経験なし", "苦手", "詳しくない", "くわしくない", "不慣れ", "自信がない", "ビギナー",
               "素人", "触ったことがない", "触ったことがあり", "使ったことがない")),
    ("経験者", ("経験者", "けいけんしゃ", "経験あり", "経験があ", "慣れて", "得意", "詳しい",
               "くわしい", "使いこなし", "上級", "毎日使", "普段から使", "ふだんから使",
               "いつも使")),
)


def _args(org: Workbook, text: str, said: str, now: dt.datetime) -> tuple[str, ...]:
    """The details a sentence gives: the event (its id, a date, or words of its title), the
    role (参加 / 見学) and the level (初心者 / 経験者). A level alone means taking part."""
    level = next((name for name, words in LEVEL_PHRASES
                  if any(folded(w) in said for w in words)), "")
    role = next((name for name, pattern in ROLES if pattern.search(said)), "")
    role = role or ("参加" if level else "")
    return tuple(a for a in (_event_named(org, text, said, now), role, level) if a)


def _event_named(org: Workbook, text: str, said: str, now: dt.datetime) -> str:
    """An event's id from its id, a date (as 予定 reads dates) or words of its title; a date
    on which several events fall is passed on as typed."""
    ids = [e.id for e in org.events if re.search(rf"(?<![0-9a-z]){re.escape(e.id.lower())}"
                                                 rf"(?![0-9a-z])", said)]
    if ids:
        return ids[0]
    on_day = events_on(org, retrieval.kana_fold(text), now.date())
    if on_day is not None and len(on_day) == 1:
        return on_day[0].id
    typed = DATE.search(retrieval.kana_fold(text))
    if on_day is not None:
        return typed.group(0) if typed else ""
    event = titled(org.events, said)
    return event.id if event else ""


MONTH_DAY = re.compile(r"(?:(\d{4})年)?(\d{1,2})[/月](\d{1,2})日?")
MONTH = re.compile(r"(来年)?(\d{1,2})月(?!\d)")
DAY = re.compile(r"(?<![\d/])(?<!\d月)(\d{1,2})日")


def events_on(org: Workbook, said: str, today: dt.date) -> list[Event] | None:
    """The events a date in the sentence points at (None when it says no date): a day
    (2027年1月14日, 1/14, 1月14日, 14日, 今日, 明日), or a month (1月, 来月, 今月末, 年末),
    the next such day first."""
    ahead = sorted((e for e in org.events if e.date >= today), key=lambda e: e.date)
    match = MONTH_DAY.search(said)
    if match:
        year, month, day = (int(g) if g else None for g in match.groups())
        same = [e for e in org.events if (e.date.month, e.date.day) == (month, day)
                and (year is None or e.date.year == year)]
        later = [e for e in same if e.date >= today]
        return later[:1] or same[-1:]
    for word, days in (("今日", 0), ("本日", 0), ("きょう", 0), ("明日", 1), ("あした", 1)):
        if word in said:
            return [e for e in org.events if e.date == today + dt.timedelta(days=days)]
    spans = {"来月": _month_after(today), "今月末": (today.year, today.month, 21),
             "年末": (today.year, 12, 20)}
    for word, (year, month, first) in spans.items():
        if word in said:
            return [e for e in ahead if (e.date.year, e.date.month) == (year, month)
                    and e.date.day >= first]
    match = MONTH.search(said)
    if match:
        return [e for e in ahead if e.date.month == int(match[2])][:1]
    match = DAY.search(said)
    if match:
        return [e for e in ahead if e.date.day == int(match[1])][:1]
    return None


def _month_after(day: dt.date) -> tuple[int, int, int]:
    return (day.year + day.month // 12, day.month % 12 + 1, 1)


GENERIC = re.compile("せみなー|いべんと|はんずおん|研修|講座|勉強会")  # in every title
LATIN_WORD = re.compile("[a-z]{2}")  # AI of 生成AI: two letters name a title's word
SEMINAR_KIND = re.compile("せみなー|はんずおん|研修|講座|勉強会")  # what a sentence calls one


def titled(events: list[Event], said: str, least: int = 3) -> Event | None:
    """The event whose title shares the longest run of characters with the sentence, words
    that every seminar's title has left out."""
    said, best, size = GENERIC.sub("|", said), None, least - 1
    for event in events:
        title = GENERIC.sub("#", folded(event.title))
        match = difflib.SequenceMatcher(None, said, title, autojunk=False).find_longest_match(
            0, len(said), 0, len(title))
        run = said[match.a:match.a + match.size]
        if match.size > size or (match.size == 2 and LATIN_WORD.fullmatch(run) and not best):
            best, size = event, max(size, match.size)
    return best
