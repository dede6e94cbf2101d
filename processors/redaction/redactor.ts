/**
 * The redaction decision for one attribute list, with the OpenTelemetry Collector's semantics
 * (processor/redactionprocessor, processAttrs), in this order for each attribute:
 * 1. key in ignored_keys or matching ignored_key_patterns: left untouched (counted as ignored);
 * 2. allow_all_keys false and key not in allowed_keys (nor one of the summary keys): removed (redacted);
 * 3. the value's text — the string, or for other types "" (or their string form with redact_all_types) —
 *    matching an allowed_values pattern: left untouched (counted as allowed);
 * 4. key matching a blocked_key_patterns pattern: the whole value masked (each line of it, as Go's
 *    ReplaceAll with ".*" does), becoming a string;
 * 5. each blocked_values pattern in turn replacing its matches in the text; a changed text is masked.
 * Masking writes "****", or the hex digest of the masked text with hash_function.
 *
 * Built once at start-up: patterns compiled, key sets encoded, the mask function chosen.
 */
import { createHash, createHmac } from 'node:crypto';
import { VALUE_INT, VALUE_STRING, decodeUtf8, encodeInt, encodeString, type EncodedValue } from '../../pipeline/batch/batch.js';
import type { AttrList } from './attr-list.js';
import type { RedactionConfig } from './config.js';
import { compileGoRegexp, goReplaceAll, goTest, replaceEveryLine } from '../../pipeline/config/go-regexp.js';
import { readVarint64, sortGoStrings, valueAsString } from './value-string.js';

export const A_KEEP = 0;
export const A_IGNORED = 1;
export const A_REDACTED = 2;
export const A_ALLOWED = 3;
export const A_MASKED = 4;

export const SUMMARY = {
  redactedKeys: 'redaction.redacted.keys',
  redactedCount: 'redaction.redacted.count',
  maskedKeys: 'redaction.masked.keys',
  maskedCount: 'redaction.masked.count',
  allowedKeys: 'redaction.allowed.keys',
  allowedCount: 'redaction.allowed.count',
  ignoredCount: 'redaction.ignored.count',
} as const;

/**
 * Every attribute the Collector's processor writes, log body ones included: always allowed, so data that
 * passes through a second redaction processor keeps (and adds to) the first one's summary.
 */
const SUMMARY_ALLOWED = [
  ...Object.values(SUMMARY),
  'redaction.body.redacted.keys',
  'redaction.body.redacted.count',
  'redaction.body.masked.keys',
  'redaction.body.masked.count',
  'redaction.body.allowed.keys',
  'redaction.body.allowed.count',
  'redaction.body.ignored.count',
];

const utf8 = new TextEncoder();

/** A fixed set of keys compared as bytes, bucketed by length. */
export class ByteKeySet {
  private readonly byLength: Uint8Array[][] = [];

  constructor(keys: readonly string[]) {
    for (const k of new Set(keys)) {
      const b = utf8.encode(k);
      (this.byLength[b.length] ??= []).push(b);
    }
  }

  has(buf: Uint8Array, start: number, end: number): boolean {
    const bucket = this.byLength[end - start];
    if (bucket === undefined) return false;
    for (let i = 0; i < bucket.length; i++) {
      const k = bucket[i]!;
      let j = 0;
      while (j < k.length && buf[start + j] === k[j]) j++;
      if (j === k.length) return true;
    }
    return false;
  }
}

function makeMask(config: RedactionConfig): (text: string) => string {
  const key = Buffer.from(config.hmac_key ?? '', 'utf8');
  switch (config.hash_function.toLowerCase()) {
    case 'md5':
      return (t) => createHash('md5').update(t, 'utf8').digest('hex');
    case 'sha1':
      return (t) => createHash('sha1').update(t, 'utf8').digest('hex');
    case 'sha3':
      return (t) => createHash('sha3-256').update(t, 'utf8').digest('hex');
    case 'hmac-sha256':
      return (t) => createHmac('sha256', key).update(t, 'utf8').digest('hex');
    case 'hmac-sha512':
      return (t) => createHmac('sha512', key).update(t, 'utf8').digest('hex');
    default:
      return () => '****';
  }
}

