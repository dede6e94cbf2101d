/**
 * The identity processor end to end: the daemon built from YAML, a real OpenID provider (oidc-provider) on
 * loopback issuing real access tokens and serving discovery and its JWKS, spans from the official
 * OpenTelemetry exporters carrying `Authorization: Bearer …` as a recorded request header, and a real
 * OTLP/gRPC backend. Covers discovery, key rotation while spans flow, the provider down at start and after
 * keys were loaded, a storm of invented kids against the refresh cooldown, and the forged-token set.
 * In every test no token may appear in exported data, logs, metrics or errors answered to senders.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { OTLPTraceExporter as GrpcExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { decodeProtectedHeader } from 'jose';
import type { RunningDaemon } from '../helpers/daemon.js';
import { OtlpGrpcTestServer } from '../helpers/exporter-grpc-server.js';
import {
  algNone,
  expired,
  foreignIssuer,
  hmacWithPublicKey,
  tamperedPayload,
  withEmbeddedJwk,
  withHostileKid,
  withJku,
  withX5u,
  wrongAudience,
} from '../helpers/forged-tokens.js';
import {
  AUTH,
  assertNoTokensLeaked,
  byName,
  failedKeyFetches,
  identityProcessor,
  pollMetric,
  pollReady,
  readyStatus,
  startAttackerServer,
  startIdentityDaemon,
  tokenSpans,
  waitForSpans,
} from '../helpers/identity-e2e.js';
import { jwksOf, makeSigningKey } from '../helpers/jwks-server.js';
import { startTestIdp } from '../helpers/oidc-provider.js';
import { buildRequest, type DecodedSpan } from '../helpers/otlp.js';
import { exportOnce } from '../helpers/receiver-sdk.js';
import { grpcFrame, grpcRaw, httpRequest } from '../helpers/receiver-harness.js';

const PROTO = { 'content-type': 'application/x-protobuf' };

const grpcExporter = (port: number) => new GrpcExporter({ url: `http://127.0.0.1:${port}` });
const protoExporter = (port: number) => new ProtoExporter({ url: `http://127.0.0.1:${port}/v1/traces` });

/** Exports once with an official exporter and asserts success, saying why when not. */
async function send(exporter: Parameters<typeof exportOnce>[0], spans: ReadableSpan[]): Promise<void> {
  const r = await exportOnce(exporter, spans);
  assert.equal(r.code, 0, `export failed: ${r.error?.message}`);
}

function assertVerified(s: DecodedSpan, issuer: string, sub: string): void {
  assert.equal(s.attributes['identity.verified'], true, `${s.name} verified (failure: ${String(s.attributes['identity.failure'])})`);
  assert.equal(s.attributes['identity.failure'], undefined, s.name);
  assert.equal(s.attributes['identity.issuer'], issuer, s.name);
  assert.equal(s.attributes['identity.method'], 'jwt', s.name);
  assert.equal(s.attributes['enduser.id'], sub, s.name);
  assert.equal(s.attributes[AUTH], undefined, `${s.name}: the credential is removed`);
}

function assertFailed(s: DecodedSpan, reason: string): void {
  assert.equal(s.attributes['identity.verified'], false, s.name);
  assert.equal(s.attributes['identity.failure'], reason, s.name);
  assert.equal(s.attributes['enduser.id'], undefined, `${s.name}: no identity from an unverified token`);
  assert.equal(s.attributes['user.roles'], undefined, s.name);
  assert.equal(s.attributes[AUTH], undefined, `${s.name}: the credential is removed`);
}

/** A raw OTLP request with one span carrying the token, for senders that resend the exact same bytes. */
function rawRequest(name: string, token: string): Uint8Array {
  return buildRequest([{ attributes: { 'service.name': 'checkout' }, scopes: [{ spans: [{ name, attributes: { [AUTH]: [`Bearer ${token}`] } }] }] }]);
}

