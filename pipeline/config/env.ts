/**
 * `${env:VAR}`, `${VAR}`, `${env:VAR:-default}` and `${file:path}` expansion, as the OpenTelemetry
 * Collector does it: `$$` is a literal `$`; a value that is exactly one reference takes the type its
 * expansion reads as in YAML (so `limit_mib: ${env:LIMIT}` is a number); an unset variable without a
 * default expands to the empty string and is reported as a warning; an unknown scheme is an error naming it.
 */
import { readFileSync } from 'node:fs';


/**
 * A value that was one whole `${env:...}` reference and reads as a non-string YAML scalar: kept in both
 * forms so a string field gets the text exactly as set (a numeric-looking token stays intact) and a
 * number or boolean field gets the typed value, as the Collector does.
 */
export class EnvValue {
  constructor(
    readonly typed: number | boolean | null,
    readonly text: string,
  ) {}
}

const REF = /\$\$|\$\{([^}]*)\}/g;
const ENV_REF = /^(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$/s;
const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):/;

export interface Expansion {
  value: string;
  /** The whole value was a single reference: its result may be re-read as a typed scalar. */
  whole: boolean;
  problems: { message: string; warning: boolean }[];
}

/**
 * Expands the references in one YAML string value. `${NAME}` and `${env:NAME}` read the environment (env is
 * the Collector's default scheme), `${env:NAME:-default}` falls back when unset or empty, `${file:path}` is
 * the file's content (one trailing newline dropped, as a token file usually ends with one), `$$` is `$`.
 */
export function expandEnv(text: string, env: Readonly<Record<string, string | undefined>>): Expansion {
  const problems: Expansion['problems'] = [];
  let refs = 0;
  let literal = false;
  const value = text.replace(REF, (match, inner: string | undefined) => {
    if (match === '$$') {
      literal = true;
      return '$';
    }
    refs++;
    const ref = inner ?? '';
    const e = ENV_REF.exec(ref);
    if (e !== null) {
      const [, name, dflt] = e;
      const v = env[name!];
      if (v !== undefined && v !== '') return v;
      if (dflt !== undefined) return dflt;
      if (v === undefined) problems.push({ message: `environment variable ${name} is not set; it expands to an empty string`, warning: true });
      return '';
    }
    const scheme = SCHEME.exec(ref)?.[1];
    if (scheme === 'file') {
      const path = ref.slice('file:'.length);
      try {
        return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
      } catch (err) {
        problems.push({ message: `cannot read \${file:${path}} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, warning: false });
        return '';
      }
    }
    problems.push({
      message:
        scheme !== undefined
          ? `unsupported scheme "${scheme}" in \${${ref}}: the schemes are env (\${env:NAME}, \${NAME}) and file (\${file:path})`
          : `invalid reference \${${ref}}: expected \${NAME}, \${env:NAME}, \${env:NAME:-default} or \${file:path} (write $$ for a literal $)`,
      warning: false,
    });
    return match;
  });
  const whole = refs === 1 && !literal && /^\$\{[^}]*\}$/.test(text);
  return { value, whole, problems };
}
