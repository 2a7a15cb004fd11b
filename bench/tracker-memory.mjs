// Memory of the live tracker's change map on a simulated device: replays generated write patterns
// and prints bytes held per 100 GiB against a plain bitmap and R1Soft's tree (seed 003).
// usage: node bench/tracker-memory.mjs [--size-gib N]   (default 100; loads the TypeScript via tsx)
import { parseArgs } from 'node:util';
import { tsImport } from 'tsx/esm/api';

const { values } = parseArgs({ options: { 'size-gib': { type: 'string', default: '100' } } });
const sizeGiB = Number(values['size-gib']);
if (!Number.isInteger(sizeGiB) || sizeGiB < 1) {
  console.error(`tracker-memory: --size-gib must be a positive integer, not ${values['size-gib']}`);
  process.exit(2);
}

const load = (path) => tsImport(path, import.meta.url);
const { RegionChangeMap } = await load('../agent-core/tracker/region-change-map.ts');
const { plainBitmapBytes } = await load('../agent-core/tracker/change-map.ts');
const { typicalDayWrites, everyOtherBlockWrites, randomBlockWrites } = await load('../agent-core/tracker/synthetic-writes.ts');

const GiB = 1024 ** 3;
const sizeBytes = sizeGiB * GiB;
const per100GiB = (bytes) => (bytes * 100) / sizeGiB;
const kib = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;
const R1SOFT_LOW = 200 * 1000;
const R1SOFT_HIGH = 300 * 1000;

const patterns = [
  ['typical day (logs, hot database pages, file rewrites)', () => typicalDayWrites(sizeBytes)],
  ['random 4 KiB writes over 0.1 % of blocks', () => randomBlockWrites(sizeBytes, 0.001)],
  ['random 4 KiB writes over 1 % of blocks', () => randomBlockWrites(sizeBytes, 0.01)],
  ['every other block (adversarial)', () => everyOtherBlockWrites(sizeBytes)],
];

const bitmap = plainBitmapBytes(sizeBytes);
// One untimed replay first, so the marks/s column measures compiled code rather than V8 warming up.
{
  const warm = new RegionChangeMap(sizeBytes);
  for (const w of typicalDayWrites(sizeBytes, 1)) warm.mark(w.offsetBytes, w.lengthBytes);
}
const rows = [];
for (const [name, writes] of patterns) {
  const map = new RegionChangeMap(sizeBytes);
  const source = writes(); // the typical day is built up front; the other patterns are generated lazily
  const started = performance.now();
  let count = 0;
  let peak = 0;
  for (const w of source) {
    map.mark(w.offsetBytes, w.lengthBytes);
    if ((++count & 1023) === 0) peak = Math.max(peak, map.memoryBytes());
  }
  const ms = performance.now() - started;
  peak = Math.max(peak, map.memoryBytes());
  let runs = 0;
  for (const _ of map.runs()) runs++;
  const shape = map.shape();
  const held = per100GiB(map.memoryBytes());
  rows.push([
    name,
    count.toLocaleString('en'),
    `${(map.markedBytes / GiB).toFixed(2)} GiB`,
    runs.toLocaleString('en'),
    shape.flat ? 'plain bitmap' : `${shape.listRuns.toLocaleString('en')} runs + ${shape.bitmapRegions} bitmap regions`,
    `${Math.round(held).toLocaleString('en')} (${kib(held)})`,
    kib(per100GiB(peak)),
    `${((100 * map.memoryBytes()) / bitmap).toFixed(2)} %`,
    `${(held / R1SOFT_HIGH).toFixed(2)}–${(held / R1SOFT_LOW).toFixed(2)}×`,
    `${((count / ms) * 1000 / 1e6).toFixed(2)} M/s`,
  ]);
}

console.log(`Change map memory, ${sizeGiB} GiB device at 4 KiB blocks, Node ${process.versions.node}; plain bitmap ${bitmap.toLocaleString('en')} bytes per ${sizeGiB} GiB.\n`);
const header = ['pattern', 'writes', 'changed', 'runs', 'held as', 'bytes per 100 GiB', 'peak per 100 GiB', 'of plain bitmap', 'of R1Soft 200–300 KB', 'marks'];
console.log(`| ${header.join(' | ')} |`);
console.log(`|${header.map(() => '---').join('|')}|`);
for (const row of rows) console.log(`| ${row.join(' | ')} |`);