test('discovery and real tokens: spans arrive with the mapped identity, and no token leaves the daemon', async () => {
  const idp = await startTestIdp();
  const backend = await OtlpGrpcTestServer.start();
  const daemon = await startIdentityDaemon({ issuer: idp.issuer, audience: idp.audience, backend });
  const grpc = grpcExporter(daemon.grpcPort());
  const proto = protoExporter(daemon.httpPort());
  try {
    await identityProcessor(daemon).keysSettled();
    assert.equal((await readyStatus(daemon)).status, 200);
    assert.equal(idp.requests('/.well-known/openid-configuration'), 1, 'the JWKS was found through discovery');
    assert.equal(idp.requests('/jwks'), 1);

    const alice = await idp.token({ claims: { sub: 'alice', roles: ['admin', 'auditor'], amr: ['pwd', 'hwk'] } });
    // Without claims.sub, oidc-provider's client_credentials tokens name the client as subject.
    const service = await idp.token();
    const viaGrpc = await tokenSpans([alice, alice, service, null], 'grpc');
    const viaHttp = await tokenSpans([service, alice], 'http');
    await send(grpc, viaGrpc);
    await send(proto, viaHttp);

    const spans = await waitForSpans(backend, 6);
    assert.equal(spans.length, 6);
    const [g0, g1, g2, g3, h0, h1] = byName(spans, ['grpc-0', 'grpc-1', 'grpc-2', 'grpc-3', 'http-0', 'http-1']);
    for (const s of [g0!, g1!, h1!]) {
      assertVerified(s, idp.issuer, 'alice');
      assert.deepEqual(s.attributes['user.roles'], ['admin', 'auditor']);
      assert.deepEqual(s.attributes['identity.auth_methods'], ['pwd', 'hwk']);
      assert.equal(s.attributes['identity.phishing_resistant'], true, 'amr hwk is phishing-resistant');
      assert.equal(s.attributes['identity.credential.fingerprint'], createHash('sha256').update(alice).digest('hex').slice(0, 16));
    }
    for (const s of [g2!, h0!]) {
      assertVerified(s, idp.issuer, idp.clientId);
      assert.equal(s.attributes['user.roles'], undefined);
      assert.equal(s.attributes['identity.phishing_resistant'], false);
    }
    assert.equal(g3!.attributes['identity.verified'], undefined, 'a span without a credential passes untouched');
    assert.equal(g3!.attributes['i'], 3, 'the span’s own attributes are kept');

    const t = daemon.service.telemetry;
    assert.equal(await t.value('tracewarden_identity_spans_total', { result: 'verified' }), 5);
    assert.equal(await t.value('tracewarden_identity_spans_total', { result: 'missing' }), 1);
    assert.equal(await t.value('tracewarden_identity_verifications_total', { result: 'verified' }), 2, 'each distinct token is verified once');
    assert.equal(idp.requests('/jwks'), 1, 'no key fetch per token');
    assert.match(daemon.logs.text, /identity decision/, 'decisions are audited (by fingerprint)');
    await assertNoTokensLeaked([alice, service], daemon, backend);
  } finally {
    await grpc.shutdown();
    await proto.shutdown();
    await daemon.stop();
    await backend.close();
    await idp.stop();
  }
});

