// The import-boundary rule: a file may import only from the layers its folder allows
// (docs/ARCHITECTURE.md, "Layers"). Lint fails on a wrong import, so the tests fail too.
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..', '..');

/** Layer of a path relative to the project root, most specific first. */
export function layerOf(relPath) {
  const p = relPath.split(path.sep).join('/');
  if (p.startsWith('agent-core/api/')) return 'agent-core/api';
  const top = p.split('/')[0];
  return ['agent-core', 'native', 'drivers', 'agent', 'cli', 'electron', 'renderer', 'e2e'].includes(top) ? top : null;
}

// Which of our layers each layer may import, and which packages it must not.
export const LAYERS = {
  'agent-core/api': { ours: ['agent-core/api'], packagesOnly: ['zod'] },
  'agent-core': { ours: ['agent-core/api', 'agent-core'], bannedPackages: ['electron', 'react', 'react-dom', 'zustand'] },
  native: { ours: ['native'], bannedPackages: ['electron', 'react', 'react-dom', 'zustand'] },
  drivers: { ours: ['agent-core/api', 'agent-core', 'native', 'drivers'], bannedPackages: ['electron', 'react', 'react-dom', 'zustand'] },
  agent: { ours: ['agent-core/api', 'agent-core', 'native', 'drivers', 'agent'], bannedPackages: ['electron', 'react', 'react-dom', 'zustand'] },
  cli: { ours: ['agent-core/api', 'agent-core', 'native', 'drivers', 'agent', 'cli'], bannedPackages: ['electron', 'react', 'react-dom', 'zustand'] },
  electron: { ours: ['agent-core/api', 'agent-core', 'native', 'drivers', 'agent', 'electron'], bannedPackages: ['react', 'react-dom', 'zustand'] },
  renderer: { ours: ['agent-core/api', 'renderer'], bannedPackages: ['electron'], noNodeBuiltins: true },
  e2e: { ours: ['agent-core/api', 'e2e'], bannedPackages: [] },
};

function packageName(spec) {
  if (spec.startsWith('node:')) return spec;
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

const rule = {
  meta: {
    type: 'problem',
    docs: { description: 'enforce the layer table of docs/ARCHITECTURE.md' },
    schema: [],
    messages: {
      layer: "{{from}} may not import {{to}} ('{{spec}}'); see the layer table in docs/ARCHITECTURE.md.",
    },
  },
  create(context) {
    const file = path.resolve(context.filename);
    const rel = path.relative(ROOT, file);
    const from = layerOf(rel);
    if (!from) return {};
    const allowed = LAYERS[from];
    function check(node, spec) {
      if (typeof spec !== 'string') return;
      let to;
      if (spec.startsWith('.')) {
        const target = path.relative(ROOT, path.resolve(path.dirname(file), spec));
        if (target.startsWith('test-support') && !/\.test\.tsx?$/.test(file)) {
          context.report({ node, messageId: 'layer', data: { from, to: 'test-support (only tests may)', spec } });
          return;
        }
        to = layerOf(target + (target.endsWith('/') ? '' : '/x')) ?? layerOf(target);
        if (!to) {
          if (target.startsWith('..')) context.report({ node, messageId: 'layer', data: { from, to: 'a path outside the project', spec } });
          return;
        }
        if (!allowed.ours.includes(to)) context.report({ node, messageId: 'layer', data: { from, to, spec } });
        return;
      }
      const pkg = packageName(spec);
      const builtin = pkg.startsWith('node:');
      if (allowed.packagesOnly && !allowed.packagesOnly.includes(pkg)) {
        context.report({ node, messageId: 'layer', data: { from, to: builtin ? 'Node built-ins' : `package ${pkg}`, spec } });
      } else if (allowed.noNodeBuiltins && builtin) {
        context.report({ node, messageId: 'layer', data: { from, to: 'Node built-ins', spec } });
      } else if (allowed.bannedPackages?.includes(pkg)) {
        context.report({ node, messageId: 'layer', data: { from, to: `package ${pkg}`, spec } });
      }
    }
    return {
      ImportDeclaration: (node) => check(node, node.source.value),
      ExportNamedDeclaration: (node) => node.source && check(node, node.source.value),
      ExportAllDeclaration: (node) => check(node, node.source.value),
      ImportExpression: (node) => node.source.type === 'Literal' && check(node, node.source.value),
    };
  },
};

export default { rules: { layers: rule } };
