/**
 * A real browser as the authenticator, end to end: Chromium's DevTools virtual authenticator registers
 * credentials and signs assertions for a relying-party page on http://localhost:PORT; the assertions,
 * attached to spans bound by their challenge, go through the running daemon (OTLP/HTTP in, identity
 * processor, OTLP/gRPC out) and are judged at the backend. Nothing here signs in Node: every assertion
 * (and every tampered copy's original) is the browser's.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IdentityProcessor } from '../../processors/identity/identity-processor.js';
import { OtlpGrpcTestServer } from '../helpers/exporter-grpc-server.js';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { buildRequest, decodeSpans, type DecodedSpan, type SpanSpec } from '../helpers/otlp.js';
import { httpRequest } from '../helpers/receiver-harness.js';
import {
  BrowserAuthenticator,
  chromiumMissing,
  credentialJwks,
  type AuthenticationResponseJSON,
  type BrowserAlgorithm,
  type BrowserCredential,
} from '../helpers/browser-authenticator.js';

const ATTR = 'webauthn.assertion';
const ALGORITHMS: BrowserAlgorithm[] = ['ES256', 'RS256', 'EdDSA'];
/** JWKS `user` per algorithm; EdDSA's credential has none, so its identity is the assertion's userHandle. */
const USERS: Record<BrowserAlgorithm, string | undefined> = { ES256: 'alice', RS256: 'bob', EdDSA: undefined };

interface Ids {
  traceId: Buffer;
  spanId: Buffer;
}

function ids(): Ids {
  return { traceId: randomBytes(16), spanId: randomBytes(8) };
}

/** The span-binding challenge, computed independently of the daemon's code: base64url(SHA-256(traceId ‖ spanId)). */
function challengeFor(id: Ids): string {
  return createHash('sha256').update(Buffer.concat([id.traceId, id.spanId])).digest('base64url');
}

function flipSignatureBit(a: AuthenticationResponseJSON): AuthenticationResponseJSON {
  const sig = Buffer.from(a.response.signature, 'base64url');
  sig[sig.length >> 1]! ^= 0x01;
  return { ...a, response: { ...a.response, signature: sig.toString('base64url') } };
}

interface ClientData {
  type: string;
  challenge: string;
  origin: string;
  crossOrigin?: boolean;
}

function clientData(a: AuthenticationResponseJSON): ClientData {
  return JSON.parse(Buffer.from(a.response.clientDataJSON, 'base64url').toString('utf8')) as ClientData;
}

const missing = chromiumMissing();

