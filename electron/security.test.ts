// What the console's windows may load and who may call the agent: pure decisions, tested here; the
// Electron calls that apply them are in main.ts.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  CONTENT_SECURITY_POLICY,
  contentTypeOf,
  META_CONTENT_SECURITY_POLICY,
  describeUrl,
  isAllowedRequestUrl,
  isTrustedRendererUrl,
  pageHeaders,
  rendererFileFor,
  RENDERER_ENTRY_URL,
  SECURE_WEB_PREFERENCES,
  withCsp,
} from './security.js';

const DIR = '/opt/strata/dist/renderer';

describe('the renderer scheme', () => {
  it('maps strata://console/ URLs to files of the bundle', () => {
    expect(RENDERER_ENTRY_URL).toBe('strata://console/index.html');
    expect(rendererFileFor('strata://console/index.html', DIR)).toBe(`${DIR}/index.html`);
    expect(rendererFileFor('strata://console/', DIR)).toBe(`${DIR}/index.html`);
    expect(rendererFileFor('strata://console/assets/index-abc.js?v=1#x', DIR)).toBe(`${DIR}/assets/index-abc.js`);
    expect(rendererFileFor('strata://console/assets/a%20b.css', DIR)).toBe(`${DIR}/assets/a b.css`);
  });

  it('serves nothing outside the bundle or from another host or scheme', () => {
    for (const url of [
      'strata://other/index.html',
      'https://console/index.html',
      'file:///etc/passwd',
      'strata://console/..%2f..%2fetc/passwd',
      'strata://console/%2e%2e/%2e%2e/etc/passwd',
      'strata://console/a%00b',
      'strata://console/a%5c..%5cb',
      'strata://console/%E0%A4%A',
      'not a url',
    ]) {
      const file = rendererFileFor(url, DIR);
      expect(file === null || file.startsWith(`${DIR}/`), url).toBe(true);
      if (/%2f|%00|%5c/.test(url)) expect(file, url).toBeNull();
    }
    expect(rendererFileFor('strata://other/index.html', DIR)).toBeNull();
    expect(rendererFileFor('https://console/index.html', DIR)).toBeNull();
  });

  it('trusts only pages of the bundle, by our scheme or as files inside it', () => {
    expect(isTrustedRendererUrl('strata://console/index.html', DIR)).toBe(true);
    expect(isTrustedRendererUrl('strata://console/index.html#/snapshots', DIR)).toBe(true);
    expect(isTrustedRendererUrl(pathToFileURL(`${DIR}/index.html`).href, DIR)).toBe(true);
    for (const url of ['https://evil.example/', 'http://127.0.0.1:5173/', 'strata://evil/index.html', 'file:///tmp/index.html', `file://${DIR}-other/index.html`, 'file://host/opt/strata/dist/renderer/index.html', 'about:blank', 'data:text/html,<p>hi', 'devtools://devtools/bundled/inspector.html', '']) {
      expect(isTrustedRendererUrl(url, DIR), url).toBe(false);
    }
  });

  it('lets pages request only the bundle, inline data and the devtools', () => {
    expect(isAllowedRequestUrl('strata://console/assets/app.js', DIR)).toBe(true);
    expect(isAllowedRequestUrl(pathToFileURL(`${DIR}/assets/app.js`).href, DIR)).toBe(true);
    expect(isAllowedRequestUrl('data:image/png;base64,AAAA', DIR)).toBe(true);
    expect(isAllowedRequestUrl('devtools://devtools/bundled/inspector.html', DIR)).toBe(true);
    for (const url of ['https://cdn.example/x.js', 'http://127.0.0.1:8080/', 'ws://127.0.0.1:1/', 'file:///etc/passwd', 'strata://other/x', 'blob:null/123', 'chrome://gpu']) {
      expect(isAllowedRequestUrl(url, DIR), url).toBe(false);
    }
  });

  it('serves module scripts with a JavaScript type and every page with the CSP', () => {
    expect(contentTypeOf('/x/assets/index.js')).toMatch(/^text\/javascript/);
    expect(contentTypeOf('/x/index.HTML')).toMatch(/^text\/html/);
    expect(contentTypeOf('/x/unknown.bin')).toBe('application/octet-stream');
    expect(pageHeaders('/x/index.html')).toMatchObject({ 'content-security-policy': CONTENT_SECURITY_POLICY, 'x-content-type-options': 'nosniff' });
  });
});

describe('the Content-Security-Policy', () => {
  it('allows no inline script, eval, remote host or framing', () => {
    const directives = new Map(CONTENT_SECURITY_POLICY.split(';').map((d) => d.trim().split(/\s+/)).map(([name, ...values]) => [name!, values]));
    expect(directives.get('default-src')).toEqual(["'none'"]);
    expect(directives.get('script-src')).toEqual(["'self'"]);
    expect(directives.get('frame-ancestors')).toEqual(["'none'"]);
    expect(CONTENT_SECURITY_POLICY).not.toMatch(/unsafe-|https?:|\*/);
  });

  it('is the meta tag of renderer/index.html, plus frame-ancestors, which only a header can carry', () => {
    const html = readFileSync(path.resolve(import.meta.dirname, '..', 'renderer', 'index.html'), 'utf8');
    const meta = /<meta\s+http-equiv="Content-Security-Policy"\s+content="([^"]*)"/i.exec(html);
    expect(meta?.[1]).toBe(META_CONTENT_SECURITY_POLICY);
    expect(CONTENT_SECURITY_POLICY).toBe(`${META_CONTENT_SECURITY_POLICY}; frame-ancestors 'none'`);
  });

  it('replaces whatever CSP a response carried, in any spelling, and keeps the other headers', () => {
    const out = withCsp({ 'content-security-policy': ["default-src *"], 'Content-Type': ['text/html'], 'X-One': 'single' });
    expect(out).toEqual({ 'Content-Security-Policy': [CONTENT_SECURITY_POLICY], 'Content-Type': ['text/html'], 'X-One': ['single'] });
    expect(withCsp(undefined)).toEqual({ 'Content-Security-Policy': [CONTENT_SECURITY_POLICY] });
  });
});

describe('window settings and log lines', () => {
  it('isolates and sandboxes every window', () => {
    expect(SECURE_WEB_PREFERENCES).toMatchObject({ contextIsolation: true, sandbox: true, nodeIntegration: false, webSecurity: true, webviewTag: false, allowRunningInsecureContent: false });
  });

  it('logs a URL without its query or fragment, and a gone frame by name', () => {
    expect(describeUrl('https://evil.example/p?token=secret#frag')).toBe('"https://evil.example/p"');
    expect(describeUrl(null)).toBe('a frame that has gone');
    expect(describeUrl(`https://x.example/${'a'.repeat(500)}`).length).toBeLessThanOrEqual(202);
  });
});
