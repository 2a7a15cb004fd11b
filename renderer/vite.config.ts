// Builds the console's renderer: one bundle that Electron loads from disk and the headless console
// serves over HTTP, so paths are relative and nothing is fetched from elsewhere. (No node:path here:
// the layer rule keeps Node built-ins out of renderer/, config files included.)
import tailwindcss from '@tailwindcss/vite';
import { defineConfig } from 'vite';

const root = import.meta.dirname;

export default defineConfig({
  root,
  base: './',
  plugins: [tailwindcss()],
  oxc: { jsx: { runtime: 'automatic' } },
  build: {
    outDir: `${root}/../dist/renderer`,
    emptyOutDir: true,
    sourcemap: true,
    chunkSizeWarningLimit: 1500,
    rollupOptions: { input: { index: `${root}/index.html` } },
  },
  logLevel: 'warn',
});
