// Builds the console's renderer: one bundle that Electron loads from disk (file://) and the headless
// console serves over HTTP, so paths are relative and nothing is fetched from elsewhere.
import tailwindcss from '@tailwindcss/vite';
import path from 'node:path';
import { defineConfig } from 'vite';

const root = import.meta.dirname;

export default defineConfig({
  root,
  base: './',
  plugins: [tailwindcss()],
  oxc: { jsx: { runtime: 'automatic' } },
  build: {
    outDir: path.join(root, '..', 'dist', 'renderer'),
    emptyOutDir: true,
    sourcemap: true,
    chunkSizeWarningLimit: 1500,
    rollupOptions: { input: { index: path.join(root, 'index.html') } },
  },
  logLevel: 'warn',
});
