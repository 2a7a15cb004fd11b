// Command-line options of `npm run bench`.
import { parseArgs } from 'node:util';
import { TOOLS } from './rows.mjs';

const USAGE = `usage: npm run bench -- [--size-mib N] [--only TOOL[,TOOL]] [--pairs N] [--rebuild] [--strata PATH]
  --size-mib N    image size in MiB (default 1024; 128 makes a quick smoke run)
  --only TOOLS    measure only these of: ${Object.keys(TOOLS).join(', ')} (repeatable or comma-separated);
                  tracked is Strata's tracked incremental through an agent (a loop device, run last), not part of strata;
                  it times an API client's backup and a CLI's (tracked-cli is that second row, selected with tracked)
  --pairs N       times Strata's full and partclone | zstd's, and Strata's incremental and restic's, N times
                  each, alternating (default 3); those two wall-time ratios are the medians of the pairs' ratios
  --rebuild       build the image again even if a cached one matches
  --strata PATH   the Strata launcher to measure (default bin/strata of this checkout)`;

export function parseOptions(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      'size-mib': { type: 'string', default: '1024' },
      only: { type: 'string', multiple: true },
      pairs: { type: 'string', default: '3' },
      rebuild: { type: 'boolean', default: false },
      strata: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const sizeMiB = Number(values['size-mib']);
  // Below 64 MiB the content mix degenerates to a handful of files and says nothing.
  if (!Number.isInteger(sizeMiB) || sizeMiB < 64) fail(`--size-mib must be an integer of at least 64, not ${values['size-mib']}`);
  const only = new Set((values.only ?? Object.keys(TOOLS)).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean));
  for (const tool of only) if (!(tool in TOOLS)) fail(`--only: unknown tool "${tool}"`);
  const pairs = Number(values.pairs);
  if (!Number.isInteger(pairs) || pairs < 1) fail(`--pairs must be a whole number of at least 1, not ${values.pairs}`);
  return { sizeMiB, only, pairs, rebuild: values.rebuild, strataBin: values.strata };
}

function fail(message) {
  console.error(`bench: ${message}\n${USAGE}`);
  process.exit(2);
}