/** Each browser test is skipped on its own when Chromium is missing, so a run shows every one of them as a skip. */
const skip = missing === null ? false : `chromium is not installed (${missing}): apt-get install chromium`;
if (missing !== null && process.env['TRACEWARDEN_REQUIRE_CHROMIUM'] === '1') {
  test('a real browser as the WebAuthn authenticator', () => {
    assert.fail(`TRACEWARDEN_REQUIRE_CHROMIUM=1 but Chromium is unavailable (${missing}): apt-get install chromium`);
  });
}
{
  describe('a real browser (Chromium virtual authenticator) through the running daemon', () => {
    let browser: BrowserAuthenticator;
    let backend: OtlpGrpcTestServer;
    let daemon: RunningDaemon;
    let dir: string;
    const creds = new Map<BrowserAlgorithm, BrowserCredential>();
    /** Every assertion made or forged, for the leak check. */
    const used: AuthenticationResponseJSON[] = [];

    before(async () => {
      if (skip) return;
      dir = mkdtempSync(join(tmpdir(), 'tw-webauthn-browser-'));
      browser = await BrowserAuthenticator.start();
      for (const alg of ALGORITHMS) creds.set(alg, await browser.register(alg, `user-${alg.toLowerCase()}`));
      assert.equal(await browser.credentialCount(), ALGORITHMS.length, 'the virtual authenticator holds every registered credential');
      const keysFile = join(dir, 'credentials.jwks.json');
      writeFileSync(keysFile, JSON.stringify(credentialJwks(ALGORITHMS.map((alg) => ({ cred: creds.get(alg)!, user: USERS[alg] })))));
      backend = await OtlpGrpcTestServer.start();
      daemon = await startDaemon(`
receivers:
  otlp:
    protocols:
      http: { endpoint: 127.0.0.1:0 }
processors:
  identity:
    webauthn:
      rp_id: localhost
      origins: ['${browser.origin}']
      credentials_jwks_file: ${JSON.stringify(keysFile)}
      user_verification: required
    on_invalid: tag
exporters:
  otlp: { endpoint: ${backend.endpoint}, tls: { insecure: true }, compression: none, retry_on_failure: { initial_interval: 10ms, max_interval: 50ms } }
service:
  telemetry: { metrics: { level: none } }
  pipelines:
    traces: { receivers: [otlp], processors: [identity], exporters: [otlp] }
`);
      const identity = daemon.service.component('identity') as IdentityProcessor;
      await identity.keysSettled();
      assert.equal(identity.isReady(), true, 'the credential JWKS loaded');
    });

    after(async () => {
      await daemon?.stop();
      await backend?.close();
      await browser?.close();
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    });

    function spanWith(id: Ids, assertion: AuthenticationResponseJSON, name: string): SpanSpec {
      used.push(assertion);
      return { name, traceId: id.traceId, spanId: id.spanId, attributes: { [ATTR]: JSON.stringify(assertion), 'app.step': name } };
    }

    /** Sends one OTLP/HTTP protobuf request and returns the spans the backend received for it, in order. */
    async function throughDaemon(spans: SpanSpec[]): Promise<DecodedSpan[]> {
      const before = backend.requests.length;
      const body = buildRequest([{ attributes: { 'service.name': 'shop-web' }, scopes: [{ spans }] }]);
      const res = await httpRequest(daemon.httpPort(), { headers: { 'content-type': 'application/x-protobuf' }, body });
      assert.equal(res.status, 200, `the receiver refused the request: ${res.body.toString()}`);
      await backend.waitForRequests(before + 1);
      const got = decodeSpans(backend.requests[before]!.bytes);
      assert.deepEqual(
        got.map((s) => s.name),
        spans.map((s) => s.name),
        'every span is delivered, tagged rather than dropped',
      );
      return got;
    }

    function assertVerified(s: DecodedSpan, alg: BrowserAlgorithm): void {
      const cred = creds.get(alg)!;
      assert.equal(s.attributes['identity.verified'], true, `${alg} span ${s.name}: ${String(s.attributes['identity.failure'])}`);
      assert.equal(s.attributes['identity.method'], 'webauthn');
      assert.equal(s.attributes['identity.issuer'], 'localhost');
      assert.equal(s.attributes['enduser.id'], USERS[alg] ?? cred.userHandle);
      assert.equal(s.attributes['identity.webauthn.user_verified'], true);
      assert.equal(s.attributes['identity.phishing_resistant'], true);
      assert.equal(s.attributes['identity.webauthn.counter_regression'], undefined);
      assert.equal(s.attributes['identity.failure'], undefined);
      assert.equal(s.attributes[ATTR], undefined, 'the assertion is removed');
      assert.equal(s.attributes['app.step'], s.name, 'the span’s own attributes are kept');
    }

    function assertRejected(s: DecodedSpan, reason: string): void {
      assert.equal(s.attributes['identity.failure'], reason, `span ${s.name}`);
      assert.equal(s.attributes['identity.verified'], false);
      assert.equal(s.attributes['identity.method'], 'webauthn');
      assert.equal(s.attributes['enduser.id'], undefined);
      assert.equal(s.attributes[ATTR], undefined, 'the assertion is removed');
    }

    /** No part of any assertion (signature, authenticator data, client data, whole JSON) left the daemon or was logged. */
    function assertNoAssertionLeft(): void {
      const exported = backend.requests.map((r) => r.bytes.toString('latin1')).join('\n');
      const logs = daemon.logs.text;
      for (const a of used) {
        for (const [part, value] of [
          ['signature', a.response.signature],
          ['authenticatorData', a.response.authenticatorData],
          ['clientDataJSON', a.response.clientDataJSON],
        ] as const) {
          assert.ok(!exported.includes(value), `the ${part} of an assertion reached the backend`);
          assert.ok(!logs.includes(value), `the ${part} of an assertion was logged`);
        }
      }
    }

    test('assertions for ES256, RS256 and EdDSA credentials, bound to their spans, verify with the user and user verification', { skip }, async () => {
      const list = ALGORITHMS.map((alg) => ({ alg, id: ids() }));
      const spans: SpanSpec[] = [];
      for (const { alg, id } of list) {
        const a = await browser.approve(creds.get(alg)!, challengeFor(id));
        assert.equal(a.id, creds.get(alg)!.id);
        assert.equal(a.response.userHandle, creds.get(alg)!.userHandle, 'the discoverable credential returns its user handle');
        const c = clientData(a);
        assert.deepEqual([c.type, c.challenge, c.origin, c.crossOrigin ?? false], ['webauthn.get', challengeFor(id), browser.origin, false]);
        spans.push(spanWith(id, a, `approve-${alg}`));
      }
      const got = await throughDaemon(spans);
      got.forEach((s, i) => {
        assertVerified(s, list[i]!.alg);
        assert.equal(s.traceId, list[i]!.id.traceId.toString('hex'));
        assert.equal(s.spanId, list[i]!.id.spanId.toString('hex'));
      });
      assertNoAssertionLeft();
    });

    test('one flipped signature bit is bad_signature for each algorithm; the untouched original then verifies on its span', { skip }, async () => {
      const list = ALGORITHMS.map((alg) => ({ alg, id: ids() }));
      const originals: AuthenticationResponseJSON[] = [];
      for (const { alg, id } of list) originals.push(await browser.approve(creds.get(alg)!, challengeFor(id)));
      const tampered = await throughDaemon(list.map(({ alg, id }, i) => spanWith(id, flipSignatureBit(originals[i]!), `tampered-${alg}`)));
      for (const s of tampered) assertRejected(s, 'bad_signature');
      const genuine = await throughDaemon(list.map(({ alg, id }, i) => spanWith(id, originals[i]!, `genuine-${alg}`)));
      genuine.forEach((s, i) => assertVerified(s, list[i]!.alg));
      assertNoAssertionLeft();
    });

    test('an assertion attached to a span with other ids is challenge_mismatch, whether or not it was verified before', { skip }, async () => {
      const cred = creds.get('ES256')!;
      const approved = ids();
      // Never seen by the daemon: the full verification path compares the challenges.
      const fresh = await browser.approve(cred, challengeFor(approved));
      const otherTrace = { traceId: randomBytes(16), spanId: approved.spanId };
      const otherSpan = { traceId: approved.traceId, spanId: randomBytes(8) };
      const moved = await throughDaemon([spanWith(otherTrace, fresh, 'other-trace-id'), spanWith(otherSpan, fresh, 'other-span-id')]);
      for (const s of moved) assertRejected(s, 'challenge_mismatch');

      // Verified on its own span first, then copied: the decision cache must not carry it to the copy.
      const own = ids();
      const a = await browser.approve(cred, challengeFor(own));
      const [first] = await throughDaemon([spanWith(own, a, 'own-span')]);
      assertVerified(first!, 'ES256');
      const [copy, again] = await throughDaemon([spanWith(ids(), a, 'copied-span'), spanWith(own, a, 'own-span-retried')]);
      assertRejected(copy!, 'challenge_mismatch');
      assertVerified(again!, 'ES256');
      assertNoAssertionLeft();
    });

    test('an assertion made by the page on another origin (same RP ID) is origin_mismatch for each algorithm', { skip }, async () => {
      const list = ALGORITHMS.map((alg) => ({ alg, id: ids() }));
      const spans: SpanSpec[] = [];
      for (const { alg, id } of list) {
        const a = await browser.approve(creds.get(alg)!, challengeFor(id), browser.otherOrigin);
        assert.equal(clientData(a).origin, browser.otherOrigin, 'the browser signed for the other origin');
        assert.equal(clientData(a).challenge, challengeFor(id));
        spans.push(spanWith(id, a, `other-origin-${alg}`));
      }
      const got = await throughDaemon(spans);
      for (const s of got) assertRejected(s, 'origin_mismatch');
      assertNoAssertionLeft();
    });
  });
}
