import { readFile } from 'node:fs/promises';
import type { LightstepConfig } from './config.js';

/**
 * The access token, from the config or read from its file at start. Errors name the file, never its
 * content.
 */
export async function resolveAccessToken(c: LightstepConfig): Promise<string> {
  if (c.access_token !== undefined) return c.access_token;
  const file = c.access_token_file!;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new Error(`cannot read access_token_file ${file}: ${code}`);
  }
  const token = text.trim();
  if (token === '') throw new Error(`access_token_file ${file} is empty`);
  if (/[\r\n]/.test(token)) throw new Error(`access_token_file ${file} must hold a single line`);
  return token;
}
