/**
 * The close look at the resources, scopes and spans that the validating scan marked (see
 * pipeline/batch/inspection.ts): each field that holds something to remove is rebuilt and replaced in the batch.
 * - an attribute, at any level, whose key is protected (folded: case, surrounding whitespace and
 *   invisible characters ignored) is removed; so is a key-value list attribute under a protected dotted
 *   prefix that holds a protected key (`identity: {verified: true}`). On spans and resources the
 *   processor's own strip pass removes the top-level ones; here they are left to it;
 * - the value of an attribute whose key ends in a sensitive header name (`…authorization`, `cookie`, at any
 *   level, nested in lists too) is replaced by a fingerprint, keeping an auth scheme (`Bearer redacted:…`);
 * - secret query parameters in URL attributes keep their name and lose their value;
 * - JWT-shaped values in any string are replaced by their fingerprint, and a string holding a WebAuthn
 *   assertion is replaced whole.
 * Marked units are rare, so this path builds strings and small buffers freely; unmarked ones never get here.
 */
import type { TraceBatch } from '../../pipeline/batch/batch.js';
import { foldKey } from '../../pipeline/batch/key-matcher.js';
import { Inspection, MIN_TOKEN_KEY, PROTECT_EXACT, PROTECT_PREFIX, URL_KEY, tokenShapeIn } from '../../pipeline/batch/inspection.js';
import { WireReader, WT_LEN, varintSize, writeVarint } from '../../pipeline/batch/wire.js';
import { fingerprint, redacted } from './fingerprint.js';

export const SCRUB_KINDS = ['protected_key', 'header', 'url_parameter', 'token', 'webauthn'] as const;
export type ScrubKind = (typeof SCRUB_KINDS)[number];

/** Counts per ScrubKind, indexed like SCRUB_KINDS; the caller reads and clears them. */
export type ScrubTally = Float64Array;

const K_PROTECTED = 0;
const K_HEADER = 1;
const K_URL = 2;
const K_TOKEN = 3;
const K_WEBAUTHN = 4;

// No boundary before a token: they are found glued to other text (`id_token%3DeyJ…`, `jwt_eyJ…`).
const JWT = /e[wy][A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*)?/g;
const TOKEN_RUN = /e[wy][A-Za-z0-9_-]{8,}/;
const LONG_RUN = /e[wy][A-Za-z0-9_-]{38,}={0,2}/g;
const WEBAUTHN_MARKERS = /clientDataJSON|authenticatorData/i;
const SCHEME_AND_CREDENTIAL = /^(\s*[A-Za-z][A-Za-z0-9._~+/-]*\s+)(\S+)(\s*)$/;

const EMPTY = new Uint8Array(0);
/** keyValue(): the attribute goes (a protected key, here or nested). */
const DROP = 1;
/** keyValue(): a top-level protected attribute the strip pass removes; nothing to do here. */
const STRIPPED = 2;
type Rewritten = Uint8Array | typeof DROP | typeof STRIPPED | null;

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

export class Sanitizer {
  private readonly r = new WireReader();
  private buf: Uint8Array = EMPTY;

  constructor(
    private readonly inspection: Inspection,
    readonly tally: ScrubTally = new Float64Array(SCRUB_KINDS.length),
  ) {}

  /** Rewrites every marked unit of the batch (the batch must have been inspected with this inspection). */
  sanitize(batch: TraceBatch): void {
    if (batch.markedCount === 0) return;
    this.buf = batch.bytes;
    for (let r = 0; r < batch.resourceCount; r++) if (batch.resourceMarked(r)) this.resource(batch, r);
    for (let s = 0; s < batch.scopeCount; s++) if (batch.scopeMarked(s)) this.scope(batch, s);
    for (let p = 0; p < batch.spanCount; p++) if (batch.spanMarked(p) && !batch.isDropped(p)) this.span(batch, p);
    this.buf = EMPTY;
  }

