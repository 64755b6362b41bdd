/**
 * `npm run token -- --doc NAME --mode read|write|admin --ttl 1h [--name "Ada"] [--sub user-42] [--url https://host]`
 *
 * Mints an access token with AUTH_SECRET (from the environment, or `.dev.vars` as wrangler
 * reads it locally) and prints it with a share link that opens the document in the app.
 * `--doc` may end in `*` to cover every document with that prefix (no link is printed then).
 * `--sub` names whom the token is for (a user id): the server then rate-limits it per subject
 * as well as per address. Leave it out for a link meant to be shared.
 *
 * `--mode admin` is the operator's token (write, and the whole webhook endpoint URLs in
 * `GET /api/docs/:name/webhooks`). This is the only place edgedoc mints one, and it prints no
 * share link for it: it is for the operator's own API calls, not to hand out.
 */
import { existsSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { isValidDocumentName } from "../worker/names.ts";
import { signToken, type AccessMode } from "../worker/tokens.ts";

const TTL_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

function fail(message: string): never {
  console.error(`token: ${message}`);
  process.exit(2);
}

function secret(): string {
  if (process.env.AUTH_SECRET) return process.env.AUTH_SECRET;
  if (existsSync(".dev.vars")) {
    const line = readFileSync(".dev.vars", "utf8").split("\n").find((l) => /^\s*AUTH_SECRET\s*=/.test(l));
    const value = line?.split("=").slice(1).join("=").trim().replace(/^["']|["']$/g, "");
    if (value) return value;
  }
  return fail("AUTH_SECRET is not set (export it, or put AUTH_SECRET=... in .dev.vars)");
}

function seconds(ttl: string): number {
  const match = /^(\d+)([smhd])$/.exec(ttl);
  if (!match) return fail(`--ttl takes a number and a unit, like 90s, 30m, 1h or 7d (got ${ttl})`);
  return Number(match[1]) * TTL_UNITS[match[2]!]!;
}

const { values } = parseArgs({
  options: {
    doc: { type: "string" },
    mode: { type: "string", default: "write" },
    ttl: { type: "string", default: "1h" },
    name: { type: "string" },
    sub: { type: "string" },
    url: { type: "string", default: "http://localhost:8787" },
  },
});
const doc = values.doc ?? fail("--doc is required");
const pattern = doc.endsWith("*");
if (!isValidDocumentName(pattern ? `${doc.slice(0, -1)}x` : doc)) fail(`--doc is not a valid document name or prefix: ${doc}`);
if (values.mode !== "read" && values.mode !== "write" && values.mode !== "admin") fail("--mode is read, write or admin");
if (values.sub === "") fail("--sub needs a value (a user id)");

const exp = Math.floor(Date.now() / 1000) + seconds(values.ttl);
const token = await signToken(
  { doc, mode: values.mode as AccessMode, exp, ...(values.name ? { name: values.name } : {}), ...(values.sub ? { sub: values.sub } : {}) },
  secret(),
);
console.log(token);
if (!pattern && values.mode !== "admin") console.log(`${values.url.replace(/\/$/, "")}/d/${doc}?token=${token}`);
const operator = values.mode === "admin" ? " (an operator's token: for your own API calls, never a share link)" : "";
console.error(`${values.mode} access to ${doc}, expires ${new Date(exp * 1000).toISOString()}${operator}`);