const CATEGORIES = [
  { action: A_REDACTED, keys: SUMMARY.redactedKeys, count: SUMMARY.redactedCount },
  { action: A_MASKED, keys: SUMMARY.maskedKeys, count: SUMMARY.maskedCount },
  { action: A_ALLOWED, keys: SUMMARY.allowedKeys, count: SUMMARY.allowedCount },
  { action: A_IGNORED, keys: null, count: SUMMARY.ignoredCount },
].map((c) => ({ ...c, keysBytes: c.keys === null ? null : utf8.encode(c.keys), countBytes: utf8.encode(c.count) }));

export class Redactor {
  private readonly allowAll: boolean;
  private readonly allowed: ByteKeySet;
  private readonly ignored: ByteKeySet;
  private readonly ignoredPatterns: RegExp[];
  private readonly blockedKeyPatterns: RegExp[];
  private readonly blockedValues: RegExp[];
  private readonly allowedValues: RegExp[];
  private readonly redactAllTypes: boolean;
  private readonly inspectsValues: boolean;
  private readonly summary: 'debug' | 'info' | 'silent';
  readonly mask: (text: string) => string;

  // Counts of the last decide(), by action.
  readonly counts = new Int32Array(5);
  /** The summary attributes of the last summarize(): keys and encoded values, `summaryCount` of them. */
  readonly summaryKeys: Uint8Array[] = [];
  readonly summaryValues: EncodedValue[] = [];
  summaryCount = 0;

  constructor(config: RedactionConfig) {
    this.allowAll = config.allow_all_keys;
    this.allowed = new ByteKeySet([...config.allowed_keys, ...SUMMARY_ALLOWED]);
    this.ignored = new ByteKeySet(config.ignored_keys);
    this.ignoredPatterns = config.ignored_key_patterns.map(compileGoRegexp);
    this.blockedKeyPatterns = config.blocked_key_patterns.map(compileGoRegexp);
    this.blockedValues = config.blocked_values.map(compileGoRegexp);
    this.allowedValues = config.allowed_values.map(compileGoRegexp);
    this.redactAllTypes = config.redact_all_types;
    this.inspectsValues = this.allowedValues.length + this.blockedKeyPatterns.length + this.blockedValues.length > 0;
    this.summary = config.summary === '' ? 'silent' : (config.summary as 'debug' | 'info' | 'silent');
    this.mask = makeMask(config);
  }

  /** Whether no attribute can ever be changed or summarized (allow_all_keys alone): batches pass as they are. */
  get noop(): boolean {
    return this.allowAll && !this.inspectsValues && this.summary === 'silent';
  }

  /** Whether the last decide() removes or masks anything. */
  get changes(): boolean {
    return this.counts[A_REDACTED]! + this.counts[A_MASKED]! > 0;
  }

  /** Decides every attribute of `list` (read from `buf`): fills list.action and list.masked, and counts. */
  decide(buf: Uint8Array, list: AttrList): void {
    const counts = this.counts;
    counts.fill(0);
    for (let i = 0; i < list.count; i++) {
      const a = this.decideOne(buf, list, i);
      list.action[i] = a;
      counts[a]!++;
    }
  }

  private decideOne(buf: Uint8Array, list: AttrList, i: number): number {
    const ks = list.kStart[i]!;
    const ke = list.kEnd[i]!;
    let key: string | null = null;
    if (this.ignored.has(buf, ks, ke)) return A_IGNORED;
    if (this.ignoredPatterns.length > 0) {
      key = decodeUtf8(buf, ks, ke);
      if (anyMatch(this.ignoredPatterns, key)) return A_IGNORED;
    }
    if (!this.allowAll && !this.allowed.has(buf, ks, ke)) return A_REDACTED;
    if (!this.inspectsValues) return A_KEEP;
    const kind = list.kind[i]!;
    const text =
      kind === VALUE_STRING ? decodeUtf8(buf, list.vStart[i]!, list.vEnd[i]!) : this.redactAllTypes ? valueAsString(buf, kind, list.vStart[i]!, list.vEnd[i]!) : '';
    if (anyMatch(this.allowedValues, text)) return A_ALLOWED;
    if (this.blockedKeyPatterns.length > 0 && anyMatch(this.blockedKeyPatterns, key ?? decodeUtf8(buf, ks, ke))) {
      list.masked[i] = replaceEveryLine(text, this.mask);
      return A_MASKED;
    }
    let out = text;
    for (let p = 0; p < this.blockedValues.length; p++) {
      const re = this.blockedValues[p]!;
      if (goTest(re, out)) out = goReplaceAll(re, out, this.mask);
    }
    if (out === text) return A_KEEP;
    list.masked[i] = out;
    return A_MASKED;
  }