test('signing keys rotated twice while spans flow: every span with a valid token arrives verified', async () => {
  const idp = await startTestIdp();
  const backend = await OtlpGrpcTestServer.start();
  // An unknown kid causes a key fetch only if the previous fetch started at least unknown_kid_cooldown ago;
  // a token signed with a just-rotated key that arrives sooner is refused as unknown_key (not cached: a
  // resend after the cooldown verifies). That is the price of storm protection, and providers avoid it by
  // publishing a key before signing with it; oidc-provider here signs with the new key at once. So the
  // cooldown is short (100 ms, far below the loop's 30+ batches) and each rotation starts only once a
  // cooldown has passed since the last fetch was seen: then the first token naming the new key fetches it,
  // deterministically. The cooldown's limit itself is the storm test's subject.
  const COOLDOWN_MS = 100;
  const daemon = await startIdentityDaemon({
    issuer: idp.issuer,
    audience: idp.audience,
    backend,
    identity: [`keys: { unknown_kid_cooldown: ${COOLDOWN_MS}ms }`, 'on_invalid: tag'],
  });
  const grpc = grpcExporter(daemon.grpcPort());
  const tokens: string[] = [];
  try {
    await identityProcessor(daemon).keysSettled();
    const jwksBefore = idp.requests('/jwks');
    let jwksSeen = jwksBefore;
    let fetchSeenAt = Date.now();
    const kids = [idp.currentKid()];
    const kidsSent = new Set<string>();
    let rotation: Promise<void> | null = null;
    let rotations = 0;
    let sentWithFinalKey = 0;
    let batches = 0;
    // At least 30 batches; more (bounded) only until tokens signed with the final key have been sent.
    for (; batches < 30 || (batches < 80 && sentWithFinalKey < 3); batches++) {
      const cooled = Date.now() - fetchSeenAt >= COOLDOWN_MS;
      if (rotations === 0 && batches >= 10 && cooled) {
        rotations++;
        // Not awaited: tokens keep being minted and sent while the provider generates its new key.
        rotation = idp.rotateKeys({ keepOld: true }).then(() => void kids.push(idp.currentKid()));
      } else if (rotations === 1 && batches >= 20 && kids.length === 2 && idp.requests('/jwks') > jwksBefore && cooled) {
        rotations++;
        // The original key is withdrawn: tokens it signed are no longer sent from here on.
        rotation = idp.rotateKeys({ keepOld: false }).then(() => void kids.push(idp.currentKid()));
      }
      const a = await idp.token({ claims: { sub: `user-${batches}-a` } });
      const b = await idp.token({ claims: { sub: `user-${batches}-b` } });
      tokens.push(a, b);
      for (const t of [a, b]) kidsSent.add(decodeProtectedHeader(t).kid!);
      if (kids.length === 3 && decodeProtectedHeader(b).kid === kids[2]) sentWithFinalKey++;
      await send(grpc, await tokenSpans([a, b, a], `b${batches}`));
      if (idp.requests('/jwks') !== jwksSeen) {
        jwksSeen = idp.requests('/jwks');
        fetchSeenAt = Date.now();
      }
    }
    await rotation;
    assert.equal(kids.length, 3, 'both rotations happened');
    assert.deepEqual([...kidsSent].sort(), [...kids].sort(), 'tokens signed by all three keys were sent');

    const spans = await waitForSpans(backend, batches * 3);
    assert.equal(spans.length, batches * 3);
    const failures = spans.filter((s) => s.attributes['identity.failure'] !== undefined);
    assert.deepEqual(failures.map((s) => `${s.name}: ${String(s.attributes['identity.failure'])}`), [], 'no valid span was rejected');
    for (const s of spans) {
      const [batch, i] = s.name.slice(1).split('-');
      assertVerified(s, idp.issuer, `user-${batch}-${i === '1' ? 'b' : 'a'}`);
    }
    // One fetch per rotation, triggered by the new kid; none per token, none from a schedule.
    assert.equal(idp.requests('/jwks') - jwksBefore, 2);
    await assertNoTokensLeaked(tokens, daemon, backend);
  } finally {
    await grpc.shutdown();
    await daemon.stop();
    await backend.close();
    await idp.stop();
  }
});

// Key loads retry on a backoff from unknown_kid_cooldown (50 ms) capped by refresh_interval (300 ms), so
// once the provider is back the keys load within about 300 ms without any span asking for them.
const RETRY_QUICKLY = 'keys: { unknown_kid_cooldown: 50ms, refresh_interval: 300ms }';

test('provider down at start: the daemon starts, is not ready, tags spans keys_unavailable; once up, spans verify', async () => {
  const idp = await startTestIdp();
  const token = await idp.token({ claims: { sub: 'carol' } });
  await idp.down();
  const backend = await OtlpGrpcTestServer.start();
  const daemon = await startIdentityDaemon({
    issuer: idp.issuer,
    audience: idp.audience,
    backend,
    identity: [RETRY_QUICKLY, 'on_invalid: tag', 'on_keys_unavailable: tag'],
  });
  const proto = protoExporter(daemon.httpPort());
  try {
    await identityProcessor(daemon).keysSettled();
    assert.equal((await fetch(`${daemon.metricsUrl}/health`)).status, 200, 'the daemon is alive and serving');
    const ready = await readyStatus(daemon);
    assert.equal(ready.status, 503, 'not ready without keys');
    assert.match(ready.body, /traces\/identity/);
    assert.ok((await failedKeyFetches(daemon)) >= 1);

    await send(proto, await tokenSpans([token], 'down'));
    const [down] = await waitForSpans(backend, 1);
    assertFailed(down!, 'keys_unavailable');

    await idp.up();
    await pollReady(daemon, 200);
    assert.ok(idp.requests('/jwks') >= 1);
    await send(proto, await tokenSpans([token], 'up'));
    const spans = await waitForSpans(backend, 2);
    assertVerified(byName(spans, ['up-0'])[0]!, idp.issuer, 'carol');
    await assertNoTokensLeaked([token], daemon, backend);
  } finally {
    await proto.shutdown();
    await daemon.stop();
    await backend.close();
    await idp.stop();
  }
});

