import { appendFileSync } from 'node:fs';
let t0 = 0;
export function ph(name: string): void {
  const now = performance.now();
  if (name === 'START') t0 = now;
  appendFileSync('/tmp/phases.log', `${name} ${(now - t0).toFixed(1)}\n`);
}
