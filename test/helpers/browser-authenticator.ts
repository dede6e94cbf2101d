/**
 * A real browser as the WebAuthn authenticator: Debian's Chromium driven by playwright-core, with a
 * DevTools virtual authenticator (CTAP2, platform, user verification) attached to one tab. The tab loads
 * a small relying-party page served from 127.0.0.1 as http://localhost:PORT (a secure context, RP ID
 * `localhost`); the page's own script calls navigator.credentials.create/get, so what comes back is
 * exactly what a web application would attach to its span.
 *
 *   const browser = await BrowserAuthenticator.start();          // throws if Chromium cannot be launched
 *   const cred = await browser.register('ES256', 'user-1');
 *   const json = await browser.approve(cred, challenge);          // AuthenticationResponseJSON
 *   const foreign = await browser.approve(cred, challenge, browser.otherOrigin);
 *   await browser.close();
 *
 * Two servers serve the page on two ports: two origins under the same RP ID, so the browser lets the
 * second one use the credentials and its assertions differ only in the origin.
 */
import { existsSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createPublicKey, type JsonWebKey } from 'node:crypto';
import { chromium, type Browser, type CDPSession, type Page } from 'playwright-core';

export const CHROMIUM_PATH = '/usr/bin/chromium';

/**
 * Chromium's flags for a closed network as root: no sandbox (root), no GPU, and no background traffic
 * (component updates, sync, QUIC probes) whose refused connections only slow start-up down.
 */
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export type BrowserAlgorithm = 'ES256' | 'RS256' | 'EdDSA';

/** COSE algorithm identifiers (RFC 9053) for navigator.credentials.create's pubKeyCredParams. */
export const COSE_ALGORITHM: Readonly<Record<BrowserAlgorithm, number>> = { ES256: -7, RS256: -257, EdDSA: -8 };

export interface BrowserCredential {
  /** Credential id, base64url: the JWKS kid. */
  id: string;
  alg: BrowserAlgorithm;
  /** The public key as a JWK, from the SPKI the browser returned at registration. */
  jwk: JsonWebKey;
  /** base64url of the user.id given at registration: what assertions carry as userHandle. */
  userHandle: string;
}

export interface AuthenticationResponseJSON {
  id: string;
  rawId: string;
  type: string;
  response: { authenticatorData: string; clientDataJSON: string; signature: string; userHandle?: string };
  authenticatorAttachment?: string | null;
  clientExtensionResults?: Record<string, unknown>;
}

/** Why this machine cannot run the browser tests, or null when it can. */
export function chromiumMissing(): string | null {
  return existsSync(CHROMIUM_PATH) ? null : `${CHROMIUM_PATH} does not exist`;
}

/**
 * The relying party's page. Results cross back to the test as plain JSON; toJSON() (WebAuthn Level 3) is
 * used when the browser has it, with the same serialisation by hand otherwise.
 */