test('provider down at start with on_keys_unavailable: refuse: retryable 503 / UNAVAILABLE, and the resent request arrives verified', async () => {
  const idp = await startTestIdp();
  const token = await idp.token({ claims: { sub: 'dave' } });
  await idp.down();
  const backend = await OtlpGrpcTestServer.start();
  const daemon = await startIdentityDaemon({
    issuer: idp.issuer,
    audience: idp.audience,
    backend,
    identity: [RETRY_QUICKLY, 'on_keys_unavailable: refuse'],
  });
  try {
    await identityProcessor(daemon).keysSettled();
    assert.equal((await readyStatus(daemon)).status, 503);
    const overHttp = rawRequest('over-http', token);
    const overGrpc = rawRequest('over-grpc', token);
    const h = await httpRequest(daemon.httpPort(), { headers: PROTO, body: overHttp });
    assert.equal(h.status, 503, 'a retryable refusal over OTLP/HTTP');
    assert.ok(Number(h.headers['retry-after']) >= 1, 'with Retry-After');
    const g = await grpcRaw(daemon.grpcPort(), grpcFrame(overGrpc));
    assert.equal(g.grpcStatus, 14, 'UNAVAILABLE over OTLP/gRPC');
    assert.equal(backend.requests.length, 0, 'nothing was accepted');
    assert.equal(await daemon.service.telemetry.value('otelcol_receiver_accepted_spans_total'), 0);

    await idp.up();
    await pollReady(daemon, 200);
    // The senders retry with exactly the bytes that were refused.
    assert.equal((await httpRequest(daemon.httpPort(), { headers: PROTO, body: overHttp })).status, 200);
    assert.equal((await grpcRaw(daemon.grpcPort(), grpcFrame(overGrpc))).grpcStatus, 0);
    const spans = await waitForSpans(backend, 2);
    assert.equal(spans.length, 2);
    for (const s of byName(spans, ['over-http', 'over-grpc'])) assertVerified(s, idp.issuer, 'dave');
    await assertNoTokensLeaked([token], daemon, backend, [h.body.toString('latin1'), g.grpcMessage, JSON.stringify(g.trailers)]);
  } finally {
    await daemon.stop();
    await backend.close();
    await idp.stop();
  }
});

test('provider down after keys were loaded: stale keys keep verifying within max_stale', async () => {
  const idp = await startTestIdp();
  const backend = await OtlpGrpcTestServer.start();
  // Scheduled refreshes every 100 ms, so one fails soon after the provider goes down; max_stale is the
  // default 12 h.
  const daemon = await startIdentityDaemon({
    issuer: idp.issuer,
    audience: idp.audience,
    backend,
    identity: ['keys: { unknown_kid_cooldown: 50ms, refresh_interval: 100ms, min_refresh_interval: 100ms }', 'on_invalid: tag'],
  });
  const grpc = grpcExporter(daemon.grpcPort());
  try {
    await identityProcessor(daemon).keysSettled();
    // Minted while the provider is up; never seen by the daemon, so each is verified after the outage.
    const t1 = await idp.token({ claims: { sub: 'erin' } });
    const t2 = await idp.token({ claims: { sub: 'frank' } });
    await idp.down();
    await pollMetric(daemon, () => failedKeyFetches(daemon), (v) => v >= 1, 'a failed key refresh');
    assert.equal((await readyStatus(daemon)).status, 200, 'serving stale keys is ready');
    await send(grpc, await tokenSpans([t1, t2], 'stale'));
    const [erin, frank] = byName(await waitForSpans(backend, 2), ['stale-0', 'stale-1']);
    assertVerified(erin!, idp.issuer, 'erin');
    assertVerified(frank!, idp.issuer, 'frank');
    assert.ok((await failedKeyFetches(daemon)) >= 1, 'verified while the provider was unreachable');
    await assertNoTokensLeaked([t1, t2], daemon, backend);
  } finally {
    await grpc.shutdown();
    await daemon.stop();
    await backend.close();
    await idp.stop();
  }
});

