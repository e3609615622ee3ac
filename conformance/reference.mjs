// Runs one pixelmatch build on raw RGBA images, for conformance/generate.py.
//
//   node reference.mjs PIXELMATCH_MODULE JOBS.json
//
// PIXELMATCH_MODULE is the path of a pixelmatch ES module (its default export is pixelmatch).
// JOBS.json is a list of {"before", "after", "width", "height", "options", "states"}: `before` and
// `after` are files of width * height * 4 bytes (RGBA, row by row), `options` pixelmatch's own.
// For each job, writes to `states` one byte per pixel, 0 not counted, 1 counted as changed, 2 over
// the threshold but excluded as anti-aliasing (read from pixelmatch's diff output, drawn in two
// colours no grey background pixel can have), and prints one JSON line: {"returned": the value
// pixelmatch returned}.
import fs from "node:fs";
import { pathToFileURL } from "node:url";

const pixelmatch = (await import(pathToFileURL(process.argv[2]).href)).default;
const jobs = JSON.parse(fs.readFileSync(process.argv[3], "utf8"));
const CHANGED = [255, 0, 0];
const ANTIALIASED = [0, 0, 255];

// A copy in its own buffer: pixelmatch views the bytes as 32-bit words from offset 0.
const read = (file) => new Uint8Array(fs.readFileSync(file));
const is = (output, pos, [r, g, b]) => output[pos] === r && output[pos + 1] === g && output[pos + 2] === b;

for (const job of jobs) {
  const pixels = job.width * job.height;
  const output = new Uint8Array(pixels * 4);
  const returned = pixelmatch(read(job.before), read(job.after), output, job.width, job.height,
    { ...job.options, diffColor: CHANGED, aaColor: ANTIALIASED });
  const states = new Uint8Array(pixels);
  for (let i = 0, pos = 0; i < pixels; i++, pos += 4) {
    states[i] = is(output, pos, CHANGED) ? 1 : is(output, pos, ANTIALIASED) ? 2 : 0;
  }
  fs.writeFileSync(job.states, states);
  process.stdout.write(JSON.stringify({ returned }) + "\n");
}
