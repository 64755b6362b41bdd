/**
 * Structured logs: one JSON object per line, so `wrangler tail` and log search can filter
 * on fields. Never pass a token or document content here.
 */
export function logEvent(event: string, fields: Record<string, unknown> = {}): void {
  console.log(JSON.stringify({ event, ...fields }));
}