test('provider down after keys were loaded: beyond max_stale spans get keys_unavailable, and verify again once it is back', async () => {
  const idp = await startTestIdp();
  const backend = await OtlpGrpcTestServer.start();
  const daemon = await startIdentityDaemon({
    issuer: idp.issuer,
    audience: idp.audience,
    backend,
    identity: ['keys: { unknown_kid_cooldown: 50ms, refresh_interval: 100ms, min_refresh_interval: 100ms, max_stale: 200ms }', 'on_invalid: tag'],
  });
  const grpc = grpcExporter(daemon.grpcPort());
  try {
    await identityProcessor(daemon).keysSettled();
    const token = await idp.token({ claims: { sub: 'grace' } });
    await idp.down();
    // Not ready once a refresh has failed and max_stale has passed since the last good load.
    await pollReady(daemon, 503);
    await send(grpc, await tokenSpans([token], 'expired-keys'));
    assertFailed((await waitForSpans(backend, 1))[0]!, 'keys_unavailable');

    await idp.up();
    await pollReady(daemon, 200);
    await send(grpc, await tokenSpans([token], 'recovered'));
    assertVerified(byName(await waitForSpans(backend, 2), ['recovered-0'])[0]!, idp.issuer, 'grace');
    await assertNoTokensLeaked([token], daemon, backend);
  } finally {
    await grpc.shutdown();
    await daemon.stop();
    await backend.close();
    await idp.stop();
  }
});

test('a storm of tokens with invented kids costs no more key fetches than the cooldown allows', async () => {
  const COOLDOWN_MS = 1000;
  const idp = await startTestIdp();
  const backend = await OtlpGrpcTestServer.start();
  const daemon = await startIdentityDaemon({
    issuer: idp.issuer,
    audience: idp.audience,
    backend,
    identity: [`keys: { unknown_kid_cooldown: ${COOLDOWN_MS}ms }`, 'on_invalid: drop'],
  });
  const grpc = grpcExporter(daemon.grpcPort());
  try {
    await identityProcessor(daemon).keysSettled();
    const attacker = await makeSigningKey('ES256');
    const victim = { iss: idp.issuer, aud: idp.audience };
    const storm: string[] = [];
    for (let i = 0; i < 300; i++) storm.push(await withHostileKid(attacker, victim, randomBytes(12).toString('hex')));
    const valid = await idp.token({ claims: { sub: 'heidi' } });
    const BATCHES = 10;
    const per = storm.length / BATCHES;

    const jwksBefore = idp.requests('/jwks');
    const t0 = Date.now();
    for (let b = 0; b < BATCHES; b++) {
      // Each batch also carries one valid span: the storm must not cost legitimate traffic.
      await send(grpc, await tokenSpans([valid, ...storm.slice(b * per, (b + 1) * per)], `storm${b}`));
    }
    const elapsed = Date.now() - t0;
    const fetches = idp.requests('/jwks') - jwksBefore;
    // Without the cooldown each batch's unknown kids would share one fetch: about BATCHES fetches.
    assert.ok(fetches <= 1 + Math.floor(elapsed / COOLDOWN_MS), `${fetches} JWKS fetches in ${elapsed} ms with a ${COOLDOWN_MS} ms cooldown`);

    const spans = await waitForSpans(backend, BATCHES);
    assert.equal(spans.length, BATCHES, 'only the valid spans arrived');
    for (const s of spans) {
      assert.match(s.name, /^storm\d-0$/);
      assertVerified(s, idp.issuer, 'heidi');
    }
    const t = daemon.service.telemetry;
    assert.equal(await t.value('tracewarden_dropped_spans_total', { component: 'identity', reason: 'identity_unknown_key' }), 300);
    assert.equal(await t.value('tracewarden_identity_spans_total', { result: 'unknown_key' }), 300);
    await assertNoTokensLeaked([valid, ...storm], daemon, backend);
  } finally {
    await grpc.shutdown();
    await daemon.stop();
    await backend.close();
    await idp.stop();
  }
});

