// Writes golden.jsonl: for each line of corpus.jsonl, the WordPiece ids and
// tokens that Hugging Face tokenizers (the npm package pinned in
// package.json, Rust code behind a prebuilt Node binding) gives with the
// bert-base-uncased pipeline and core/bertvocab/vocab.txt. No special
// tokens, no padding, no truncation.
//
// It also writes golden_random.jsonl in the same format for randomText's
// seeded random strings, which mix the character groups below so that
// marks, punctuation, CJK and long words meet in unplanned orders.
//
// Usage, from this folder: npm ci --ignore-scripts && node golden.js
"use strict";

const fs = require("fs");
const path = require("path");
const tk = require("tokenizers");

const folder = __dirname;
const vocabPath = path.join(folder, "..", "..", "core", "bertvocab", "vocab.txt");
const corpusPath = path.join(folder, "corpus.jsonl");
const goldenPath = path.join(folder, "golden.jsonl");

function loadVocab(file) {
  const lines = fs.readFileSync(file, "utf8").split("\n");
  if (lines.pop() !== "") throw new Error(`${file} does not end in a newline`);
  const vocab = {};
  lines.forEach((token, id) => {
    if (token in vocab) throw new Error(`${file}: token ${JSON.stringify(token)} appears twice`);
    vocab[token] = id;
  });
  return vocab;
}

function bertTokenizer(vocab) {
  const model = tk.WordPiece.init(vocab, {
    unkToken: "[UNK]",
    continuingSubwordPrefix: "##",
    maxInputCharsPerWord: 100,
  });
  const tokenizer = new tk.Tokenizer(model);
  tokenizer.setNormalizer(tk.bertNormalizer({
    cleanText: true,
    handleChineseChars: true,
    stripAccents: true,
    lowercase: true,
  }));
  tokenizer.setPreTokenizer(tk.bertPreTokenizer());
  return tokenizer;
}

// Character groups for randomText. Every character here is outside
// skew.txt, so core and tokenizers agree on each one alone.
const randomGroups = [
  "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
  "abcdefghijklmnopqrstuvwxyz",
  "0123456789",
  " \t\n\r    ",
  "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
  "éèêëÉÈáàâäÁÀçÇñÑöÖüÜßøØåÅæÆłŁśźżąęőűșțİıĞğ",
  "\u0300\u0301\u0302\u0303\u0308\u0327\u034f\u0323",
  "ΑΒΓΔΣΩαβγδσςωάέήίόύώΐΰ",
  "АБВГДабвгдЁёЙй",
  "中文字東京日本語漢字",
  "ひらがなカタカナー",
  "한국어안녕하세요ㅎㅏ",
  "😀👍🏽👩\u200d💻❤\ufe0f✨🇬🇧",
  "\u0000\u0001\u007f\u0085\u200b\u200d\ufeff\ufffd\ue000\u00ad",
  "\u00a0\u3000\u2003\u2028",
  "—–…«»„“”‘’‹›¡¿·•§¶†‡",
  "∑∫√∞≈≠≤≥±×÷²³½",
  "\u{1D16D}\u{1D165}\u{1D15F}\u{1D160}",
  "\u{F900}\u{FA0E}\u{2F800}\u{20000}\u{2B920}",
].map((group) => Array.from(group));

const numRandomTexts = 500;

// randomText returns the i-th random string: up to 40 characters drawn
// from randomGroups by a linear congruential generator seeded with i, and
// in one text of 25 a run of 95 to 104 letters around WordPiece's
// 100-character limit.
function randomText(i) {
  let state = (i + 1) * 2654435761 % 2147483648;
  const next = (n) => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return Math.floor(state / 65536) % n;
  };
  const length = next(41);
  let text = "";
  for (let j = 0; j < length; j++) {
    const group = randomGroups[next(randomGroups.length)];
    text += group[next(group.length)];
  }
  if (next(25) === 0) text += "ab".repeat(48 + next(5)).slice(next(2));
  return text;
}

async function writeGolden(tokenizer, texts, file) {
  const out = [];
  for (const text of texts) {
    if (typeof text !== "string") throw new Error(`corpus line ${JSON.stringify(text)} is not a JSON string`);
    const encoding = await tokenizer.encode(text, null, { addSpecialTokens: false });
    out.push(JSON.stringify({ text, ids: encoding.getIds(), tokens: encoding.getTokens() }));
  }
  fs.writeFileSync(file, out.join("\n") + "\n");
  console.log(`wrote ${file}: ${out.length} texts, tokenizers ${require("tokenizers/package.json").version}`);
}

async function main() {
  const tokenizer = bertTokenizer(loadVocab(vocabPath));
  const corpus = fs.readFileSync(corpusPath, "utf8").split("\n").filter((line) => line !== "").map((line) => JSON.parse(line));
  await writeGolden(tokenizer, corpus, goldenPath);
  const random = Array.from({ length: numRandomTexts }, (_, i) => randomText(i));
  await writeGolden(tokenizer, random, path.join(folder, "golden_random.jsonl"));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