  private resource(batch: TraceBatch, r: number): void {
    const start = batch.resourceStart(r);
    if (start < 0) return;
    this.eachField(start, batch.resourceEnd(r), (field, fs, cs, ce, fe) => {
      if (field !== 1) {
        if (this.unknownHoldsToken(field, 2, cs, ce)) batch.replaceInResource(r, fs, fe, EMPTY);
        return;
      }
      const out = this.keyValue(cs, ce, null, true, true);
      if (out === STRIPPED || out === null) return;
      batch.replaceInResource(r, fs, fe, out === DROP ? EMPTY : lenField(1, out));
    });
  }

  private scope(batch: TraceBatch, s: number): void {
    const fs = batch.scopeFieldStart(s);
    if (fs < 0) return;
    const fe = batch.scopeFieldEnd(s);
    const r = this.r;
    r.reset(this.buf, fs);
    r.uint32(fe);
    r.uint32(fe);
    const content = this.rebuild(r.pos, fe, (field, cs, ce) => {
      if (field === 1 || field === 2) return this.textField(field, cs, ce);
      if (field === 3) return this.listAttribute(3, cs, ce);
      return this.unknownHoldsToken(field, 4, cs, ce) ? EMPTY : null;
    });
    if (content !== null) batch.replaceInScope(s, fs, fe, lenField(1, content));
  }

  private span(batch: TraceBatch, p: number): void {
    this.eachField(batch.spanStart(p), batch.spanEnd(p), (field, fs, cs, ce, fe) => {
      let out: Uint8Array | null = null;
      switch (field) {
        case 3:
        case 5:
          out = this.textField(field, cs, ce);
          break;
        case 9: {
          const kv = this.keyValue(cs, ce, null, true, true);
          if (kv === STRIPPED || kv === null) return;
          out = kv === DROP ? EMPTY : lenField(9, kv);
          break;
        }
        case 11:
          out = this.wrap(11, this.rebuild(cs, ce, (f, s, e) => (f === 2 ? this.textField(2, s, e) : f === 3 ? this.listAttribute(3, s, e) : this.unknownHoldsToken(f, 4, s, e) ? EMPTY : null)));
          break;
        case 13:
          out = this.wrap(13, this.rebuild(cs, ce, (f, s, e) => (f === 3 ? this.textField(3, s, e) : f === 4 ? this.listAttribute(4, s, e) : this.unknownHoldsToken(f, 6, s, e) ? EMPTY : null)));
          break;
        case 15:
          out = this.wrap(15, this.rebuild(cs, ce, (f, s, e) => (f === 2 ? this.textField(2, s, e) : this.unknownHoldsToken(f, 3, s, e) ? EMPTY : null)));
          break;
        default:
          if (!this.unknownHoldsToken(field, 16, cs, ce)) return;
          out = EMPTY;
      }
      if (out !== null) batch.replaceInSpan(p, fs, fe, out);
    });
  }

  /**
   * Whether a length-delimited field beyond the schema's `lastKnown` holds a credential shape: a newer
   * schema may decode it as text, and it cannot be rewritten field by field, so it is removed whole.
   */
  private unknownHoldsToken(field: number, lastKnown: number, start: number, end: number): boolean {
    if (field <= lastKnown || !this.inspection.tokens || !tokenShapeIn(this.buf, start, end)) return false;
    this.tally[K_TOKEN]!++;
    return true;
  }

  private wrap(field: number, content: Uint8Array | null): Uint8Array | null {
    return content === null ? null : lenField(field, content);
  }

  /** An attribute in a list other than a span's or a resource's own: protected keys go here too. */
  private listAttribute(field: number, start: number, end: number): Uint8Array | null {
    const kv = this.keyValue(start, end, null, false, true);
    if (kv === null || kv === STRIPPED) return null;
    return kv === DROP ? EMPTY : lenField(field, kv);
  }

  /** A string field, scrubbed of tokens: the new field, or null when unchanged. */
  private textField(field: number, start: number, end: number): Uint8Array | null {
    const s = this.scrubText(utf8Decoder.decode(this.buf.subarray(start, end)));
    return s === null ? null : lenField(field, utf8.encode(s));
  }

