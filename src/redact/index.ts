/**
 * Secrets never stored: the redactor (exact values of secret-looking env variables and passEnv,
 * well-known credential formats) and what the engine records of it. See redactor.ts.
 */
export {
  Redactor,
  countsToList,
  isSecretName,
  marker,
  secretValuesOf,
  totalRedactions,
  MIN_SECRET_VALUE_CHARS,
  NOT_SECRET_NAMES,
  SECRET_NAME_PARTS,
  type RedactionCount,
  type Redacted,
  type SecretValue,
} from './redactor.js';
export { SECRET_RULES, type SecretRule } from './rules.js';
