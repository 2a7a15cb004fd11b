// Compressible content that looks like what people keep on disks: prose, service logs and CSV
// exports. Real text compresses 3-5x; uniform random letters would not, so we build from words.

const WORDS = `the of and to in is that for it as with was on be by this are from at or an have not which
but all were can when there been one more will their has would other about into some out up time
only its new also than these two may first then any like over such our most after could very made
before through where much should well between each system data file disk block backup restore
volume snapshot change record report network server client request service process memory storage
value table index user account policy schedule window task queue error warning note update version
release build test check result number group order market price cost budget plan project team
meeting week month year morning evening people place city river road house garden window light
water paper letter story book chapter page line word idea reason question answer problem method
simple quick small large early late open close strong quiet bright careful clear short long green`
  .split(/\s+/)
  .filter(Boolean);

const LEVELS = ['INFO', 'INFO', 'INFO', 'INFO', 'DEBUG', 'DEBUG', 'WARN', 'ERROR'];
const ROUTES = ['/api/v1/items', '/api/v1/users', '/api/v1/orders', '/health', '/login', '/static/app.js', '/api/v1/search'];
const CITIES = ['Lyon', 'Porto', 'Leeds', 'Gdansk', 'Tampere', 'Graz', 'Utrecht', 'Bilbao', 'Turku', 'Brno'];
const CATEGORIES = ['hardware', 'software', 'services', 'travel', 'office', 'training', 'hosting'];

/** Builds a string of about `sizeBytes` by repeating `line()`; cut exactly so budgets add up. */
function fill(sizeBytes, line) {
  const parts = [];
  let length = 0;
  while (length < sizeBytes) {
    const s = line();
    parts.push(s);
    length += s.length;
  }
  return Buffer.from(parts.join('').slice(0, sizeBytes), 'latin1');
}

function sentence(rng) {
  const count = rng.int(6, 22);
  const words = [];
  for (let i = 0; i < count; i++) words.push(rng.pick(WORDS));
  words[0] = words[0][0].toUpperCase() + words[0].slice(1);
  if (count > 10) words[rng.int(3, count - 4)] += ',';
  return words.join(' ') + (rng.next() < 0.9 ? '. ' : '? ');
}

export function prose(rng, sizeBytes) {
  let sentencesLeft = 0;
  return fill(sizeBytes, () => {
    if (sentencesLeft-- <= 0) {
      sentencesLeft = rng.int(3, 9);
      return '\n\n' + sentence(rng);
    }
    return sentence(rng);
  });
}

/** Log lines with a clock that moves forward, so appends later in the run look like more of the same. */
export function logLines(rng, sizeBytes, startMs) {
  let clockMs = startMs;
  return fill(sizeBytes, () => {
    clockMs += rng.int(1, 4000);
    const level = rng.pick(LEVELS);
    const id = rng.int(0, 0xffffffff).toString(16).padStart(8, '0');
    const route = `${rng.pick(ROUTES)}/${rng.int(1, 99999)}`;
    const status = level === 'ERROR' ? 500 : rng.next() < 0.95 ? 200 : 404;
    const tail = level === 'WARN' || level === 'ERROR' ? ` msg="${sentence(rng).trim()}"` : '';
    return `${new Date(clockMs).toISOString()} ${level.padEnd(5)} [worker-${rng.int(1, 8)}] req=${id} ${route} status=${status} durationMs=${rng.int(1, 900)}${tail}\n`;
  });
}

export function csvRows(rng, sizeBytes, firstId) {
  let id = firstId;
  return fill(sizeBytes, () => {
    id++;
    const day = new Date(Date.UTC(2023, 0, 1) + rng.int(0, 730) * 86_400_000).toISOString().slice(0, 10);
    const amount = (rng.int(100, 9_999_999) / 100).toFixed(2);
    return `${id},${day},${rng.pick(CITIES)},${rng.pick(CATEGORIES)},${amount},${rng.pick(WORDS)} ${rng.pick(WORDS)}\n`;
  });
}

export const CSV_HEADER = 'id,date,city,category,amountEur,memo\n';
