/**
 * Document names. A name is part of every URL and picks the Durable Object, so it is
 * restricted to characters that need no escaping anywhere.
 */

/** The rule, as the 400 response and the README state it. */
export const DOCUMENT_NAME_RULE =
  "1-128 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit";

const DOCUMENT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function isValidDocumentName(name: string): boolean {
  return DOCUMENT_NAME.test(name);
}
