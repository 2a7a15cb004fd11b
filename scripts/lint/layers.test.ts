import { ESLint } from 'eslint';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..', '..');

async function lint(relPath: string, code: string): Promise<string[]> {
  const eslint = new ESLint({ cwd: root });
  const [result] = await eslint.lintText(code, { filePath: path.join(root, relPath) });
  return (result?.messages ?? []).filter((m) => m.ruleId === 'strata/layers').map((m) => m.message);
}

describe('layer boundaries', () => {
  it('refuses an import from drivers inside agent-core', async () => {
    const messages = await lint('agent-core/bad-example.ts', "import { x } from '../drivers/disk/x.js';\nexport const y = x;\n");
    expect(messages).toHaveLength(1);
    expect(messages[0]).toContain('agent-core may not import drivers');
  });

  it('refuses anything but zod in agent-core/api', async () => {
    const messages = await lint('agent-core/api/bad-example.ts', "import fs from 'node:fs';\nexport const y = fs;\n");
    expect(messages[0]).toContain('agent-core/api may not import Node built-ins');
  });

  it('refuses Node built-ins and the engine in the renderer', async () => {
    const messages = await lint(
      'renderer/bad-example.ts',
      "import fs from 'node:fs';\nimport { a } from '../agent-core/extents.js';\nexport const y = [fs, a];\n",
    );
    expect(messages).toHaveLength(2);
  });

  it('lets drivers import the engine and the addon', async () => {
    const messages = await lint(
      'drivers/good-example.ts',
      "import { a } from '../agent-core/extents.js';\nimport { b } from '../native/index.js';\nexport const y = [a, b];\n",
    );
    expect(messages).toEqual([]);
  });
});

describe('test support', () => {
  it('may be imported by tests only', async () => {
    const code = "import { run } from '../test-support/disk.js';\nexport const y = run;\n";
    expect(await lint('agent/helper.ts', code)).toHaveLength(1);
    expect(await lint('agent/helper.test.ts', code)).toEqual([]);
  });
});
