import { invalid } from '../../domain/errors.ts';

/** One argument of a JSON-RPC method: its type, whether it is required, its default and other accepted names. */
export interface ArgSpec {
  type: 'string' | 'bool';
  required?: boolean;
  default?: string | boolean | null;
  /** other names the seed or later RhodeCode versions use for the same argument */
  aliases?: string[];
  /** the string may be null */
  nullable?: boolean;
}

export type ArgValues = Record<string, string | boolean | null | undefined>;

function asBool(v: unknown, name: string): boolean {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string' && /^(true|false|1|0)$/i.test(v)) return /^(true|1)$/i.test(v);
  if (v === 1 || v === 0) return v === 1;
  throw invalid(`argument "${name}" must be a boolean`);
}

/**
 * Checks `raw` against `spec`: unknown arguments, missing required ones and
 * wrong types are errors naming the argument; defaults fill the rest.
 */
export function parseArgs(spec: Record<string, ArgSpec>, raw: unknown): ArgValues {
  if (raw === undefined || raw === null) raw = {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw invalid('"args" must be a JSON object');
  const byName = new Map<string, string>();
  for (const [name, s] of Object.entries(spec)) {
    byName.set(name, name);
    for (const a of s.aliases ?? []) byName.set(a, name);
  }
  const out: ArgValues = {};
  const unexpected: string[] = [];
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    const name = byName.get(key);
    if (!name) {
      unexpected.push(key);
      continue;
    }
    if (out[name] !== undefined) throw invalid(`argument "${name}" given twice (as "${key}" and another name)`);
    const s = spec[name]!;
    if (value === null && (s.nullable || !s.required)) {
      out[name] = s.type === 'string' && s.nullable ? null : undefined;
      continue;
    }
    if (s.type === 'bool') out[name] = asBool(value, key);
    else if (typeof value === 'string') out[name] = value;
    else throw invalid(`argument "${key}" must be a string`);
  }
  if (unexpected.length) throw invalid(`unexpected argument(s): ${unexpected.map((u) => `"${u.slice(0, 50)}"`).join(', ')}`);
  const missing = Object.entries(spec)
    .filter(([n, s]) => s.required && out[n] === undefined)
    .map(([n]) => `"${n}"`);
  if (missing.length) throw invalid(`missing required argument(s): ${missing.join(', ')}`);
  for (const [n, s] of Object.entries(spec)) if (out[n] === undefined && s.default !== undefined) out[n] = s.default;
  return out;
}