  /**
   * A KeyValue's new content; null when unchanged, DROP when it must go, STRIPPED when it is a top-level
   * span or resource attribute the strip pass removes. `path` is the folded dotted path of the lists above.
   */
  private keyValue(start: number, end: number, path: string | null, ownList: boolean, top: boolean, credential = false): Rewritten {
    const r = this.r;
    let key = '';
    let keyBytes: Uint8Array | null = null;
    let vStart = -1;
    let vEnd = -1;
    let vHeader = -1;
    // Rebuilt from key and value alone when an unknown field beside them holds a token.
    let dropUnknown = false;
    r.reset(this.buf, start);
    while (r.pos < end) {
      const fieldStart = r.pos;
      const tag = r.uint32(end);
      if (tag === 0x0a) {
        const stop = r.lengthDelimitedEnd(end);
        keyBytes = this.buf.subarray(r.pos, stop);
        key = utf8Decoder.decode(keyBytes);
        r.pos = stop;
      } else if (tag === 0x12) {
        vHeader = fieldStart;
        vEnd = r.lengthDelimitedEnd(end);
        vStart = r.pos;
        r.pos = vEnd;
      } else if ((tag & 7) === WT_LEN) {
        const stop = r.lengthDelimitedEnd(end);
        if (this.unknownHoldsToken(tag >>> 3, 2, r.pos, stop)) dropUnknown = true;
        r.pos = stop;
      } else r.skip(tag & 7, end);
    }
    const folded = path === null ? foldKey(key) : `${path}.${foldKey(key)}`;
    const m = this.inspection.keys.matchString(folded);
    const cls = m < 0 ? 0 : this.inspection.keyClasses[m]!;
    if ((cls & PROTECT_EXACT) !== 0) {
      if (top && ownList) return STRIPPED;
      this.tally[K_PROTECTED]!++;
      return DROP;
    }
    // A KeyValue without a key decodes as the empty key: its value is still looked at.
    keyBytes ??= EMPTY;
    // A long key may be a credential written where a name belongs; it is fingerprinted like any text.
    const scrubbedKey = keyBytes.length >= MIN_TOKEN_KEY ? this.scrubText(key) : null;
    if (scrubbedKey !== null) keyBytes = utf8.encode(scrubbedKey);
    const rekey = scrubbedKey !== null || dropUnknown;
    if (vStart < 0) return rekey ? lenField(1, keyBytes) : null;
    let value: Rewritten;
    if (credential || this.inspection.sensitiveTail(keyBytes, 0, keyBytes.length)) {
      if (!credential) this.tally[K_HEADER]!++;
      value = this.anyValue(vStart, vEnd, (cls & PROTECT_PREFIX) !== 0 ? folded : null, false, true);
    } else {
      const url = (this.inspection.keyClass(keyBytes, 0, keyBytes.length) & URL_KEY) !== 0;
      value = this.anyValue(vStart, vEnd, (cls & PROTECT_PREFIX) !== 0 ? folded : null, url, false);
    }
    // A protected key nested under a protected prefix: the whole attribute goes, from the top.
    if (value === DROP) return DROP;
    if (value === null || value === STRIPPED) {
      if (!rekey) return null;
      return concat([lenField(1, keyBytes), this.buf.subarray(vHeader, vEnd)]);
    }
    return concat([lenField(1, keyBytes), lenField(2, value)]);
  }

