import { s, type Infer } from '../../pipeline/config/schema.js';
import { goRegexpProblem } from '../../pipeline/config/go-regexp.js';

const refused = s.refused;

/** An RE2 pattern, checked (and refused with the reason) at load time. */
const pattern = () => s.string().refine(goRegexpProblem);
const patterns = () => s.array(pattern()).default([]);

export const HASH_FUNCTIONS = ['md5', 'sha1', 'sha3', 'hmac-sha256', 'hmac-sha512'] as const;
export type HashFunction = (typeof HASH_FUNCTIONS)[number] | '';

const SUMMARIES = ['debug', 'info', 'silent'] as const;

export const redactionConfigSchema = s
  .object({
    /** Keep every attribute key (allowed_keys is then unused); blocked_values still apply. */
    allow_all_keys: s.bool().default(false),
    /** Attribute keys kept; every other attribute is removed. Empty with allow_all_keys false removes all. */
    allowed_keys: s.array(s.string()).default([]),
    /** Attribute keys passed through untouched, never removed or masked. */
    ignored_keys: s.array(s.string()).default([]),
    /** Patterns for attribute keys passed through untouched. */
    ignored_key_patterns: patterns(),
    /** Patterns for attribute keys whose whole value is masked. */
    blocked_key_patterns: patterns(),
    /** Patterns whose matches inside attribute values are masked. */
    blocked_values: patterns(),
    /** Patterns for values left untouched (checked before blocked_key_patterns and blocked_values). */
    allowed_values: patterns(),
    /** Match non-string values too, by their string form (the masked result is then a string). */
    redact_all_types: s.bool().default(false),
    /** Replace masked text by its hex digest instead of "****". Case-insensitive, as in the Collector. */
    hash_function: s
      .string()
      .default('')
      .refine((v) => (v === '' || (HASH_FUNCTIONS as readonly string[]).includes(v.toLowerCase()) ? null : `expected one of ${HASH_FUNCTIONS.join(', ')}, got ${JSON.stringify(v)}`)),
    /** The HMAC key for hmac-sha256 (at least 32 bytes) and hmac-sha512 (at least 64 bytes). */
    hmac_key: s.string().optional(),
    /** Diagnostic attributes written where something was changed: debug (keys and counts), info (counts), silent. */
    summary: s
      .string()
      .default('silent')
      .refine((v) => (v === '' || (SUMMARIES as readonly string[]).includes(v) ? null : `expected one of ${SUMMARIES.join(', ')}, got ${JSON.stringify(v)}`)),
    url_sanitizer: refused('url_sanitizer is not supported by this redaction processor; remove it (URLs are left as they are) or sanitize URLs upstream'),
    db_sanitizer: refused('db_sanitizer is not supported by this redaction processor; remove it (queries are left as they are) or use blocked_values patterns for literals'),
    skip_conditions: refused('skip_conditions (OTTL) is not supported by this redaction processor; remove it (every resource, scope, span and event is processed)'),
  })
  .refine((c) => {
    const fn = c.hash_function.toLowerCase();
    const key = c.hmac_key;
    if (fn === 'hmac-sha256' || fn === 'hmac-sha512') {
      const min = fn === 'hmac-sha256' ? 32 : 64;
      if (key === undefined || key === '') return `hash_function ${fn} needs hmac_key`;
      if (Buffer.byteLength(key, 'utf8') < min) return `hmac_key must be at least ${min} bytes for ${fn}`;
    } else if (key !== undefined && key !== '') {
      return `hmac_key is set but hash_function is ${fn === '' ? 'not set' : fn}; it would have no effect`;
    }
    return null;
  });

export type RedactionConfig = Infer<typeof redactionConfigSchema>;
