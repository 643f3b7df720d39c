#!/usr/bin/python3
"""Writes corpus.jsonl, the texts of the tokenizer golden test, one JSON
string a line. This list is the source; edit it here, then rerun this script
and `node golden.js`.

Usage, from this folder: /usr/bin/python3 corpus.py corpus.jsonl

The emoji-caption lines near the top include labels and tags of
emojibase-data 17.0.0 (en/data.json, MIT licence), the captions that the
default model trains on. Invisible characters are written as JSON escapes
so the file stays readable.
"""

import json
import sys
import unicodedata

texts = [
# emoji captions: emojibase labels and tags
"grinning face with big eyes",
"flag: United Kingdom",
"woman technologist: medium skin tone",
"smiling face with heart-eyes",
"face with tears of joy",
"red heart",
"thumbs up: medium-light skin tone",
"man technologist: dark skin tone",
"family: man, woman, girl, boy",
"rainbow flag",
"flag: Scotland",
"keycap: 1",
"sparkles",
"party popper",
"person in lotus position: light skin tone",
"waving hand: dark skin tone",
"OK hand",
"face with open mouth",
"see-no-evil monkey",
"jack-o-lantern",
"Japanese “here” button",
"A button (blood type)",
"regional indicator A",
"smiling face",
"face happy outlined relaxed smile smiling",
"hot face",
"dying face feverish heat hot panting red-faced stroke sweating tongue",
"skull",
"body dead death face fairy fairytale i’m lmao monster tale yolo",
"grey heart",
"143 emotion gray grey heart ily love silver slate special",
"thumbs down",
"-1 bad dislike down good hand no nope thumb thumbs",
"thumbs down: dark skin tone",
"man: white hair",
"adult bro man white hair",
"man: dark skin tone, white hair",
"woman shrugging",
"doubt dunno guess idk ignorance indifference knows maybe shrug shrugging whatever who woman",
"woman astronaut: dark skin tone",
"supervillain",
"bad criminal evil superpower villain",
"woman kneeling: dark skin tone, facing right",
"ball birdie caddy driving golf golfing green pga putt range tee woman",
"men holding hands: dark skin tone, medium-dark skin tone",
"bae bestie bff boys brothers couple dating flirt friends hand hold men twins",
"light skin tone",
"1–2 light skin tone type",
"animal baa farm female fluffy lamb sheep wool",
"animal bird flamboyant ornithology tropical",
"scorpio scorpius zodiac",
"candy dessert food restaurant sweet",
"desert island",
"hot hotsprings springs steaming",
"blades roller skate skates sport",
"one o’clock",
"1 1:00 clock one o’clock time",
"cloud with lightning and rain",
"award celebration medal military",
"bear plaything plush stuffed teddy toy",
"beach flip flop sandal sandals shoe thong thongs zōri",
"book education fantasy knowledge library novels open reading",
"communication media notes pencil",
"cog cogwheel tool",
"bar bathing clean cleaning lather soapdish",
"arrow cardinal direction down south",
"arrow button clockwise once repeat single",
"NEW button",
"black geometric medium-small square",
"flag: Bahrain",
"BH flag",
"flag: U.S. Virgin Islands",
"flag: Côte d’Ivoire",
"flag: Åland Islands",
"flag: São Tomé & Príncipe",
"flag: Curaçao",
"flag: Réunion",
"piñata",
"woman in motorized wheelchair facing right: medium-dark skin tone",
# plain English
"The quick brown fox jumps over the lazy dog.",
"I like strawberries",
"unaffable",
"Tokenization is the first step of every NLP pipeline.",
"He said, \"it's fine\" -- and left.",
"It was the best of times, it was the worst of times...",
"To be, or not to be: that is the question.",
# mixed case
"HeLLo WoRLD",
"iPhone and iPad",
"McDonald's",
"NASA's JWST",
"CamelCaseIdentifier snake_case_identifier kebab-case-identifier",
# accents
"café",
"naïve",
"Zürich",
"Ångström",
"résumé",
"ñ",
"Crème brûlée à la française",
"Zażółć gęślą jaźń",
"Tiếng Việt có dấu",
"Phở bò và bánh mì",
"Καλημέρα κόσμε",
"ΆΈΉΊΌΎΏ ΐΰ άέήίόύώ",
"ΣΊΣΥΦΟΣ",
"Příliš žluťoučký kůň úpěl ďábelské ódy",
"İstanbul Iğdır ılık",
"Straße",
"Noël, où êtes-vous ?",
"¿Dónde está el niño?",
"ação coração",
"Ærø Øresund",
"Þingvellir",
"Țară și",
"őrült ünnep",
"e\u0301cole",
"a\u0308\u0301",
"\u0301leading mark",
"n\u0303",
"e\u034f\u0301",
"\u212b \u2126 \u212a",
";\u037e\u0387",
"\u1e9b\u0323",
# CJK and other scripts
"我爱自然语言处理",
"中文分词测试",
"こんにちは世界",
"カタカナ",
"東京タワー",
"안녕하세요 세계",
"한국어",
"ㅎㅏㄴ",
"\u1112\u1161\u11ab",
"Tokyo東京2020",
"ＡＢＣ１２３",
"\uf900\ufa0e\ufa10",
"、。「」『』【】",
"𠀋𪚲",
"日本語のテキスト、句読点。",
"Привет, мир! Ёлка й",
"مرحبا بالعالم",
"مَرْحَبًا",
"שָׁלוֹם",
"नमस्ते दुनिया",
"สวัสดีชาวโลก",
"Բարեւ Աշխարհ",
"გამარჯობა",
"வணக்கம்",
# emoji, ZWJ, skin tones
"😀",
"👍🏽",
"👩‍💻",
"👨‍👩‍👧‍👦",
"🏳️‍🌈",
"🇬🇧",
"1️⃣",
"❤️",
"✨ sparkles ✨",
"I ❤ NY",
"🏻🏼🏽🏾🏿",
"👋🏿 waving hand: dark skin tone",
"🏴\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F",
"🧑🏾‍🚀",
"🫠🥲🤣",
"emoji😀inside",
# punctuation runs and quotes
"!!!???...",
"--",
"—",
"…",
"(a)[b]{c}",
"@#$%^&*",
"«quotes»",
"„Anführungszeichen“",
"'single' \"double\" ‘curly’ “curly”",
"don't",
"rock 'n' roll",
"O’Reilly",
"‹›¡¿",
"·•§¶†‡‰‱",
"a.b,c;d:e!f?g",
"`backticks` and ~tildes~ and |pipes|",
"well-known state-of-the-art",
"e-mail re-enter co-operate",
# whitespace
"",
" ",
"     ",
"\t\n\r",
"a\tb\nc\rd",
"\u00a0nbsp",
"\u3000ideographic space",
"\u2003em space",
"line\u2028separator",
"zero\u200bwidth",
"\ufeffBOM",
"  leading and trailing  ",
# controls
"a\u0000b",
"\u0001\u0002start",
"del\u007fete",
"next\u0085line",
"vertical\u000bform\u000cfeed",
"replacement\ufffdchar",
"private\ue000use",
"soft\u00adhyphen",
"\u001cfile\u001dgroup\u001erecord\u001funit",
# long words
"a" * 100,
"a" * 101,
"supercalifragilisticexpialidocious" * 3,
"é" * 101,
"pneumonoultramicroscopicsilicovolcanoconiosis",
"short " + "x" * 150 + " words after",
# numbers
"3.14159",
"1,000,000",
"2024-01-01",
"12:30pm",
"1st 2nd 3rd 4th",
"½ ¼ ¾",
"x² + y² = z²",
"①②③",
"٣٤٥",
"0x1F600",
"-273.15°C",
"$5.99 €10 £3 ¥100",
# URLs and addresses
"https://example.com/path?q=1&x=2#frag",
"user@example.org",
"www.github.com",
"http://127.0.0.1:8080/index.html",
# math
"∑ ∫ √ ∞ ≈ ≠ ≤ ≥",
"α β γ δ",
"∀x∈ℝ",
"f(x) = 2x + 1",
"±×÷",
"Ⅻ",
"ﬁnance ﬂow",
# special-token-like text
"[CLS] [SEP] [MASK] [PAD] [UNK]",
"##berries",
"[unused0]",
# wordpiece edge cases
"strawberries",
"unbelievable",
"bertology",
"xyzzyq",
"antidisestablishmentarianism",
"ok",
"a",
"#",
"##",
# Mc reordering and musical symbols
"\U0001D15F\U0001D160",
"a\U0001D16D\U0001D165b",
"\U0001D16D\U0001D165",
]


def escape(s):
    """Returns s as a JSON string with control, format, separator and
    unassigned characters (other than the space) written as JSON escapes."""
    out = []
    for ch in json.dumps(s, ensure_ascii=False):
        cp = ord(ch)
        if unicodedata.category(ch)[0] not in "CZ" or ch == " ":
            out.append(ch)
        elif cp > 0xFFFF:
            cp -= 0x10000
            out.append("\\u%04x\\u%04x" % (0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF)))
        else:
            out.append("\\u%04x" % cp)
    line = "".join(out)
    assert json.loads(line) == s, (s, line)
    return line


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: corpus.py OUTPUT.jsonl")
    seen = set()
    for t in texts:
        if t in seen:
            sys.exit(f"duplicate corpus entry {t!r}")
        seen.add(t)
    with open(sys.argv[1], "w", encoding="utf-8") as f:
        for t in texts:
            f.write(escape(t) + "\n")
    print(f"wrote {sys.argv[1]}: {len(texts)} texts")


if __name__ == "__main__":
    main()
