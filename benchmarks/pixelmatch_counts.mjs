// Reference counts for benchmarks/bench_real.py: pixelmatch 7.2.0 (pngjs decoding) per pair.
//
//   node pixelmatch_counts.mjs PAIRS.json
//
// PAIRS.json is a list of {"name", "base", "head"} with absolute PNG paths. Prints one JSON line
// per pair: {"name", "count", "ms"} (count null when the sizes differ, which pixelmatch refuses),
// with threshold 0.1 and anti-aliased pixels not counted (pixelmatch's defaults).
// Run from benchmarks/.cache/node, where its node_modules are.
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(process.cwd(), "package.json"));
const { PNG } = require("pngjs");
const pixelmatch = (await import(require.resolve("pixelmatch"))).default;

const pairs = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
for (const pair of pairs) {
  const start = process.hrtime.bigint();
  const a = PNG.sync.read(fs.readFileSync(pair.base));
  const b = PNG.sync.read(fs.readFileSync(pair.head));
  let count = null;
  if (a.width === b.width && a.height === b.height) {
    count = pixelmatch(a.data, b.data, null, a.width, a.height, { threshold: 0.1 });
  }
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  process.stdout.write(JSON.stringify({ name: pair.name, count, ms }) + "\n");
}