test('forged tokens through the daemon: each tagged with its reason, and no key is fetched from a token’s URL', async () => {
  const idp = await startTestIdp();
  const backend = await OtlpGrpcTestServer.start();
  const daemon = await startIdentityDaemon({ issuer: idp.issuer, audience: idp.audience, backend, identity: ['on_invalid: tag'] });
  const attacker = await makeSigningKey('RS256');
  const attackerServer = await startAttackerServer(jwksOf(attacker));
  const proto = protoExporter(daemon.httpPort());
  try {
    await identityProcessor(daemon).keysSettled();
    const victim = { iss: idp.issuer, aud: idp.audience };
    const victimKey = await idp.signingKey();
    const real = await idp.token({ claims: { sub: 'ivan' } });
    const cases: [string, string, string][] = [
      ['alg-none', algNone(victim), 'algorithm_not_allowed'],
      ['hs256-public-key', await hmacWithPublicKey(victimKey.publicJwk, victim, 'pem'), 'algorithm_not_allowed'],
      ['jku', await withJku(attacker, victim, `${attackerServer.url}/jwks.json`), 'unknown_key'],
      ['x5u', await withX5u(attacker, victim, `${attackerServer.url}/cert.pem`), 'unknown_key'],
      ['embedded-jwk', await withEmbeddedJwk(attacker, victim), 'unknown_key'],
      ['expired', await expired(victimKey, victim), 'expired'],
      ['wrong-audience', await wrongAudience(victimKey, victim), 'audience_mismatch'],
      ['tampered', tamperedPayload(real), 'bad_signature'],
      ['unlisted-issuer', await foreignIssuer(attacker, 'https://evil.example', victim), 'unknown_issuer'],
    ];
    const spans = await tokenSpans([real, ...cases.map((c) => c[1])], 'forged');
    await send(proto, spans);

    const got = byName(await waitForSpans(backend, cases.length + 1), ['forged-0', ...cases.map((_, i) => `forged-${i + 1}`)]);
    assertVerified(got[0]!, idp.issuer, 'ivan');
    cases.forEach(([name, , reason], i) => {
      const s = got[i + 1]!;
      assert.equal(s.attributes['identity.failure'], reason, name);
      assertFailed(s, reason);
    });
    assert.equal(attackerServer.requests(), 0, 'no request to a URL named in a token');
    await assertNoTokensLeaked([real, ...cases.map((c) => c[1])], daemon, backend);
  } finally {
    await proto.shutdown();
    await daemon.stop();
    await backend.close();
    await attackerServer.close();
    await idp.stop();
  }
});

test('a failing provider is retried with a backoff, never in a tight loop, even with unknown_kid_cooldown: 0', async () => {
  const idp = await startTestIdp();
  const DISCOVERY = '/.well-known/openid-configuration';
  idp.failNext(DISCOVERY, 1_000_000, 503);
  const backend = await OtlpGrpcTestServer.start();
  let daemon: RunningDaemon | null = null;
  try {
    try {
      daemon = await startIdentityDaemon({ issuer: idp.issuer, audience: idp.audience, backend, identity: ['keys: { unknown_kid_cooldown: 0ms }'] });
    } catch (err) {
      // Refusing the configuration is an acceptable answer too, if it says which key is wrong.
      assert.match((err as Error).message, /unknown_kid_cooldown/);
      return;
    }
    await pollMetric(daemon, () => failedKeyFetches(daemon!), (v) => v >= 1, 'a failed key load');
    // A rate needs a time window: the retry timers are the daemon's own, with nothing to await.
    const before = idp.requests(DISCOVERY);
    await new Promise((r) => setTimeout(r, 500));
    const retries = idp.requests(DISCOVERY) - before;
    assert.ok(retries <= 10, `${retries} discovery requests in 500 ms to a provider answering 503`);
  } finally {
    await daemon?.stop();
    await backend.close();
    await idp.stop();
  }
});
