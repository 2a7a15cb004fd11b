// Types of report.mjs for the tests that import it (the bench itself is plain JavaScript).
export interface BenchRow {
  tool: string;
  phase: string;
  wallMs?: number;
  storedBytes?: number;
  readBytes?: number;
  [field: string]: unknown;
}
export interface Pair {
  numMs: number;
  denMs: number;
}
export interface Ratio {
  label: string;
  ratio: number | undefined;
  target: number | undefined;
  met: boolean | undefined;
}
export function computeRatios(rows: BenchRow[], change?: Record<string, number>, pairs?: { full?: Pair[]; incremental?: Pair[] }): Ratio[];
export function renderText(report: unknown): string;
export function renderMarkdown(report: unknown): string;
