// The strata command line: parses arguments, calls the agent's operations, prints text for people
// or JSON lines for programs, and maps typed errors to exit statuses (docs/CLI.md).
import '../agent/io-threads.js';
import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { EXIT_STATUS, StrataError, toStrataError } from '../agent-core/api/errors.js';
import type { SnapshotSummary } from '../agent-core/api/snapshot.js';
import type { Progress } from '../agent-core/engine/progress.js';
import type { AgentContext } from '../agent/operations.js';
import { defaultStateDir } from '../agent/state-dir.js';
import { formatBytes, formatDuration, ProgressPrinter } from './output.js';
import { backupThroughAgent, trackAdd, trackedLine, trackRemove, trackStatus } from './track.js';

/** The engine and drivers, loaded only by the commands that run them here (not those the agent runs). */
const operations = () => import('../agent/operations.js');

const USAGE = `Strata: block-level backups of disks and images.

  strata init      --repo PATH [--encryption none|aes-256-gcm] [--password-file F] [--full-every N]
  strata inspect   SOURCE [--json]
  strata backup    SOURCE --repo PATH [--tag T]... [--full] [--json]
  strata snapshots --repo PATH [--json]
  strata restore   SNAPSHOT --repo PATH --target PATH [--force] [--no-verify] [--json]
  strata verify    --repo PATH [--read-data] [--json]
  strata forget    SNAPSHOT... --repo PATH [--json]
  strata catalog rebuild --repo PATH
  strata track add DEVICE [--label L]        live change tracking by the running agent
  strata track remove DEVICE
  strata track status [DEVICE] [--json]
  strata console   [--listen HOST:PORT] [--state-dir DIR]   the console in a browser, with its agent
  strata agent     [--listen HOST:PORT] [--state-dir DIR]   the agent as a service, for consoles

Common options: --password-file F (or STRATA_PASSWORD_FILE / STRATA_PASSWORD),
--state-dir DIR (or STRATA_STATE_DIR; holds the catalog). See docs/CLI.md.`;

