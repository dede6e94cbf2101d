/**
 * `${env:VAR}` and `${env:VAR:-default}` expansion, as the OpenTelemetry Collector does it: `$$` is a
 * literal `$`; a value that is exactly one reference takes the type its expansion reads as in YAML (so
 * `limit_mib: ${env:LIMIT}` is a number); an unset variable without a default expands to the empty string
 * and is reported as a warning.
 */

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

const REF = /\$\$|\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{([^}]*)\}/g;

export interface Expansion {
  value: string;
  /** The whole value was a single reference: its result may be re-read as a typed scalar. */
  whole: boolean;
  problems: { message: string; warning: boolean }[];
}

export function expandEnv(text: string, env: Readonly<Record<string, string | undefined>>): Expansion {
  const problems: Expansion['problems'] = [];
  let refs = 0;
  let literal = false;
  const value = text.replace(REF, (match, name: string | undefined, dflt: string | undefined, other: string | undefined) => {
    if (match === '$$') {
      literal = true;
      return '$';
    }
    refs++;
    if (name === undefined) {
      problems.push({ message: `unsupported reference \${${other}}: use \${env:NAME} or \${env:NAME:-default}`, warning: false });
      return match;
    }
    const v = env[name];
    if (v !== undefined && v !== '') return v;
    if (dflt !== undefined) return dflt;
    if (v === undefined) problems.push({ message: `environment variable ${name} is not set; it expands to an empty string`, warning: true });
    return '';
  });
  const whole = refs === 1 && !literal && /^\$\{env:[^}]*\}$/.test(text);
  return { value, whole, problems };
}