  /**
   * An AnyValue's new content, null when unchanged, DROP when a nested protected key was found.
   * `prefix` is the folded path when it is a protected prefix (nested keys may complete it); `url`, a URL
   * attribute's value; `credential`, a sensitive header's value: every string and bytes in it is replaced.
   */
  private anyValue(start: number, end: number, prefix: string | null, url: boolean, credential: boolean): Rewritten {
    // The scan refused an AnyValue with more than one member; unknown fields beside it are kept as they are.
    const r = this.r;
    r.reset(this.buf, start);
    let field = 0;
    let fieldStart = -1;
    let contentStart = -1;
    let ce = -1;
    let dropUnknown = false;
    while (r.pos < end) {
      const fs = r.pos;
      const tag = r.uint32(end);
      const f = tag >>> 3;
      if ((tag & 7) === WT_LEN && (f === 1 || f === 5 || f === 6 || f === 7)) {
        ce = r.lengthDelimitedEnd(end);
        field = f;
        fieldStart = fs;
        contentStart = r.pos;
        r.pos = ce;
      } else if ((tag & 7) === WT_LEN) {
        const stop = r.lengthDelimitedEnd(end);
        if (this.unknownHoldsToken(f, 7, r.pos, stop)) dropUnknown = true;
        r.pos = stop;
      } else r.skip(tag & 7, end);
    }
    const member = fieldStart < 0 ? null : this.member(field, contentStart, ce, prefix, url, credential);
    if (member === DROP || member === STRIPPED) return member;
    // With an unknown field to drop, the value is its member alone; else unknown fields stay where they were.
    if (dropUnknown) return member ?? (fieldStart < 0 ? EMPTY : this.buf.subarray(fieldStart, ce));
    if (member === null) return null;
    return concat([this.buf.subarray(start, fieldStart), member, this.buf.subarray(ce, end)]);
  }

  /** The new field for AnyValue member `field` with content [contentStart, ce); null when unchanged. */
  private member(field: number, contentStart: number, ce: number, prefix: string | null, url: boolean, credential: boolean): Rewritten {
    const r = this.r;
    if (credential && field === 1) return lenField(1, utf8.encode(redactCredential(utf8Decoder.decode(this.buf.subarray(contentStart, ce)))));
    if (credential && field === 7) return lenField(1, utf8.encode(redacted(Buffer.from(this.buf.subarray(contentStart, ce)).toString('latin1'))));
    switch (field) {
      case 1: {
        let s: string | null = utf8Decoder.decode(this.buf.subarray(contentStart, ce));
        let changed = false;
        if (url) {
          const u = this.scrubUrl(s);
          if (u !== null) {
            s = u;
            changed = true;
          }
        }
        const t = this.scrubText(s);
        if (t !== null) {
          s = t;
          changed = true;
        }
        return changed ? lenField(1, utf8.encode(s)) : null;
      }
      case 7: {
        const t = this.scrubText(Buffer.from(this.buf.buffer, this.buf.byteOffset + contentStart, ce - contentStart).toString('latin1'));
        return t === null ? null : lenField(7, Buffer.from(t, 'latin1'));
      }
      case 5:
      case 6: {
        const kv = field === 6;
        let changed = false;
        const parts: Uint8Array[] = [];
        let p = contentStart;
        while (p < ce) {
          r.reset(this.buf, p);
          const t = r.uint32(ce);
          let out: Rewritten = null;
          let stop: number;
          if (t === 0x0a) {
            stop = r.lengthDelimitedEnd(ce);
            out = kv ? this.keyValue(r.pos, stop, prefix, false, false, credential) : this.anyValue(r.pos, stop, prefix, url, credential);
          } else if ((t & 7) === WT_LEN) {
            stop = r.lengthDelimitedEnd(ce);
            if (this.unknownHoldsToken(t >>> 3, 1, r.pos, stop)) {
              changed = true;
              p = stop;
              continue;
            }
          } else {
            r.skip(t & 7, ce);
            stop = r.pos;
          }
          if (out === DROP) return DROP;
          if (out === null || out === STRIPPED) parts.push(this.buf.subarray(p, stop));
          else {
            changed = true;
            parts.push(lenField(1, out));
          }
          p = stop;
        }
        return changed ? lenField(field, concat(parts)) : null;
      }
      default:
        return null;
    }
  }