const COMMON = {
  repo: { type: 'string' },
  json: { type: 'boolean' },
  'password-file': { type: 'string' },
  'state-dir': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Options = Record<string, string | boolean | string[] | undefined>;

function parse(argv: string[], extra: ParseArgsConfig['options'] = {}): { positionals: string[]; values: Options } {
  try {
    const r = parseArgs({ args: argv, options: { ...COMMON, ...extra }, allowPositionals: true, strict: true });
    return { positionals: r.positionals, values: r.values as Options };
  } catch (err) {
    throw new StrataError('InvalidInput', `${(err as Error).message.replace(/\.$/, '')}; run \`strata --help\` for usage.`);
  }
}

function need(values: Options, name: string, what: string): string {
  const v = values[name];
  if (typeof v !== 'string' || v === '') throw new StrataError('InvalidInput', `Missing --${name} ${what}.`);
  return v;
}

function one(positionals: string[], what: string): string {
  if (positionals.length !== 1) throw new StrataError('InvalidInput', `Give exactly one ${what}${positionals.length > 1 ? ` (got ${positionals.length})` : ''}.`);
  return positionals[0]!;
}

function passwordGetter(values: Options): () => string | null {
  return () => {
    const file = (values['password-file'] as string | undefined) ?? process.env.STRATA_PASSWORD_FILE;
    if (file) {
      try {
        return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
      } catch (err) {
        throw toStrataError(err, `Reading the password file ${file}`);
      }
    }
    return process.env.STRATA_PASSWORD ?? null;
  };
}

function context(values: Options, progress: ProgressPrinter | null): AgentContext {
  return {
    stateDir: (values['state-dir'] as string | undefined) ?? process.env.STRATA_STATE_DIR ?? defaultStateDir(),
    password: passwordGetter(values),
    ...(progress ? { onProgress: (p: Progress) => progress.update(p) } : {}),
  };
}

function emit(json: boolean, obj: Record<string, unknown>, text: string): void {
  process.stdout.write(json ? JSON.stringify(obj) + '\n' : text + '\n');
}

function snapshotLine(s: SnapshotSummary): string {
  const tags = s.tags.length ? `  [${s.tags.join(', ')}]` : '';
  return `${s.id.slice(0, 12)}  ${s.createdAt.replace('T', ' ').slice(0, 19)}  ${s.mode.padEnd(11)}  ${formatBytes(s.sourceBytes).padStart(10)}  new ${formatBytes(s.bytesNew).padStart(10)}  parent ${s.parentId ? s.parentId.slice(0, 12) : '-'.padEnd(12)}  ${s.sourceName}${tags}`;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE + '\n');
    return command ? 0 : 2;
  }
  switch (command) {
    case 'init': {
      const { values } = parse(rest, { encryption: { type: 'string' }, 'full-every': { type: 'string' } });
      const repo = need(values, 'repo', 'PATH: where to create the repository');
      const encryption = (values.encryption as string | undefined) ?? 'none';
      if (encryption !== 'none' && encryption !== 'aes-256-gcm') throw new StrataError('InvalidInput', `--encryption must be none or aes-256-gcm, not "${encryption}".`);
      const fullEvery = values['full-every'] === undefined ? undefined : Number(values['full-every']);
      const r = await (await operations()).initRepository(repo, {
        encryption,
        password: encryption === 'none' ? null : passwordGetter(values)(),
        ...(fullEvery !== undefined ? { fullEvery } : {}),
      });
      emit(!!values.json, { type: 'init', ...r }, `created repository ${r.id} at ${r.path} (encryption: ${r.encryption})`);
      return 0;
    }
    case 'inspect': {
      const { positionals, values } = parse(rest);
      const layout = await (await operations()).inspectSource(one(positionals, 'SOURCE (an image file or a block device)'));
      if (values.json) {
        process.stdout.write(JSON.stringify(layout) + '\n');
        return 0;
      }
      const lines = [`${formatBytes(layout.sizeBytes)} (${layout.sizeBytes} bytes), ${layout.logicalSectorSize}-byte sectors, partition table: ${layout.partitionTable}`];
      for (const v of layout.volumes) {
        const pct = v.sizeBytes > 0 ? Math.round((v.usedBytes / v.sizeBytes) * 100) : 0;
        lines.push(
          `  #${v.index}  start ${v.startBytes}  size ${formatBytes(v.sizeBytes)}  type ${v.partitionType ?? '-'}  ${v.filesystem}${v.label ? ` "${v.label}"` : ''}${v.uuid ? ` ${v.uuid}` : ''}  used ${formatBytes(v.usedBytes)} (${pct}%)`,
        );
        for (const lv of v.logicalVolumes ?? []) {
          const lvPct = lv.sizeBytes > 0 ? Math.round((lv.usedBytes / lv.sizeBytes) * 100) : 0;
          lines.push(`      LV ${lv.name}  size ${formatBytes(lv.sizeBytes)}  ${lv.filesystem}${lv.label ? ` "${lv.label}"` : ''}${lv.uuid ? ` ${lv.uuid}` : ''}  used ${formatBytes(lv.usedBytes)} (${lvPct}%)`);
        }
      }
      for (const w of layout.warnings ?? []) lines.push(`  warning: ${w}`);
      process.stdout.write(lines.join('\n') + '\n');
      return 0;
    }
    case 'backup': {
      const { positionals, values } = parse(rest, { tag: { type: 'string', multiple: true }, full: { type: 'boolean' } });
      const source = one(positionals, 'SOURCE (an image file or a block device)');
      const repo = need(values, 'repo', 'PATH of the repository');
      const progress = new ProgressPrinter(!!values.json);
      const ctx = context(values, progress);
      const options = { tags: (values.tag as string[] | undefined) ?? [], full: !!values.full };
      // A device the running agent tracks is backed up there, where its tracker's epoch can be taken.
      const viaAgent = await backupThroughAgent(ctx.stateDir, source, repo, { ...options, onProgress: (p) => progress.update(p) });
      const s = viaAgent ?? (await (await operations()).backup(ctx, source, repo, options));
      progress.done();
      emit(
        !!values.json,
        {
          type: 'summary',
          snapshot: s.id,
          parent: s.parentId,
          mode: s.mode,
          modeReason: s.modeReason,
          tracker: s.tracker,
          sourceBytes: s.sourceBytes,
          validBytes: s.validBytes,
          bytesRead: s.bytesRead,
          bytesNew: s.bytesNew,
          bytesStored: s.bytesStored,
          durationMs: s.durationMs,
          ...(s.converged ? { converged: s.converged } : {}),
        },
        `snapshot ${s.id.slice(0, 12)} (${s.mode}${s.modeReason ? `: ${s.modeReason}` : ''}): read ${formatBytes(s.bytesRead)} of ${formatBytes(s.validBytes)} valid, new ${formatBytes(s.bytesNew)}, stored ${formatBytes(s.bytesStored)} in ${formatDuration(s.durationMs)}\n` +
          `backed up ${viaAgent ? 'through the agent' : 'by this command'}, tracker ${s.tracker}` +
          (s.converged ? `\nmounted: copied point-in-time in ${s.converged.passes} pass(es) after the first read, re-read ${formatBytes(s.converged.rereadBytes)}, frozen ${formatDuration(s.converged.frozenMs)}` : ''),
      );
      return 0;
    }
    case 'snapshots': {
      const { values } = parse(rest);
      const list = await (await operations()).listSnapshots(context(values, null), need(values, 'repo', 'PATH of the repository'));
      if (values.json) process.stdout.write(JSON.stringify(list) + '\n');
      else process.stdout.write(list.length ? list.map(snapshotLine).join('\n') + '\n' : 'no snapshots yet\n');
      return 0;
    }
    case 'restore': {
      const { positionals, values } = parse(rest, { target: { type: 'string' }, force: { type: 'boolean' }, 'no-verify': { type: 'boolean' } });
      const snapshot = one(positionals, 'SNAPSHOT (an id prefix or "latest")');
      const progress = new ProgressPrinter(!!values.json);
      // A target that does not read back as the snapshot throws Corrupt (exit status 4).
      const r = await (await operations()).restore(context(values, progress), snapshot, need(values, 'repo', 'PATH of the repository'), need(values, 'target', 'PATH: the image file or device to write'), {
        force: !!values.force,
        verify: !values['no-verify'],
      });
      progress.done();
      const v = r.verification;
      emit(
        !!values.json,
        { type: 'summary', snapshot: r.snapshot, bytesWritten: r.bytesWritten, durationMs: r.durationMs, verification: v },
        `restored ${r.snapshot.slice(0, 12)} to ${r.target}: wrote ${formatBytes(r.bytesWritten)} in ${formatDuration(r.durationMs)}\n` +
          (v
            ? `verified: read back ${formatBytes(v.bytesRead)}, ${v.blocksChecked} blocks match the snapshot (${formatDuration(v.durationMs)})`
            : 'not verified (--no-verify): each chunk was checked against its id as it was read'),
      );
      return 0;
    }
    case 'verify': {
      const { values } = parse(rest, { 'read-data': { type: 'boolean' } });
      const progress = new ProgressPrinter(!!values.json);
      const r = await (await operations()).verify(context(values, progress), need(values, 'repo', 'PATH of the repository'), { readData: !!values['read-data'] });
      progress.done();
      if (values.json) {
        for (const p of r.problems) process.stdout.write(JSON.stringify({ type: 'problem', ...p }) + '\n');
        for (const w of r.warnings) process.stdout.write(JSON.stringify({ type: 'warning', ...w }) + '\n');
        process.stdout.write(JSON.stringify({ type: 'summary', ok: r.problems.length === 0, snapshots: r.snapshots, packs: r.packs, blobs: r.blobs, bytesRead: r.bytesRead, problems: r.problems.length, warnings: r.warnings.length }) + '\n');
      } else {
        for (const p of r.problems) process.stdout.write(`problem: ${p.object} ${p.problem}\n`);
        for (const w of r.warnings) process.stdout.write(`warning: ${w.object} ${w.problem}\n`);
        process.stdout.write(
          `${r.problems.length === 0 ? 'no problems found' : `${r.problems.length} problem(s) found`}: ${r.snapshots} snapshots, ${r.packs} packs, ${r.blobs} blobs checked${values['read-data'] ? ` (read ${formatBytes(r.bytesRead)})` : ''}\n`,
        );
      }
      return r.problems.length === 0 ? 0 : 1;
    }
    case 'forget': {
      const { positionals, values } = parse(rest);
      if (positionals.length === 0) throw new StrataError('InvalidInput', 'Give at least one SNAPSHOT (an id prefix or "latest") to forget.');
      const forgotten = await (await operations()).forgetSnapshots(context(values, null), need(values, 'repo', 'PATH of the repository'), positionals);
      emit(!!values.json, { type: 'summary', forgotten }, `forgot ${forgotten.length} snapshot(s): ${forgotten.map((id) => id.slice(0, 12)).join(', ')}`);
      return 0;
    }
    case 'catalog': {
      const [sub, ...more] = rest;
      if (sub !== 'rebuild') throw new StrataError('InvalidInput', `Unknown catalog command "${sub ?? ''}"; the one there is: strata catalog rebuild --repo PATH.`);
      const { values } = parse(more);
      const r = await (await operations()).rebuildCatalog(context(values, null), need(values, 'repo', 'PATH of the repository'));
      emit(!!values.json, { type: 'summary', ...r }, `catalog rebuilt: ${r.snapshots} snapshots of repository ${r.repository}`);
      return 0;
    }
    case 'track': {
      const [sub, ...more] = rest;
      const { positionals, values } = parse(more, { label: { type: 'string' } });
      const stateDir = context(values, null).stateDir;
      if (sub === 'add' || sub === 'remove') {
        const device = one(positionals, 'DEVICE (a block device)');
        if (sub === 'remove' && values.label !== undefined) throw new StrataError('InvalidInput', '--label goes with `strata track add`, not remove.');
        const t = sub === 'add' ? await trackAdd(stateDir, device, values.label as string | undefined) : await trackRemove(stateDir, device);
        emit(
          !!values.json,
          { type: 'tracked', ...t },
          sub === 'add' ? `tracking ${t.path}: ${t.tracking}; its backups run in the agent and, after one full read, read only the blocks written since` : `stopped tracking ${t.path}; its backups read every valid block again`,
        );
        return 0;
      }
      if (sub === 'status') {
        if (positionals.length > 1) throw new StrataError('InvalidInput', `Give at most one DEVICE (got ${positionals.length}).`);
        const list = await trackStatus(stateDir, positionals[0]);
        if (values.json) process.stdout.write(JSON.stringify(list) + '\n');
        else process.stdout.write(list.length ? list.map(trackedLine).join('\n') + '\n' : 'no devices are tracked; `strata track add DEVICE` starts tracking one\n');
        return 0;
      }
      throw new StrataError('InvalidInput', `Unknown track command "${sub ?? ''}"; the ones there are: strata track add|remove|status.`);
    }
    case 'console':
    case 'agent': {
      const { positionals, values } = parse(rest, { listen: { type: 'string' } });
      if (positionals.length > 0) throw new StrataError('InvalidInput', `strata ${command} takes no arguments besides its options.`);
      const ctx = context(values, null);
      // Loaded only here: the server, WebSocket and scheduler would slow every other command's start.
      const { DEFAULT_AGENT_PORT, DEFAULT_CONSOLE_PORT, parseListen, serve } = await import('./serve.js');
      await serve({
        stateDir: ctx.stateDir,
        password: ctx.password,
        listen: parseListen(values.listen as string | undefined, command === 'console' ? DEFAULT_CONSOLE_PORT : DEFAULT_AGENT_PORT),
        withConsole: command === 'console',
      });
      return 0;
    }
    default:
      throw new StrataError('InvalidInput', `Unknown command "${command}"; run \`strata --help\` for the list.`);
  }
}

const json = process.argv.includes('--json');
main(process.argv.slice(2)).then(
  (status) => {
    process.exitCode = status;
  },
  (err: unknown) => {
    const e = toStrataError(err);
    if (json) process.stdout.write(JSON.stringify({ type: 'error', ...e.toPayload() }) + '\n');
    process.stderr.write(`\nstrata: ${e.message}\n`);
    if (e.code === 'Internal' || process.env.STRATA_DEBUG) process.stderr.write(`${(e.cause as Error | undefined)?.stack ?? e.stack}\n`);
    process.exitCode = EXIT_STATUS[e.code];
  },
);


