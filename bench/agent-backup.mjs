// One backup as the product runs it: a client already connected to a running agent (the console,
// the tray, a scheduler) asks for it over the agent's HTTP API and learns its end by long poll.
// The bench is synchronous, so this runs as a child: it starts, connects and warms its connection
// untimed, settles the page cache, then times `jobs:start-backup` → `jobs:wait` until the job has
// ended → `sync -f REPO`, and prints one JSON line. Usage (all required):
//   node bench/agent-backup.mjs STATE_DIR DEVICE REPO AGENT_PID COLD(0|1) WARM_PATH...
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { settleCache } from './shell.mjs';

const [stateDir, device, repo, agentPid, cold, ...warmPaths] = process.argv.slice(2);
if (!stateDir || !device || !repo || !agentPid || !cold) {
  console.error('usage: node bench/agent-backup.mjs STATE_DIR DEVICE REPO AGENT_PID COLD(0|1) WARM_PATH...');
  process.exit(2);
}

const url = new URL(readFileSync(path.join(stateDir, 'agent.url'), 'utf8').trim());
const token = readFileSync(path.join(stateDir, 'agent.token'), 'utf8').trim();
// One kept-alive connection, opened by the untimed hello: the client is connected before the clock starts.
const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 1 });

function call(channel, input) {
  const body = JSON.stringify(input);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        agent: keepAlive,
        host: url.hostname,
        port: url.port,
        method: 'POST',
        path: `/api/call/${channel}`,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          try {
            const reply = JSON.parse(Buffer.concat(chunks).toString('utf8'));
            if (!reply.ok) reject(new Error(`${channel}: ${reply.error.code}: ${reply.error.message}`));
            else resolve(reply.value);
          } catch (error) {
            reject(new Error(`${channel}: HTTP ${res.statusCode}, ${error.message}`));
          }
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Bytes a process caused to be read from disk so far (/proc/PID/io), or undefined where unreadable. */
function readBytes(pid) {
  try {
    return Number(/^read_bytes:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1]);
  } catch {
    return undefined;
  }
}

await call('agent:hello', {});
settleCache(cold === '1', warmPaths);
const readBefore = readBytes(agentPid);

const startMs = performance.now();
const { jobId } = await call('jobs:start-backup', { source: device, repo });
let job = await call('jobs:wait', { jobId });
while (job.finishedAt === null) job = await call('jobs:wait', { jobId });
const finishedMs = performance.now();
const sync = spawnSync('sync', ['-f', repo]);
const wallMs = performance.now() - startMs;

const agentReadBytes = readBefore === undefined ? undefined : readBytes(agentPid) - readBefore;
// The agent's lifetime peak (VmHWM): it never exits between jobs, so there is no per-job peak to read.
const hwm = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${agentPid}/status`, 'utf8'))?.[1];
keepAlive.destroy();
console.log(
  JSON.stringify({
    wallMs,
    untilFinishedMs: finishedMs - startMs,
    syncOk: sync.status === 0,
    agentReadBytes,
    agentPeakRssBytes: hwm === undefined ? undefined : Number(hwm) * 1024,
    job,
  }),
);
