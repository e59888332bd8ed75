"""The template workbook, filled with sample data, created when no workbook exists yet."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl
from openpyxl.styles import Font, PatternFill

from domain.schema import COLUMNS

SIM_ORGANIZER_ID = "U0000000000000000000000000000a001"

SEMINAR = [
    "E1", "行政向けICTハンズオンセミナー", "2020-04-30", "19:00", "20:30", "オンライン (Zoom)",
    "https://example.org/meet/seminar", 30, 10, "2020/4/29", "open",
    "自治体職員向けに、身近な業務をICTで改善する考え方を体験するセミナーです。",
    "PCとブラウザをご用意ください。", "",
]
SEMINAR_SCHEDULE = [
    ("19:00", "19:10", "運営自己紹介など", ""),
    ("19:10", "19:20", "企画コンセプトの説明", ""),
    ("19:20", "19:40", "ハンズオン研修のイメージ", ""),
    ("19:40", "20:15", "みんなで企画ブラッシュアップ!", "グループに分かれて意見交換します"),
    ("20:15", "20:30", "学びの共有・今後の展開", "雑感・使えそうな業務・導入の課題を共有"),
]
HANDS_ON_SCHEDULE = [
    ("14:00", "14:10", "オープニング", ""),
    ("14:10", "14:40", "Excelのアンケート様式を読み解く", "項目と入力規則を洗い出します"),
    ("14:40", "15:40", "ハンズオン: 様式をフォームアプリにする", "初心者と経験者で部屋を分けます"),
    ("15:40", "16:00", "共有と振り返り", ""),
]
FAQ = [
    ("ごみ,収集日,分別,燃やすごみ,資源ごみ", "ごみの収集日はいつですか?", "燃やすごみは月・木、資源ごみは水曜日です。地区ごとの詳細は市のごみカレンダーをご覧ください。", "くらし", "https://example.org/city/gomi"),
    ("粗大ごみ,処理券", "粗大ごみを出すには?", "粗大ごみ受付センターへ電話かWebで申し込み、処理券を購入して指定日に出してください。", "くらし", ""),
    ("住民票,証明書,写し", "住民票の写しはどこで取れますか?", "市役所1階の市民課、各支所、マイナンバーカードがあればコンビニでも取得できます。", "手続き", ""),
    ("マイナンバー,マイナンバーカード", "マイナンバーカードの申請方法は?", "郵送・スマートフォン・証明写真機から申請できます。市民課で申請の補助も行っています。", "手続き", ""),
    ("転入,転出,引っ越し,転居", "引っ越しの手続きは?", "転出は旧住所の市区町村、転入は新住所の市区町村で、引っ越しから14日以内に届け出てください。", "手続き", ""),
    ("避難所,避難場所,防災", "近くの避難所はどこですか?", "指定避難所は市の防災マップで確認できます。「避難所」と送ると一覧を、位置情報を送ると近い順に3か所をお知らせします。", "防災", "https://example.org/city/bousai"),
    ("ハザードマップ,洪水,土砂災害", "ハザードマップはありますか?", "洪水・土砂災害のハザードマップを市のWebサイトと各支所で配布しています。", "防災", ""),
    ("図書館,開館時間,休館日", "図書館の開館時間は?", "中央図書館は火〜日曜の9時〜19時です。月曜と祝日の翌日は休館です。", "施設", ""),
    ("保育園,入園,子育て", "保育園の入園申し込みは?", "4月入園は前年11月に一斉受付します。途中入園は毎月10日締切です。", "子育て", ""),
    ("市民税,住民税,納付,口座振替", "市民税の納付方法は?", "納付書で金融機関・コンビニ、口座振替、スマホ決済アプリで納付できます。", "税金", ""),
    ("家電リサイクル,エアコン,テレビ,冷蔵庫,洗濯機", "エアコンやテレビを捨てたい", "家電リサイクル法の対象品は、購入店か指定引取場所へお持ちください。市では収集しません。", "くらし", ""),
    ("オンライン,Zoom", "オンラインで参加できますか?", "オンライン配信のある回は Zoom で参加できます。参加登録した方に、開催前に参加用の URL をお送りします。", "セミナー", ""),
    ("録画,アーカイブ", "録画は見られますか?", "録画を公開する回は、終了後に参加登録した方へ URL をお送りします。当日参加できなかった方もご覧いただけます。", "セミナー", ""),
    ("駐車場,車", "駐車場はありますか?", "市役所本庁舎の来庁者用駐車場 (2時間まで無料) をご利用いただけます。台数に限りがあるため、公共交通機関でのご来場をおすすめします。", "セミナー", ""),
    ("持ち物,ノートPC", "持ち物は何ですか?", "ハンズオンの回はノートPCをお持ちください。回ごとの準備は「詳細」でご確認いただけます。", "セミナー", ""),
    ("初心者,未経験", "初心者でも参加できますか?", "はい、歓迎します。ICT がはじめての方向けの部屋を用意し、講師がそばでお手伝いします。", "セミナー", ""),
    ("見学", "見学だけでもできますか?", "見学の枠があります。「参加登録」で「見学」を選んでください。近隣の自治体の職員の方も歓迎します。", "セミナー", ""),
]


FACILITIES = [
    ("みなと市役所 本庁舎", "市役所", "みなと市中央1-1-1", 34.6901, 135.1955, "平日 8:45〜17:30", "000-000-0001", "https://example.org/city"),
    ("中央小学校 (指定避難所)", "避難所", "みなと市中央3-2-1", 34.6952, 135.1890, "災害時に開設", "000-000-0002", ""),
    ("港北中学校 (指定避難所)", "避難所", "みなと市港北2-5-8", 34.7033, 135.2051, "災害時に開設", "000-000-0003", ""),
    ("みなと市民体育館 (指定避難所)", "避難所", "みなと市浜町4-1", 34.6812, 135.1822, "災害時に開設", "000-000-0004", ""),
    ("中央図書館", "図書館", "みなと市中央2-7-3", 34.6925, 135.1978, "火〜日 9:00〜19:00", "000-000-0005", "https://example.org/city/library"),
    ("みなと保健センター", "保健センター", "みなと市栄町1-9", 34.6878, 135.2016, "平日 8:45〜17:30", "000-000-0006", ""),
]


TELEMED_SURVEY = [
    "telemed", "電話・オンライン診療の実施状況調査(サンプル)",
    "電話や情報通信機器を使った診療の実施状況を伺います。5分ほどで終わります。",
    "ご協力ありがとうございました。回答はそのまま集計表に入ります。", "anyone", "", "", "TRUE",
]
TELEMED_QUESTIONS = [
    (1, "institution", "医療機関の名前を教えてください。", "text", "", "TRUE", "", 100, "", "", ""),
    (2, "prefecture", "所在地の都道府県は?", "text", "", "TRUE", "", "", "", "例: 兵庫県", ""),
    (3, "municipality", "所在地の市区町村は?", "text", "", "TRUE", "", "", "", "例: みなと市", ""),
    (4, "postal_code", "郵便番号は?", "postal_code", "", "TRUE", "", "", "", "", ""),
    (5, "phone", "代表の電話番号は?", "phone", "", "TRUE", "", "", "", "", ""),
    (6, "online_care", "電話や情報通信機器を用いた診療を行っていますか?", "yes_no", "", "TRUE", "", "", "", "", ""),
    (7, "since", "いつから行っていますか?", "date", "", "TRUE", "", "", "", "例: 令和8年4月1日", "online_care=いいえ"),
    (8, "patients", "対象の患者を選んでください(複数可)。", "multi_choice", "初診の患者,再診の患者", "TRUE", "", "", "", "", "online_care=いいえ"),
    (9, "prescription", "処方箋を FAX や郵送で薬局へ送っていますか?", "yes_no", "", "TRUE", "", "", "", "", "online_care=いいえ"),
    (10, "contact_name", "ご担当者のお名前は?", "text", "", "TRUE", "", 50, "", "", ""),
    (11, "contact_email", "ご担当者のメールアドレスは?", "email", "", "TRUE", "", "", "", "", ""),
]


def create_sample_workbook(path: Path | str, today: dt.date | None = None) -> Path:
    """Write the template workbook with the 2020 seminar, one upcoming hands-on and a FAQ."""
    today = today or dt.date.today()
    upcoming = today + dt.timedelta(days=28)
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    _sheet(wb, "events", [SEMINAR, _hands_on(upcoming, today)])
    _sheet(wb, "schedule", [["E1", *row] for row in SEMINAR_SCHEDULE]
           + [["E2", *row] for row in HANDS_ON_SCHEDULE])
    _sheet(wb, "faq", [[*row, "TRUE"] for row in FAQ])
    _sheet(wb, "settings", _settings())
    _sheet(wb, "facilities", [list(row) for row in FACILITIES])
    _sheet(wb, "surveys", [TELEMED_SURVEY])
    _sheet(wb, "questions", [["telemed", *row] for row in TELEMED_QUESTIONS])
    for name in ("registrations", "feedback", "attendance", "deliveries"):
        _sheet(wb, name, [])
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    wb.save(target)
    return target


def _hands_on(day: dt.date, today: dt.date) -> list[object]:
    deadline = day - dt.timedelta(days=2)
    return [
        "E2", "Excelの調査票をアプリにするハンズオン", f"{day.year}年{day.month}月{day.day}日",
        "14:00〜16:00", "", "市役所本庁舎 5階 研修室", "", 4, 2,
        deadline.strftime("%Y/%m/%d"), "",
        "紙とExcelで回っている調査票を、5分でフォームアプリにする体験をします。",
        "ノートPCを持参し、事前にブラウザでアカウント作成を済ませてください。", "",
    ]


def _settings() -> list[list[str]]:
    return [
        ["admin_user_ids", SIM_ORGANIZER_ID],
        ["welcome_message", "友だち追加ありがとうございます。行政向けICTハンズオンセミナーの案内ボットです。"
                            "「イベント」で開催予定、「ヘルプ」で使い方を表示します。"],
        ["privacy_notice", "登録いただいた表示名と回答は、セミナーの運営と改善のためにのみ使い、"
                           "終了後1年で削除します。"],
        ["city_name", "みなと市 (架空)"],
    ]


def _sheet(wb: openpyxl.Workbook, name: str, rows: list[list[object]]) -> None:
    ws = wb.create_sheet(name)
    ws.append(list(COLUMNS[name]))
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="DDEBF7")
    ws.freeze_panes = "A2"
    for row in rows:
        ws.append(row)
