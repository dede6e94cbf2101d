/**
 * What the validating scan looks for besides structure, decided once at start-up by the processors that
 * need it: keys that must appear in no attribute list, header names whose values are credentials, URL
 * attributes whose secret query parameters must go, and credential-shaped strings (JWTs, WebAuthn
 * assertions). The scan does only cheap byte checks and marks each resource, scope or span that holds
 * something to look at closely; the processor then rewrites just those (see identity/scrub/sanitizer.ts). Every mark is a
 * superset of what the close look changes, so a unit that is not marked has nothing to change.
 */
import { KeyMatcher } from './key-matcher.js';

/** Classes of a protected key match. */
export const PROTECT_EXACT = 1;
/** The key is a dotted prefix of a protected key (`identity` of `identity.verified`). */
export const PROTECT_PREFIX = 2;
/** The key is a URL attribute's, whose secret query parameters are looked for. */
export const URL_KEY = 4;
/** endsLike(): what a key may be, judged by its ending. */
export const ENDS_LIKE_KEY = 1;
export const ENDS_LIKE_SENSITIVE = 2;

export interface InspectionSpec {
  /**
   * Keys no attribute list may carry, at any level. Span and resource attributes with these keys are
   * removed by the processor's own pass (the scan indexes where they are on each span); elsewhere, and
   * nested in key-value lists under a dotted prefix of one, they mark their unit.
   */
  protect: readonly string[];
  /** Header names whose values are credentials, wherever a key's last dotted segment is one of them. */
  sensitiveNames: readonly string[];
  /** Keys of URL attributes whose query parameters named in `secretParams` are secrets. */
  urlKeys: readonly string[];
  secretParams: readonly string[];
  /** Look for JWT- and WebAuthn-shaped values in every string. */
  tokens: boolean;
}

export class Inspection {
  /**
   * Protected keys, their dotted prefixes and URL attribute keys, folded, in one matcher so each key costs
   * one lookup; `keyClasses[i]` says what each is (PROTECT_EXACT | PROTECT_PREFIX | URL_KEY).
   */
  readonly keys: KeyMatcher;
  readonly keyClasses: Uint8Array;
  readonly sensitive: KeyMatcher | null;
  readonly params: KeyMatcher | null;
  readonly tokens: boolean;
  /** Two inspections with the same signature mark the same units. */
  readonly signature: string;

  constructor(readonly spec: InspectionSpec) {
    const classes = new Map<string, number>();
    for (const k of spec.protect) {
      const parts = k.split('.');
      for (let i = 1; i < parts.length; i++) {
        const prefix = parts.slice(0, i).join('.');
        classes.set(prefix, (classes.get(prefix) ?? 0) | PROTECT_PREFIX);
      }
      classes.set(k, (classes.get(k) ?? 0) | PROTECT_EXACT);
    }
    const urls = spec.secretParams.length === 0 ? [] : spec.urlKeys;
    for (const k of urls) classes.set(k, (classes.get(k) ?? 0) | URL_KEY);
    const keys = [...classes.keys()];
    this.keys = KeyMatcher.of(keys, true);
    this.keyClasses = Uint8Array.from(keys.map((k) => classes.get(k)!));
    this.sensitive = spec.sensitiveNames.length === 0 ? null : KeyMatcher.of(spec.sensitiveNames, true);
    this.params = urls.length === 0 ? null : KeyMatcher.of(spec.secretParams, true);
    for (const [m, bit] of [[this.keys, ENDS_LIKE_KEY], [this.sensitive, ENDS_LIKE_SENSITIVE]] as const) {
      for (const k of m?.keys ?? []) if (k.length > 0) this.endings[((k.length >= 2 ? k[k.length - 2]! : 0) << 8) | k[k.length - 1]!]! |= bit;
    }
    this.tokens = spec.tokens;
    const sorted = (a: readonly string[]): string[] => [...a].sort();
    this.signature = JSON.stringify([sorted(spec.protect), sorted(spec.sensitiveNames), sorted(urls), sorted(spec.secretParams), spec.tokens]);
  }