  /**
   * The summary attributes for the list just decided, as the Collector writes them: per category with a
   * non-zero count, `redaction.<category>.count` (added to a count already on the list) and, at debug,
   * `redaction.<category>.keys` (merged with keys already listed there, sorted, comma-separated).
   */
  summarize(buf: Uint8Array, list: AttrList): number {
    this.summaryCount = 0;
    if (this.summary === 'silent') return 0;
    for (const c of CATEGORIES) {
      const n = this.counts[c.action]!;
      if (n === 0) continue;
      if (this.summary === 'debug' && c.keysBytes !== null) {
        const keys: string[] = [];
        for (let i = 0; i < list.count; i++) if (list.action[i] === c.action) keys.push(decodeUtf8(buf, list.kStart[i]!, list.kEnd[i]!));
        const existing = this.finalString(buf, list, c.keysBytes);
        if (existing !== '') for (const k of existing.split(',')) keys.push(k);
        this.push(c.keysBytes, encodeString(sortGoStrings(keys).join(',')));
      }
      this.push(c.countBytes, encodeInt(this.finalInt(buf, list, c.countBytes) + BigInt(n)));
    }
    return this.summaryCount;
  }

  /** Whether the last summarize() writes the key of attribute i (so it needs no other edit). */
  summaryWrites(buf: Uint8Array, list: AttrList, i: number): boolean {
    for (let s = 0; s < this.summaryCount; s++) {
      const k = this.summaryKeys[s]!;
      if (list.kEnd[i]! - list.kStart[i]! === k.length && keyEquals(buf, list.kStart[i]!, k)) return true;
    }
    return false;
  }

  private push(key: Uint8Array, value: EncodedValue): void {
    this.summaryKeys[this.summaryCount] = key;
    this.summaryValues[this.summaryCount] = value;
    this.summaryCount++;
  }

  /** The first attribute with this key, after this pass's masking; -1 when absent. */
  private first(buf: Uint8Array, list: AttrList, key: Uint8Array): number {
    for (let i = 0; i < list.count; i++) {
      if (list.kEnd[i]! - list.kStart[i]! === key.length && keyEquals(buf, list.kStart[i]!, key)) return i;
    }
    return -1;
  }

  /** Go's Value.Str() of the first such attribute after masking: "" when absent or not a string. */
  private finalString(buf: Uint8Array, list: AttrList, key: Uint8Array): string {
    const i = this.first(buf, list, key);
    if (i < 0) return '';
    if (list.action[i] === A_MASKED) return list.masked[i]!;
    return list.kind[i] === VALUE_STRING ? decodeUtf8(buf, list.vStart[i]!, list.vEnd[i]!) : '';
  }

  /** Go's Value.Int() of the first such attribute after masking: 0 when absent or not an integer. */
  private finalInt(buf: Uint8Array, list: AttrList, key: Uint8Array): bigint {
    const i = this.first(buf, list, key);
    if (i < 0 || list.action[i] === A_MASKED || list.kind[i] !== VALUE_INT) return 0n;
    return readVarint64(buf, list.vStart[i]!, list.vEnd[i]!);
  }
}

function keyEquals(buf: Uint8Array, start: number, key: Uint8Array): boolean {
  for (let j = 0; j < key.length; j++) if (buf[start + j] !== key[j]) return false;
  return true;
}

function anyMatch(patterns: readonly RegExp[], text: string): boolean {
  for (let i = 0; i < patterns.length; i++) if (goTest(patterns[i]!, text)) return true;
  return false;
}
