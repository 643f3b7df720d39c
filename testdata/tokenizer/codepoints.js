// Writes codepoints.json: how Hugging Face tokenizers (the npm package
// pinned in package.json) normalizes and pre-tokenizes every Unicode scalar
// value, for the exhaustive comparison in core/tokenizer_test.go.
//
// For each code point c, the text "a" + c + "b" goes through BertNormalizer
// and BertPreTokenizer and gives one line. The line is c in hex, a tab, and
// the words joined by "|", each word as its code points in hex joined by
// spaces. The lines are grouped in blocks of blockSize code points
// (surrogates skipped), and the file stores each block's SHA-256 to stay
// small.
//
// skew.txt lists code points (hex, one a line, "#" comments) where core
// knowingly differs because the Unicode tables differ. Their lines are
// replaced by "<hex>\tskew" before hashing, and the file stores the
// tokenizers line for each, so the Go test can check that they still differ.
//
// Usage, from this folder: npm ci --ignore-scripts && node codepoints.js
// With --dump FILE it also writes every line, skew included, to FILE, to
// diff with the lines that the Go test writes when M3AE_TOKENIZER_DUMP is
// set.
"use strict";

const crypto = require("crypto");
const fs = require("fs");
const path = require("path");
const tk = require("tokenizers");

const blockSize = 4096;
const folder = __dirname;

function readSkew(file) {
  const skew = new Set();
  for (const raw of fs.readFileSync(file, "utf8").split("\n")) {
    const line = raw.replace(/#.*/, "").trim();
    if (line === "") continue;
    const cp = parseInt(line, 16);
    if (!(cp >= 0 && cp <= 0x10ffff) || cp.toString(16) !== line.toLowerCase()) {
      throw new Error(`${file}: ${JSON.stringify(raw)} is not a code point in lower-case hex`);
    }
    skew.add(cp);
  }
  return skew;
}

function hexWord(word) {
  return Array.from(word, (c) => c.codePointAt(0).toString(16)).join(" ");
}

function main() {
  const normalizer = tk.bertNormalizer({
    cleanText: true,
    handleChineseChars: true,
    stripAccents: true,
    lowercase: true,
  });
  const preTokenizer = tk.bertPreTokenizer();
  const skew = readSkew(path.join(folder, "skew.txt"));
  const dumpAt = process.argv.indexOf("--dump");
  const dump = dumpAt >= 0 ? fs.openSync(process.argv[dumpAt + 1], "w") : null;

  const blocks = [];
  const skewLines = {};
  let block = [];
  const flush = () => {
    blocks.push(crypto.createHash("sha256").update(block.join("")).digest("hex"));
    block = [];
  };
  for (let cp = 0; cp <= 0x10ffff; cp++) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    const normalized = normalizer.normalizeString("a" + String.fromCodePoint(cp) + "b");
    const words = preTokenizer.preTokenizeString(normalized).map(([word]) => hexWord(word));
    const line = cp.toString(16) + "\t" + words.join("|") + "\n";
    if (dump !== null) fs.writeSync(dump, line);
    if (skew.has(cp)) {
      skewLines[cp.toString(16)] = line.trimEnd();
      block.push(cp.toString(16) + "\tskew\n");
    } else {
      block.push(line);
    }
    if (block.length === blockSize) flush();
  }
  if (block.length > 0) flush();
  if (dump !== null) fs.closeSync(dump);

  const out = {
    tokenizers: require("tokenizers/package.json").version,
    context: ["a", "b"],
    blockSize,
    blocks,
    skew: skewLines,
  };
  fs.writeFileSync(path.join(folder, "codepoints.json"), JSON.stringify(out, null, 1) + "\n");
  console.log(`wrote codepoints.json: ${blocks.length} blocks, ${skew.size} skew code points`);
}

main();