  /**
   * What a key may be, from its last two bytes (one table read): ENDS_LIKE_KEY when it may be a protected
   * key, prefix or URL attribute, ENDS_LIKE_SENSITIVE when it may end in a sensitive name; both when its
   * last byte is a blank, control or non-ASCII byte (it may have something to trim). Most keys are neither.
   */
  endsLike(buf: Uint8Array, start: number, end: number): number {
    if (end <= start) return ENDS_LIKE_KEY | ENDS_LIKE_SENSITIVE;
    let b = buf[end - 1]!;
    if (b <= 0x20 || b >= 0x7f) return ENDS_LIKE_KEY | ENDS_LIKE_SENSITIVE;
    let a = end - start >= 2 ? buf[end - 2]! : 0;
    if (a >= 0x41 && a <= 0x5a) a |= 0x20;
    if (b >= 0x41 && b <= 0x5a) b |= 0x20;
    return this.endings[(a << 8) | b]!;
  }
  private readonly endings = new Uint8Array(65536);

  /** What the key at buf[start, end) is (PROTECT_EXACT | PROTECT_PREFIX | URL_KEY; 0 when none). */
  keyClass(buf: Uint8Array, start: number, end: number): number {
    const i = this.keys.match(buf, start, end);
    return i < 0 ? 0 : this.keyClasses[i]!;
  }

  /** Whether the last dotted segment of the key at buf[start, end) is a sensitive header name. */
  sensitiveTail(buf: Uint8Array, start: number, end: number): boolean {
    const m = this.sensitive;
    if (m === null || end === start) return false;
    // Most keys end unlike any sensitive name; one that ends in an ignorable byte is looked at closely.
    const last = buf[end - 1]!;
    if (last > 0x20 && last < 0x7f && !m.mayEnd(buf, start, end)) return false;
    let p = end;
    while (p > start && buf[p - 1] !== 0x2e) p--;
    return m.match(buf, p, end) >= 0;
  }

  /**
   * Whether the URL string at buf[start, end) has a secret parameter: a name in `params` at the start or
   * after `?`, `&`, `;` or `#`, followed by `=`.
   */
  secretParamIn(buf: Uint8Array, start: number, end: number): boolean {
    const params = this.params!;
    let nameStart = start;
    for (let i = start; i < end; i++) {
      const c = buf[i]!;
      if (c === 0x3f || c === 0x26 || c === 0x3b || c === 0x23) nameStart = i + 1;
      else if (c === 0x3d) {
        if (nameStart >= 0 && params.match(buf, nameStart, i) >= 0) return true;
        nameStart = -1;
      }
    }
    return false;
  }
}

/** Bytes of a base64url run (JWT segments, WebAuthn fields). */
export const B64URL = new Uint8Array(256);
for (let c = 0x30; c <= 0x39; c++) B64URL[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) B64URL[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) B64URL[c] = 1;
B64URL[0x2d] = 1;
B64URL[0x5f] = 1;

/** Shortest run that can hold a JWT header or a WebAuthn clientDataJSON: `e`, `y`|`w`, eight more. */
export const MIN_TOKEN_RUN = 10;
/**
 * Strings are looked into from this length. A credential JWT (a header, claims such as iss, sub and exp,
 * a signature) or a WebAuthn assertion is always longer; most attribute values are shorter, and skipping
 * them is most of what keeps the look cheap.
 */
export const MIN_TOKEN_TEXT = 40;
/**
 * Keys are looked into from this length: no attribute name a person chooses is this long, and a JWT that
 * carries claims always is. Most keys are shorter, which keeps the per-key cost to one comparison.
 */
export const MIN_TOKEN_KEY = 64;

/** A base64url run this long starting `ey`/`ew` is credential-shaped even without a dot (a WebAuthn clientDataJSON). */
export const MIN_BLOB_RUN = 40;

/**
 * Whether buf[start, end) holds a credential-shaped run: `ey` or `ew` (base64 of a JSON object's opening
 * brace, which every JOSE header and clientDataJSON starts with) then base64url bytes, either at least
 * MIN_TOKEN_RUN of them followed by a dot (a JWS or JWE header), or at least MIN_BLOB_RUN. No boundary is
 * required before it: tokens are found glued to other text (`id_token%3DeyJ…`, `jwt_eyJ…`).
 */
export function tokenShapeIn(buf: Uint8Array, start: number, end: number): boolean {
  const last = end - MIN_TOKEN_RUN;
  for (let i = start; i <= last; i++) {
    if (buf[i] !== 0x65) continue;
    const n = buf[i + 1];
    if (n !== 0x79 && n !== 0x77) continue;
    let j = i + 2;
    while (j < end && B64URL[buf[j]!] === 1) j++;
    const run = j - i;
    if (run >= MIN_BLOB_RUN || (run >= MIN_TOKEN_RUN && j < end && buf[j] === 0x2e)) return true;
    // The run holds no other `ey` start that could be longer; the dot case needs the run's end anyway.
    i = j;
  }
  return false;
}
