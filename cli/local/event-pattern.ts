/**
 * EventBridge event pattern matching, as documented in "Amazon EventBridge event patterns": every field of the
 * pattern must match; a leaf is an array of alternatives — literals (exact, case-sensitive, also matching an element
 * of an array field), `{prefix}`, `{suffix}`, `{"equals-ignore-case"}`, `{wildcard}`, `{"anything-but"}`,
 * `{numeric}`, `{exists}` and `{cidr}` is not supported (refused, not ignored). `$or` combines sub-patterns.
 */

export class UnsupportedEventPatternError extends Error {
  public readonly code = 'UNSUPPORTED_EVENT_PATTERN';
  public constructor(what: string) {
    super(`event pattern operator not supported locally: ${what}`);
    this.name = 'UnsupportedEventPatternError';
  }
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export function matchesEventPattern(pattern: Record<string, unknown>, event: unknown): boolean {
  return matchObject(pattern, event);
}

function matchObject(pattern: Record<string, unknown>, value: unknown): boolean {
  for (const [key, rule] of Object.entries(pattern)) {
    if (key === '$or') {
      if (!(rule as Record<string, unknown>[]).some((sub) => matchObject(sub, value))) return false;
      continue;
    }
    const field = value !== null && typeof value === 'object' && !Array.isArray(value) && Object.prototype.hasOwnProperty.call(value, key)
      ? (value as Record<string, unknown>)[key]
      : undefined;
    if (Array.isArray(rule)) {
      if (!matchLeaf(rule as Json[], field)) return false;
    } else if (rule !== null && typeof rule === 'object') {
      if (field === undefined || field === null || typeof field !== 'object') return false;
      if (Array.isArray(field)) {
        if (!field.some((item) => matchObject(rule as Record<string, unknown>, item))) return false;
      } else if (!matchObject(rule as Record<string, unknown>, field)) return false;
    } else {
      throw new UnsupportedEventPatternError(`a pattern leaf must be an array (field ${key})`);
    }
  }
  return true;
}

function matchLeaf(alternatives: Json[], field: unknown): boolean {
  const exists = field !== undefined;
  const values: unknown[] = Array.isArray(field) ? field : [field];
  for (const alternative of alternatives) {
    if (alternative !== null && typeof alternative === 'object' && !Array.isArray(alternative)) {
      const [op, arg] = Object.entries(alternative)[0] ?? [];
      if (op === 'exists') {
        if ((arg as boolean) === exists) return true;
        continue;
      }
      if (!exists) continue;
      if (values.some((v) => matchOperator(op, arg as Json, v))) return true;
    } else if (exists && values.some((v) => v === alternative)) {
      return true;
    } else if (alternative === null && field === null) {
      return true;
    }
  }
  return false;
}

function matchOperator(op: string | undefined, arg: Json, value: unknown): boolean {
  switch (op) {
    case 'prefix':
      return typeof value === 'string' && (typeof arg === 'string' ? value.startsWith(arg) : value.toLowerCase().startsWith(String((arg as Record<string, Json>)['equals-ignore-case']).toLowerCase()));
    case 'suffix':
      return typeof value === 'string' && (typeof arg === 'string' ? value.endsWith(arg) : value.toLowerCase().endsWith(String((arg as Record<string, Json>)['equals-ignore-case']).toLowerCase()));
    case 'equals-ignore-case':
      return typeof value === 'string' && value.toLowerCase() === String(arg).toLowerCase();
    case 'wildcard':
      return typeof value === 'string' && wildcardRegExp(String(arg)).test(value);
    case 'anything-but':
      return !anythingBut(arg, value);
    case 'numeric':
      return typeof value === 'number' && numeric(arg as Json[], value);
    default:
      throw new UnsupportedEventPatternError(String(op));
  }
}

/** True when `value` is one of the excluded values (so the anything-but does NOT match). */
function anythingBut(arg: Json, value: unknown): boolean {
  if (Array.isArray(arg)) return arg.some((a) => a === value);
  if (arg !== null && typeof arg === 'object') {
    const [op, inner] = Object.entries(arg)[0];
    const list = Array.isArray(inner) ? inner : [inner];
    return list.some((i) => matchOperator(op, i as Json, value));
  }
  return arg === value;
}

function numeric(conditions: Json[], value: number): boolean {
  for (let i = 0; i < conditions.length; i += 2) {
    const op = conditions[i];
    const bound = Number(conditions[i + 1]);
    const ok = op === '=' ? value === bound : op === '<' ? value < bound : op === '<=' ? value <= bound : op === '>' ? value > bound : op === '>=' ? value >= bound : false;
    if (!ok) return false;
  }
  return true;
}

function wildcardRegExp(pattern: string): RegExp {
  return new RegExp(`^${pattern.split('*').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 's');
}
