// What the console's windows may load, run and reach: the app's own scheme serving the renderer
// bundle, the Content-Security-Policy, the web preferences, and which pages count as ours.
import path from 'node:path';
import { CONTENT_SECURITY_POLICY, contentTypeOf } from '../agent-core/console-page.js';
import { fileURLToPath } from 'node:url';

/** The renderer is served from strata://console/ (a standard, secure scheme), never from http or the open file system. */
export const APP_SCHEME = 'strata';
export const APP_HOST = 'console';
export const APP_ORIGIN = `${APP_SCHEME}://${APP_HOST}`;
export const RENDERER_ENTRY_URL = `${APP_ORIGIN}/index.html`;

/**
 * The policy renderer/index.html carries as its meta tag (electron/security.test.ts checks that it
 * says exactly this). Scripts and styles come only from the bundle: no inline script, no eval, no
 * remote host.
 */
export { CONTENT_SECURITY_POLICY, META_CONTENT_SECURITY_POLICY } from '../agent-core/console-page.js';

/** Every BrowserWindow of the console gets exactly these, plus its preload. */
export const SECURE_WEB_PREFERENCES = {
  contextIsolation: true,
  sandbox: true,
  nodeIntegration: false,
  nodeIntegrationInWorker: false,
  nodeIntegrationInSubFrames: false,
  webSecurity: true,
  allowRunningInsecureContent: false,
  experimentalFeatures: false,
  webviewTag: false,
  navigateOnDragDrop: false,
  safeDialogs: true,
  spellcheck: false,
} as const;

function parse(url: string): URL | null {
  try {
    return new URL(url);
  } catch {
    return null;
  }
}

function isInside(dir: string, file: string): boolean {
  const rel = path.relative(dir, file);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

/**
 * The file of the renderer bundle a strata://console/ URL names, or null for anything else: other
 * schemes and hosts, encoded separators, and paths that climb out of the bundle.
 */
export function rendererFileFor(url: string, rendererDir: string): string | null {
  const u = parse(url);
  if (!u || u.protocol !== `${APP_SCHEME}:` || u.host !== APP_HOST) return null;
  if (/%2f|%5c|%00/i.test(u.pathname)) return null;
  let pathname: string;
  try {
    pathname = decodeURIComponent(u.pathname);
  } catch {
    return null;
  }
  if (pathname.includes('\0') || pathname.includes('\\')) return null;
  const relative = pathname === '/' || pathname === '' ? 'index.html' : pathname.replace(/^\/+/, '');
  const file = path.resolve(rendererDir, relative);
  return isInside(path.resolve(rendererDir), file) ? file : null;
}

/**
 * Whether a page at this URL may call the agent and receive its events: our scheme and host, or a
 * file:// page inside the renderer bundle (the bundle opened with loadFile during development).
 */
export function isTrustedRendererUrl(url: string, rendererDir: string): boolean {
  const u = parse(url);
  if (!u) return false;
  if (u.protocol === `${APP_SCHEME}:`) return u.host === APP_HOST && rendererFileFor(url, rendererDir) !== null;
  if (u.protocol === 'file:' && u.host === '') {
    try {
      return isInside(path.resolve(rendererDir), path.resolve(fileURLToPath(u)));
    } catch {
      return false;
    }
  }
  return false;
}

/** Requests a console page may make: its own bundle (by our scheme, or as files inside it), inline data and the devtools. No network. */
export function isAllowedRequestUrl(url: string, rendererDir: string): boolean {
  const u = parse(url);
  if (!u) return false;
  if (u.protocol === `${APP_SCHEME}:` || u.protocol === 'file:') return isTrustedRendererUrl(url, rendererDir);
  return u.protocol === 'data:' || u.protocol === 'devtools:';
}

export { contentTypeOf };

/** The headers every page of ours is served with. */
export function pageHeaders(file: string): Record<string, string> {
  return {
    'content-type': contentTypeOf(file),
    'content-security-policy': CONTENT_SECURITY_POLICY,
    'x-content-type-options': 'nosniff',
    'cache-control': 'no-store',
  };
}

/** Response headers with our CSP in place of whatever the response carried (any spelling of the name). */
export function withCsp(headers: Record<string, string[] | string> | undefined): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (name.toLowerCase() === 'content-security-policy') continue;
    out[name] = Array.isArray(value) ? value : [value];
  }
  out['Content-Security-Policy'] = [CONTENT_SECURITY_POLICY];
  return out;
}

/** A URL as a log line shows it: no query or fragment (they may hold data), at most 200 characters. */
export function describeUrl(url: string | null): string {
  if (url === null) return 'a frame that has gone';
  const u = parse(url);
  const shown = u ? `${u.protocol}//${u.host}${u.pathname}` : url;
  return JSON.stringify(shown.slice(0, 200));
}