const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>tracewarden WebAuthn relying party</title>
<script>
const b64u = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');
const fromB64u = (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
window.rp = {
  async register(alg, userId) {
    const c = await navigator.credentials.create({ publicKey: {
      rp: { id: 'localhost', name: 'tracewarden test' },
      user: { id: new TextEncoder().encode(userId), name: userId, displayName: userId },
      challenge: crypto.getRandomValues(new Uint8Array(32)),
      pubKeyCredParams: [{ type: 'public-key', alg }],
      authenticatorSelection: { residentKey: 'required', userVerification: 'required' },
      timeout: 10000,
    } });
    return { id: c.id, alg: c.response.getPublicKeyAlgorithm(), spki: b64u(c.response.getPublicKey()) };
  },
  async approve(challenge, credentialId) {
    const c = await navigator.credentials.get({ publicKey: {
      challenge: fromB64u(challenge),
      rpId: 'localhost',
      allowCredentials: [{ type: 'public-key', id: fromB64u(credentialId) }],
      userVerification: 'required',
      timeout: 10000,
    } });
    if (typeof c.toJSON === 'function') return c.toJSON();
    const r = c.response;
    return { id: c.id, rawId: b64u(c.rawId), type: c.type, authenticatorAttachment: c.authenticatorAttachment,
      response: { authenticatorData: b64u(r.authenticatorData), clientDataJSON: b64u(r.clientDataJSON),
        signature: b64u(r.signature), userHandle: r.userHandle === null ? undefined : b64u(r.userHandle) },
      clientExtensionResults: c.getClientExtensionResults() };
  },
};
</script>
<p>relying party</p>
`;

async function servePage(): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if (req.url !== '/') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(PAGE);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return server;
}

function closeServer(server: http.Server): Promise<void> {
  server.closeAllConnections();
  return new Promise<void>((resolve) => server.close(() => resolve()));
}

export class BrowserAuthenticator {
  private constructor(
    private readonly browser: Browser,
    private readonly page: Page,
    private readonly cdp: CDPSession,
    private readonly servers: http.Server[],
    /** The relying party's origin, http://localhost:PORT. */
    readonly origin: string,
    /** A second origin under the same RP ID (another port). */
    readonly otherOrigin: string,
    readonly authenticatorId: string,
  ) {}

  /** Launches Chromium, serves the page on two origins and attaches a virtual authenticator. */
  static async start(): Promise<BrowserAuthenticator> {
    const servers: http.Server[] = [];
    let browser: Browser | null = null;
    try {
      servers.push(await servePage(), await servePage());
      const [origin, otherOrigin] = servers.map((s) => `http://localhost:${(s.address() as AddressInfo).port}`) as [string, string];
      browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, timeout: 20_000 });
      const context = await browser.newContext();
      const page = await context.newPage();
      page.setDefaultTimeout(15_000);
      const cdp = await context.newCDPSession(page);
      await cdp.send('WebAuthn.enable');
      const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
        options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
      });
      await page.goto(`${origin}/`);
      return new BrowserAuthenticator(browser, page, cdp, servers, origin, otherOrigin, authenticatorId);
    } catch (err) {
      await browser?.close().catch(() => {});
      await Promise.all(servers.map(closeServer));
      throw err;
    }
  }

  /** Chromium's version string, for messages. */
  get version(): string {
    return this.browser.version();
  }

  /** Registers a discoverable credential with this algorithm for the user id (its bytes become user.id). */
  async register(alg: BrowserAlgorithm, userId: string): Promise<BrowserCredential> {
    await this.visit(this.origin);
    const r = await this.page.evaluate(([a, u]) => (window as unknown as PageApi).rp.register(a, u), [COSE_ALGORITHM[alg], userId] as const);
    if (r.alg !== COSE_ALGORITHM[alg]) throw new Error(`asked the authenticator for ${alg} (${COSE_ALGORITHM[alg]}), it made ${r.alg}`);
    const jwk = createPublicKey({ key: Buffer.from(r.spki, 'base64url'), format: 'der', type: 'spki' }).export({ format: 'jwk' });
    return { id: r.id, alg, jwk, userHandle: Buffer.from(userId, 'utf8').toString('base64url') };
  }

  /** An assertion by `cred` over `challenge` (base64url), made by the page at `origin`. */
  async approve(cred: BrowserCredential, challenge: string, origin = this.origin): Promise<AuthenticationResponseJSON> {
    await this.visit(origin);
    return this.page.evaluate(([c, id]) => (window as unknown as PageApi).rp.approve(c, id), [challenge, cred.id] as const);
  }

  /** How many credentials the virtual authenticator holds (DevTools' view, independent of the page). */
  async credentialCount(): Promise<number> {
    const r = await this.cdp.send('WebAuthn.getCredentials', { authenticatorId: this.authenticatorId });
    return r.credentials.length;
  }

  async close(): Promise<void> {
    await this.browser.close().catch(() => {});
    await Promise.all(this.servers.map(closeServer));
  }

  /** The virtual authenticator belongs to the tab, so one tab moves between origins. */
  private async visit(origin: string): Promise<void> {
    if (new URL(this.page.url()).origin === origin) return;
    await this.page.goto(`${origin}/`);
  }
}

interface PageApi {
  rp: {
    register(alg: number, userId: string): Promise<{ id: string; alg: number; spki: string }>;
    approve(challenge: string, credentialId: string): Promise<AuthenticationResponseJSON>;
  };
}

/** The credential keys as the JWKS tracewarden reads: kid = credential id, the registered user handle, `user` when given. */
export function credentialJwks(creds: { cred: BrowserCredential; user?: string }[]): { keys: Record<string, unknown>[] } {
  return {
    keys: creds.map(({ cred, user }) => ({ ...cred.jwk, kid: cred.id, alg: cred.alg, use: 'sig', user_handle: cred.userHandle, ...(user === undefined ? {} : { user }) })),
  };
}