  /** Secret query parameters of a URL with their values fingerprinted; null when it has none. */
  private scrubUrl(s: string): string | null {
    const params = this.inspection.params;
    if (params === null) return null;
    let changed = false;
    const out = s.replace(/(^|[?&;#])([^=?&;#]*)=([^&;#]*)/g, (whole, sep: string, name: string, value: string) => {
      if (params.matchString(name) < 0 || value === '') return whole;
      changed = true;
      this.tally[K_URL]!++;
      return `${sep}${name}=${redacted(value)}`;
    });
    return changed ? out : null;
  }

  /** A string with its credential-shaped parts replaced; null when it has none. */
  scrubText(s: string): string | null {
    if (!this.inspection.tokens || !TOKEN_RUN.test(s)) return null;
    if (WEBAUTHN_MARKERS.test(s) || containsEncodedAssertion(s)) {
      this.tally[K_WEBAUTHN]!++;
      return redacted(s);
    }
    let changed = false;
    const out = s.replace(JWT, (match) => {
      changed = true;
      this.tally[K_TOKEN]!++;
      // Glued to text that itself starts `ey` (`keyXeyJhbG…`), the token starts at its own header's `eyJ`:
      // the text before it stays, and the fingerprint is the token's.
      const dot = match.indexOf('.');
      const at = match.lastIndexOf('eyJ', dot);
      const start = at > 0 && dot - at >= 10 ? at : 0;
      return `${match.slice(0, start)}redacted:${fingerprint(match.slice(start))}`;
    });
    return changed ? out : null;
  }

  /** Calls `each` with every field of the message at [start, end): number, field start, content range, field end. */
  private eachField(start: number, end: number, each: (field: number, fieldStart: number, contentStart: number, contentEnd: number, fieldEnd: number) => void): void {
    const r = new WireReader();
    r.reset(this.buf, start);
    while (r.pos < end) {
      const fs = r.pos;
      const tag = r.uint32(end);
      if ((tag & 7) === WT_LEN) {
        const stop = r.lengthDelimitedEnd(end);
        const cs = r.pos;
        r.pos = stop;
        each(tag >>> 3, fs, cs, stop, stop);
      } else r.skip(tag & 7, end);
    }
  }

  /**
   * The message at [start, end) with length-delimited fields replaced where `replace` returns bytes (a whole
   * field, or empty to remove it); null when nothing changed.
   */
  private rebuild(start: number, end: number, replace: (field: number, contentStart: number, contentEnd: number) => Uint8Array | null): Uint8Array | null {
    const parts: Uint8Array[] = [];
    let changed = false;
    let copied = start;
    this.eachField(start, end, (field, fs, cs, ce, fe) => {
      const out = replace(field, cs, ce);
      if (out === null) return;
      changed = true;
      parts.push(this.buf.subarray(copied, fs), out);
      copied = fe;
    });
    if (!changed) return null;
    parts.push(this.buf.subarray(copied, end));
    return concat(parts);
  }
}

/** A credential header value: the scheme kept, the credential fingerprinted. */
function redactCredential(value: string): string {
  const m = SCHEME_AND_CREDENTIAL.exec(value);
  return m === null ? redacted(value) : `${m[1]}${redacted(m[2]!)}${m[3]}`;
}

/** Whether a long base64url run decodes to a WebAuthn assertion (an AuthenticationResponseJSON, encoded). */
function containsEncodedAssertion(s: string): boolean {
  LONG_RUN.lastIndex = 0;
  for (let m = LONG_RUN.exec(s); m !== null; m = LONG_RUN.exec(s)) {
    if (WEBAUTHN_MARKERS.test(Buffer.from(m[0], 'base64url').toString('latin1'))) return true;
  }
  return false;
}

function lenField(field: number, content: Uint8Array): Uint8Array {
  const tag = (field << 3) | WT_LEN;
  const out = new Uint8Array(varintSize(tag) + varintSize(content.length) + content.length);
  let p = writeVarint(out, 0, tag);
  p = writeVarint(out, p, content.length);
  out.set(content, p);
  return out;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  return Buffer.concat(parts);
}
